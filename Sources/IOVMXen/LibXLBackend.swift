public import CPUSets
import FoundationEssentials
public import IOVMControl
public import IOVMCore
import IOVMWireFormat
public import Logging
import XenKit

#if canImport(Glibc)
    import Glibc
#endif

/// The real ``XenBackend``: libxl for domains, pools, PCI and scheduling; xenstore for iovm's
/// tags; sysfs for NIC bindings and resets.
///
/// Tags live in dom0's own xenstore subtree, which guests cannot write:
/// `/local/domain/0/iovm/managed/<domid>` (a JSON ``ManagedTag``), `/local/domain/0/iovm/pools/<name>`
/// (the topology) and `/local/domain/0/iovm/nics/<dddd_bb_dd_f>` (a ``NICMark``: the driver the NIC had before iovm, and the
/// topology that made it assignable). The tag of a
/// domain that vanished without iovm destroying it waits under `/local/domain/0/iovm/parked/<uuid>` for `xl restore`
/// (``removeStaleRecords()``).
/// Each domain is created with its own libxl context, so a stage's creations run concurrently
/// (one context serializes its calls behind a lock).
///
/// Every libxl call goes through a ``Toolstack`` (XenKit's ``LibXLContext``) and every xenstore
/// access through a ``TagStore``, so tests can drive the backend, and its undo paths, without Xen.
public final class LibXLBackend: XenBackend, @unchecked Sendable {
    /// Observation and live changes share this context (its calls are serialized by its lock).
    let context: any Toolstack
    /// Opens a context of its own for each domain created.
    let openToolstack: @Sendable () throws(XenError) -> any Toolstack
    /// Opens a xenstore connection (read-only when asked).
    let openStore: @Sendable (_ readOnly: Bool) throws(XenError) -> any TagStore
    let sysfs: SysfsPCI
    let logger: Logger
    /// Where an IOVM says its `xl devd` runs: `/local/domain/<domid>/` + this (written by the IOVM image).
    public static let devdReadyKey = "data/iovm/devd"
    /// Where iovm's minimal IOVM says, first thing in its start-up, that its kernel's netback takes vif backends:
    /// `/local/domain/<domid>/` + this (`Agents/iovm-init`).
    public static let netbackKey = "data/iovm/netback"
    /// Where iovm's minimal IOVM says its start-up is done (bridges made, before `xl devd` starts); images built
    /// before ``netbackKey`` write only this.
    public static let runtimeKey = "data/iovm/runtime"

    static let tagRoot = "/local/domain/0/iovm"
    /// Where createDomain records a domain before libxl creates it (`<uuid>` = its tag): a domain
    /// whose apply was killed before it was tagged is still recognized as iovm's.
    static let intentRoot = "\(tagRoot)/intents"

    /// A domain's vifs and their backends' states, from xenstore; what cannot be read is left out.
    static func vifs(of domid: UInt32, store: any TagStore) -> [ObservedVif] {
        let ids = ((try? store.directory(vifDevicesPath(domid))) ?? nil) ?? []
        return ids.compactMap { Int($0) }.sorted().map { devid in
            guard let (backend, backendDomid) = vifBackend(of: domid, devid: devid, store: store) else {
                return ObservedVif(devid: devid, backendDomid: nil, backendState: nil, hotplugStatus: nil)
            }
            let state = (try? store.read("\(backend)/state")) ?? nil
            let hotplug = (try? store.read("\(backend)/hotplug-status")) ?? nil
            return ObservedVif(devid: devid, backendDomid: backendDomid, backendState: state, hotplugStatus: hotplug)
        }
    }

    /// The backend directory of vif `devid` of `domid` and the domain that serves it, from what dom0 wrote: libxl's own
    /// record of the device (`/libxl/<domid>/device/vif/<devid>/backend`, which only dom0 can write), else the
    /// frontend's `backend` key when it has a backend's shape for this very vif. The guest writes its frontend
    /// directory: its `backend-id` is never read, so a guest cannot point iovm (a wait, a recovery, libxl's removal) at
    /// another domain or at a node of its own.
    static func vifBackend(of domid: UInt32, devid: Int, store: any TagStore) -> (path: String, domid: UInt32)? {
        // The frontend's claim is read only when libxl's record does not do (one xenstore round trip less per vif).
        for key in vifBackendKeys(of: domid, devid: devid) {
            guard let path = (try? store.read(key)) ?? nil else { continue }
            if let backend = backendDomid(ofVifBackend: path, frontend: domid, devid: devid) { return (path, backend) }
        }
        return nil
    }

    /// Where the backend directory of vif `devid` of `domid` is written, in the order they are trusted: libxl's record,
    /// then the frontend's `backend` key.
    static func vifBackendKeys(of domid: UInt32, devid: Int) -> [String] {
        ["/libxl/\(domid)/device/vif/\(devid)/backend", "\(vifDevicesPath(domid))/\(devid)/backend"]
    }

    /// The domain serving `path` when it is the backend directory of vif `devid` of `frontend`
    /// (``isVifBackendPath(_:frontend:)``, its last part `devid`); nil otherwise.
    static func backendDomid(ofVifBackend path: String, frontend: UInt32, devid: Int) -> UInt32? {
        guard isVifBackendPath(path, frontend: frontend) else { return nil }
        let parts = path.split(separator: "/")
        guard parts.last == "\(devid)" else { return nil }
        return UInt32(parts[2])
    }

    /// Where apply records the plan it applied, one node per topology (``recordApplied(topology:fingerprint:)``).
    static let appliedRoot = "\(tagRoot)/applied"

