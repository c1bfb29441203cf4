import CLibXen
import CXenShim
import Foundation
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
/// (the topology) and `/local/domain/0/iovm/nics/<dddd_bb_dd_f>` (the driver the NIC had before iovm).
/// Each domain is created with its own libxl context, so a stage's creations run concurrently
/// (one context serializes its calls behind a lock).
public final class LibXLBackend: XenBackend, @unchecked Sendable {
    /// Observation and live changes share this context (its calls are serialized by its lock).
    let context: LibXLContext
    let sysfs: SysfsPCI
    let logger: Logger
    /// Where an IOVM says its `xl devd` runs: `/local/domain/<domid>/` + this (written by the IOVM image).
    public static let devdReadyKey = "data/iovm/devd"

    static let tagRoot = "/local/domain/0/iovm"
    /// Where createDomain records a domain before libxl creates it (`<uuid>` = its tag): a domain
    /// whose apply was killed before it was tagged is still recognized as iovm's.
    static let intentRoot = "\(tagRoot)/intents"

    /// A domain's vifs and their backends' states, from xenstore; what cannot be read is left out.
    static func vifs(of domid: UInt32, store: XenStoreClient) -> [ObservedVif] {
        let devices = "/local/domain/\(domid)/device/vif"
        let ids = ((try? store.directory(devices)) ?? nil) ?? []
        return ids.compactMap { Int($0) }.sorted().map { devid in
            let read = { (key: String) -> String? in (try? store.read("\(devices)/\(devid)/\(key)")) ?? nil }
            let backend = read("backend")
            let state = backend.flatMap { (try? store.read("\($0)/state")) ?? nil }
            let hotplug = backend.flatMap { (try? store.read("\($0)/hotplug-status")) ?? nil }
            return ObservedVif(devid: devid, backendDomid: read("backend-id").flatMap { UInt32($0) }, backendState: state, hotplugStatus: hotplug)
        }
    }

