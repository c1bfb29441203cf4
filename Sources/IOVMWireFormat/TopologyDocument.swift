/// The versioned JSON wire format between a topology file and the iovm tool.
///
/// A topology file written with the `IOVMDescription` DSL serializes itself into a
/// ``TopologyDocument``; the tool decodes it, validates it and plans from it. The
/// document is also what `iovm synth` prints and what a host without a Swift
/// toolchain (a dom0) accepts with `--topology-json`. The DSL's public types are
/// deliberately separate from these, as PackageDescription is from SwiftPM's
/// manifest JSON: either side may evolve as long as the schema version says so.
public struct TopologyDocument: Codable, Sendable, Equatable {
    /// The schema version this build writes and reads.
    public static let currentSchemaVersion = 1

    /// Schema version of this document.
    public var schemaVersion: Int
    /// Topology name (used in logs, tags and reports).
    public var name: String
    /// Where the topology was declared.
    public var source: SourceLocation?
    /// The host the topology is meant for, if the file says so.
    public var host: HostDocument?
    /// Defaults applied to every domain that does not override them.
    public var defaults: DefaultsDocument?
    /// The IOVM configuration of the paper (Section 2.1), or `explicit`.
    public var configuration: ConfigurationDocument
    /// IOVMs declared one by one (explicit configuration).
    public var iovms: [IOVMDocument]
    /// Physical NICs not owned by a declared IOVM, for a configuration generator to distribute.
    public var nics: [NICDocument]
    /// Guest domains whose vifs an IOVM (or dom0) backs.
    public var guests: [GuestDocument]
    /// Core assignment scheme (paper Table 2 and Section 4.4-4.5).
    public var placement: PlacementDocument
    /// Credit scheduler weights and caps.
    public var scheduling: SchedulingDocument?
    /// The named hosts of a topology that spans several (`Host("xen-a", connect: …)`), in declaration order;
    /// nil or empty for a single-host topology. Each NIC, IOVM and guest names one (`host:`).
    public var hosts: [HostDocument]?

    /// Creates a document; every collection defaults to empty.
    public init(
        schemaVersion: Int = TopologyDocument.currentSchemaVersion,
        name: String,
        source: SourceLocation? = nil,
        host: HostDocument? = nil,
        defaults: DefaultsDocument? = nil,
        configuration: ConfigurationDocument = .init(kind: .explicit),
        iovms: [IOVMDocument] = [],
        nics: [NICDocument] = [],
        guests: [GuestDocument] = [],
        placement: PlacementDocument = .init(kind: .credit),
        scheduling: SchedulingDocument? = nil,
        hosts: [HostDocument]? = nil
    ) {
        self.hosts = hosts
        self.schemaVersion = schemaVersion
        self.name = name
        self.source = source
        self.host = host
        self.defaults = defaults
        self.configuration = configuration
        self.iovms = iovms
        self.nics = nics
        self.guests = guests
        self.placement = placement
        self.scheduling = scheduling
    }
}

/// A place in a topology file: what every diagnostic points at.
public struct SourceLocation: Codable, Sendable, Hashable, CustomStringConvertible {
    /// Path of the file.
    public var file: String
    /// 1-based line.
    public var line: Int

    /// Creates a location.
    public init(file: String, line: Int) {
        self.file = file
        self.line = line
    }

    /// `file:line`, the form compilers and editors understand.
    public var description: String { "\(file):\(line)" }
}

/// The physical host a topology targets.
public struct HostDocument: Codable, Sendable, Equatable {
    /// Physical cores (pCPUs) Xen schedules on.
    public var cores: Int?
    /// Memory available to domains, in MiB.
    public var memoryMiB: Int?
    /// Memory dom0 keeps, in MiB.
    public var dom0MemoryMiB: Int?
    /// Cores left to dom0: placement never pins an iovm domain there.
    public var reservedCores: [Int]?
    /// The scheduler the topology's domains run under (`credit`, `credit2`, `rtds`); when Pool-0 runs
    /// another, they go into a cpupool with this one.
    public var scheduler: String?
    /// Name of that cpupool (default `iovm-<scheduler>`); absent in documents written before it existed.
    public var schedulerPool: String?
    /// The host's name in a topology that spans several hosts (`Host("xen-a", …)`); nil for the one host of a
    /// single-host topology.
    public var name: String?
    /// The libvirt URI iovm drives the host through (`xen+ssh://root@a/system`); nil: libxl in the local dom0.
    public var connect: String?
    /// Where it was declared.
    public var source: SourceLocation?