    /// A topology's node under ``appliedRoot``: its name's hash (any name is a path element then); the name is in the value.
    static func appliedKey(_ topology: String) -> String { String(StableHash.fnv1a(topology), radix: 16) }

    /// What an applied node holds.
    struct AppliedRecord: Codable {
        var topology: String
        var fingerprint: String
    }

    /// The fingerprint of the plan last applied, by topology.
    static func applied(_ store: any TagStore) throws -> [String: String] {
        var values: [String: String] = [:]
        for key in try store.directory(appliedRoot) ?? [] { values[key] = try store.read("\(appliedRoot)/\(key)") }
        return applied(values: values)
    }

    /// ``applied(_:)`` from the values of ``appliedRoot``'s children, read already.
    static func applied(values: [String: String]) -> [String: String] {
        var applied: [String: String] = [:]
        for text in values.values {
            guard let record = try? JSONDecoder().decode(AppliedRecord.self, from: Data(text.utf8)) else { continue }
            applied[record.topology] = record.fingerprint
        }
        return applied
    }

    /// The tag a xenstore value holds; nil when there is none or it is not a tag (left as it is, never an error).
    static func tag(from text: String?) -> ManagedTag? {
        text.flatMap { try? JSONDecoder().decode(ManagedTag.self, from: Data($0.utf8)) }
    }

    /// The recorded intents by UUID, each marked incomplete.
    static func intents(_ store: any TagStore) throws -> [String: ManagedTag] {
        var intents: [String: ManagedTag] = [:]
        for uuid in try store.directory(intentRoot) ?? [] {
            guard var tag = Self.tag(from: try store.read("\(intentRoot)/\(uuid)")) else { continue }
            tag.incomplete = true
            intents[tag.uuid] = tag
        }
        return intents
    }

    /// A PCI address as a xenstore path element (xenstore allows only letters, digits and `-/_@`).
    static func key(_ pci: PCIAddress) -> String {
        String(pci.description.map { $0 == ":" || $0 == "." ? "_" : $0 })  // 0000:00:10.0 -> 0000_00_10_0
    }

    /// A cpupool name as a xenstore path element.
    static func key(pool name: String) -> String { name.replacing(".", with: "_") }

    /// Whether a NIC that cannot be reset through sysfs is refused (libxl itself only logs a failed reset).
    let strictReset: Bool

    /// Called inside createDomain after the intent is recorded (`intent:<name>`) and after libxl created the
    /// domain, before it is tagged (`untagged:<name>`): where a killed apply leaves the least behind.
    /// For the crash tests only (`--crash-after`); see ``ApplyEngine/crashPoint``.
    public var crashPoint: CrashPoint?

    /// Connects to this dom0's libxl and xenstore; throws ``XenError/notXenDom0(reason:)`` elsewhere.
    ///
    /// libxl's messages become lines of `logger`'s log (``libxlSink(_:)``): its errors always, and at `--log-level trace`
    /// its debug chatter too (what `xl -vvv` shows).
    /// - Parameter strictReset: refuse to pass through a NIC that cannot be reset (default); when
    ///   false, such a NIC is passed through with a warning, as libxl does.
    public convenience init(logger: Logger, sysfs: SysfsPCI = SysfsPCI(), strictReset: Bool = true) throws {
        try XenHost.requireDom0()
        self.init(
            context: try Self.openContext(logger), openToolstack: { () throws(XenError) in try Self.openContext(logger) },
            openStore: { readOnly throws(XenError) in try XenStoreTags(readOnly: readOnly) }, logger: logger, sysfs: sysfs,
            strictReset: strictReset)
    }

    /// A libxl context whose messages are entries of `logger`'s log: every context the backend opens (its own, and one
    /// per creation made at once).
    static func openContext(_ logger: Logger) throws(XenError) -> LibXLContext {
        try LibXLContext(logLevel: libxlLogLevel(for: logger.logLevel), sink: libxlSink(logger))
    }

    /// libxl's log level for iovm's: its debug log at `trace`, its errors otherwise.
    static func libxlLogLevel(for level: Logger.Level) -> LibXLContext.LogLevel {
        level == .trace ? .debug : .error
    }

    /// Writes each libxl message as one entry of `logger`'s log (with iovm's time to the millisecond, shown escaped,
    /// never mixed with another creation's), at the level libxl gave it: its debug and verbose chatter at trace.
    static func libxlSink(_ logger: Logger) -> LibXLLogSink {
        { message in logger.log(level: level(of: message.level), "\(message.line)") }
    }

    /// iovm's log level for a libxl message's.
    static func level(of level: LibXLContext.LogLevel) -> Logger.Level {
        switch level {
        case .debug, .verbose: .trace
        case .progress: .info
        case .warning: .warning
        case .error, .silent: .error
        }
    }

    /// A backend over any toolstack and tag store (tests give it recording mocks).
    init(
        context: any Toolstack, openToolstack: @escaping @Sendable () throws(XenError) -> any Toolstack,
        openStore: @escaping @Sendable (_ readOnly: Bool) throws(XenError) -> any TagStore, logger: Logger, sysfs: SysfsPCI,
        strictReset: Bool
    ) {
        self.context = context
        self.openToolstack = openToolstack
        self.openStore = openStore
        self.sysfs = sysfs
        self.logger = logger
        self.strictReset = strictReset
    }

    /// The CPUs of `cpus` on a host of `cores` cores (libxl's bitmaps may have bits beyond them).
    static func cpus(_ cpus: CPUSet, cores: Int) -> CPUSet {
        CPUSet(cpus.cores.filter { $0 < cores })
    }

