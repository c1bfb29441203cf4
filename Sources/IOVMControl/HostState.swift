public import CPUSets
public import IOVMCore

/// What iovm writes next to each domain it creates, so that it never touches one it did not.
///
/// The real backend keeps it in dom0's own xenstore subtree (`/local/domain/0/iovm/managed/<domid>`),
/// which guests cannot write, and checks the domain's UUID so a reused domid is not mistaken for ours.
public struct ManagedTag: Sendable, Codable, Equatable {
    /// Topology that created the domain.
    public var topology: String
    /// Domain name in the plan.
    public var name: String
    /// IOVM or guest.
    public var role: DomainRole
    /// The domain's UUID at creation.
    public var uuid: String
    /// Fingerprint of what can only change by recreating the domain (kernel, memory, vCPUs, NICs, vifs).
    public var specFingerprint: String
    /// True when the domain is known only from the intent iovm recorded before creating it: an apply
    /// stopped between creating and tagging it, so it may be paused or half set up.
    public var incomplete: Bool?

    /// Creates a tag.
    public init(topology: String, name: String, role: DomainRole, uuid: String, specFingerprint: String, incomplete: Bool? = nil) {
        self.topology = topology
        self.name = name
        self.role = role
        self.uuid = uuid
        self.specFingerprint = specFingerprint
        self.incomplete = incomplete
    }
}

/// A running domain as the backend sees it.
public struct ObservedDomain: Sendable, Codable, Equatable {
    /// Domain id.
    public var domid: UInt32
    /// Name.
    public var name: String
    /// UUID.
    public var uuid: String
    /// Number of vCPUs.
    public var vcpus: Int
    /// Hard affinity per vCPU (an entry equal to all cores means unpinned).
    public var hardAffinity: [CPUSet]
    /// Credit weight, if the scheduler has one.
    public var weight: Int?
    /// Credit cap, if the scheduler has one.
    public var cap: Int?
    /// cpupool name.
    public var cpupool: String
    /// PCI devices passed through to it.
    public var pci: [PCIAddress]
    /// iovm's tag, if iovm created it.
    public var tag: ManagedTag?
    /// Its vifs (frontends) and the state of each one's backend; nil when not read.
    public var vifs: [ObservedVif]?
    /// Its rtds reservation, when its cpupool runs rtds and all its vCPUs have the same.
    public var rtds: RTDSParameters?
    /// Each vCPU's rtds reservation, vCPU 0 first, when its cpupool runs rtds and the backend read them; empty
    /// otherwise. They differ only when someone set one vCPU's (`xl sched-rtds -v`); ``rtds`` is then nil.
    public var rtdsByVCPU: [RTDSParameters]
    /// Why it shut down (`crash`, `poweroff`, `reboot`, …, or `dying`) when it no longer runs but is still
    /// listed; nil while it runs. Nothing restarts a domain libxl created (no `xl create` process watches it).
    public var shutdownReason: String?
    /// Whether it is paused (`xl pause`, `xl restore -p`, a creation not finished): it runs no vCPU, so an IOVM serves
    /// no vif and a guest's vifs do not connect, until someone unpauses it. nil when the backend did not say.
    public var paused: Bool?

    /// Creates an observation.
    public init(
        domid: UInt32, name: String, uuid: String, vcpus: Int, hardAffinity: [CPUSet], weight: Int?, cap: Int?,
        cpupool: String, pci: [PCIAddress] = [], tag: ManagedTag? = nil, vifs: [ObservedVif]? = nil, rtds: RTDSParameters? = nil,
        rtdsByVCPU: [RTDSParameters] = [], shutdownReason: String? = nil, paused: Bool? = nil
    ) {
        self.domid = domid
        self.name = name
        self.uuid = uuid
        self.vcpus = vcpus
        self.hardAffinity = hardAffinity
        self.weight = weight
        self.cap = cap
        self.cpupool = cpupool
        self.pci = pci
        self.tag = tag
        self.vifs = vifs
        self.rtds = rtds
        self.rtdsByVCPU = rtdsByVCPU
        self.shutdownReason = shutdownReason
        self.paused = paused
    }

    /// Whether iovm created it for `topology`: its tag names the topology and its UUID (a reused name or
    /// domid is not iovm's).
    public func isManaged(by topology: String) -> Bool {
        guard let tag else { return false }
        return tag.topology == topology && tag.uuid == uuid
    }
}

/// A cpupool as the backend sees it.
public struct ObservedPool: Sendable, Codable, Equatable {
    /// Name.
    public var name: String
    /// Scheduler.
    public var scheduler: String
    /// Cores.
    public var cpus: CPUSet
    /// Whether iovm created it (recorded like domain tags).
    public var managedBy: String?