    /// Creates a host description.
    public init(
        cores: Int? = nil, memoryMiB: Int? = nil, dom0MemoryMiB: Int? = nil,
        reservedCores: [Int]? = nil, scheduler: String? = nil, schedulerPool: String? = nil, name: String? = nil, connect: String? = nil,
        source: SourceLocation? = nil
    ) {
        self.name = name
        self.connect = connect
        self.cores = cores
        self.memoryMiB = memoryMiB
        self.dom0MemoryMiB = dom0MemoryMiB
        self.reservedCores = reservedCores
        self.scheduler = scheduler
        self.schedulerPool = schedulerPool
        self.source = source
    }
}

/// Defaults for domains (kernel, memory, ...).
public struct DefaultsDocument: Codable, Sendable, Equatable {
    /// PV kernel for IOVMs and guests (an uncompressed vmlinux loads fastest).
    public var kernel: String?
    /// Initial ramdisk.
    public var ramdisk: String?
    /// Kernel command line for guests.
    public var cmdline: String?
    /// PV kernel for IOVMs, when it differs from `kernel` (e.g. the minimal IOVM kernel).
    public var iovmKernel: String?
    /// Initial ramdisk for IOVMs.
    public var iovmRamdisk: String?
    /// Kernel command line for IOVMs.
    public var iovmCmdline: String?
    /// The image IOVMs boot when they name no kernel: `minimal` (iovm's own, `iovm image build`).
    public var iovmImage: String?
    /// Memory of each IOVM in MiB (paper: 256).
    public var iovmMemoryMiB: Int?
    /// Memory of each guest in MiB (paper: 256).
    public var guestMemoryMiB: Int?
    /// vCPUs of each IOVM (paper: 1, uniprocessor kernel).
    public var iovmVCPUs: Int?
    /// vCPUs of each guest.
    public var guestVCPUs: Int?
    /// Disks of each IOVM (xl positional syntax), e.g. a read-only root with `xl devd`.
    public var iovmDisks: [String]?
    /// Disks of each guest.
    public var guestDisks: [String]?
    /// The vif hotplug script IOVMs run for their guests' vifs (a name in `/etc/xen/scripts` or an
    /// absolute path in the IOVM); absent means iovm's own `iovm-vif`.
    public var vifScript: String?
    /// Where it was declared.
    public var source: SourceLocation?

    /// Creates defaults.
    public init(
        kernel: String? = nil, ramdisk: String? = nil, cmdline: String? = nil,
        iovmKernel: String? = nil, iovmRamdisk: String? = nil, iovmCmdline: String? = nil, iovmImage: String? = nil,
        iovmMemoryMiB: Int? = nil, guestMemoryMiB: Int? = nil,
        iovmVCPUs: Int? = nil, guestVCPUs: Int? = nil, iovmDisks: [String]? = nil, guestDisks: [String]? = nil,
        vifScript: String? = nil, source: SourceLocation? = nil
    ) {
        self.kernel = kernel
        self.ramdisk = ramdisk
        self.cmdline = cmdline
        self.iovmKernel = iovmKernel
        self.iovmRamdisk = iovmRamdisk
        self.iovmCmdline = iovmCmdline
        self.iovmImage = iovmImage
        self.iovmMemoryMiB = iovmMemoryMiB
        self.guestMemoryMiB = guestMemoryMiB
        self.iovmVCPUs = iovmVCPUs
        self.guestVCPUs = guestVCPUs
        self.iovmDisks = iovmDisks
        self.guestDisks = guestDisks
        self.vifScript = vifScript
        self.source = source
    }
}

