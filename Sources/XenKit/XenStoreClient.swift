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

    /// Connects with `xs_open` (read-only if `readOnly`).
    ///
    /// - Throws: ``XenError/notXenDom0(reason:)`` when this kernel is not running under Xen;
    ///   ``XenError/errno(_:operation:)`` when `xs_open` fails (no xenstored, no permission).
    public init(readOnly: Bool = false) throws(XenError) {
        try XenHost.requireXen()
        guard let handle = xs_open(readOnly ? cxenshim_xs_open_readonly() : 0) else {
            throw XenError.currentErrno(operation: "xs_open")
        }
        self.handle = handle
    }

    deinit {
        xs_close(handle)
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
}
