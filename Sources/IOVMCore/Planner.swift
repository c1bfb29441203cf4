import CPUSets
public import IOVMWireFormat

/// Turns a topology document into a ``Plan``: checks it, derives the IOVMs of the
/// paper's configurations, assigns cores by the placement scheme and fills in
/// every domain's spec. Nothing on the host is touched.
public struct Planner: Sendable {
    /// The default memory of IOVMs and guests (the paper's 256 MB).
    public static let defaultMemoryMiB = 256
    /// Memory of an IOVM that boots the minimal image and names none: the smallest that passed traffic
    /// for two NICs in the lab (48 MiB), with a margin (README, "The minimal IOVM image").
    public static let defaultMinimalIOVMMemoryMiB = 64
    /// Below this the domain builder cannot even load the minimal image: its kernel and its initramfs, which
    /// libxc unpacks into the domain's memory (at 40 MiB `xl create` failed, at 48 it passed traffic for two NICs).
    public static let minimalImageFloorMiB = 48
    /// The image an IOVM boots when nothing names a kernel for it.
    public static let defaultIOVMImage = "minimal"
    /// Images the planner knows.
    public static let iovmImages = ["minimal"]
    /// Credit scheduler default weight.
    public static let defaultWeight = 256
    /// The credit weights Xen accepts; the planner and `iovm weight` both check against it.
    public static let weightRange = 1...65535
    /// The most memory one domain, dom0 or the host may be given, in MiB (64 TiB, four times what Xen 4.17 supports
    /// on x86): a larger figure is a typo, and it would overflow the KiB libxl takes and the plan's totals.
    public static let maximumMemoryMiB = 1 << 26
    /// The most cores a host may have: the CPU indices ``CPUSets/CPUSet`` takes (and `iovm pin` accepts).
    public static let maximumCores = CPUSet.maximumCPUIndex + 1
    /// Pool-0, where every domain goes unless a placement makes a pool.
    public static let defaultPool = "Pool-0"

    /// The schedulers a topology may ask for (`Host(scheduler:)`).
    public static let schedulers = ["credit", "credit2", "rtds", "null"]

    /// Host to plan for when the document declares none (e.g. `--host-cores`, or what Xen reports).
    public var hostOverride: HostShape?
    /// The scheduler the host's Pool-0 really runs (read from Xen, or `--host-scheduler`); nil when
    /// unknown, and the planner assumes the topology's `Host(scheduler:)`.
    public var poolZeroScheduler: String?

    /// The number the first IOVM a Configuration generates is named with (`iovm<N>`): a host's share of a
    /// topology over several hosts continues the numbering of the hosts before it, so names stay the topology's.
    public var firstGeneratedIOVM = 0

    /// Creates a planner.
    public init(hostOverride: HostShape? = nil, poolZeroScheduler: String? = nil, firstGeneratedIOVM: Int = 0) {
        self.hostOverride = hostOverride
        self.poolZeroScheduler = poolZeroScheduler
        self.firstGeneratedIOVM = firstGeneratedIOVM
    }

    /// Checks `document` and plans it; throws ``TopologyError/invalid(_:)`` listing every error found.
    public func plan(_ document: TopologyDocument) throws(TopologyError) -> Plan {
        if document.spansHosts {
            throw .invalid([.spansHosts((document.hosts ?? []).compactMap(\.name), at: document.source)])
        }
        var run = PlanningRun(document: document, hostOverride: hostOverride, poolZeroScheduler: poolZeroScheduler)
        run.firstGeneratedIOVM = firstGeneratedIOVM
        return try run.plan()
    }
}

let dom0Names: Set<String> = ["Domain-0", "dom0", "Dom0"]

/// One planning pass; collects diagnostics as it goes. Its steps live in `Planner+<Aspect>.swift`.
struct PlanningRun {
    let document: TopologyDocument
    let hostOverride: HostShape?
    let poolZeroScheduler: String?
    var firstGeneratedIOVM = 0
    var diagnostics = DiagnosticCollector()

    init(document: TopologyDocument, hostOverride: HostShape?, poolZeroScheduler: String? = nil) {
        self.document = document
        self.hostOverride = hostOverride
        self.poolZeroScheduler = poolZeroScheduler
    }

    /// An IOVM after configuration generation, before core assignment.
    struct IOVMDraft {
        var name: String
        var resources: DomainResources
        var nics: [PlacedNIC]
        var source: SourceLocation?
    }

    /// A guest after backend resolution.
    struct GuestDraft {
        var document: GuestDocument
        var backend: String?  // nil = dom0
        var nic: PCIAddress?
        var bridge: String
    }

