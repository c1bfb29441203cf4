import CLibXen
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// One read or listing of a ``XenStorePipeline``.
public struct XenStoreQuery: Sendable, Hashable {
    /// What is asked of the path.
    public enum Kind: Sendable, Hashable {
        /// Its value (`XS_READ`).
        case read
        /// Its children (`XS_DIRECTORY`).
        case directory
    }

    /// What is asked.
    public var kind: Kind
    /// The absolute path.
    public var path: String

    /// The value at `path`.
    public static func read(_ path: String) -> XenStoreQuery { XenStoreQuery(kind: .read, path: path) }
    /// The children of `path`.
    public static func directory(_ path: String) -> XenStoreQuery { XenStoreQuery(kind: .directory, path: path) }
}

/// xenstored's answer to one ``XenStoreQuery``, as ``XenStoreClient`` would give it.
public enum XenStoreAnswer: Sendable, Equatable {
    /// A read's value; nil when the node does not exist (`ENOENT`).
    case value(String?)
    /// A listing's children; nil when the node does not exist.
    case children([String]?)
    /// Any other error xenstored gave for this query alone (`EACCES`, `EINVAL`, …).
    case failed(XenError)
}

/// Many xenstore reads and listings sent at once over one connection of their own to xenstored's socket, the
/// answers read back in order.
///
/// libxenstore sends a request and waits for its answer before the next. Under TCG a round trip to xenstored costs
/// 1-2 ms in dom0, most of it the two processes waking each other; sent back to back, xenstored answers each
/// request as soon as the previous one is done (issue 16: 48 reads took 46 ms one by one and 23 ms pipelined, in the
/// lab's idle dom0). The protocol is `xs_wire.h`'s: a 16-byte header (type, request id, transaction 0, length), then
/// the NUL-terminated path; an error comes back as `XS_ERROR` with errno's name. At most ``window`` requests are in
/// flight at a time.
///
/// Only for reads that may be answered by a snapshot taken a few milliseconds apart, as successive `xs_read`s are.
public enum XenStorePipeline {
    /// Requests in flight at once. xenstored may bound a connection's queued answers; 16 stays well inside that.
    public static let window = 16

    /// How long an answer may take before the whole batch fails.
    static let timeoutSeconds = 30

    /// Answers `queries`, in their order, over `connection` to xenstored's socket (`xs_daemon_socket`), connected
    /// first when nil; it is closed and set to nil when the exchange fails (the next call connects again).
    ///
    /// - Returns: nil when the socket cannot be reached (xenstored in a stub domain, a domU, no permission): the
    ///   caller reads one by one, through libxenstore.
    /// - Throws: ``XenError`` when the connection fails part way (the caller may read one by one instead); a path with a
    ///   NUL in it is refused before anything is sent.
    static func answers(_ queries: [XenStoreQuery], reusing connection: inout Int32?) throws(XenError) -> [XenStoreAnswer]? {
        if queries.isEmpty { return [] }
        for query in queries { try XenStoreClient.validate(query.path, "xenstore pipeline") }
        if connection == nil {
            try XenHost.requireXen()
            guard let fd = connect(try socketPath()) else { return nil }
            connection = fd
        }
        guard let fd = connection else { return nil }
        do {
            return try exchange(queries, over: fd)
        } catch {
            close(fd)
            connection = nil
            throw error
        }
    }

    /// xenstored's socket as libxenstore finds it (`xs_daemon_socket`: `$XENSTORED_PATH`, else its run directory's).
    static func socketPath() throws(XenError) -> String {
        try XenLibraries.load(.xenstore)
        return xs_daemon_socket().map { String(cString: $0) } ?? "/var/run/xenstored/socket"
    }

