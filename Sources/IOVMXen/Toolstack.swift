import CPUSets
import XenKit

#if canImport(Glibc)
    import Glibc
#endif

/// The libxl operations ``LibXLBackend`` needs, in Swift values: XenKit's ``LibXLContext`` is the
/// real one; unit tests give the backend a recording mock, so its undo paths run without Xen.
protocol Toolstack: Sendable {
    /// Physical CPUs online (`libxl_get_physinfo`'s `nr_cpus`).
    func hostCPUCount() throws(XenError) -> Int
    /// The hypervisor's default scheduler, as xl spells it.
    func schedulerName() throws(XenError) -> String
    /// Every domain, dom0 first.
    func domains() throws(XenError) -> [DomainInfo]
    /// Every domain, dom0 first, without names when `names` is false (a name is a xenstore request each).
    func domains(names: Bool) throws(XenError) -> [DomainInfo]
    /// The name of one domain; nil when it has none or does not exist.
    func domainName(_ domid: UInt32) throws(XenError) -> String?
    /// One domain, without its name.
    func domainInfo(_ domid: UInt32) throws(XenError) -> DomainInfo
    /// The hard affinity of each vCPU of a domain.
    func vcpuAffinities(of domid: UInt32) throws(XenError) -> [CPUSet]
    /// A domain's credit weight and cap.
    func schedule(of domid: UInt32) throws(XenError) -> DomainSchedule
    /// A domain's credit weight and cap, the scheduler of its cpupool known (as xl spells it).
    func schedule(of domid: UInt32, poolScheduler: String) throws(XenError) -> DomainSchedule
    /// Sets a domain's credit weight and cap, live.
    func setSchedule(of domid: UInt32, to schedule: DomainSchedule) throws(XenError)
    /// Sets a domain's rtds period, budget and extratime, live.
    func setRTDSSchedule(of domid: UInt32, to schedule: RTDSSchedule) throws(XenError)
    /// Sets each vCPU's rtds reservation, vCPU `i` to `perVCPU[i]`, live.
    func setRTDSSchedules(of domid: UInt32, perVCPU: [RTDSSchedule]) throws(XenError)
    /// Sets the hard affinity of a domain's first `vcpus` vCPUs, live (`nil`: every CPU).
    func setHardAffinity(of domid: UInt32, vcpus: Int, to cpus: CPUSet?) throws(XenError)
    /// Sets the hard affinity of each vCPU, vCPU `i` to `perVCPU[i]`, live.
    func setHardAffinities(of domid: UInt32, perVCPU: [CPUSet]) throws(XenError)
    /// Every cpupool, Pool-0 first.
    func cpuPools() throws(XenError) -> [CPUPoolInfo]
    /// Takes a CPU out of a cpupool.
    func removeCPU(_ cpu: Int, fromPool poolID: UInt32) throws(XenError)
    /// Gives a free CPU to a cpupool.
    func addCPU(_ cpu: Int, toPool poolID: UInt32) throws(XenError)
    /// Creates a cpupool on free CPUs; returns its id.
    func createCPUPool(name: String, scheduler: String, cpus: CPUSet) throws(XenError) -> UInt32
    /// Destroys an empty cpupool.
    func destroyCPUPool(_ pool: CPUPoolInfo) throws(XenError)
    /// Moves a domain into another cpupool, live.
    func moveDomain(_ domid: UInt32, toPoolNamed poolName: String) throws(XenError)
    /// Binds a PCI device to pciback so domains can be given it.
    func addAssignablePCI(_ address: PCIDeviceAddress) throws(XenError)
    /// Gives an assignable PCI device back to its previous driver.
    func removeAssignablePCI(_ address: PCIDeviceAddress) throws(XenError)
    /// Creates a domain, paused, from its libxl JSON config; returns its domid.
    func createDomain(configJSON: String, uuid: String, name: String) throws(XenError) -> UInt32
    /// Unpauses a domain.
    func unpauseDomain(_ domid: UInt32, name: String) throws(XenError)
    /// Destroys a domain.
    func destroyDomain(_ domid: UInt32, name: String) throws(XenError)
    /// Adds a vif to a running domain from its libxl JSON `libxl_device_nic`.
    func addNIC(to domid: UInt32, configJSON: String, name: String) throws(XenError)
    /// Removes a domain's vif (its frontend alone when the backend is gone).
    func removeNIC(devid: Int, of domid: UInt32, backendDomid: UInt32, name: String) throws(XenError)
}

