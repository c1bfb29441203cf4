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
/// One request document per connection, the client ending its side; one reply line (a JSON document and `\n`), then
/// the server closes. The socket is made mode 0600 before it listens, in a directory made mode 0700 when missing; the
/// server answers only root and its own user, and the client talks only to a server run by root or by itself
/// (`SO_PEERCRED` both ways).
public enum ControlSocket {
    /// Where `iovm watch` serves it unless told otherwise.
    public static let defaultPath = "/run/iovm/control.sock"
    /// Largest request read, in bytes.
    public static let requestLimit = 1 << 20
    /// Largest reply read, in bytes.
    public static let replyLimit = 1 << 22

    /// Sends `request` to the process serving `path` and returns its reply, waiting at most `timeout` seconds for it.
    ///
    /// - Returns: nil when nothing serves `path` (no socket there, a stale one, one this user may not open, a full
    ///   queue, or a server run by another user): nothing was sent, and the caller does the work itself.
    /// - Throws: ``ControlSocketError`` when the server took the request but gave no whole reply (what it did is not
    ///   known, so the caller must not do it again).
    public static func exchange(_ request: [UInt8], path: String, timeout: Double) throws(ControlSocketError) -> [UInt8]? {
        let (socket, code) = try connected(to: path, timeout: min(timeout, 5))  // the timeout of connect and send
        guard let fd = socket else {
            if [ENOENT, ECONNREFUSED, EACCES, ENOTDIR, EPERM, EAGAIN, ETIMEDOUT, EPROTOTYPE].contains(code) { return nil }
            throw ControlSocketError("cannot connect to \(path): \(Errno(rawValue: code).description)")
        }
        defer { close(fd) }
        guard let server = peerCredentials(fd), server.uid == 0 || server.uid == geteuid() else { return nil }
        guard sendAll(fd, request[...]) else { throw ControlSocketError("\(path): the request was not sent whole: \(Errno(rawValue: errno).description)") }
        shutdown(fd, Int32(SHUT_WR))
        setTimeout(fd, seconds: timeout)
        let (reply, complete) = receiveLine(fd, limit: replyLimit)
        guard complete else {
            let why = errno == EAGAIN || errno == EWOULDBLOCK ? "no reply within \(Int(min(timeout, 1e9))) s" : "the reply was cut short"
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

    /// The process at the other end of `fd`: `struct ucred` (pid, uid, gid).
    static func peerCredentials(_ fd: Int32) -> (pid: Int32, uid: UInt32)? {
        var credentials: (Int32, UInt32, UInt32) = (0, UInt32.max, UInt32.max)
        var length = socklen_t(MemoryLayout.size(ofValue: credentials))
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0 else { return nil }
        return (credentials.0, credentials.1)
    }

    static func setTimeout(_ fd: Int32, seconds: Double) {
        let clamped = seconds.isFinite ? max(0.001, min(seconds, 86_400 * 7)) : 86_400 * 7
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
        receive(fd, limit: limit, stopAtNewline: false)
    }

    /// Reads one line (without its `\n`): until the first `\n`, or until the peer ends its side. Stopping at the line
    /// does not depend on the server's descriptor being closed, which a child process of the server may hold.
    static func receiveLine(_ fd: Int32, limit: Int) -> (bytes: [UInt8], complete: Bool) {
        receive(fd, limit: limit, stopAtNewline: true)
    }

    private static func receive(_ fd: Int32, limit: Int, stopAtNewline: Bool) -> (bytes: [UInt8], complete: Bool) {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = recv(fd, &chunk, chunk.count, 0)
            if count < 0, errno == EINTR { continue }
            if count < 0 { return (bytes, false) }
            if count == 0 { return (bytes, true) }
            bytes += chunk[..<count]
            if stopAtNewline, let end = bytes.firstIndex(of: 0x0A) { return (Array(bytes[..<end]), true) }
            if bytes.count > limit { return (bytes, false) }
        }
    }
}

/// What the control socket hands its handler.
public enum ControlSocketRequest: Sendable, Equatable {
    /// A request document, read whole.
    case document([UInt8])
    /// A request the transport refused (a client of another user, one over ``ControlSocket/requestLimit``), and why:
    /// the handler answers it in the wire format.
    case refused(String)
}

/// The process at the other end of one request.
public struct ControlSocketClient: Sendable {
    /// Its process id (`SO_PEERCRED`).
    public let pid: Int32
    private let fd: Int32

