import CLibXen
import CXenShim
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A connection to xenstored (`struct xs_handle`): read, list, write and remove keys, optionally
/// inside a transaction. Closed on deinit.
///
/// Works in dom0 (over xenstored's socket) and in a guest such as a driver domain (over
/// `/dev/xen/xenbus`), with the permissions of that domain.
///
/// Not `Sendable`: keep one client per task or thread (confinement); open another where needed.
public final class XenStoreClient {
    /// A xenstore transaction id (`xs_transaction_t`), valid inside
    /// ``XenStoreClient/withTransaction(maxAttempts:_:)``. ``none`` is `XBT_NULL`.
    public struct Transaction: Sendable, Hashable {
        /// The raw `xs_transaction_t`.
        public let rawValue: UInt32

        /// No transaction (`XBT_NULL`): each call is atomic on its own.
        public static let none = Transaction(rawValue: cxenshim_xbt_null())
    }

    private let handle: OpaquePointer
    /// False only for the test handle of ``init(handleForTesting:)``, which is never closed.
    private let ownsHandle: Bool

    /// Connects with `xs_open` (read-only if `readOnly`).
    ///
    /// - Throws: ``XenError/notXenDom0(reason:)`` when this kernel is not running under Xen;
    ///   ``XenError/errno(_:operation:)`` when `xs_open` fails (no xenstored, no permission).
    public init(readOnly: Bool = false) throws(XenError) {
        try XenHost.requireXen()
        try XenLibraries.load(.xenstore)
        guard let handle = xs_open(readOnly ? cxenshim_xs_open_readonly() : 0) else {
            throw XenError.currentErrno(operation: "xs_open")
        }
        self.handle = handle
        self.ownsHandle = true
    }

    /// A client over a handle that is never dereferenced: for tests whose every libxenstore call is
    /// forced through ``LibXLMocking``. It is not closed on deinit.
    init(handleForTesting handle: OpaquePointer) {
        self.handle = handle
        self.ownsHandle = false
    }

    /// The connection of ``answers(_:)``, opened on its first call.
    private var pipeline: Int32?

    deinit {
        if ownsHandle { xs_close(handle) }
        if let pipeline { close(pipeline) }
    }

    /// The answers to `queries`, in their order, sent back to back over a second connection of this client's own to
    /// xenstored's socket, kept for its later calls (``XenStorePipeline``); nil when the socket cannot be reached, and
    /// the caller reads one by one.
    public func answers(_ queries: [XenStoreQuery]) throws(XenError) -> [XenStoreAnswer]? {
        try XenStorePipeline.answers(queries, reusing: &pipeline)
    }