extension Toolstack {
    /// The whole listing, names included (mocks need not tell the two apart).
    func domains(names: Bool) throws(XenError) -> [DomainInfo] { try domains() }
    /// Whatever the pool's scheduler (mocks need not tell the two apart).
    func schedule(of domid: UInt32, poolScheduler: String) throws(XenError) -> DomainSchedule { try schedule(of: domid) }
    /// From the whole listing.
    func domainName(_ domid: UInt32) throws(XenError) -> String? { try domains().first { $0.domid == domid }?.name }
}

extension LibXLContext: Toolstack {
    /// Physical CPUs online, from `libxl_get_physinfo`.
    func hostCPUCount() throws(XenError) -> Int {
        Int(try physicalInfo().nrCPUs)
    }
}

/// The xenstore operations ``LibXLBackend`` needs for its tags; XenKit's ``XenStoreClient`` is the
/// real one (through ``XenStoreTags``), tests use an in-memory one.
protocol TagStore {
    /// The value at `path`, nil when it does not exist.
    func read(_ path: String) throws(XenError) -> String?
    /// The children of `path`, nil when it does not exist.
    func directory(_ path: String) throws(XenError) -> [String]?
    /// Writes `value` at `path`, creating parents.
    func write(_ path: String, _ value: String) throws(XenError)
    /// Removes `path` and everything below it.
    func remove(_ path: String) throws(XenError)
    /// Asks to be told when `path` or anything below it changes, for ``awaitChange(timeout:)``; a store without
    /// watches ignores it.
    func watch(_ path: String) throws(XenError)
    /// Waits until a path given to ``watch(_:)`` changes (true) or `timeout` seconds pass (false). A store without
    /// watches sleeps the whole `timeout`, so its waits poll.
    func awaitChange(timeout: Double) throws(XenError) -> Bool
    /// The answers to `queries`, in their order, fetched at once where the store can (xenstored's socket: one
    /// pipelined connection, ``XenKit/XenStorePipeline``); nil when it cannot, and the caller reads one by one.
    func answers(_ queries: [XenStoreQuery]) throws(XenError) -> [XenStoreAnswer]?
}

extension TagStore {
    func answers(_ queries: [XenStoreQuery]) throws(XenError) -> [XenStoreAnswer]? { nil }
    func watch(_ path: String) throws(XenError) {}
    func awaitChange(timeout: Double) throws(XenError) -> Bool {
        usleep(UInt32(max(0, min(timeout, 60)) * 1_000_000))
        return false
    }
}

/// A ``TagStore`` over a connection to xenstored.
struct XenStoreTags: TagStore {
    /// The connection.
    let client: XenStoreClient

    /// Connects to xenstored (read-only when asked).
    init(readOnly: Bool) throws(XenError) {
        client = try XenStoreClient(readOnly: readOnly)
    }

    /// The value at `path` (`xs_read`).
    func read(_ path: String) throws(XenError) -> String? { try client.read(path) }
    /// The children of `path` (`xs_directory`).
    func directory(_ path: String) throws(XenError) -> [String]? { try client.directory(path) }
    /// Writes `value` at `path` (`xs_write`).
    func write(_ path: String, _ value: String) throws(XenError) { try client.write(path, value) }
    /// Removes `path` (`xs_rm`).
    func remove(_ path: String) throws(XenError) { try client.remove(path) }
    /// Watches `path` (`xs_watch`); the watch ends with the connection.
    func watch(_ path: String) throws(XenError) { try client.watch(path, token: Self.waitToken) }
    /// The next event of a watch of this connection (`xs_check_watch` once its descriptor is readable).
    func awaitChange(timeout: Double) throws(XenError) -> Bool { try client.nextWatchEvent(timeout: timeout) != nil }
    /// Pipelined over a second connection of the client's (``XenKit/XenStoreClient/answers(_:)``).
    func answers(_ queries: [XenStoreQuery]) throws(XenError) -> [XenStoreAnswer]? { try client.answers(queries) }