    mutating func plan() throws(TopologyError) -> Plan {
        let top = document.source
        if document.schemaVersion != TopologyDocument.currentSchemaVersion {
            diagnostics.emit(.unsupportedSchema(document.schemaVersion, at: top))
            throw .invalid(diagnostics.diagnostics)
        }
        checkName(document.name, what: "topology", at: top)
        checkVifScript(document.defaults)

        let host = resolveHost()
        let (iovms, dom0NICs) = generateIOVMs()
        // A bridge per NIC: two NICs in one bridge would join their networks (a default name given to another NIC, too).
        for (owner, nics) in iovms.map({ ("IOVM \($0.name)", $0.nics) }) + [("dom0", dom0NICs)] {
            var byBridge: [String: PCIAddress] = [:]
            for nic in nics {
                if let first = byBridge[nic.bridge] {
                    diagnostics.emit(.bridgeShared(nic.bridge, first: first, second: nic.pci, owner: owner, at: nic.source))
                } else {
                    byBridge[nic.bridge] = nic.pci
                }
            }
        }
        let guests = resolveGuests(iovms: iovms, dom0NICs: dom0NICs)
        checkNames(iovms: iovms, guests: guests)

        var domains: [DomainSpec] = []
        for iovm in iovms { domains.append(iovmSpec(iovm, backs: guests.filter { $0.backend == iovm.name }.map(\.document.name))) }
        var macs: [String: String] = [:]
        // A generated MAC steps aside for any MAC given in the document and for those generated before it.
        var taken = Set(guests.compactMap { $0.document.mac?.lowercased() })
        for guest in guests {
            let spec = guestSpec(guest, avoiding: taken)
            taken.formUnion(spec.vifs.map(\.mac))
            for vif in spec.vifs {
                if let other = macs[vif.mac], other != spec.name {  // a repeated name is reported already
                    diagnostics.emit(.duplicateMAC(spec.name, vif.mac, other: other, at: spec.source))
                }
                macs[vif.mac] = spec.name
            }
            domains.append(spec)
        }

        var cpupools: [CPUPoolSpec] = []
        if let host {
            checkResources(domains, host: host)
            cpupools = place(&domains, host: host, iovms: iovms, guests: guests)
            applyScheduler(&domains, cpupools: &cpupools, host: host)
        }
        if diagnostics.hasErrors || host == nil { throw .invalid(diagnostics.diagnostics) }

        let iovmNames = domains.filter { $0.role == .iovm }.map(\.name)
        let guestNames = domains.filter { $0.role == .guest }.map(\.name)
        return Plan(
            formatVersion: Plan.currentFormatVersion,
            topology: document.name,
            source: top,
            declaredConfiguration: document.configuration.kind,
            configuration: effectiveConfiguration(iovms: iovms),
            placement: document.placement.kind,
            host: host!,
            cpupools: cpupools,
            domains: domains,
            stages: [iovmNames, guestNames].filter { !$0.isEmpty },
            warnings: diagnostics.warnings)
    }

    // MARK: Host

    mutating func resolveHost() -> HostShape? {
        let declared = document.host
        let location = declared?.source ?? document.source
        guard let cores = hostOverride?.cores ?? declared?.cores else {
            diagnostics.emit(.noHostShape(at: location))
            return nil
        }
        guard cores >= 1 else {
            diagnostics.emit(.tooFewCores(cores, at: location))
            return nil
        }
        guard cores <= Planner.maximumCores else {
            diagnostics.emit(.tooManyCores(cores, at: location))
            return nil
        }
        let memory = hostOverride?.memoryMiB ?? declared?.memoryMiB
        if let memory, memory <= 0 { diagnostics.emit(.nonPositiveHostMemory(memory, at: location)) }
        if let memory, memory > Planner.maximumMemoryMiB { diagnostics.emit(.tooMuchMemory("the host", memory, at: location)) }
        let dom0Memory = hostOverride?.dom0MemoryMiB ?? declared?.dom0MemoryMiB
        if let dom0Memory, dom0Memory < 0 || dom0Memory > Planner.maximumMemoryMiB {
            diagnostics.emit(.dom0MemoryOutOfRange(dom0Memory, at: location))
        }
        let reserved = declared?.reservedCores ?? hostOverride?.reservedCores.cores ?? []
        for core in reserved where !(0..<cores).contains(core) {
            diagnostics.emit(.missingReservedCore(core, cores: cores, at: location))
        }
        if Set(reserved).count >= cores {
            diagnostics.emit(.allCoresReserved(cores, at: location))
        }
        // Pool-0's scheduler: what Xen runs when known, else what the topology asks for (as before).
        let scheduler = poolZeroScheduler ?? hostOverride?.scheduler ?? declared?.scheduler ?? "credit2"
        if let requested = declared?.scheduler {
            if !Planner.schedulers.contains(requested) { diagnostics.emit(.unknownScheduler(requested, at: location)) }
        } else if poolZeroScheduler == nil && !Planner.schedulers.contains(scheduler) {
            diagnostics.emit(.unknownScheduler(scheduler, at: location))
        }
        return HostShape(
            cores: cores, memoryMiB: memory,
            dom0MemoryMiB: hostOverride?.dom0MemoryMiB ?? declared?.dom0MemoryMiB,
            reservedCores: CPUSet(reserved.filter { (0..<cores).contains($0) }), scheduler: scheduler)
    }
}