    /// A PCI address as libxl takes it.
    static func libxlAddress(_ pci: PCIAddress) -> PCIDeviceAddress {
        PCIDeviceAddress(domain: pci.domain, bus: pci.bus, device: pci.device, function: pci.function)
    }

    // MARK: Observe

    /// Xen's facts apply checks before it touches anything (IOMMU, scheduler, the schedulers Xen was built with), asked
    /// through this backend's open libxl context rather than a new one.
    public func facts() -> XenFacts {
        guard let context = context as? LibXLContext else { return XenFacts.gather() }
        return XenFacts.gather(using: context)
    }

    public func observe(nics: [PCIAddress]) throws -> ObservedHost {
        try observe(nics: nics, store: try openStore(false))
    }

    /// ``observe(nics:)`` through `store`.
    func observe(nics: [PCIAddress], store base: any TagStore) throws -> ObservedHost {
        // Where an observation's time goes, at trace (`--log-level trace`): the hypervisor's lists, xenstore's answers
        // fetched at once, then per kind of read summed over the domains (from what was fetched, where it was).
        var spent = ObservationTimes(enabled: logger.logLevel <= .trace)
        let store = PrefetchingStore(base)
        let cores = try context.hostCPUCount()
        let scheduler = (try? context.schedulerName()) ?? "unknown"
        let poolInfos = try context.cpuPools()
        var listed = try context.domains(names: false)
        spent.lap("host, pools and domain list")
        Self.prefetch(for: listed, pools: poolInfos, nics: nics, into: store)
        spent.lap("xenstore at once (\(store.prefetched) reads)")
        // libxl_domid_to_name's read, from what was fetched; a domain without a name (half made, dying) has none.
        for index in listed.indices where listed[index].name == nil {
            listed[index].name = (try? store.read(Self.namePath(listed[index].domid))) ?? nil
        }
        let intents = try Self.intents(store)
        let parked = try Self.parked(store)
        let pools = try poolInfos.map { info in
            (info: info, pool: try Self.observedPool(info, cores: cores, store: store))
        }
        let poolNames = Dictionary(pools.map { ($0.info.id, $0.pool.name) }, uniquingKeysWith: { a, _ in a })
        let poolSchedulers = Dictionary(poolInfos.map { ($0.id, $0.scheduler) }, uniquingKeysWith: { a, _ in a })
        // A domain's PCI devices are in dom0's pci backend directory for it; one listing of those directories spares a
        // domain without any (every guest) a round trip to xenstored.
        let pciBackends = Set(try store.directory(Self.pciBackendRoot) ?? [])
        spent.lap("names, tags and pools")
        var domains: [ObservedDomain] = []
        for domain in listed {
            let hasPCI = domain.domid != 0 && pciBackends.contains("\(domain.domid)")
            // A domain half made by a killed create (no name yet, or named but not built: no vCPUs) or being destroyed
            // cannot list its vCPUs: it is observed without them rather than failing the whole observation (CI runs
            // 14 and 15: a kill -9 during guest2's create left libxl_list_vcpu returning NULL for a named domain).
            let settling = domain.name == nil || domain.state.dying
            var affinity: [CPUSet] = []
            var unbuilt = settling
            do { affinity = try vcpuAffinity(domain.domid, cores: cores) } catch {
                unbuilt = true
                if !settling { logger.warning("observing \(domain.name ?? "domid \(domain.domid)"): its vCPUs cannot be listed (\(error)); seen without them") }
            }
            spent.lap("vCPUs")
            let schedule = try? scheduleParameters(domain.domid, poolScheduler: poolSchedulers[domain.cpupool])
            spent.lap("scheduler parameters")
            let tag =
                Self.tag(from: try store.read(Self.managedPath(domain.domid)))
                ?? intents[domain.uuid] ?? Self.parkedTag(parked[domain.uuid], of: domain.uuid, named: domain.name)
            spent.lap("tags")
            let pci = !hasPCI ? [] : unbuilt ? ((try? Self.passedThrough(domain.domid, store: store)) ?? []) : try Self.passedThrough(domain.domid, store: store)
            let vifs = domain.domid == 0 ? nil : Self.vifs(of: domain.domid, store: store)
            spent.lap("PCI devices and vifs")
            domains.append(
                ObservedDomain(
                    domid: domain.domid, name: domain.name ?? "domid\(domain.domid)", uuid: domain.uuid,
                    vcpus: max(affinity.count, Int(domain.vcpusOnline)), hardAffinity: affinity,
                    weight: schedule?.weight, cap: schedule?.cap, cpupool: poolNames[domain.cpupool] ?? "pool\(domain.cpupool)",
                    pci: pci, tag: tag, vifs: vifs, rtds: schedule?.rtds, rtdsByVCPU: schedule?.rtdsByVCPU ?? [], shutdownReason: Self.shutdownReason(domain),
                    paused: domain.state.paused))
        }
        var bindings: [NICBinding] = []
        for pci in nics {
            let device = sysfs.binding(pci)
            guard device.present else { continue }
            let mark = try store.read(Self.nicMarkPath(pci)).map(NICMark.init(value:))
            bindings.append(
                NICBinding(
                    pci: pci, assignable: device.assignable, previousDriver: mark?.previousDriver, madeAssignableByIOVM: mark != nil,
                    driver: device.driver, madeAssignableFor: mark?.topology))
        }
        let applied = try Self.applied(store)
        spent.lap("NICs and applied records")
        if spent.enabled { logger.trace("observed \(domains.count) domains: \(spent.summary)") }
        return ObservedHost(
            cores: cores, scheduler: scheduler, domains: domains, pools: pools.map(\.pool), nics: bindings, applied: applied,
            parked: Self.gone(parked, domains: domains))
    }