    /// The token of ``watch(_:)``'s watches.
    static let waitToken = "iovm-wait"
}

/// A ``TagStore`` that remembers what it read below one root, and answers those reads again from memory once
/// ``answeringFromMemory()`` is called: what ``LibXLBackend`` reads of iovm's own records to remove the stale ones, read once more by
/// the observation that follows under the same hold of the host lock. Any write or removal sets ``wrote``; reads
/// elsewhere always go to the store.
final class RememberingStore: TagStore {
    /// The store read and written.
    let base: any TagStore
    /// The root below which reads are remembered (`/local/domain/0/iovm`).
    let root: String
    /// Whether anything was written or removed through this store.
    private(set) var wrote = false
    /// Whether reads below ``root`` are answered from memory (set by ``answeringFromMemory()``).
    private var answering = false
    private var values: [String: String?] = [:]
    private var listings: [String: [String]?] = [:]

    /// Remembers the reads of `base` below `root`.
    init(_ base: any TagStore, under root: String) {
        self.base = base
        self.root = root
    }

    /// Makes this store answer from now on what it read below ``root``, and returns it.
    func answeringFromMemory() -> RememberingStore {
        answering = true
        return self
    }

    private func below(_ path: String) -> Bool { path.hasPrefix(root + "/") }

    /// The value at `path`: from memory when it was read, or when its parent was listed without it (nil).
    func read(_ path: String) throws(XenError) -> String? {
        guard below(path) else { return try base.read(path) }
        if answering, case .value(let value)? = remembered(.read(path)) { return value }
        let value = try base.read(path)
        values[path] = value
        return value
    }

    /// The children of `path`, from memory when it was listed.
    func directory(_ path: String) throws(XenError) -> [String]? {
        guard below(path) else { return try base.directory(path) }
        if answering, case .children(let listing)? = remembered(.directory(path)) { return listing }
        let listing = try base.directory(path)
        listings[path] = listing
        return listing
    }

    func write(_ path: String, _ value: String) throws(XenError) {
        wrote = true
        try base.write(path, value)
    }

    func remove(_ path: String) throws(XenError) {
        wrote = true
        try base.remove(path)
    }

    func watch(_ path: String) throws(XenError) { try base.watch(path) }
    func awaitChange(timeout: Double) throws(XenError) -> Bool { try base.awaitChange(timeout: timeout) }

    /// What ``read(_:)`` and ``directory(_:)`` would answer from memory is answered so; the rest is asked of the
    /// base at once, and remembered when below ``root``.
    func answers(_ queries: [XenStoreQuery]) throws(XenError) -> [XenStoreAnswer]? {
        var known: [Int: XenStoreAnswer] = [:]
        var asked: [(index: Int, query: XenStoreQuery)] = []
        for (index, query) in queries.enumerated() {
            if answering, below(query.path), let answer = remembered(query) { known[index] = answer } else { asked.append((index, query)) }
        }
        guard let fetched = try asked.isEmpty ? [] : base.answers(asked.map(\.query)), fetched.count == asked.count else { return nil }
        for ((index, query), answer) in zip(asked, fetched) {
            known[index] = answer
            guard below(query.path) else { continue }
            switch answer {
            case .value(let value): values[query.path] = value
            case .children(let children): listings[query.path] = children
            case .failed: break
            }
        }
        return queries.indices.map { known[$0]! }
    }

    /// What memory holds for `query`, as ``read(_:)`` and ``directory(_:)`` answer it once answering.
    private func remembered(_ query: XenStoreQuery) -> XenStoreAnswer? {
        switch query.kind {
        case .directory:
            return listings[query.path].map { .children($0) }
        case .read:
            if let value = values[query.path] { return .value(value) }
            let path = query.path
            if let slash = path.lastIndex(of: "/"), let listing = listings[String(path[..<slash])] {
                let child = String(path[path.index(after: slash)...])
                if !child.isEmpty && !(listing ?? []).contains(child) { return .value(nil) }
            }
            return nil
        }
    }
}
