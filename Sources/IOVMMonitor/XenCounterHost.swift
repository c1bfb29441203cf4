import XenKit

/// What ``XenCounterSource`` reads of a Xen host: the hypervisor's domain list, and xenstore on two connections (the
/// reads, and the samples' watches). One small seam, so the sampler's wiring is tested against a host a test plays;
/// ``XenCounterHostConnection`` is the real one.
protocol XenCounterHost: AnyObject {
    /// The nominal CPU frequency in Hz.
    func cpuHz() throws(XenError) -> UInt64
    /// Every domain's runtime figures.
    func domains() throws(XenError) -> [DomainRuntime]
    /// The value at `path`, nil when it does not exist.
    func read(_ path: String) throws(XenError) -> String?
    /// The children of `path`, nil when it does not exist.
    func directory(_ path: String) throws(XenError) -> [String]?
    /// Runs `body` with a directory listing and a read inside one transaction, restarted on a conflict.
    func inTransaction<R>(
        _ body: (_ list: (String) throws(XenError) -> [String]?, _ read: (String) throws(XenError) -> String?) throws(XenError) -> R
    ) throws(XenError) -> R
    /// Opens the connection that holds the samples' watches.
    func openWatches() throws(XenError) -> any SampleWatchConnection
}

/// The connection that holds the samples' watches (``SampleCache``).
protocol SampleWatchConnection: AnyObject {
    /// Watches `path`; xenstored fires a new watch once at once, then at every write under it.
    func watch(_ path: String, token: String) throws(XenError)
    /// Removes the watch on `path`.
    func unwatch(_ path: String, token: String) throws(XenError)
    /// The next event, waiting at most `timeout` seconds (nil when none came).
    func nextWatchEvent(timeout: Double) throws(XenError) -> XenStoreClient.WatchEvent?
}

extension XenStoreClient: SampleWatchConnection {}

/// A Xen host through libxenctrl and a read-only libxenstore connection.
final class XenCounterHostConnection: XenCounterHost {
    private let control: XenControl
    private let store: XenStoreClient

    /// Opens libxenctrl and a read-only xenstore connection.
    ///
    /// - Throws: `XenError.notXenDom0` when this is not a Xen dom0.
    init() throws(XenError) {
        control = try XenControl()
        store = try XenStoreClient(readOnly: true)
    }

    func cpuHz() throws(XenError) -> UInt64 { try control.cpuHz() }
    func domains() throws(XenError) -> [DomainRuntime] { try control.domains() }
    func read(_ path: String) throws(XenError) -> String? { try store.read(path) }
    func directory(_ path: String) throws(XenError) -> [String]? { try store.directory(path) }

    func inTransaction<R>(
        _ body: (_ list: (String) throws(XenError) -> [String]?, _ read: (String) throws(XenError) -> String?) throws(XenError) -> R
    ) throws(XenError) -> R {
        let store = self.store
        return try store.withTransaction { (t) throws(XenError) in
            try body({ (path) throws(XenError) in try store.directory(path, in: t) }, { (path) throws(XenError) in try store.read(path, in: t) })
        }
    }

    func openWatches() throws(XenError) -> any SampleWatchConnection { try XenStoreClient(readOnly: true) }
}