    /// One domain listing (``LibXLContext/domains(names:)``), without names (a name is a xenstore request each), and the applied records.
    public func glance() throws -> HostGlance {
        let domains = try context.domains(names: false).map { DomainLife(domid: $0.domid, shutdownReason: Self.shutdownReason($0)) }
        return HostGlance(domains: domains, applied: try Self.applied(try openStore(true)))
    }

    /// Why `domain` no longer runs though libxl still lists it (`dying`, else libxl's shutdown reason:
    /// `crash`, `poweroff`, …); nil while it runs.
    static func shutdownReason(_ domain: DomainInfo) -> String? {
        if domain.state.dying { return "dying" }
        return domain.state.shutdown ? domain.shutdownReason ?? "unknown" : nil
    }

    /// The domain `nameOrID` if iovm created it (its tag's UUID matches), without observing the whole host:
    /// what `iovm pin`, `unpin` and `weight` need, fast.
    public func managedDomain(_ nameOrID: String) throws -> ManagedDomain? {
        try managedDomains([nameOrID], withCap: true)[0]
    }

    /// One domain listing and one read-only xenstore connection for all of `namesOrIDs`; the scheduler is asked
    /// only `withCap` (`iovm pin` needs no cap).
    public func managedDomains(_ namesOrIDs: [String], withCap: Bool) throws -> [ManagedDomain?] {
        let domains = try context.domains()
        var store: (any TagStore)?
        return try namesOrIDs.map { nameOrID in
            guard let domain = domains.first(where: { $0.name == nameOrID || "\($0.domid)" == nameOrID }) else { return nil }
            if store == nil { store = try openStore(true) }
            // A restored domain is iovm's by its parked tag until the next apply tags it again.
            var tag = Self.tag(from: try store?.read("\(Self.tagRoot)/managed/\(domain.domid)"))
            if tag?.uuid != domain.uuid {
                tag = Self.parkedTag(Self.tag(from: try store?.read("\(Self.parkedRoot)/\(domain.uuid)")), of: domain.uuid, named: domain.name)
            }
            guard let tag, tag.uuid == domain.uuid else {
                throw XenError.failed(operation: "change \(domain.name ?? nameOrID) (\(domain.domid))", detail: "iovm did not create it; iovm never changes it")
            }
            return ManagedDomain(
                domid: domain.domid, name: domain.name ?? nameOrID, vcpus: Int(domain.vcpusOnline),
                cap: withCap ? try? scheduleParameters(domain.domid).cap : nil)
        }
    }

    private func vcpuAffinity(_ domid: UInt32, cores: Int) throws -> [CPUSet] {
        try context.vcpuAffinities(of: domid).map { Self.cpus($0, cores: cores) }
    }

    /// Domain `domid`'s weight, cap and rtds reservations (the one all vCPUs share, and each vCPU's); with the
    /// scheduler of its pool when the caller knows it (one libxenctrl call under credit or credit2, where libxl asks
    /// for the pool first).
    private func scheduleParameters(
        _ domid: UInt32, poolScheduler: String? = nil
    ) throws -> (weight: Int, cap: Int, rtds: RTDSParameters?, rtdsByVCPU: [RTDSParameters]) {
        let schedule = try poolScheduler.map { scheduler throws(XenError) in try context.schedule(of: domid, poolScheduler: scheduler) } ?? context.schedule(of: domid)
        func parameters(_ rtds: RTDSSchedule) -> RTDSParameters {
            RTDSParameters(periodMicroseconds: rtds.periodMicroseconds, budgetMicroseconds: rtds.budgetMicroseconds, extratime: rtds.extratime)
        }
        return (schedule.weight, schedule.cap, schedule.rtds.map(parameters), schedule.rtdsByVCPU.map(parameters))
    }

    /// The PCI devices dom0's pciback serves `domid`, read from its backend directory as pcifront reads them: `num_devs`,
    /// then `dev-<i>` (the pciback protocol). `libxl_device_pci_list` reads those, three more keys per device and the
    /// domain path: 10 requests to xenstored for an IOVM of 2 NICs where these are 3 (issue 16).
    static func passedThrough(_ domid: UInt32, store: any TagStore) throws(XenError) -> [PCIAddress] {
        let path = "\(pciBackendPath(domid))/0"
        // dom0 writes these keys (a domain cannot); the bound keeps a damaged count from reading on and on.
        guard let count = try store.read("\(path)/num_devs").flatMap({ Int($0) }), count > 0 else { return [] }
        var devices: [PCIAddress] = []
        for index in 0..<min(count, 256) {
            if let device = try store.read("\(path)/dev-\(index)").flatMap({ PCIAddress($0) }) { devices.append(device) }
        }
        return devices
    }

    private func listPools(store: any TagStore, cores: Int) throws -> [(info: CPUPoolInfo, pool: ObservedPool)] {
        try context.cpuPools().map { info in (info, try Self.observedPool(info, cores: cores, store: store)) }
    }

    /// Pool `info` with the topology that made it, if iovm did.
    static func observedPool(_ info: CPUPoolInfo, cores: Int, store: any TagStore) throws -> ObservedPool {
        let owner = try store.read(poolOwnerPath(info.name))
        return ObservedPool(name: info.name, scheduler: info.scheduler, cpus: cpus(info.cpus, cores: cores), managedBy: owner)
    }

    // MARK: Pools

