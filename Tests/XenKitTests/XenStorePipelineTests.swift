import Foundation
import Synchronization
import Testing

@testable import XenKit

/// Reads and listings pipelined to xenstored (issue 16), against a fake xenstored on the other end of a socket pair
/// that speaks `xs_wire.h`'s protocol and answers only once a whole window of requests has come.
@Suite("xenstore pipeline")
struct XenStorePipelineTests {
    /// What the fake saw: each request's type, id and path, and the most requests it held unanswered at once.
    final class FakeXenstored: @unchecked Sendable {
        struct Seen: Equatable {
            var type: UInt32
            var id: UInt32
            var path: String
        }

        /// What the serving thread records.
        final class Record: Sendable {
            let seen = Mutex<[Seen]>([])
            let mostUnanswered = Mutex(0)
        }

        let record = Record()
        var seen: [Seen] { record.seen.withLock { $0 } }
        var mostUnanswered: Int { record.mostUnanswered.withLock { $0 } }
        let thread: Thread

        /// Serves `total` requests on `fd`, answering none until `window` (or all that are left) have come, each
        /// answer's bytes sent one at a time when `trickle`.
        init(fd: Int32, window: Int, total: Int, trickle: Bool) {
            let record = record
            thread = Thread {
                var buffer: [UInt8] = []
                var held: [Seen] = []
                var answered = 0
                while answered < total {
                    var chunk = [UInt8](repeating: 0, count: 4096)
                    let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                    guard count > 0 else { return }
                    buffer += chunk[..<count]
                    while buffer.count >= 16 {
                        let field = { (i: Int) in buffer[i * 4..<i * 4 + 4].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * $1.offset) } }
                        let length = Int(field(3))
                        guard buffer.count >= 16 + length else { break }
                        let path = String(decoding: buffer[16..<16 + length - 1], as: UTF8.self)
                        held.append(Seen(type: field(0), id: field(1), path: path))
                        buffer.removeFirst(16 + length)
                    }
                    record.mostUnanswered.withLock { $0 = max($0, held.count) }
                    guard held.count >= min(window, total - answered) else { continue }
                    for request in held {
                        record.seen.withLock { $0.append(request) }
                        let (type, body) = Self.answer(request)
                        var bytes: [UInt8] = []
                        for value in [type, request.id, 0, UInt32(body.count)] { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
                        bytes += body
                        if trickle {
                            for byte in bytes { _ = [byte].withUnsafeBytes { send(fd, $0.baseAddress, 1, 0) } }
                        } else {
                            _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
                        }
                        answered += 1
                    }
                    held.removeAll()
                }
            }
            thread.start()
        }