    /// The recorded intents by UUID, each marked incomplete.
    static func intents(_ store: XenStoreClient) throws -> [String: ManagedTag] {
        var intents: [String: ManagedTag] = [:]
        for uuid in try store.directory(intentRoot) ?? [] {
            guard let text = try store.read("\(intentRoot)/\(uuid)"), var tag = try? JSONDecoder().decode(ManagedTag.self, from: Data(text.utf8)) else { continue }
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
    static func key(pool name: String) -> String { name.replacingOccurrences(of: ".", with: "_") }

    /// Whether a NIC that cannot be reset through sysfs is refused (libxl itself only logs a failed reset).
    let strictReset: Bool

    /// Called inside createDomain after the intent is recorded (`intent:<name>`) and after libxl created the
    /// domain, before it is tagged (`untagged:<name>`): where a killed apply leaves the least behind.
    /// For the crash tests only (`--crash-after`); see ``ApplyEngine/crashPoint``.
    public var crashPoint: CrashPoint?

    /// Connects to this dom0's libxl and xenstore; throws ``XenError/notXenDom0(reason:)`` elsewhere.
    /// - Parameter strictReset: refuse to pass through a NIC that cannot be reset (default); when
    ///   false, such a NIC is passed through with a warning, as libxl does.
    public init(logger: Logger, sysfs: SysfsPCI = SysfsPCI(), strictReset: Bool = true) throws {
        try XenHost.requireDom0()
        self.context = try LibXLContext()
        self.sysfs = sysfs
        self.logger = logger
        self.strictReset = strictReset
    }

    // MARK: Observe

    public func observe(nics: [PCIAddress]) throws -> ObservedHost {
        let info = try context.physicalInfo()
        let cores = Int(info.nrCPUs)
        let scheduler = (try? context.schedulerName()) ?? "unknown"
        let store = try XenStoreClient()
        let intents = try Self.intents(store)
        let pools = try listPools(store: store, cores: cores)
        let poolNames = Dictionary(pools.map { ($0.id, $0.pool.name) }, uniquingKeysWith: { a, _ in a })
        var domains: [ObservedDomain] = []
        for domain in try context.domains() {
            let affinity = try vcpuAffinity(domain.domid, cores: cores)
            let schedule = try? scheduleParameters(domain.domid)
            let tag =
                try store.read("\(Self.tagRoot)/managed/\(domain.domid)").flatMap { try? JSONDecoder().decode(ManagedTag.self, from: Data($0.utf8)) }
                ?? intents[domain.uuid]
            domains.append(
                ObservedDomain(
                    domid: domain.domid, name: domain.name ?? "domid\(domain.domid)", uuid: domain.uuid,
                    vcpus: max(affinity.count, Int(domain.vcpusOnline)), hardAffinity: affinity,
                    weight: schedule?.weight, cap: schedule?.cap, cpupool: poolNames[domain.cpupool] ?? "pool\(domain.cpupool)",
                    pci: domain.domid == 0 ? [] : try passedThrough(domain.domid), tag: tag,
                    vifs: domain.domid == 0 ? nil : Self.vifs(of: domain.domid, store: store)))
        }
        var bindings: [NICBinding] = []
        for pci in nics {
            let device = sysfs.device(pci)
            guard device.present else { continue }
            let previous = try store.read("\(Self.tagRoot)/nics/\(Self.key(pci))")
            bindings.append(
                NICBinding(
                    pci: pci, assignable: device.assignable, previousDriver: previous.flatMap { $0.isEmpty ? nil : $0 },
                    madeAssignableByIOVM: previous != nil))
        }
        return ObservedHost(cores: cores, scheduler: scheduler, domains: domains, pools: pools.map(\.pool), nics: bindings)
    }

    /// The domain `nameOrID` if iovm created it (its tag's UUID matches), without observing the whole host:
    /// what `iovm pin`, `unpin` and `weight` need, fast.
    public func managedDomain(_ nameOrID: String) throws -> ManagedDomain? {
        guard let domain = try context.domains().first(where: { $0.name == nameOrID || "\($0.domid)" == nameOrID }) else { return nil }
        let store = try XenStoreClient(readOnly: true)
        guard let text = try store.read("\(Self.tagRoot)/managed/\(domain.domid)"),
            let tag = try? JSONDecoder().decode(ManagedTag.self, from: Data(text.utf8)), tag.uuid == domain.uuid
        else {
            throw XenError.failed(operation: "change \(domain.name ?? nameOrID) (\(domain.domid))", detail: "iovm did not create it; iovm never changes it")
        }
        return ManagedDomain(domid: domain.domid, name: domain.name ?? nameOrID, vcpus: Int(domain.vcpusOnline), cap: try? scheduleParameters(domain.domid).cap)
    }

    private func vcpuAffinity(_ domid: UInt32, cores: Int) throws -> [CPUSet] {
        try context.withUnsafeContext { ctx throws(XenError) in
            var count: Int32 = 0
            var cpus: Int32 = 0
            guard let list = libxl_list_vcpu(ctx, domid, &count, &cpus) else {
                throw XenError.failed(operation: "libxl_list_vcpu(\(domid))", detail: "returned NULL")
            }
            defer { libxl_vcpuinfo_list_free(list, count) }
            return (0..<Int(count)).map { index in
                let map = CPUMap(list[index].cpumap)
                return CPUSet(map.resolved(cpuCount: cores).filter { $0 < cores })
            }
        }
    }

    private func scheduleParameters(_ domid: UInt32) throws -> (weight: Int, cap: Int) {
        try context.withUnsafeContext { ctx throws(XenError) in
            var params = libxl_domain_sched_params()
            libxl_domain_sched_params_init(&params)
            defer { libxl_domain_sched_params_dispose(&params) }
            let rc = libxl_domain_sched_params_get(ctx, domid, &params)
            guard rc == 0 else { throw XenError.libxl(code: rc, operation: "libxl_domain_sched_params_get(\(domid))") }
            return (Int(params.weight), Int(params.cap))
        }
    }

    private func passedThrough(_ domid: UInt32) throws -> [PCIAddress] {
        try context.withUnsafeContext { ctx throws(XenError) in
            var count: Int32 = 0
            guard let list = libxl_device_pci_list(ctx, domid, &count) else { return [] }
            defer { libxl_device_pci_list_free(list, count) }
            return (0..<Int(count)).map { index in
                let device = list[index]
                return PCIAddress(domain: UInt16(truncatingIfNeeded: device.domain), bus: device.bus, device: device.dev, function: device.func)
            }
        }
    }

    private func listPools(store: XenStoreClient, cores: Int) throws -> [(id: UInt32, pool: ObservedPool)] {
        let raw: [(UInt32, String, String, CPUMap)] = try context.withUnsafeContext { ctx throws(XenError) in
            var count: Int32 = 0
            guard let list = libxl_list_cpupool(ctx, &count) else {
                throw XenError.failed(operation: "libxl_list_cpupool", detail: "returned NULL")
            }
            defer { libxl_cpupoolinfo_list_free(list, count) }
            return (0..<Int(count)).map { index in
                let info = list[index]
                let name = info.pool_name.map { String(cString: $0) } ?? "pool\(info.poolid)"
                let scheduler = libxl_scheduler_to_string(info.sched).map { String(cString: $0) } ?? "unknown"
                return (info.poolid, name, scheduler, CPUMap(info.cpumap))
            }
        }
        return try raw.map { id, name, scheduler, map in
            let owner = try store.read("\(Self.tagRoot)/pools/\(Self.key(pool: name))")
            return (id, ObservedPool(name: name, scheduler: scheduler, cpus: CPUSet(map.resolved(cpuCount: cores).filter { $0 < cores }), managedBy: owner))
        }
    }

    // MARK: Pools

    public func createPool(_ pool: CPUPoolSpec, topology: String) throws {
        var removed: [Int] = []
        do {
            for cpu in pool.cpus.cores {
                try call("libxl_cpupool_cpuremove(Pool-0, \(cpu))") { ctx in libxl_cpupool_cpuremove(ctx, 0, Int32(cpu)) }
                removed.append(cpu)
            }
            var scheduler = libxl_scheduler(rawValue: 0)
            guard libxl_scheduler_from_string(pool.scheduler, &scheduler) == 0 else {
                throw XenError.failed(operation: "libxl_scheduler_from_string", detail: "unknown scheduler \(pool.scheduler)")
            }
            var bitmap = try context.makeCPUBitmap(CPUMap(pool.cpus.cores))
            defer { libxl_bitmap_dispose(&bitmap) }
            var uuid = libxl_uuid()
            libxl_uuid_generate(&uuid)
            var poolid = UInt32(LIBXL_CPUPOOL_POOLID_ANY)
            let bitmapCopy = bitmap
            try call("libxl_cpupool_create(\(pool.name))") { ctx in libxl_cpupool_create(ctx, pool.name, scheduler, bitmapCopy, &uuid, &poolid) }
            try XenStoreClient().write("\(Self.tagRoot)/pools/\(Self.key(pool: pool.name))", topology)
        } catch {
            for cpu in removed { _ = try? call("libxl_cpupool_cpuadd(Pool-0, \(cpu))") { ctx in libxl_cpupool_cpuadd(ctx, 0, Int32(cpu)) } }
            throw error
        }
    }

    public func destroyPool(named name: String) throws {
        let store = try XenStoreClient()
        let cores = Int(try context.physicalInfo().nrCPUs)
        guard let entry = try listPools(store: store, cores: cores).first(where: { $0.pool.name == name }) else { return }
        guard entry.pool.managedBy != nil else { throw XenError.failed(operation: "destroy cpupool \(name)", detail: "iovm did not create it") }
        try call("libxl_cpupool_destroy(\(name))") { ctx in libxl_cpupool_destroy(ctx, entry.id) }
        for cpu in entry.pool.cpus.cores {
            try call("libxl_cpupool_cpuadd(Pool-0, \(cpu))") { ctx in libxl_cpupool_cpuadd(ctx, 0, Int32(cpu)) }
        }
        _ = try store.remove("\(Self.tagRoot)/pools/\(Self.key(pool: name))")
    }

    // MARK: NICs

    public func makeAssignable(_ pci: PCIAddress) throws {
        if !sysfs.pcibackLoaded {
            let outcome = try ProcessRunner.run("/sbin/modprobe", ["xen-pciback"], environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"], timeout: 60)
            guard outcome.succeeded else { throw XenError.failed(operation: "modprobe xen-pciback", detail: outcome.output) }
        }
        let previous = sysfs.device(pci).driver ?? ""
        let store = try XenStoreClient()
        try store.write("\(Self.tagRoot)/nics/\(Self.key(pci))", previous)
        do {
            var device = Self.libxlPCI(pci)
            defer { libxl_device_pci_dispose(&device) }
            try call("libxl_device_pci_assignable_add(\(pci))") { ctx in libxl_device_pci_assignable_add(ctx, &device, 1) }
        } catch {
            _ = try? store.remove("\(Self.tagRoot)/nics/\(Self.key(pci))")
            throw error
        }
    }

    public func releaseNIC(_ pci: PCIAddress) throws {
        var device = Self.libxlPCI(pci)
        defer { libxl_device_pci_dispose(&device) }
        try call("libxl_device_pci_assignable_remove(\(pci))") { ctx in libxl_device_pci_assignable_remove(ctx, &device, 1) }
        _ = try XenStoreClient().remove("\(Self.tagRoot)/nics/\(Self.key(pci))")
    }

    static func libxlPCI(_ pci: PCIAddress) -> libxl_device_pci {
        var device = libxl_device_pci()
        libxl_device_pci_init(&device)
        device.domain = Int32(pci.domain)
        device.bus = pci.bus
        device.dev = pci.device
        device.func = pci.function
        return device
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
        for pci in spec.pci { try reset(pci) }
        let own = try LibXLContext()  // its own context: creations of one stage run concurrently
        var config = libxl_domain_config()
        libxl_domain_config_init(&config)
        defer { libxl_domain_config_dispose(&config) }
        try own.withUnsafeContext { ctx throws(XenError) in
            let rc = libxl_domain_config_from_json(ctx, &config, libxlJSON)
            guard rc == 0 else { throw XenError.libxl(code: rc, operation: "libxl_domain_config_from_json(\(spec.name))") }
        }
        // libxl leaves a zero UUID alone (xl makes one up when it parses a config): every domain gets its own,
        // which iovm's tag records so a reused domid is never taken for a domain iovm made. It is recorded
        // as an intent before the domain exists, so a kill between creating and tagging leaves it iovm's.
        let chosen = UUID().uuidString.lowercased()
        guard libxl_uuid_from_string(&config.c_info.uuid, chosen) == 0 else {
            throw XenError.failed(operation: "libxl_uuid_from_string(\(chosen))", detail: "refused a UUID Foundation made")
        }
        var intent = tag
        intent.uuid = chosen
        let intentPath = "\(Self.intentRoot)/\(chosen)"
        try XenStoreClient().write(intentPath, try JSONText.line(intent))
        crashPoint?("intent:\(spec.name)")
        var domid = cxenshim_invalid_domid()
        do {
            try own.withUnsafeContext { ctx throws(XenError) in
                let rc = libxl_domain_create_new(ctx, &config, &domid, nil, nil)
                guard rc == 0 else { throw XenError.libxl(code: rc, operation: "libxl_domain_create_new(\(spec.name))") }
            }
            crashPoint?("untagged:\(spec.name)")
            // Unpaused before it is tagged: a kill in between leaves it incomplete (made again by the next
            // apply), never tagged and paused, which would look complete and never serve.
            try own.withUnsafeContext { ctx throws(XenError) in
                let rc = libxl_domain_unpause(ctx, domid, nil)
                guard rc == 0 else { throw XenError.libxl(code: rc, operation: "libxl_domain_unpause(\(spec.name))") }
            }
            var recorded = tag
            recorded.uuid = try uuid(of: domid, context: own)
            let json = try JSONText.line(recorded)
            try XenStoreClient().write("\(Self.tagRoot)/managed/\(domid)", json)
            _ = try? XenStoreClient().remove(intentPath)
            logger.info("created \(spec.name) as domain \(domid)")
            return domid
        } catch {
            if domid != cxenshim_invalid_domid() {
                _ = try? own.withUnsafeContext { ctx throws(XenError) in libxl_domain_destroy(ctx, domid, nil) }
                _ = try? XenStoreClient().remove("\(Self.tagRoot)/managed/\(domid)")
            }
            _ = try? XenStoreClient().remove(intentPath)
            throw error
        }
    }

    public func removeStaleIntents() throws {
        let store = try XenStoreClient()
        let uuids = Set(try context.domains().map(\.uuid))
        for uuid in try store.directory(Self.intentRoot) ?? [] where !uuids.contains(uuid) {
            logger.notice("removing the creation intent \(uuid): its domain does not exist (an apply stopped before creating it)")
            try store.remove("\(Self.intentRoot)/\(uuid)")
        }
    }

    private func uuid(of domid: UInt32, context: LibXLContext) throws -> String {
        try context.withUnsafeContext { ctx throws(XenError) in
            var info = libxl_dominfo()
            libxl_dominfo_init(&info)
            defer { libxl_dominfo_dispose(&info) }
            let rc = libxl_domain_info(ctx, &info, domid)
            guard rc == 0 else { throw XenError.libxl(code: rc, operation: "libxl_domain_info(\(domid))") }
            return DomainInfo(info, name: nil).uuid
        }
    }

    public func waitForDriverDomain(domid: UInt32, timeout: Double) throws {
        let store = try XenStoreClient(readOnly: true)
        let path = "/local/domain/\(domid)/\(Self.devdReadyKey)"
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let value = try store.read(path), !value.isEmpty { return }
            usleep(200_000)
        }
        throw XenError.failed(
            operation: "wait for driver domain \(domid)",
            detail: "\(path) was not written within \(Int(timeout)) s: the IOVM image must start `xl devd` and then write it")
    }

    public func waitForGuestNetwork(domid: UInt32, timeout: Double) throws {
        let store = try XenStoreClient(readOnly: true)
        let devices = "/local/domain/\(domid)/device/vif"
        let deadline = Date().addingTimeInterval(timeout)
        var waiting: [String] = []
        var backends: [String] = []
        repeat {
            waiting = []
            backends = []
            for vif in try store.directory(devices) ?? [] {
                guard let backend = try store.read("\(devices)/\(vif)/backend") else {
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
                }
            }
            if waiting.isEmpty { return }
            usleep(250_000)
        } while Date() < deadline
        let reports = backends.map { diagnose($0, store: store).report }
        let others = waiting.filter { $0.hasPrefix("vif ") }
        throw XenError.failed(
            operation: "connect the vifs of domain \(domid)",
            detail: "not connected after \(Int(timeout)) s: " + (others + reports).joined(separator: "\n"))
    }

    /// What dom0 can read about an unconnected vif: xenstore, the IOVM's published errors, its console.
    private func diagnose(_ backend: String, store: XenStoreClient) -> VifDiagnosis {
        VifDiagnosis.gather(
            backend: backend, read: { path in (try? store.read(path)) ?? nil },
            console: { VifDiagnosis.tail(of: $0) })
    }

    public func destroyDomain(domid: UInt32) throws {
        let store = try XenStoreClient()
        let tagPath = "\(Self.tagRoot)/managed/\(domid)"
        let actual = try uuid(of: domid, context: context)
        guard
            let tag = try store.read(tagPath).flatMap({ try? JSONDecoder().decode(ManagedTag.self, from: Data($0.utf8)) })
                ?? Self.intents(store)[actual]
        else {
            throw XenError.failed(operation: "destroy domain \(domid)", detail: "iovm did not create it; refusing")
        }
        guard actual == tag.uuid else {
            throw XenError.failed(operation: "destroy domain \(domid)", detail: "its UUID is not the one iovm created (\(tag.uuid)); refusing")
        }
        try call("libxl_domain_destroy(\(tag.name))") { ctx in libxl_domain_destroy(ctx, domid, nil) }
        _ = try store.remove(tagPath)
        _ = try? store.remove("\(Self.intentRoot)/\(tag.uuid)")
    }

    // MARK: Live changes

    public func setAffinity(domid: UInt32, vcpus: Int, hard: CPUSet?) throws {
        var bitmap = try context.makeCPUBitmap(hard.map { CPUMap($0.cores) } ?? CPUMap.all)
        defer { libxl_bitmap_dispose(&bitmap) }
        for vcpu in 0..<vcpus {
            try call("libxl_set_vcpuaffinity(\(domid), vcpu \(vcpu), \(hard?.description ?? "all"))") { ctx in
                libxl_set_vcpuaffinity(ctx, domid, UInt32(vcpu), &bitmap, nil)
            }
        }
    }

    public func setSchedule(domid: UInt32, weight: Int, cap: Int) throws {
        var params = libxl_domain_sched_params()
        libxl_domain_sched_params_init(&params)
        defer { libxl_domain_sched_params_dispose(&params) }
        params.weight = Int32(weight)
        params.cap = Int32(cap)
        try call("libxl_domain_sched_params_set(\(domid), weight \(weight), cap \(cap))") { ctx in
            libxl_domain_sched_params_set(ctx, domid, &params)
        }
    }

    public func moveToPool(domid: UInt32, pool: String) throws {
        var poolid: UInt32 = 0
        try call("libxl_name_to_cpupoolid(\(pool))") { ctx in libxl_name_to_cpupoolid(ctx, pool, &poolid) }
        try call("libxl_cpupool_movedomain(\(pool), \(domid))") { ctx in libxl_cpupool_movedomain(ctx, poolid, domid) }
    }

    /// Runs a libxl call returning 0 or an error code on the shared context.
    private func call(_ operation: String, _ body: (OpaquePointer) -> Int32) throws {
        try context.withUnsafeContext { ctx throws(XenError) in
            let rc = body(ctx)
            guard rc == 0 else { throw XenError.libxl(code: rc, operation: operation) }
        }
    }
}