    /// The value at `path`, or `nil` if it does not exist (`xs_read`).
    public func read(_ path: String, in transaction: Transaction = .none) throws(XenError) -> String? {
        try Self.validate(path, "xs_read")
        var length: UInt32 = 0
        guard let raw = xs_read(handle, transaction.rawValue, path, &length) else {
            let errno = currentCErrno()
            if errno == ENOENT { return nil }
            throw XenError.errno(Errno(rawValue: errno), operation: "xs_read \(path)")
        }
        defer { free(raw) }
        let bytes = UnsafeRawBufferPointer(start: raw, count: Int(length))
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The names of the children of `path`, or `nil` if it does not exist (`xs_directory`).
    public func directory(_ path: String, in transaction: Transaction = .none) throws(XenError) -> [String]? {
        try Self.validate(path, "xs_directory")
        var count: UInt32 = 0
        guard let entries = xs_directory(handle, transaction.rawValue, path, &count) else {
            let errno = currentCErrno()
            if errno == ENOENT { return nil }
            throw XenError.errno(Errno(rawValue: errno), operation: "xs_directory \(path)")
        }
        defer { free(entries) }  // one allocation holds the array and the strings
        return (0..<Int(count)).compactMap { entries[$0].map { String(cString: $0) } }
    }

    /// Writes `value` at `path`, creating parents as needed (`xs_write`).
    public func write(_ path: String, _ value: String, in transaction: Transaction = .none) throws(XenError) {
        try Self.validate(path, "xs_write")
        var bytes = Array(value.utf8)
        let length = UInt32(bytes.count)
        if bytes.isEmpty { bytes.append(0) }
        let ok = bytes.withUnsafeBytes { xs_write(handle, transaction.rawValue, path, $0.baseAddress, length) }
        guard ok else { throw XenError.currentErrno(operation: "xs_write \(path)") }
    }

    /// Removes `path` and everything under it (`xs_rm`); removing a path that does not exist is
    /// not an error.
    ///
    /// xenstored acknowledges removing a missing node whose parent exists (seen in the lab), and
    /// libxenstore reports `ENOENT` when the parent is missing too; both count as success here.
    public func remove(_ path: String, in transaction: Transaction = .none) throws(XenError) {
        try Self.validate(path, "xs_rm")
        guard xs_rm(handle, transaction.rawValue, path) else {
            let errno = currentCErrno()
            if errno == ENOENT { return }
            throw XenError.errno(Errno(rawValue: errno), operation: "xs_rm \(path)")
        }
    }

    /// Rejects paths a C string cannot carry: an embedded NUL would silently cut the path short
    /// (seen in the lab: writing `"…/bad\0path"` created `…/bad`).
    static func validate(_ path: String, _ operation: String) throws(XenError) {
        if path.utf8.contains(0) {
            throw XenError.errno(.invalidArgument, operation: "\(operation) \(path.debugDescription): path contains NUL")
        }
    }

    /// Runs `body` in a transaction and commits it, restarting the whole body when xenstored
    /// reports a conflict (`EAGAIN` from `xs_transaction_end`), at most `maxAttempts` times.
    ///
    /// If `body` throws, the transaction is abandoned and the error rethrown.
    public func withTransaction<R>(
        maxAttempts: Int = 16,
        _ body: (Transaction) throws(XenError) -> R
    ) throws(XenError) -> R {
        var attempt = 0
        while true {
            attempt += 1
            let raw = xs_transaction_start(handle)
            guard raw != cxenshim_xbt_null() else {
                throw XenError.currentErrno(operation: "xs_transaction_start")
            }
            let transaction = Transaction(rawValue: raw)
            let result: R
            do {
                result = try body(transaction)
            } catch {
                _ = xs_transaction_end(handle, raw, true)
                throw error
            }
            if xs_transaction_end(handle, raw, false) { return result }
            let errno = currentCErrno()
            if errno == EAGAIN, attempt < maxAttempts { continue }
            throw XenError.errno(Errno(rawValue: errno), operation: "xs_transaction_end (attempt \(attempt))")
        }
    }

    // MARK: Watches

    /// A watch that fired: the path that changed (a node at or under the watched path, or the special
    /// path itself, such as `@releaseDomain`) and the token given to ``watch(_:token:)``.
    public struct WatchEvent: Sendable, Hashable {
        /// The path that fired.
        public var path: String
        /// The token of the watch.
        public var token: String

        /// Creates an event.
        public init(path: String, token: String) {
            self.path = path
            self.token = token
        }
    }

    /// Watches `path` (and everything under it), or a special path: `@releaseDomain` fires when a
    /// domain shuts down, crashes or is destroyed, `@introduceDomain` when one is introduced
    /// (`xs_watch`). xenstored fires every new watch once at once; events are read with
    /// ``nextWatchEvent(timeout:)``.
    public func watch(_ path: String, token: String) throws(XenError) {
        try Self.validate(path, "xs_watch")
        try Self.validate(token, "xs_watch")
        try LibXLCalls.xenstore("xs_watch", operation: "xs_watch \(path) (token \(token))") { xs_watch(handle, path, token) }
    }

    /// Removes a watch set by ``watch(_:token:)`` (`xs_unwatch`); events it already queued may still be read.
    public func unwatch(_ path: String, token: String) throws(XenError) {
        try Self.validate(path, "xs_unwatch")
        try Self.validate(token, "xs_unwatch")
        try LibXLCalls.xenstore("xs_unwatch", operation: "xs_unwatch \(path) (token \(token))") { xs_unwatch(handle, path, token) }
    }

    /// The next watch event, waiting at most `timeout` seconds for one (nil when none came).
    ///
    /// Never blocks longer than `timeout`: it polls libxenstore's watch descriptor (`xs_fileno`, a pipe
    /// that holds a byte while events are queued) and takes events with the non-blocking
    /// `xs_check_watch`, not the blocking `xs_read_watch`. Call it in a loop with a short timeout to
    /// stay responsive to cancellation.
    public func nextWatchEvent(timeout: Double) throws(XenError) -> WatchEvent? {
        if let queued = try checkWatch() { return queued }
        let fd = LibXLCalls.code("xs_fileno") { xs_fileno(handle) }
        guard fd >= 0 else { throw XenError.currentErrno(operation: "xs_fileno") }
        var clock = timespec()
        func now() -> Double {
            clock_gettime(CLOCK_MONOTONIC, &clock)
            return Double(clock.tv_sec) + Double(clock.tv_nsec) / 1e9
        }
        let deadline = now() + max(0, timeout)
        while true {
            let remaining = deadline - now()
            guard remaining > 0 else { return nil }
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(min(remaining * 1000, Double(Int32.max)).rounded(.up)))
            if ready < 0 {
                let errno = currentCErrno()
                if errno == EINTR { continue }
                throw XenError.errno(Errno(rawValue: errno), operation: "poll on xs_fileno")
            }
            if ready == 0 { return nil }
            if descriptor.revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 {
                throw XenError.failed(operation: "poll on xs_fileno", detail: "the watch descriptor failed (revents \(descriptor.revents))")
            }
            if let event = try checkWatch() { return event }
            // Readable yet nothing queued: another reader took the event. Pause briefly so a descriptor
            // that stays readable cannot make this loop spin.
            usleep(UInt32(min(remaining, 0.02) * 1_000_000))
        }
    }

    /// One queued watch event, or nil when none is (`xs_check_watch` failing with `EAGAIN`).
    /// A forced code (tests) is the errno it fails with: `EAGAIN` means nothing queued.
    private func checkWatch() throws(XenError) -> WatchEvent? {
        if let forced = LibXLMocking.current?.record("xs_check_watch") {
            if forced == EAGAIN { return nil }
            throw XenError.errno(Errno(rawValue: forced), operation: "xs_check_watch")
        }
        guard let vector = xs_check_watch(handle) else {
            let errno = currentCErrno()
            if errno == EAGAIN { return nil }
            throw XenError.errno(Errno(rawValue: errno), operation: "xs_check_watch")
        }
        defer { free(vector) }  // one allocation holds the array and the strings
        // XS_WATCH_PATH = 0, XS_WATCH_TOKEN = 1 (xs_wire.h).
        let path = vector[0].map { String(cString: $0) } ?? ""
        let token = vector[1].map { String(cString: $0) } ?? ""
        return WatchEvent(path: path, token: token)
    }
}
