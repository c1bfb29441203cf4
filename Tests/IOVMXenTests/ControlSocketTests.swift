import Dispatch
import Foundation
import IOVMXen
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `iovm watch`'s control socket: a real Unix socket, served on a thread, asked by a client that falls back when
/// nothing serves it.
@Suite("Control socket")
struct ControlSocketTests {
    func scratch() -> String {
        let directory = FileManager.default.temporaryDirectory.appending(path: "iovm-cs-\(UUID().uuidString.prefix(8))").path
        return directory + "/control.sock"
    }

    /// A ``scratch()`` path whose directory exists already (made by the test, not by the server).
    func scratchMade() throws -> String {
        let path = scratch()
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        return path
    }

    /// A Unix socket of `type` bound at `path` and never listened on.
    func bound(_ path: String, type: __socket_type) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(type.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: Array(path.utf8))
            raw[path.utf8.count] = 0
        }
        let result = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        try #require(result == 0)
        return fd
    }

    @Test("a request reaches the handler with the client's pid, and its answer comes back; stop removes the socket")
    func exchanges() throws {
        let path = scratch()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let seen = Mutex<[Int32]>([])
        let server = try ControlSocketServer(path: path) { request, client in
            seen.withLock { $0.append(client.pid) }
            return Array("echo:".utf8) + request.bytes
        }
        let reply = try ControlSocket.exchange(Array("hello".utf8), path: path, timeout: 5)
        #expect(reply.map { String(decoding: $0, as: UTF8.self) } == "echo:hello")
        #expect(seen.withLock { $0 } == [getpid()])
        let big = [UInt8](repeating: 65, count: 40_000)
        #expect(try ControlSocket.exchange(big, path: path, timeout: 5) == Array("echo:".utf8) + big)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let directory = try FileManager.default.attributesOfItem(atPath: (path as NSString).deletingLastPathComponent)
        #expect((directory[.posixPermissions] as? NSNumber)?.intValue == 0o700)
        server.stop()
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(try ControlSocket.exchange(Array("again".utf8), path: path, timeout: 5) == nil)
    }

    @Test("nothing serving: no socket, or one left by a process that ended, answers nil (the verb runs in-process)")
    func nothingServes() throws {
        let path = scratch()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        #expect(try ControlSocket.exchange(Array("x".utf8), path: path, timeout: 1) == nil)
        // A stale socket: bound, never listened on, its descriptor closed (as after kill -9).
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        close(try bound(path, type: SOCK_STREAM))
        #expect(FileManager.default.fileExists(atPath: path))
        #expect(try ControlSocket.exchange(Array("x".utf8), path: path, timeout: 1) == nil)
        // A new server replaces it.
        let server = try ControlSocketServer(path: path) { _, _ in Array("ok".utf8) }
        defer { server.stop() }
        #expect(try ControlSocket.exchange(Array("x".utf8), path: path, timeout: 5) == Array("ok".utf8))
    }

    @Test("a second server refuses a socket a live one serves, and no server takes a path that is not a socket")
    func refusesToTakeOver() throws {
        let path = scratch()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let first = try ControlSocketServer(path: path) { _, _ in Array("first".utf8) }
        defer { first.stop() }
        #expect { _ = try ControlSocketServer(path: path) { _, _ in [] } } throws: { "\($0)".contains("already serves \(path)") }
        #expect(try ControlSocket.exchange(Array("x".utf8), path: path, timeout: 5) == Array("first".utf8))
        let file = (path as NSString).deletingLastPathComponent + "/plain"
        FileManager.default.createFile(atPath: file, contents: Data("keep".utf8))
        #expect { _ = try ControlSocketServer(path: file) { _, _ in [] } } throws: { "\($0)".contains("is not a socket") }
        #expect(FileManager.default.contents(atPath: file) == Data("keep".utf8))
        let long = "/tmp/" + String(repeating: "x", count: 120)
        #expect { _ = try ControlSocket.exchange([], path: long, timeout: 1) } throws: { "\($0)".contains("must be 1-107 bytes") }
    }

    @Test("a request over the limit gets an error reply; a server that closes without a reply is an error, not a fallback")
    func limitsAndCutReplies() throws {
        let path = scratch()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let server = try ControlSocketServer(path: path) { request, _ in
            if case .refused = request { return request.bytes }
            return request.bytes.first == 0x71 ? [] : Array("fine".utf8)
        }
        defer { server.stop() }
        let over = try #require(try ControlSocket.exchange([UInt8](repeating: 65, count: ControlSocket.requestLimit + 1), path: path, timeout: 5))
        #expect(String(decoding: over, as: UTF8.self).contains("request over \(ControlSocket.requestLimit) bytes"))
        #expect { _ = try ControlSocket.exchange(Array("q".utf8), path: path, timeout: 5) } throws: { "\($0)".contains("closed without a reply") }
        #expect(try ControlSocket.exchange(Array("a".utf8), path: path, timeout: 5) == Array("fine".utf8))
    }

    @Test("requests are answered at once side by side, and stop waits for the ones being answered")
    func concurrentAndStop() throws {
        let path = scratch()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let second = DispatchSemaphore(value: 0)
        let server = try ControlSocketServer(path: path) { request, _ in
            let request = request.bytes
            if request == Array("first".utf8) {
                // Answered only once the second request has been: a server taking one at a time would time out here.
                return second.wait(timeout: .now() + 10) == .success ? Array("first done".utf8) : Array("first alone".utf8)
            }
            if request == Array("slow".utf8) { Thread.sleep(forTimeInterval: 0.5) }
            second.signal()
            return request
        }
        let first = Mutex<[UInt8]?>(nil)
        let thread = Thread { first.withLock { $0 = try? ControlSocket.exchange(Array("first".utf8), path: path, timeout: 20) } }
        thread.start()
        Thread.sleep(forTimeInterval: 0.2)
        #expect(try ControlSocket.exchange(Array("second".utf8), path: path, timeout: 5) == Array("second".utf8))
        for _ in 0..<100 where first.withLock({ $0 }) == nil { Thread.sleep(forTimeInterval: 0.05) }
        #expect(first.withLock { $0 } == Array("first done".utf8))
        // stop() while a request is being answered: it returns once the answer is sent.
        let slow = Mutex<[UInt8]?>(nil)
        let slowThread = Thread { slow.withLock { $0 = try? ControlSocket.exchange(Array("slow".utf8), path: path, timeout: 20) } }
        slowThread.start()
        Thread.sleep(forTimeInterval: 0.2)
        server.stop()
        for _ in 0..<40 where slow.withLock({ $0 }) == nil { Thread.sleep(forTimeInterval: 0.05) }
        #expect(slow.withLock { $0 } == Array("slow".utf8))
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test("the lock file beside the socket lets one server start at a time, and is let go by stop")
    func lockFile() throws {
        let path = try scratchMade()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        // Another server starting at this moment holds the lock and has not bound the socket yet.
        let other = open(path + ".lock", O_RDWR | O_CREAT, 0o600)
        #expect(other >= 0 && flock(other, LOCK_EX | LOCK_NB) == 0)
        #expect { _ = try ControlSocketServer(path: path) { _, _ in [] } } throws: { "\($0)".contains("already serves \(path)") }
        #expect(!FileManager.default.fileExists(atPath: path))
        close(other)
        let server = try ControlSocketServer(path: path) { _, _ in Array("ok".utf8) }
        defer { server.stop() }
        let blocked = open(path + ".lock", O_RDWR)
        defer { close(blocked) }
        #expect(flock(blocked, LOCK_EX | LOCK_NB) != 0)
        server.stop()
        #expect(flock(blocked, LOCK_EX | LOCK_NB) == 0)
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test("a lock file another user owns is refused by name, even while that user holds it", .enabled(if: geteuid() == 0))
    func squattedLockFile() throws {
        let path = try scratchMade()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        // A user who may write the directory made the lock file first and holds it (nobody, 65534).
        let squatter = open(path + ".lock", O_RDWR | O_CREAT, 0o600)
        defer { close(squatter) }
        #expect(squatter >= 0 && fchown(squatter, 65534, 65534) == 0 && flock(squatter, LOCK_EX | LOCK_NB) == 0)
        #expect { _ = try ControlSocketServer(path: path) { _, _ in [] } } throws: { "\($0)".contains("\(path).lock belongs to uid 65534") }
        #expect(!FileManager.default.fileExists(atPath: path))
        // Its own lock file, left by an earlier server of this user, is taken.
        flock(squatter, LOCK_UN)
        #expect(fchown(squatter, geteuid(), getegid()) == 0)
        let server = try ControlSocketServer(path: path) { _, _ in Array("ok".utf8) }
        server.stop()
    }

    @Test("a client that hung up is seen as gone; one still waiting is not")
    func hungUp() throws {
        let path = scratch()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let seen = Mutex<[Bool]>([])
        let server = try ControlSocketServer(path: path) { _, client in
            let before = client.hungUp
            for _ in 0..<100 where !client.hungUp { Thread.sleep(forTimeInterval: 0.02) }
            seen.withLock { $0 += [before, client.hungUp] }
            return Array("late".utf8)
        }
        defer { server.stop() }
        // The client gives up after 0.3 s: the handler sees it go.
        #expect { _ = try ControlSocket.exchange(Array("x".utf8), path: path, timeout: 0.3) } throws: { "\($0)".contains("no reply within") }
        for _ in 0..<100 where seen.withLock({ $0.isEmpty }) { Thread.sleep(forTimeInterval: 0.02) }
        #expect(seen.withLock { $0 } == [false, true])
    }

    @Test("a socket that is not a stale one of this iovm (a datagram socket) is never removed")
    func otherSocketsAreKept() throws {
        let path = try scratchMade()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let fd = try bound(path, type: SOCK_DGRAM)
        defer { close(fd) }
        #expect { _ = try ControlSocketServer(path: path) { _, _ in [] } } throws: { "\($0)".contains("a socket this iovm did not leave") }
        #expect(FileManager.default.fileExists(atPath: path))
        #expect(try ControlSocket.exchange(Array("x".utf8), path: path, timeout: 1) == nil)
    }
}

extension ControlSocketRequest {
    /// The document's bytes; a refusal as `refused: WHY`.
    var bytes: [UInt8] {
        switch self {
        case .document(let bytes): bytes
        case .refused(let why): Array("refused: \(why)".utf8)
        }
    }
}