    public func createPool(_ pool: CPUPoolSpec, topology: String) throws {
        var removed: [Int] = []
        do {
            for cpu in pool.cpus.cores {
                try context.removeCPU(cpu, fromPool: 0)
                removed.append(cpu)
            }
            _ = try context.createCPUPool(name: pool.name, scheduler: pool.scheduler, cpus: pool.cpus)
            try openStore(false).write("\(Self.tagRoot)/pools/\(Self.key(pool: pool.name))", topology)
        } catch {
            for cpu in removed { try? context.addCPU(cpu, toPool: 0) }
            throw error
        }
    }

    public func destroyPool(named name: String) throws {
        let store = try openStore(false)
        let cores = try context.hostCPUCount()
        guard let entry = try listPools(store: store, cores: cores).first(where: { $0.pool.name == name }) else { return }
        guard entry.pool.managedBy != nil else { throw XenError.failed(operation: "destroy cpupool \(name)", detail: "iovm did not create it") }
        try context.destroyCPUPool(entry.info)
        for cpu in entry.pool.cpus.cores {
            try context.addCPU(cpu, toPool: 0)
        }
        _ = try store.remove("\(Self.tagRoot)/pools/\(Self.key(pool: name))")
    }

    // MARK: NICs

    public func makeAssignable(_ pci: PCIAddress, for topology: String?) throws {
        if !sysfs.pcibackLoaded {
            let outcome = try ProcessRunner.run("/sbin/modprobe", ["xen-pciback"], environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"], timeout: 60)
            guard outcome.succeeded else { throw XenError.failed(operation: "modprobe xen-pciback", detail: outcome.output) }
        }
        let previous = sysfs.device(pci).driver ?? ""
        let store = try openStore(false)
        try store.write("\(Self.tagRoot)/nics/\(Self.key(pci))", NICMark(driver: previous, topology: topology).value)
        do {
            try context.addAssignablePCI(Self.libxlAddress(pci))
        } catch {
            _ = try? store.remove("\(Self.tagRoot)/nics/\(Self.key(pci))")
            throw error
        }
    }

    public func markNIC(_ pci: PCIAddress, for topology: String?) throws {
        try NICMark.rewrite("\(Self.tagRoot)/nics/\(Self.key(pci))", for: topology, in: try openStore(false))
    }

    public func nicsMarked(for topology: String) throws -> [PCIAddress] {
        try NICMark.nics(markedFor: topology, under: "\(Self.tagRoot)/nics", in: try openStore(true))
    }

    /// The NIC of a mark's key (``key(_:)``): `0000_00_10_0` is 0000:00:10.0; nil for anything else.
    static func pci(key: String) -> PCIAddress? {
        let parts = key.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        return PCIAddress("\(parts[0]):\(parts[1]):\(parts[2]).\(parts[3])")
    }

    public func releaseNIC(_ pci: PCIAddress) throws {
        try context.removeAssignablePCI(Self.libxlAddress(pci))
        _ = try openStore(false).remove("\(Self.tagRoot)/nics/\(Self.key(pci))")
    }

    /// Where libxl marks a PCI device as assigned to a domain: `/libxl/pci/0000-00-10-0/domid`.
    static func libxlAssignmentPath(_ pci: PCIAddress) -> String {
        "/libxl/pci/\(pci.description.map { $0 == ":" || $0 == "." ? "-" : $0 }.map(String.init).joined())/domid"
    }

    /// Removes libxl's "assigned to domain N" marker of `pci` when domain N no longer exists.
    ///
    /// libxl writes the marker first when it adds a PCI device to a domain being created, and clears it
    /// only when the add fails or the device is removed; destroy removes only devices that reached the
    /// backend. An apply killed in between leaves the marker, and every later create of that NIC fails with
    /// "PCI device ... is not assignable". A marker whose domain is alive is left alone (libxl refuses then,
    /// rightly). `driver_path` and `name`, which give the NIC back to its driver later, are kept.
    /// `why` says how such a marker came to be left, for the log.
    func releaseDeadAssignment(_ pci: PCIAddress, why: String = "an apply killed inside libxl's create") throws {
        let store = try openStore(false)
        let path = Self.libxlAssignmentPath(pci)
        guard let text = try store.read(path), let domid = UInt32(text.trimmingWhitespace()) else { return }
        guard !(try context.domains(names: false).contains { $0.domid == domid }) else { return }
        logger.notice("NIC \(pci) is marked assigned to domain \(domid), which no longer exists (\(why)): clearing \(path)")
        try store.remove(path)
    }

    /// Resets a NIC through sysfs before it is passed through, so no state of its last user leaks
    /// into the IOVM; libxl itself ignores a failed reset. Without `strictReset` a failure is a warning.
    func reset(_ pci: PCIAddress) throws {
        let path = "\(sysfs.root)/bus/pci/devices/\(pci)/reset"
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        var failure: XenError?
        if fd < 0 {
            failure = XenError.currentErrno(operation: "reset NIC \(pci) (it offers no reset method: open \(path))")
        } else {
            if write(fd, "1", 1) != 1 { failure = XenError.currentErrno(operation: "reset NIC \(pci) through \(path)") }
            close(fd)
        }
        guard let failure else { return }
        if strictReset { throw failure }
        logger.warning("passing NIC \(pci) through without a reset (--allow-unresettable-nics): \(failure)")
    }

    // MARK: Domains

    public func createDomain(_ spec: DomainSpec, libxlJSON: String, tag: ManagedTag) throws -> UInt32 {
        for pci in spec.pci {
            try releaseDeadAssignment(pci)
            try reset(pci)
        }
        let own = try openToolstack()  // its own context: creations of one stage run concurrently
        // libxl leaves a zero UUID alone (xl makes one up when it parses a config): every domain gets its own,
        // which iovm's tag records so a reused domid is never taken for a domain iovm made. It is recorded
        // as an intent before the domain exists, so a kill between creating and tagging leaves it iovm's.
        let chosen = UUID().uuidString.lowercased()
        var intent = tag
        intent.uuid = chosen
        let intentPath = "\(Self.intentRoot)/\(chosen)"
        try openStore(false).write(intentPath, try JSONText.line(intent))
        crashPoint?("intent:\(spec.name)")
        var domid: UInt32?
        do {
            let created = try own.createDomain(configJSON: libxlJSON, uuid: chosen, name: spec.name)
            domid = created
            crashPoint?("untagged:\(spec.name)")
            if let rtds = spec.rtds {
                // libxl's create gives rtds the domain-wide reservation, whose extratime Xen drops: set each vCPU's.
                try own.setRTDSSchedule(of: created, to: Self.rtdsSchedule(rtds))
            }
            // Unpaused before it is tagged: a kill in between leaves it incomplete (made again by the next
            // apply), never tagged and paused, which would look complete and never serve.
            try own.unpauseDomain(created, name: spec.name)
            var recorded = tag
            recorded.uuid = try own.domainInfo(created).uuid
            let json = try JSONText.line(recorded)
            try openStore(false).write("\(Self.tagRoot)/managed/\(created)", json)
            _ = try? openStore(false).remove(intentPath)
            logger.info("created \(spec.name) as domain \(created)")
            return created
        } catch {
            if let domid {
                do {
                    try own.destroyDomain(domid, name: spec.name)
                } catch let destroy {
                    // Still there, perhaps paused and holding its NICs: its intent keeps it iovm's, so the next apply
                    // (or a watch's recovery) sees an incomplete domain of its own and makes it again, not a foreign one.
                    logger.error(
                        "\(spec.name) (\(domid)) could not be destroyed after its creation failed (\(destroy)); its intent stays, so the next apply replaces it"
                    )
                    throw error
                }
                _ = try? openStore(false).remove("\(Self.tagRoot)/managed/\(domid)")
            }
            _ = try? openStore(false).remove(intentPath)
            throw error
        }
    }

    public func recordApplied(topology: String, fingerprint: String?) throws {
        try Self.recordApplied(topology: topology, fingerprint: fingerprint, in: try openStore(false))
    }

    /// Writes `topology`'s node under ``appliedRoot`` in `store` (nil: removes it), for either backend.
    static func recordApplied(topology: String, fingerprint: String?, in store: any TagStore) throws {
        let path = "\(appliedRoot)/\(appliedKey(topology))"
        guard let fingerprint else { return try store.remove(path) }
        try store.write(path, try JSONText.line(AppliedRecord(topology: topology, fingerprint: fingerprint)))
    }

    public func waitForDriverDomain(domid: UInt32, timeout: Double) throws {
        let path = "/local/domain/\(domid)/\(Self.devdReadyKey)"
        guard try waitForAny(of: [path], timeout: timeout) else {
            throw XenError.failed(
                operation: "wait for driver domain \(domid)",
                detail: "\(path) was not written within \(String(cFormat: "%g", timeout)) s: the IOVM image must start `xl devd` and then write it")
        }
    }

    /// Returns once the IOVM wrote ``netbackKey`` or ``runtimeKey`` (iovm's image) or ``devdReadyKey`` (any image that
    /// runs `xl devd`).
    public func waitForVifBackends(domid: UInt32, timeout: Double) throws {
        let paths = [Self.netbackKey, Self.runtimeKey, Self.devdReadyKey].map { "/local/domain/\(domid)/\($0)" }
        guard try waitForAny(of: paths, timeout: timeout) else {
            throw XenError.failed(
                operation: "wait for driver domain \(domid)",
                detail: "none of \(paths.joined(separator: ", ")) was written within \(Int(timeout)) s: the IOVM image must start `xl devd` and then write the last")
        }
    }

    /// Reads `paths` until one has a non-empty value (true) or `timeout` seconds passed (false): again at each change
    /// under them (a xenstore watch, on a connection of its own so that concurrent waits do not take each other's
    /// events), and at least every ``recheckInterval`` seconds.
    private func waitForAny(of paths: [String], timeout: Double) throws -> Bool {
        let store = try openStore(true)
        for path in paths { try store.watch(path) }
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            // Read at least once, and once more after the last wait.
            for path in paths { if let value = try store.read(path), !value.isEmpty { return true } }
            guard try Self.awaitChange(on: store, before: deadline) else { return false }
        }
    }