    init(pid: Int32, fd: Int32) {
        self.pid = pid
        self.fd = fd
    }

    /// Whether it has closed its end (it gave up waiting): what is asked before acting for it.
    public var hungUp: Bool {
        var events = pollfd(fd: fd, events: 0, revents: 0)
        return poll(&events, 1, 0) > 0 && events.revents & Int16(POLLHUP) != 0
    }
}

/// Serves the control socket: a thread accepts connections, and each request is handled on a thread of its own (the
/// host lock orders the changes, so a request that may not wait is refused at once, as in its own process).
public final class ControlSocketServer: Sendable {
    /// Answers one request with one line of the wire format (without its `\n`).
    public typealias Handler = @Sendable (_ request: ControlSocketRequest, _ client: ControlSocketClient) -> [UInt8]

    /// The socket's path.
    public let path: String
    private let fd: Int32
    /// The lock file beside the socket (`PATH.lock`), held while this server runs: two servers starting at once cannot
    /// both take the path.
    private let lockFD: Int32
    private let identity: (device: UInt64, inode: UInt64)
    private let stopped = Atomic<Bool>(false)
    /// Requests being handled, and the accept thread while it runs; `stop()` waits for them.
    private let running = PThreadCondition()
    nonisolated(unsafe) private var active = 0