/// Which of the paper's IOVM configurations (Section 2.1) the topology uses.
public struct ConfigurationDocument: Codable, Sendable, Equatable {
    /// The configuration's kind.
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// IOVMs are declared one by one.
        case explicit
        /// dom0 is the one driver domain (the paper's baseline, Fig. 1).
        case centralized
        /// All NICs in one IOVM (Fig. 3).
        case monolithic
        /// One IOVM per NIC (Fig. 4).
        case multipleSmall
        /// IOVMs each own a subset of the NICs (Fig. 5).
        case hybrid
    }
    /// The kind.
    public var kind: Kind
    /// Number of IOVMs for `hybrid`.
    public var groups: Int?
    /// Where it was declared.
    public var source: SourceLocation?

    /// Creates a configuration entry.
    public init(kind: Kind, groups: Int? = nil, source: SourceLocation? = nil) {
        self.kind = kind
        self.groups = groups
        self.source = source
    }
}

/// A physical NIC, named by its PCI address.
public struct NICDocument: Codable, Sendable, Equatable {
    /// PCI address, `DDDD:BB:DD.F`.
    public var pci: String
    /// Bridge inside the IOVM that joins this NIC and the vifs of its guests.
    public var bridge: String?
    /// The Linux driver of this NIC (`e1000`, `e1000e`, `igb`, `ixgbe`, `virtio`), for building the IOVM
    /// kernel where the NIC is not present to be asked.
    public var driver: String?
    /// The named host it is in (multi-host topologies).
    public var host: String?
    /// Where it was declared.
    public var source: SourceLocation?

    /// Creates a NIC entry.
    public init(pci: String, bridge: String? = nil, driver: String? = nil, host: String? = nil, source: SourceLocation? = nil) {
        self.host = host
        self.pci = pci
        self.bridge = bridge
        self.driver = driver
        self.source = source
    }
}

/// Fields every domain has.
public struct DomainResources: Codable, Sendable, Equatable {
    /// Memory in MiB.
    public var memoryMiB: Int?
    /// Number of vCPUs.
    public var vcpus: Int?
    /// PV kernel path (in dom0).
    public var kernel: String?
    /// Initial ramdisk path.
    public var ramdisk: String?
    /// Kernel command line.
    public var cmdline: String?
    /// Credit scheduler weight.
    public var weight: Int?
    /// Credit scheduler cap (percent of one pCPU, 0 = none).
    public var cap: Int?
    /// Explicit hard affinity, overriding the placement scheme.
    public var cpus: [Int]?
    /// Disks in xl's positional syntax (`phy:/dev/vdb,xvda,r`), replacing the defaults' disks.
    public var disks: [String]?

    /// Creates a resource set.
    public init(
        memoryMiB: Int? = nil, vcpus: Int? = nil, kernel: String? = nil, ramdisk: String? = nil,
        cmdline: String? = nil, weight: Int? = nil, cap: Int? = nil, cpus: [Int]? = nil, disks: [String]? = nil
    ) {
        self.memoryMiB = memoryMiB
        self.vcpus = vcpus
        self.kernel = kernel
        self.ramdisk = ramdisk
        self.cmdline = cmdline
        self.weight = weight
        self.cap = cap
        self.cpus = cpus
        self.disks = disks
    }
}

/// An IOVM: a driver domain owning physical NICs and backing guests' vifs.
public struct IOVMDocument: Codable, Sendable, Equatable {
    /// Domain name.
    public var name: String
    /// Memory, vCPUs, kernel, scheduling.
    public var resources: DomainResources
    /// The NICs it owns (passed through by PCI).
    public var nics: [NICDocument]
    /// The named host it runs on (multi-host topologies).
    public var host: String?
    /// Where it was declared.
    public var source: SourceLocation?

    /// Creates an IOVM entry.
    public init(name: String, resources: DomainResources = .init(), nics: [NICDocument] = [], host: String? = nil, source: SourceLocation? = nil) {
        self.host = host
        self.name = name
        self.resources = resources
        self.nics = nics
        self.source = source
    }
}