    /// Waits on `store` until a watched path changes, at most ``recheckInterval`` seconds and not past `deadline`;
    /// false (without waiting) once `deadline` has passed.
    private static func awaitChange(on store: any TagStore, before deadline: Date) throws -> Bool {
        let remaining = deadline.timeIntervalSinceNow
        guard remaining > 0 else { return false }
        _ = try store.awaitChange(timeout: min(recheckInterval, remaining))
        return true
    }

    /// Whether `path` has the shape of a vif backend directory in a driver domain's tree
    /// (`/local/domain/<domid>/backend/vif/<frontend domid>/<devid>`). The frontend's `backend` key is written in the
    /// guest's own directory, so a guest could name any path there: only paths of this shape are watched.
    static func isVifBackendPath(_ path: String, frontend: UInt32) -> Bool {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 8, parts[0].isEmpty, parts[1] == "local", parts[2] == "domain", parts[4] == "backend", parts[5] == "vif",
            parts[6] == "\(frontend)"
        else { return false }
        return [parts[3], parts[7]].allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }
    }

    /// The most backends one guest wait watches.
    static let maxWatchedBackends = 64

    /// The longest a wait goes without reading xenstore again when no watch event came (stores without watches poll
    /// at this rate).
    static let recheckInterval = 0.25

    public func waitForGuestNetwork(domid: UInt32, timeout: Double) throws {
        let store = try openStore(true)
        let devices = "/local/domain/\(domid)/device/vif"
        try store.watch(devices)
        var watched: Set<String> = []
        let deadline = Date().addingTimeInterval(timeout)
        var waiting: [String] = []
        var backends: [String] = []
        repeat {
            waiting = []
            backends = []
            for vif in try store.directory(devices) ?? [] {
                guard let devid = Int(vif), let backend = Self.vifBackend(of: domid, devid: devid, store: store)?.path else {
                    waiting.append("vif \(vif): no backend yet")
                    continue
                }
                let state = try store.read("\(backend)/state") ?? "?"
                let hotplug = try store.read("\(backend)/hotplug-status") ?? ""
                if hotplug == "error" {
                    let diagnosis = diagnose(backend, store: store)
                    throw XenError.failed(operation: "connect vif \(vif) of domain \(domid)", detail: "the backend's hotplug script failed: \(diagnosis.report)")
                }
                if state != "4" {
                    waiting.append("\(backend) state \(state)\(hotplug.isEmpty ? "" : ", hotplug-status \(hotplug)")")
                    backends.append(backend)
                    if watched.count < Self.maxWatchedBackends, watched.insert(backend).inserted {
                        try store.watch(backend)
                    }
                }
            }
            if waiting.isEmpty { return }
        } while try Self.awaitChange(on: store, before: deadline)
        let reports = backends.map { diagnose($0, store: store).report }
        let others = waiting.filter { $0.hasPrefix("vif ") }
        throw XenError.failed(
            operation: "connect the vifs of domain \(domid)",
            detail: "not connected after \(Int(timeout)) s: " + (others + reports).joined(separator: "\n"))
    }

    /// What dom0 can read about an unconnected vif: xenstore, the IOVM's published errors, its console.
    private func diagnose(_ backend: String, store: any TagStore) -> VifDiagnosis {
        VifDiagnosis.gather(
            backend: backend, read: { path in (try? store.read(path)) ?? nil },
            console: { VifDiagnosis.tail(of: $0) })
    }

    public func destroyDomain(domid: UInt32) throws {
        let store = try openStore(false)
        let tagPath = "\(Self.tagRoot)/managed/\(domid)"
        // Gone already (an `xl destroy` finished between observing and now): only its tag is left to remove.
        guard try context.domains(names: false).contains(where: { $0.domid == domid }) else {
            logger.info("domain \(domid) is gone already; removing its tag")
            _ = try? store.remove(tagPath)
            return
        }
        let info = try context.domainInfo(domid)
        let actual = info.uuid
        guard
            let tag = try Self.tag(from: store.read(tagPath)) ?? Self.intents(store)[actual]
                ?? Self.parkedTag(Self.parked(store)[actual], of: actual, named: try context.domainName(domid))
        else {
            throw XenError.failed(operation: "destroy domain \(domid)", detail: "iovm did not create it; refusing")
        }
        guard actual == tag.uuid else {
            throw XenError.failed(operation: "destroy domain \(domid)", detail: "its UUID is not the one iovm created (\(tag.uuid)); refusing")
        }
        var passedThrough: [PCIAddress] = []
        // A dying domain is being destroyed already, by another toolstack: its devices are left to that one.
        if info.state.shutdown && !info.state.dying {
            do {
                passedThrough = try removePCIBackend(of: domid, name: tag.name, reason: info.shutdownReason, store: store)
            } catch {
                logger.warning("could not remove the PCI backend of \(tag.name) (\(domid)), which shut down; libxl's destroy waits for its answers instead: \(error)")
            }
        }
        try context.destroyDomain(domid, name: tag.name)
        _ = try store.remove(tagPath)
        _ = try? store.remove("\(Self.intentRoot)/\(tag.uuid)")
        _ = try? store.remove("\(Self.parkedRoot)/\(tag.uuid)")
        for pci in passedThrough {
            do { try releaseDeadAssignment(pci, why: "its PCI backend was removed before libxl destroyed it") } catch {
                logger.warning("could not clear libxl's assignment of NIC \(pci) to the destroyed domain \(domid) (the next create clears it): \(error)")
            }
        }
    }

    /// Where dom0's pciback serves a domain's passed-through devices: `/local/domain/0/backend/pci/<domid>`.
    static func pciBackendPath(_ domid: UInt32) -> String { "/local/domain/0/backend/pci/\(domid)" }

    /// Removes the PCI backend of `domid`, a domain that shut down, and returns the NICs it listed.
    ///
    /// libxl takes a PV domain's devices away one by one with pciback's reconfiguration handshake, which the
    /// domain's own pcifront must answer, and waits 10 s for each answer. A crashed IOVM answers nothing: in the
    /// lab, destroying one with 2 NICs took 21 s, and left the backend behind, so `xl pci-assignable-list` no
    /// longer listed the NICs. Without the backend, libxl lists no device to take away and destroys the domain at
    /// once; Xen takes the devices back when it destroys the domain, and pciback releases them when their backend
    /// goes. iovm tries to reset a NIC before it passes it through again. The NICs are read from the backend's
    /// `dev-N` keys, whatever its `num_devs` says.
    func removePCIBackend(of domid: UInt32, name: String, reason: String?, store: any TagStore) throws -> [PCIAddress] {
        let path = Self.pciBackendPath(domid)
        guard try store.directory(path) != nil else { return [] }
        var nics: [PCIAddress] = []
        for key in try store.directory("\(path)/0") ?? [] where key.hasPrefix("dev-") && Int(key.dropFirst(4)) != nil {
            if let text = try store.read("\(path)/0/\(key)"), let pci = PCIAddress(text.trimmingWhitespace()) { nics.append(pci) }
        }
        nics.sort()
        logger.notice(
            "\(name) (\(domid)) shut down (\(reason ?? "unknown")): removing its PCI backend (\(nics.isEmpty ? "no NIC listed" : nics.map(\.description).joined(separator: ", "))) before destroying it; its pcifront cannot answer libxl's removal of each NIC"
        )
        try store.remove(path)
        return nics
    }

    public func reattachVif(domid: UInt32, devid: Int, staleBackend: UInt32?, to vif: VifSpec) throws {
        let name = try context.domainName(domid) ?? "domid\(domid)"
        let own = try openToolstack()  // its own context: re-attaches to different IOVMs run concurrently
        try removeVif(domid: domid, devid: devid, staleBackend: staleBackend, name: name, toolstack: own)
        try own.addNIC(to: domid, configJSON: try PlanRenderer.libxlNICJSON(vif, devid: devid), name: name)
        logger.info("re-attached \(name)'s vif \(devid) to \(vif.backend ?? "Domain-0") (mac \(vif.mac), bridge \(vif.bridge))")
    }

    public func removeDeadVif(domid: UInt32, devid: Int, staleBackend: UInt32) throws {
        let name = try context.domainName(domid) ?? "domid\(domid)"
        try removeVif(domid: domid, devid: devid, staleBackend: staleBackend, name: name, toolstack: try openToolstack())
    }

    /// Removes vif `devid` of `domid` if its frontend is still in xenstore.
    private func removeVif(domid: UInt32, devid: Int, staleBackend: UInt32?, name: String, toolstack: any Toolstack) throws {
        let store = try openStore(false)
        let frontend = "/local/domain/\(domid)/device/vif/\(devid)"
        guard try store.directory(frontend) != nil else { return }
        // The backend domain dom0 recorded (``vifBackend(of:devid:store:)``, never the guest's own backend-id); libxl
        // finds the backend directory from it.
        let backend = Self.vifBackend(of: domid, devid: devid, store: store)?.domid ?? staleBackend ?? 0
        try toolstack.removeNIC(devid: devid, of: domid, backendDomid: backend, name: name)
        logger.info("removed \(name)'s stale vif \(devid) (backend domain \(backend))")
    }

    // MARK: Live changes

    public func setAffinity(domid: UInt32, vcpus: Int, hard: CPUSet?) throws {
        try context.setHardAffinity(of: domid, vcpus: vcpus, to: hard)
    }

    public func setAffinity(domid: UInt32, perVCPU: [CPUSet]) throws {
        try context.setHardAffinities(of: domid, perVCPU: perVCPU)
    }

    public func setSchedule(domid: UInt32, weight: Int, cap: Int) throws {
        try context.setSchedule(of: domid, to: DomainSchedule(weight: weight, cap: cap))
    }

    public func setRTDS(domid: UInt32, to parameters: RTDSParameters) throws {
        try context.setRTDSSchedule(of: domid, to: Self.rtdsSchedule(parameters))
    }

    public func setRTDS(domid: UInt32, perVCPU: [RTDSParameters]) throws {
        try context.setRTDSSchedules(of: domid, perVCPU: perVCPU.map(Self.rtdsSchedule))
    }

    /// A plan's rtds reservation in XenKit's terms.
    static func rtdsSchedule(_ parameters: RTDSParameters) -> RTDSSchedule {
        RTDSSchedule(periodMicroseconds: parameters.periodMicroseconds, budgetMicroseconds: parameters.budgetMicroseconds, extratime: parameters.extratime)
    }

    public func moveToPool(domid: UInt32, pool: String) throws {
        try context.moveDomain(domid, toPoolNamed: pool)
    }
}