        /// xenstored's answer: `/v/N` holds `value N`, `/d` lists `a` and `b`, `/empty` lists nothing, `/secret` is
        /// refused (`EACCES`), anything else does not exist.
        static func answer(_ request: Seen) -> (UInt32, [UInt8]) {
            let error: UInt32 = 16  // XS_ERROR
            switch request.path {
            case "/secret": return (error, Array("EACCES".utf8) + [0])
            case "/d" where request.type == 1: return (1, Array("a\u{0}b\u{0}".utf8))
            case "/empty" where request.type == 1: return (1, [])
            case let path where path.hasPrefix("/v/") && request.type == 2: return (2, Array("value \(path.dropFirst(3))".utf8))
            default: return (error, Array("ENOENT".utf8) + [0])
            }
        }
    }

    /// A socket pair whose first end times out after 5 s: a client that waited for each answer before sending the
    /// next request would stall against the fake, and fail here rather than hang.
    func pair() -> (client: Int32, server: Int32) {
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fds[0], SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return (fds[0], fds[1])
    }

    @Test("answers come back in the queries' order, a window at a time, whole even when they arrive byte by byte")
    func answersInOrder() throws {
        let queries: [XenStoreQuery] = (0..<37).map { .read("/v/\($0)") } + [.read("/missing"), .directory("/d"), .directory("/empty"), .directory("/nope"), .read("/secret")]
        for (window, trickle) in [(16, false), (4, true), (1, false)] {
            let (client, server) = pair()
            defer {
                close(client)
                close(server)
            }
            let fake = FakeXenstored(fd: server, window: window, total: queries.count, trickle: trickle)
            let answers = try XenStorePipeline.exchange(queries, over: client, window: window)
            #expect(answers.count == queries.count)
            #expect(answers.prefix(37) == ArraySlice((0..<37).map { XenStoreAnswer.value("value \($0)") }))
            #expect(answers[37] == .value(nil))
            #expect(answers[38] == .children(["a", "b"]))
            #expect(answers[39] == .children([]))
            #expect(answers[40] == .children(nil))
            #expect(answers[41] == .failed(.errno(.permissionDenied, operation: "xs_read /secret")))
            let seen = fake.seen
            #expect(seen.map(\.path) == queries.map(\.path))
            #expect(seen.map(\.id) == (0..<UInt32(queries.count)).map { $0 })
            #expect(seen.map(\.type) == queries.map { $0.kind == .read ? 2 : 1 })
            #expect(fake.mostUnanswered == window, "window \(window)")
        }
    }

    @Test("an answer out of order, or a connection closed part way, fails the batch")
    func brokenConnections() throws {
        let (client, server) = pair()
        defer { close(client) }
        let queries: [XenStoreQuery] = [.read("/v/0"), .read("/v/1")]
        // An answer with the wrong request id.
        var answer: [UInt8] = []
        for value: UInt32 in [2, 1, 0, 1] { withUnsafeBytes(of: value.littleEndian) { answer += $0 } }
        answer.append(0x41)
        _ = answer.withUnsafeBytes { send(server, $0.baseAddress, $0.count, 0) }
        #expect(throws: XenError.self) { try XenStorePipeline.exchange(queries, over: client) }
        close(server)
        // An answer longer than xenstored ever sends: the stream is out of step, and is not read on for 4 GiB.
        let (long, sending) = pair()
        defer { close(long) }
        var header: [UInt8] = []
        for value: UInt32 in [2, 0, 0, 5000] { withUnsafeBytes(of: value.littleEndian) { header += $0 } }
        _ = header.withUnsafeBytes { send(sending, $0.baseAddress, $0.count, 0) }
        let error = #expect(throws: XenError.self) { try XenStorePipeline.exchange(queries, over: long) }
        #expect("\(String(describing: error))".contains("5000"))
        close(sending)
        let (other, closing) = pair()
        defer { close(other) }
        close(closing)
        #expect(throws: XenError.self) { try XenStorePipeline.exchange(queries, over: other) }
    }

    @Test("a path with a NUL, or longer than a xenstore message holds, is refused before anything is sent")
    func badPaths() throws {
        // Refused before it looks for Xen: the error is the path's, here where there is no Xen.
        var connection: Int32?
        let error = #expect(throws: XenError.self) { try XenStorePipeline.answers([.read("/ok"), .read("/a\u{0}b")], reusing: &connection) }
        #expect(connection == nil)
        #expect(error.map { if case .errno(.invalidArgument, _) = $0 { true } else { false } } == true, "\(String(describing: error))")
        #expect(throws: XenError.self) { try XenStorePipeline.request(.read("/" + String(repeating: "x", count: 4096)), id: 0) }
        let request = try XenStorePipeline.request(.directory("/ab"), id: 7)
        #expect(request == [1, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0x2F, 0x61, 0x62, 0])
    }

    @Test("the socket is libxenstore's (xs_daemon_socket through its trampoline)")
    func socketPath() throws {
        let path = try XenStorePipeline.socketPath()
        #expect(path == ProcessInfo.processInfo.environment["XENSTORED_PATH"] ?? "/var/run/xenstored/socket")
    }
}