    /// Binds `path` (its directory made mode 0700 when missing) and starts serving.
    ///
    /// The lock file `PATH.lock` is held while it serves (and left behind, empty, when it stops); one that another user
    /// owns is refused. A socket left at `path` by a process of this user that ended is replaced; one that a live
    /// process serves, and one of another user, are not.
    ///
    /// - Throws: ``ControlSocketError`` when another process serves `path`, or `path` is not such a socket, or binding fails.
    public init(path: String, handler: @escaping Handler) throws(ControlSocketError) {
        var address = try ControlSocket.socketAddress(path)
        let directory = FilePath(path).removingLastComponent().string
        if !directory.isEmpty, mkdir(directory, 0o700) != 0, errno != EEXIST {
            throw ControlSocketError("cannot make \(directory): \(Errno(rawValue: errno).description)")
        }
        let lockFD = open(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard lockFD >= 0 else { throw ControlSocketError("cannot open \(path).lock: \(Errno(rawValue: errno).description)") }
        var status = stat()
        // A lock file another user made (in a directory others may write) could be held by them to keep this server
        // from ever starting: refused by name before it is locked, not taken for a running watch.
        guard fstat(lockFD, &status) == 0, status.st_uid == geteuid() else {
            close(lockFD)
            throw ControlSocketError(
                "\(path).lock belongs to uid \(status.st_uid), not to this process's \(geteuid()): remove it, or serve the socket from a directory only its owner may write"
            )
        }
        guard flock(lockFD, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            close(lockFD)
            throw ControlSocketError(
                code == EWOULDBLOCK ? "another process (an iovm watch) already serves \(path)" : "cannot lock \(path).lock: \(Errno(rawValue: code).description)")
        }
        func failing(_ error: ControlSocketError) -> ControlSocketError {
            close(lockFD)
            return error
        }
        if lstat(path, &status) == 0 {
            guard status.st_mode & S_IFMT == S_IFSOCK else { throw failing(ControlSocketError("\(path) exists and is not a socket: remove it or choose another path")) }
            switch ControlSocket.probe(path) {
            case 0, EAGAIN: throw failing(ControlSocketError("another process (an iovm watch) already serves \(path)"))
            case ECONNREFUSED where status.st_uid == geteuid(): unlink(path)  // left by a process that ended
            default: throw failing(ControlSocketError("\(path) is a socket this iovm did not leave: remove it or choose another path"))
            }
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw failing(ControlSocketError("socket: \(Errno(rawValue: errno).description)")) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        // Mode 0600 before listen: until then no one can connect.
        guard bound == 0, chmod(path, 0o600) == 0, listen(fd, 64) == 0, lstat(path, &status) == 0 else {
            let reason = Errno(rawValue: errno).description
            if bound == 0 { unlink(path) }  // made by this bind: not left behind
            close(fd)
            throw failing(ControlSocketError("cannot serve \(path): \(reason)"))
        }
        self.path = path
        self.fd = fd
        self.lockFD = lockFD
        self.identity = (UInt64(status.st_dev), UInt64(status.st_ino))
        enter()
        PThread.detach { [self] in
            defer { leave() }
            accepting(handler)
        }
    }

    /// Stops accepting, removes the socket (when it is still this server's), waits for the requests being handled to
    /// be answered, and lets go of the lock file.
    public func stop() {
        guard !stopped.exchange(true, ordering: .sequentiallyConsistent) else { return }
        var status = stat()
        if lstat(path, &status) == 0, UInt64(status.st_dev) == identity.device, UInt64(status.st_ino) == identity.inode { unlink(path) }
        shutdown(fd, Int32(SHUT_RDWR))  // wakes accept; the accept thread closes the descriptor
        running.lock()
        while active > 0 { running.wait() }
        running.unlock()
        close(lockFD)
    }

    private func enter() {
        running.lock()
        active += 1
        running.unlock()
    }

    private func leave() {
        running.lock()
        active -= 1
        running.broadcast()
        running.unlock()
    }

    private func accepting(_ handler: @escaping Handler) {
        defer { close(fd) }
        while true {
            let client = accept(fd, nil, nil)
            if stopped.load(ordering: .sequentiallyConsistent) {
                if client >= 0 { close(client) }
                return
            }
            if client < 0 {
                if errno != EINTR, errno != ECONNABORTED { PThread.sleep(seconds: 0.1) }  // EMFILE, ENOBUFS: try again
                continue
            }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            enter()
            PThread.detach { [self] in
                defer {
                    close(client)
                    leave()
                }
                answer(client, handler)
            }
        }
    }

    private func answer(_ fd: Int32, _ handler: Handler) {
        guard let peer = ControlSocket.peerCredentials(fd) else { return }
        let client = ControlSocketClient(pid: peer.pid, fd: fd)
        func reply(_ request: ControlSocketRequest) { _ = ControlSocket.sendAll(fd, (handler(request, client) + [0x0A])[...]) }
        guard peer.uid == 0 || peer.uid == geteuid() else { return reply(.refused("the control socket answers root and its own user only")) }
        ControlSocket.setTimeout(fd, seconds: 5)
        let (request, complete) = ControlSocket.receiveAll(fd, limit: ControlSocket.requestLimit)
        guard complete else {
            if request.count > ControlSocket.requestLimit { reply(.refused("control socket request over \(ControlSocket.requestLimit) bytes")) }
            return
        }
        if request.isEmpty { return }  // a probe: connected and closed
        if client.hungUp { return }  // a client that gave up is not acted for (the handler asks again after any wait)
        reply(.document(request))
    }
}

extension ControlSocket {
    /// A stream socket connected to `path`, its send and receive timeouts `timeout`; nil and connect's (or socket's)
    /// errno when it could not connect.
    static func connected(to path: String, timeout: Double) throws(ControlSocketError) -> (fd: Int32?, errno: Int32) {
        var address = try socketAddress(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ControlSocketError("socket: \(Errno(rawValue: errno).description)") }
        setTimeout(fd, seconds: timeout)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else {
            let code = errno
            close(fd)
            return (nil, code)
        }
        return (fd, 0)
    }

    /// 0 when a process accepts connections on `path` now, else connect's errno.
    static func probe(_ path: String) -> Int32 {
        guard let (fd, code) = try? connected(to: path, timeout: 2) else { return EINVAL }
        if let fd { close(fd) }
        return code
    }
}
