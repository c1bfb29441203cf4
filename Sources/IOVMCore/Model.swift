public import CPUSets
public import IOVMWireFormat

/// The IOVM configurations of the paper (Section 2.1) plus the centralized baseline.
public typealias ConfigurationKind = ConfigurationDocument.Kind
/// The core assignment schemes (Table 2, Sections 4.4-4.5).
public typealias PlacementKind = PlacementDocument.Kind

extension ConfigurationDocument.Kind {
    /// The paper's words for it.
    public var title: String {
        switch self {
        case .explicit: "explicit"
        case .centralized: "centralized (dom0)"
        case .monolithic: "Monolithic"
        case .multipleSmall: "Multiple Small IOVMs"
        case .hybrid: "Hybrid"
        }
    }
}

extension PlacementDocument.Kind {
    /// The paper's words for it.
    public var title: String {
        switch self {
        case .credit: "credit (unpinned)"
        case .coLocate: "co-locate"
        case .separate: "separate"
        case .iovmAffinity: "IOVM-affinity"
        case .hybridPinned: "hybrid pinning"
        }
    }
}

/// The host a plan is made for.
public struct HostShape: Sendable, Codable, Equatable {
    /// Physical cores.
    public var cores: Int
    /// Memory for domains in MiB, when known.
    public var memoryMiB: Int?
    /// dom0's memory in MiB, when known.
    public var dom0MemoryMiB: Int?
    /// Cores left to dom0.
    public var reservedCores: CPUSet
    /// Pool-0's scheduler.
    public var scheduler: String

    /// Creates a host shape.
    public init(
        cores: Int, memoryMiB: Int? = nil, dom0MemoryMiB: Int? = nil, reservedCores: CPUSet = [],
        scheduler: String = "credit2"
    ) {
        self.cores = cores
        self.memoryMiB = memoryMiB
        self.dom0MemoryMiB = dom0MemoryMiB
        self.reservedCores = reservedCores
        self.scheduler = scheduler
    }

    /// The paper's platform: two Core Duo processors, 4 cores.
    public static let paper = HostShape(cores: 4, memoryMiB: 6144, scheduler: "credit")
}

/// A NIC as placed in a domain: address, and the bridge that joins it to guests' vifs.
public struct PlacedNIC: Sendable, Codable, Equatable {
    /// PCI address.
    public var pci: PCIAddress
    /// Bridge in the owning domain.
    public var bridge: String
    /// Its driver as the topology declares it (`NIC(…, driver:)`); nil: read its PCI ids from sysfs.
    public var driver: String?
    /// Where it was declared.
    public var source: SourceLocation?
}

/// What a domain is in the topology.
public enum DomainRole: String, Sendable, Codable {
    /// A network driver domain.
    case iovm
    /// A guest whose vif an IOVM (or dom0) backs.
    case guest
}

/// A vif of a guest.
public struct VifSpec: Sendable, Codable, Equatable {
    /// Backend domain name; nil means dom0.
    public var backend: String?
    /// Bridge in the backend.
    public var bridge: String
    /// MAC address.
    public var mac: String
    /// PCI address of the NIC the bridge leads to, when known.
    public var nic: PCIAddress?
    /// Hotplug script the backend runs (`script=` in xl.cfg); nil means libxl's default (`vif-bridge`).
    public var script: String?

    /// iovm's own vif hotplug script (`Agents/iovm-vif`), the default for vifs an IOVM backs.
    public static let iovmScript = "iovm-vif"

    /// Creates a vif spec.
    public init(backend: String?, bridge: String, mac: String, nic: PCIAddress? = nil, script: String? = nil) {
        self.backend = backend
        self.bridge = bridge
        self.mac = mac
        self.nic = nic
        self.script = script
    }
}

/// An rtds (EDF) reservation of a domain: `budget` microseconds of CPU in every `period`.
public struct RTDSParameters: Sendable, Codable, Hashable, CustomStringConvertible {
    /// Period in microseconds.
    public var periodMicroseconds: Int
    /// Budget per period in microseconds.
    public var budgetMicroseconds: Int
    /// Whether the domain may run on idle time beyond its budget.
    public var extratime: Bool

    /// Xen's default reservation for a domain in an rtds pool: 4 ms every 10 ms, with extratime.
    public static let xenDefault = RTDSParameters(periodMicroseconds: 10_000, budgetMicroseconds: 4_000, extratime: true)

    /// Creates a reservation.
    public init(periodMicroseconds: Int, budgetMicroseconds: Int, extratime: Bool) {
        self.periodMicroseconds = periodMicroseconds
        self.budgetMicroseconds = budgetMicroseconds
        self.extratime = extratime
    }

    /// `period 10000 us, budget 4000 us, extratime`: how plan, status and logs write it.
    public var description: String {
        "period \(periodMicroseconds) us, budget \(budgetMicroseconds) us\(extratime ? ", extratime" : "")"
    }
}

/// A cpupool the plan needs.
public struct CPUPoolSpec: Sendable, Codable, Equatable {
    /// Pool name.
    public var name: String
    /// Scheduler (`credit`, `credit2`, `rtds`).
    public var scheduler: String
    /// Cores in the pool.
    public var cpus: CPUSet

    /// Creates a cpupool spec.
    public init(name: String, scheduler: String, cpus: CPUSet) {
        self.name = name
        self.scheduler = scheduler
        self.cpus = cpus
    }
}

