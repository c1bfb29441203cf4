import FoundationEssentials
import IOVMCore
import Synchronization
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// Why the control socket could not be served or asked.
public struct ControlSocketError: Error, Sendable, CustomStringConvertible {
    /// The message.
    public var description: String
    /// Creates one.
    public init(_ description: String) { self.description = description }
}

/// `iovm watch`'s control socket: a Unix stream socket on which the live verbs (`pin`, `unpin`, `weight`) are
/// carried out by the resident process, whose libxl context is already open, instead of a new process opening one.
///
/// One request document per connection, the client ending its side; one reply document, then the server closes.
/// The socket is created mode 0600 in a directory of mode 0700, and the server answers only root and its own user
/// (`SO_PEERCRED`).
public enum ControlSocket {
    /// Where `iovm watch` serves it unless told otherwise.
    public static let defaultPath = "/run/iovm/control.sock"
    /// Largest request read, in bytes.
    public static let requestLimit = 1 << 16
    /// Largest reply read, in bytes.
    public static let replyLimit = 1 << 20

    /// Sends `request` to the process serving `path` and returns its reply, waiting at most `timeout` seconds for it.
    ///
    /// - Returns: nil when nothing serves `path` (no socket there, a stale one, or one this user may not open): the
    ///   caller does the work itself.
    /// - Throws: ``ControlSocketError`` when the server took the request but gave no whole reply (what it did is not
    ///   known, so the caller must not do it again).
    public static func exchange(_ request: [UInt8], path: String, timeout: Double) throws(ControlSocketError) -> [UInt8]? {
        var address = try socketAddress(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ControlSocketError("socket: \(Errno(rawValue: errno).description)") }
        defer { close(fd) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if connected != 0 {
            let code = errno
            if [ENOENT, ECONNREFUSED, EACCES, ENOTDIR, EPERM].contains(code) { return nil }
            throw ControlSocketError("cannot connect to \(path): \(Errno(rawValue: code).description)")
        }
        guard sendAll(fd, request[...]) else { throw ControlSocketError("\(path): the request was not sent: \(Errno(rawValue: errno).description)") }
        shutdown(fd, Int32(SHUT_WR))
        setTimeout(fd, seconds: timeout)
        let (reply, complete) = receiveAll(fd, limit: replyLimit)
        guard complete else {
            let why = errno == EAGAIN || errno == EWOULDBLOCK ? "no reply within \(Int(timeout)) s" : "the reply was cut short"
            throw ControlSocketError("\(path): \(why); whether the change was made is not known (see the serving process's log)")
        }
        guard !reply.isEmpty else {
            throw ControlSocketError("\(path): closed without a reply; whether the change was made is not known (see the serving process's log)")
        }
        return reply
    }

    /// `path` as a Unix socket address; refuses one that does not fit `sun_path`.
    static func socketAddress(_ path: String) throws(ControlSocketError) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity, !bytes.contains(0) else {
            throw ControlSocketError("control socket path \(path) must be 1-\(capacity - 1) bytes")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }

    static func setTimeout(_ fd: Int32, seconds: Double) {
        let clamped = max(0.001, min(seconds, 86_400))
        var timeout = timeval(tv_sec: Int(clamped), tv_usec: Int((clamped - clamped.rounded(.down)) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    static func sendAll(_ fd: Int32, _ bytes: ArraySlice<UInt8>) -> Bool {
        var rest = bytes
        while !rest.isEmpty {
            let sent = rest.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent < 0, errno == EINTR { continue }
            if sent <= 0 { return false }
            rest = rest.dropFirst(sent)
        }
        return true
    }

    /// Reads until the peer ends its side; `complete` is false on an error, a timeout, or more than `limit` bytes.
    static func receiveAll(_ fd: Int32, limit: Int) -> (bytes: [UInt8], complete: Bool) {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = recv(fd, &chunk, chunk.count, 0)
            if count < 0, errno == EINTR { continue }
            if count < 0 { return (bytes, false) }
            if count == 0 { return (bytes, true) }
            bytes += chunk[..<count]
            if bytes.count > limit { return (bytes, false) }
        }
    }
}

/// Serves the control socket on a thread of its own: each request, one at a time, goes to `handler`, whose answer is
/// sent back.
public final class ControlSocketServer: Sendable {
    /// The socket's path.
    public let path: String
    private let fd: Int32
    private let inode: UInt64
    private let stopped = Atomic<Bool>(false)

    /// Binds `path` (its directory made mode 0700 when missing) and starts serving.
    ///
    /// A socket left at `path` by a process that ended is replaced; one that a live process serves is not.
    /// `handler` gets the request's bytes and the client's process id.
    ///
    /// - Throws: ``ControlSocketError`` when another process serves `path`, or `path` is not a socket, or binding fails.
    public init(path: String, handler: @escaping @Sendable (_ request: [UInt8], _ client: Int32) -> [UInt8]) throws(ControlSocketError) {
        var address = try ControlSocket.socketAddress(path)
        let directory = FilePath(path).removingLastComponent().string
        if !directory.isEmpty, mkdir(directory, 0o700) != 0, errno != EEXIST {
            throw ControlSocketError("cannot make \(directory): \(Errno(rawValue: errno).description)")
        }
        var status = stat()
        if lstat(path, &status) == 0 {
            guard status.st_mode & S_IFMT == S_IFSOCK else { throw ControlSocketError("\(path) exists and is not a socket: remove it or choose another path") }
            if (try? ControlSocket.probe(path)) == true {
                throw ControlSocketError("another process (an iovm watch) already serves \(path)")
            }
            unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ControlSocketError("socket: \(Errno(rawValue: errno).description)") }
        let mask = umask(0o177)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        umask(mask)
        guard bound == 0, listen(fd, 16) == 0, lstat(path, &status) == 0 else {
            let reason = Errno(rawValue: errno).description
            close(fd)
            throw ControlSocketError("cannot serve \(path): \(reason)")
        }
        self.path = path
        self.fd = fd
        self.inode = UInt64(status.st_ino)
        PThread.detach { [self] in serve(handler) }
    }

    /// Stops serving and removes the socket (when it is still this server's).
    public func stop() {
        guard !stopped.exchange(true, ordering: .sequentiallyConsistent) else { return }
        var status = stat()
        if lstat(path, &status) == 0, UInt64(status.st_ino) == inode { unlink(path) }
        shutdown(fd, Int32(SHUT_RDWR))
    }

    private func serve(_ handler: @Sendable ([UInt8], Int32) -> [UInt8]) {
        defer { close(fd) }
        while !stopped.load(ordering: .sequentiallyConsistent) {
            let client = accept(fd, nil, nil)
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return
            }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            defer { close(client) }
            // struct ucred: pid, uid, gid.
            var credentials: (Int32, UInt32, UInt32) = (0, UInt32.max, UInt32.max)
            var length = socklen_t(MemoryLayout.size(ofValue: credentials))
            guard getsockopt(client, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0,
                credentials.1 == 0 || credentials.1 == geteuid()
            else { continue }
            ControlSocket.setTimeout(client, seconds: 5)
            let (request, complete) = ControlSocket.receiveAll(client, limit: ControlSocket.requestLimit)
            let reply: [UInt8]
            if complete, request.isEmpty {
                continue  // a probe: connected and closed
            } else if complete {
                reply = handler(request, credentials.0)
            } else if request.count > ControlSocket.requestLimit {
                reply = Array(#"{"changes":[],"error":"iovm: error: control socket request over \#(ControlSocket.requestLimit) bytes","pid":\#(getpid()),"version":1}"#.utf8)
            } else {
                continue
            }
            _ = ControlSocket.sendAll(client, reply[...])
        }
    }
}

extension ControlSocket {
    /// Whether a process accepts connections on `path` now.
    static func probe(_ path: String) throws(ControlSocketError) -> Bool {
        var address = try socketAddress(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        } == 0
    }
}