    /// A connected socket to `path`, or nil.
    static func connect(_ path: String) -> Int32? {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: bytes)
            buffer[bytes.count] = 0
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            return nil
        }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// Sends `queries` over `fd`, at most `window` at a time, and reads their answers.
    static func exchange(_ queries: [XenStoreQuery], over fd: Int32, window: Int = window) throws(XenError) -> [XenStoreAnswer] {
        var answers: [XenStoreAnswer] = []
        answers.reserveCapacity(queries.count)
        var sent = 0
        var pending: [UInt8] = []
        var start = 0
        while answers.count < queries.count {
            // Fill the window in one write.
            var batch: [UInt8] = []
            while sent < queries.count, sent - answers.count < max(1, window) {
                try batch.append(contentsOf: request(queries[sent], id: UInt32(sent)))
                sent += 1
            }
            if !batch.isEmpty { try sendAll(fd, batch) }
            // Take every whole answer the buffer holds, reading more until there is at least one.
            var took = false
            while !took {
                // xenstored never sends more than a message's payload: a longer one is a stream out of step.
                if let header = header(in: pending, from: start), header.length > UInt32(XENSTORE_PAYLOAD_MAX) {
                    throw XenError.failed(operation: "xenstore pipeline", detail: "an answer of \(header.length) bytes, over xenstored's \(XENSTORE_PAYLOAD_MAX)")
                }
                while let (header, body) = message(in: pending, from: start) {
                    start += headerSize + body.count
                    guard header.id == UInt32(answers.count) else {
                        throw XenError.failed(operation: "xenstore pipeline", detail: "answer \(header.id) came where \(answers.count) was due")
                    }
                    answers.append(answer(to: queries[answers.count], type: header.type, body: body))
                    took = true
                }
                if start > 0, start == pending.count || start > 65536 {
                    pending.removeFirst(start)
                    start = 0
                }
                if !took { try receive(fd, into: &pending) }
            }
        }
        return answers
    }

    /// The bytes of a message's header (`struct xsd_sockmsg`).
    static let headerSize = 16

    /// A message's header fields.
    struct Header {
        var type: UInt32
        var id: UInt32
        var length: UInt32
    }

    /// The request of `query` with request id `id`.
    static func request(_ query: XenStoreQuery, id: UInt32) throws(XenError) -> [UInt8] {
        let payload = Array(query.path.utf8) + [0]
        guard payload.count <= Int(XENSTORE_PAYLOAD_MAX) else {
            throw XenError.errno(.invalidArgument, operation: "xenstore pipeline \(query.path.prefix(64))…: path too long")
        }
        let type = query.kind == .read ? XS_READ.rawValue : XS_DIRECTORY.rawValue
        var bytes: [UInt8] = []
        bytes.reserveCapacity(headerSize + payload.count)
        for field in [UInt32(type), id, 0, UInt32(payload.count)] { withUnsafeBytes(of: field.littleEndian) { bytes.append(contentsOf: $0) } }
        return bytes + payload
    }

    /// The header at `start` of `buffer`, or nil while it is incomplete.
    static func header(in buffer: [UInt8], from start: Int) -> Header? {
        guard buffer.count - start >= headerSize else { return nil }
        func field(_ index: Int) -> UInt32 {
            var value: UInt32 = 0
            for byte in 0..<4 { value |= UInt32(buffer[start + index * 4 + byte]) << (8 * byte) }
            return value
        }
        return Header(type: field(0), id: field(1), length: field(3))
    }

    /// The whole message at `start` of `buffer`, or nil while it is incomplete.
    static func message(in buffer: [UInt8], from start: Int) -> (Header, ArraySlice<UInt8>)? {
        guard let header = header(in: buffer, from: start) else { return nil }
        let end = start + headerSize + Int(min(header.length, UInt32(Int32.max)))
        guard buffer.count >= end else { return nil }
        return (header, buffer[(start + headerSize)..<end])
    }

    /// The answer a message of `type` with `body` gives to `query`, as libxenstore would read it.
    static func answer(to query: XenStoreQuery, type: UInt32, body: ArraySlice<UInt8>) -> XenStoreAnswer {
        if type == XS_ERROR.rawValue {
            let name = String(decoding: body.prefix { $0 != 0 }, as: UTF8.self)
            if name == "ENOENT" { return query.kind == .read ? .value(nil) : .children(nil) }
            return .failed(.errno(code(named: name), operation: "\(query.kind == .read ? "xs_read" : "xs_directory") \(query.path)"))
        }
        let expected = query.kind == .read ? XS_READ.rawValue : XS_DIRECTORY.rawValue
        guard type == expected else {
            return .failed(.failed(operation: "xenstore pipeline \(query.path)", detail: "answer of type \(type) to a request of type \(expected)"))
        }
        switch query.kind {
        case .read:
            return .value(String(decoding: body, as: UTF8.self))
        case .directory:
            // Each name ends with a NUL; an empty directory is an empty body.
            return .children(body.split(separator: 0, omittingEmptySubsequences: true).map { String(decoding: $0, as: UTF8.self) })
        }
    }

    /// The errno xenstored names (`xsd_errors`); EINVAL, as libxenstore's, for a name it does not know.
    static func code(named name: String) -> Errno {
        let names: [String: Errno] = [
            "EINVAL": .invalidArgument, "EACCES": .permissionDenied, "EEXIST": .fileExists, "EISDIR": .isDirectory,
            "ENOMEM": .noMemory, "ENOSPC": .noSpace, "EIO": .ioError, "ENOTEMPTY": .directoryNotEmpty, "ENOSYS": .noFunction,
            "EROFS": .readOnlyFileSystem, "EBUSY": .resourceBusy, "EAGAIN": .resourceTemporarilyUnavailable,
            "EISCONN": .socketIsConnected, "E2BIG": .argListTooLong, "EPERM": .notPermitted,
        ]
        return names[name] ?? .invalidArgument
    }

    /// Sends all of `bytes` on `fd`.
    static func sendAll(_ fd: Int32, _ bytes: [UInt8]) throws(XenError) {
        var offset = 0
        while offset < bytes.count {
            let count = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count < 0 {
                if currentCErrno() == EINTR { continue }
                throw XenError.currentErrno(operation: "xenstore pipeline: send")
            }
            offset += count
        }
    }

    /// Appends what `fd` has to `buffer`, waiting for at least one byte; xenstored closing the connection is an error.
    static func receive(_ fd: Int32, into buffer: inout [UInt8]) throws(XenError) {
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                buffer.append(contentsOf: chunk[..<count])
                return
            }
            if count == 0 { throw XenError.failed(operation: "xenstore pipeline", detail: "xenstored closed the connection") }
            if currentCErrno() == EINTR { continue }
            throw XenError.currentErrno(operation: "xenstore pipeline: receive")
        }
    }
}