/// The iovm image an IOVM boots, as the planner chose it and the image store resolved it.
public struct ImageUse: Sendable, Codable, Equatable {
    /// `minimal`.
    public var kind: String
    /// The NIC drivers it needs, once known (declared, or read from the host's PCI ids).
    public var nicDrivers: [String]?
    /// The image's content hash, once found in the store.
    public var hash: String?
    /// Why it could not be resolved (not built, a NIC whose driver is unknown), with the fix.
    public var problem: String?

    /// An image of `kind`, not resolved yet.
    public init(kind: String, nicDrivers: [String]? = nil, hash: String? = nil, problem: String? = nil) {
        self.kind = kind
        self.nicDrivers = nicDrivers
        self.hash = hash
        self.problem = problem
    }
}

/// Everything needed to create one domain, in xl.cfg's terms.
public struct DomainSpec: Sendable, Codable, Equatable {
    /// Domain name.
    public var name: String
    /// IOVM or guest.
    public var role: DomainRole
    /// Always `pv` for now.
    public var type: String
    /// Memory in MiB.
    public var memoryMiB: Int
    /// vCPUs.
    public var vcpus: Int
    /// PV kernel.
    public var kernel: String
    /// Initial ramdisk.
    public var ramdisk: String?
    /// Kernel command line.
    public var cmdline: String
    /// Virtual disks.
    public var disks: [DiskSpec]
    /// Whether `driver_domain=1` (IOVMs).
    public var driverDomain: Bool
    /// NICs passed through (IOVMs).
    public var nics: [PlacedNIC]
    /// Vifs (guests).
    public var vifs: [VifSpec]
    /// Hard affinity; nil means all cores.
    public var hardAffinity: CPUSet?
    /// Soft affinity; nil means none.
    public var softAffinity: CPUSet?
    /// cpupool.
    public var cpupool: String
    /// Credit weight.
    public var weight: Int
    /// Credit cap (percent of a pCPU; 0 = none).
    public var cap: Int
    /// Guests this IOVM backs.
    public var backs: [String]
    /// Where it was declared.
    public var source: SourceLocation?
    /// The iovm image it boots (IOVMs that name no kernel); `kernel` and `ramdisk` are its files once resolved.
    public var image: ImageUse? = nil
    /// Its rtds reservation, when its cpupool runs rtds; nil under credit and credit2 (``weight`` and ``cap`` apply).
    public var rtds: RTDSParameters? = nil

    /// PCI addresses passed through, in declaration order.
    public var pci: [PCIAddress] { nics.map(\.pci) }
}

/// A plan: what `apply` makes real.
public struct Plan: Sendable, Codable, Equatable {
    /// Version of this JSON format.
    public static let currentFormatVersion = 1
    /// Version of this JSON format.
    public var formatVersion: Int
    /// Topology name.
    public var topology: String
    /// Where the topology was declared.
    public var source: SourceLocation?
    /// The configuration as the file declared it.
    public var declaredConfiguration: ConfigurationKind
    /// The configuration the IOVMs form (for `explicit`, recognized from their shape).
    public var configuration: ConfigurationKind
    /// The core assignment scheme.
    public var placement: PlacementKind
    /// The host it was planned for.
    public var host: HostShape
    /// cpupools to create before the domains.
    public var cpupools: [CPUPoolSpec]
    /// Domains, IOVMs first, in declaration order.
    public var domains: [DomainSpec]
    /// IOVMs, then guests: a coarse grouping kept in plan.json for its readers. apply does not wait
    /// stage by stage; it follows ``creationDependencies``.
    public var stages: [[String]]
    /// Warnings found while planning.
    public var warnings: [Diagnostic]

    /// The domain named `name`.
    public func domain(_ name: String) -> DomainSpec? { domains.first { $0.name == name } }
    /// The IOVMs.
    public var iovms: [DomainSpec] { domains.filter { $0.role == .iovm } }
    /// The guests.
    public var guests: [DomainSpec] { domains.filter { $0.role == .guest } }
    /// The scheduler `domain` runs under: its planned cpupool's, or Pool-0's (``HostShape/scheduler``).
    public func scheduler(of domain: DomainSpec) -> String {
        cpupools.first { $0.name == domain.cpupool }?.scheduler ?? host.scheduler
    }

    /// What each domain waits for before it is created: the planned IOVMs that back its vifs
    /// (dom0-backed vifs wait for nothing). Apply starts every domain at once and each as soon as
    /// these are ready; ``stages`` is only the coarse IOVMs-then-guests grouping of the same graph.
    public var creationDependencies: [String: [String]] {
        let planned = Set(domains.map(\.name))
        return Dictionary(
            uniqueKeysWithValues: domains.map { domain in
                (domain.name, Set(domain.vifs.compactMap(\.backend)).intersection(planned).subtracting([domain.name]).sorted())
            })
    }
}

extension ImageUse {
    /// One line for plan and render: `minimal image 3f2a… (e1000)`, or what is missing.
    public var summary: String {
        let drivers = nicDrivers.map { " for \($0.isEmpty ? "no NIC" : $0.joined(separator: "+"))" } ?? ""
        if let hash { return "\(kind) image \(hash)\(drivers)" }
        return "\(kind) image\(drivers), not resolved: \(problem ?? "no image store consulted")"
    }
}

extension Plan {
    /// IOVMs whose image could not be resolved, with why: apply and render refuse while there are any.
    public var unresolvedImages: [(domain: String, problem: String)] {
        domains.compactMap { domain in
            guard let image = domain.image, image.hash == nil else { return nil }
            return (domain.name, image.problem ?? "\(image.kind) image not resolved")
        }
    }
}