    /// Creates an observation.
    public init(name: String, scheduler: String, cpus: CPUSet, managedBy: String? = nil) {
        self.name = name
        self.scheduler = scheduler
        self.cpus = cpus
        self.managedBy = managedBy
    }
}

/// What a PCI device is bound to in dom0, so `destroy` and rollback can put it back.
public struct NICBinding: Sendable, Codable, Equatable {
    /// The device.
    public var pci: PCIAddress
    /// Whether it is assignable (bound to pciback).
    public var assignable: Bool
    /// Driver it was bound to before iovm made it assignable, when iovm did (recorded by the backend).
    public var previousDriver: String?
    /// Whether iovm made it assignable.
    public var madeAssignableByIOVM: Bool
    /// The driver bound to it now (`e1000`, `pciback`), nil when none (when the backend reads it).
    public var driver: String?
    /// The topology whose apply made it assignable; nil when iovm did not, or when an older iovm did (its mark has
    /// no topology).
    public var madeAssignableFor: String?

    /// Creates a binding.
    public init(
        pci: PCIAddress, assignable: Bool, previousDriver: String? = nil, madeAssignableByIOVM: Bool = false, driver: String? = nil,
        madeAssignableFor: String? = nil
    ) {
        self.pci = pci
        self.assignable = assignable
        self.previousDriver = previousDriver
        self.madeAssignableByIOVM = madeAssignableByIOVM
        self.driver = driver
        self.madeAssignableFor = madeAssignableFor
    }
}

/// The whole host as the backend sees it.
public struct ObservedHost: Sendable, Codable, Equatable {
    /// Physical cores.
    public var cores: Int
    /// Pool-0's scheduler.
    public var scheduler: String
    /// Running domains, dom0 included.
    public var domains: [ObservedDomain]
    /// cpupools.
    public var pools: [ObservedPool]
    /// The NICs the plan names, as bound now; a NIC missing here does not exist on the host.
    public var nics: [NICBinding]
    /// dom0's bridges the plan's vifs use and the interfaces of their NICs (``Dom0Network``); nil when not
    /// observed (then apply assumes the bridges exist, and changes none).
    public var dom0Network: ObservedDom0Network?
    /// The ``IOVMCore/Plan/appliedFingerprint`` of the plan last applied whole, by topology (``XenBackend/recordApplied(topology:fingerprint:)``);
    /// a topology without one was applied by an iovm that did not record it, or not at all.
    public var applied: [String: String]
    /// The tags of domains that vanished without iovm destroying them (`xl save`, `xl destroy`), each iovm's again if
    /// it comes back with its UUID and name (`xl restore`); nil when not read.
    public var parked: [ManagedTag]?

    /// What ``applied`` holds for a topology whose destroy began (and did not finish): nothing of it is made again.
    public static let destroyingMark = "destroying"

    /// Creates an observation.
    public init(
        cores: Int, scheduler: String, domains: [ObservedDomain], pools: [ObservedPool], nics: [NICBinding], dom0Network: ObservedDom0Network? = nil,
        applied: [String: String] = [:], parked: [ManagedTag]? = nil
    ) {
        self.parked = parked
        self.cores = cores
        self.scheduler = scheduler
        self.domains = domains
        self.pools = pools
        self.nics = nics
        self.dom0Network = dom0Network
        self.applied = applied
    }

    /// The domain named `name`.
    public func domain(_ name: String) -> ObservedDomain? { domains.first { $0.name == name } }
}

extension ObservedHost {
    /// The topology other than `topology` that made `nic` assignable and is applied (its record is there, and is not a
    /// destroy in progress): its IOVM is to have the NIC, dead or not, and its destroy gives it back. nil otherwise, and
    /// for a mark of an older iovm, which names no topology (a libvirt host records no applied plan: nil there too).
    public func otherAppliedOwner(of nic: NICBinding, than topology: String) -> String? {
        guard let owner = nic.madeAssignableFor, owner != topology, let record = applied[owner], record != Self.destroyingMark else { return nil }
        return owner
    }

    /// The scheduler each of `names` runs under, as observed (all domains but dom0 when nil); a name
    /// not running is left out.
    public func schedulerReading(of names: [String]? = nil) -> SchedulerReading {
        let chosen: [ObservedDomain]
        if let names {
            chosen = names.compactMap { name in domains.first { $0.name == name } }
        } else {
            chosen = domains.filter { $0.domid != 0 }
        }
        let entries = chosen.map { observed -> SchedulerReading.DomainScheduler in
            let pool = pools.first { $0.name == observed.cpupool }
            let running = pool?.scheduler ?? (observed.cpupool == "Pool-0" ? scheduler : "unknown")
            return SchedulerReading.DomainScheduler(domain: observed.name, pool: observed.cpupool, scheduler: running)
        }
        return SchedulerReading(poolZero: scheduler, domains: entries)
    }
}