extension LibXLContext {
    /// A context whose messages are entries of `logger`'s log (``LibXLBackend/openContext(_:)``), or, without a logger,
    /// one that writes its errors to standard error.
    static func opened(logger: Logger?) throws(XenError) -> LibXLContext {
        guard let logger else { return try LibXLContext() }
        return try LibXLBackend.openContext(logger)
    }
}

/// The time an observation spends per kind of read, summed over the domains (``LibXLBackend/observe(nics:store:)`` logs
/// it at trace). Disabled, it reads the clock once, when made.
struct ObservationTimes {
    let enabled: Bool
    private var last = ContinuousClock.now
    private var spent: [(kind: String, milliseconds: Double)] = []

    init(enabled: Bool) { self.enabled = enabled }

    /// Adds the time since the last lap to `kind`.
    mutating func lap(_ kind: String) {
        guard enabled else { return }
        let now = ContinuousClock.now
        let ms = (now - last).milliseconds
        last = now
        if let index = spent.firstIndex(where: { $0.kind == kind }) { spent[index].milliseconds += ms } else { spent.append((kind, ms)) }
    }

    /// "kind 12.3 ms, ..." in the order first seen.
    var summary: String { spent.map { "\($0.kind) " + String(cFormat: "%.1f", $0.milliseconds) + " ms" }.joined(separator: ", ") }
}