/// A guest domain whose network traffic goes through an IOVM.
public struct GuestDocument: Codable, Sendable, Equatable {
    /// Domain name.
    public var name: String
    /// Memory, vCPUs, kernel, scheduling.
    public var resources: DomainResources
    /// Name of the IOVM that backs its vif (`Domain-0` for dom0).
    public var backend: String?
    /// PCI address of the NIC its traffic leaves by; picks the IOVM in generated configurations.
    public var nic: String?
    /// Bridge its vif joins in the backend.
    public var bridge: String?
    /// MAC address of its vif.
    public var mac: String?
    /// The named host it runs on (multi-host topologies).
    public var host: String?
    /// Where it was declared.
    public var source: SourceLocation?

    /// Creates a guest entry.
    public init(
        name: String, resources: DomainResources = .init(), backend: String? = nil, nic: String? = nil,
        bridge: String? = nil, mac: String? = nil, host: String? = nil, source: SourceLocation? = nil
    ) {
        self.host = host
        self.name = name
        self.resources = resources
        self.backend = backend
        self.nic = nic
        self.bridge = bridge
        self.mac = mac
        self.source = source
    }
}

/// The core assignment scheme.
public struct PlacementDocument: Codable, Sendable, Equatable {
    /// The scheme's kind.
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// Nothing pinned: the credit scheduler balances everything (Section 4.4).
        case credit
        /// Each guest on its IOVM's core (Table 2).
        case coLocate
        /// Each guest on a core of a different IOVM (Table 2).
        case separate
        /// All IOVMs on one core, guests on the others (Table 2).
        case iovmAffinity
        /// Each IOVM pinned to its own core, guests scheduled on the rest (Section 4.5, Table 3).
        case hybridPinned
    }
    /// The kind.
    public var kind: Kind
    /// For `iovmAffinity`: put the IOVMs' core in a dedicated cpupool.
    public var dedicatedPool: Bool?
    /// Name of that cpupool.
    public var poolName: String?
    /// Where it was declared.
    public var source: SourceLocation?

    /// Creates a placement entry.
    public init(kind: Kind, dedicatedPool: Bool? = nil, poolName: String? = nil, source: SourceLocation? = nil) {
        self.kind = kind
        self.dedicatedPool = dedicatedPool
        self.poolName = poolName
        self.source = source
    }
}

/// Scheduler parameters for the two roles: credit's weights and caps, or rtds' reservations.
public struct SchedulingDocument: Codable, Sendable, Equatable {
    /// Weight of each IOVM (credit default 256).
    public var iovmWeight: Int?
    /// Cap of each IOVM in percent of a pCPU (0 = none).
    public var iovmCap: Int?
    /// Weight of each guest.
    public var guestWeight: Int?
    /// Cap of each guest.
    public var guestCap: Int?
    /// rtds reservation of each IOVM; absent in documents written before rtds.
    public var iovmRTDS: RTDSDocument?
    /// rtds reservation of each guest; absent in documents written before rtds.
    public var guestRTDS: RTDSDocument?
    /// Where it was declared.
    public var source: SourceLocation?

    /// Creates scheduling parameters.
    public init(
        iovmWeight: Int? = nil, iovmCap: Int? = nil, guestWeight: Int? = nil, guestCap: Int? = nil,
        iovmRTDS: RTDSDocument? = nil, guestRTDS: RTDSDocument? = nil, source: SourceLocation? = nil
    ) {
        self.iovmWeight = iovmWeight
        self.iovmCap = iovmCap
        self.guestWeight = guestWeight
        self.guestCap = guestCap
        self.iovmRTDS = iovmRTDS
        self.guestRTDS = guestRTDS
        self.source = source
    }
}

/// An rtds (EDF) reservation: `budget` microseconds of CPU in every `period`.
public struct RTDSDocument: Codable, Sendable, Equatable {
    /// The period in microseconds.
    public var periodMicroseconds: Int
    /// The budget per period in microseconds (at most the period).
    public var budgetMicroseconds: Int
    /// Whether the domain may run beyond its budget when a core is idle (Xen's default: yes).
    public var extratime: Bool?

    /// Creates a reservation.
    public init(periodMicroseconds: Int, budgetMicroseconds: Int, extratime: Bool? = nil) {
        self.periodMicroseconds = periodMicroseconds
        self.budgetMicroseconds = budgetMicroseconds
        self.extratime = extratime
    }
}
