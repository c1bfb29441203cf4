/// The versioned JSON document of an experiment (issue 12), between an experiment file and the tool.
///
/// An experiment file written with the `IOVMDescription` DSL (`Experiment("…") { Base(…); Vary(…); … }`)
/// serializes itself into an ``ExperimentDocument``, as a topology file does into a ``TopologyDocument``;
/// the base topology travels inside it as its own ``TopologyDocument``. The DSL's public types stay
/// separate from these, so either side may change as long as the schema version says so.
public struct ExperimentDocument: Codable, Sendable, Equatable {
    /// The schema version this build writes and reads.
    public static let currentSchemaVersion = 1
    /// The value of ``kind``: what tells an experiment document from a topology document.
    public static let kindName = "experiment"

    /// Schema version of this document.
    public var schemaVersion: Int
    /// Always ``kindName``.
    public var kind: String
    /// Name of the experiment (seeds its cell order, names its results).
    public var name: String
    /// Where the experiment was declared.
    public var source: SourceLocation?
    /// The topology every cell starts from.
    public var base: BaseDocument?
    /// The factors to vary, in declaration order; the cells are their cross product.
    public var factors: [FactorDocument]
    /// The traffic directions each combination is measured in (absent: Rx and Tx).
    public var directions: DirectionsDocument?
    /// What runs in each cell (absent: iperf3 with the paper's settings).
    public var workload: WorkloadDocument?
    /// How long each cell runs and how often the whole set is repeated (absent: the defaults).
    public var timing: TimingDocument?

    /// Creates a document.
    public init(
        schemaVersion: Int = ExperimentDocument.currentSchemaVersion, name: String, source: SourceLocation? = nil,
        base: BaseDocument? = nil, factors: [FactorDocument] = [], directions: DirectionsDocument? = nil,
        workload: WorkloadDocument? = nil, timing: TimingDocument? = nil
    ) {
        self.schemaVersion = schemaVersion
        self.kind = ExperimentDocument.kindName
        self.name = name
        self.source = source
        self.base = base
        self.factors = factors
        self.directions = directions
        self.workload = workload
        self.timing = timing
    }
}

/// The base topology of an experiment.
public struct BaseDocument: Codable, Sendable, Equatable {
    /// The topology, as its own file would write it.
    public var topology: TopologyDocument
    /// Where `Base(…)` was written.
    public var source: SourceLocation?

    /// Creates a base.
    public init(topology: TopologyDocument, source: SourceLocation? = nil) {
        self.topology = topology
        self.source = source
    }
}

/// One factor to vary and its values.
public struct FactorDocument: Codable, Sendable, Equatable {
    /// What the factor varies.
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// The IOVM configuration (paper Section 2.1).
        case configuration
        /// The core assignment scheme (Table 2, Sections 4.4-4.5).
        case placement
        /// The scheduler the domains run under (Section 4.4).
        case scheduler
        /// How many of the base's NICs (and the guests using them) take part: the paper's "number of NICs".
        case nicCount
        /// What the IOVMs boot: the minimal image or a stock kernel (Section 3).
        case iovmImage
        /// Credit weights and caps.
        case weights
        /// Named variants, each setting several of the above together (Table 3's rows).
        case variants
    }
    /// What it varies.
    public var kind: Kind
    /// Its values, in declaration order.
    public var values: [FactorValueDocument]
    /// Where `Vary(…)` was written.
    public var source: SourceLocation?

    /// Creates a factor.
    public init(kind: Kind, values: [FactorValueDocument], source: SourceLocation? = nil) {
        self.kind = kind
        self.values = values
        self.source = source
    }
}

/// One value of a factor: what it sets in the base topology. A plain factor's value sets the one field of
/// its kind; a variant sets any of them and has a label.
public struct FactorValueDocument: Codable, Sendable, Equatable {
    /// The variant's name (variants only).
    public var label: String?
    /// The configuration the cell uses.
    public var configuration: ConfigurationDocument?
    /// The placement the cell uses.
    public var placement: PlacementDocument?
    /// The scheduler the cell's domains run under.
    public var scheduler: SchedulerDocument?
    /// How many of the base's NICs the cell uses.
    public var nicCount: Int?
    /// What the cell's IOVMs boot.
    public var iovmImage: IOVMImageDocument?
    /// The cell's credit weights and caps.
    public var weights: WeightsDocument?
    /// Where the value was written.
    public var source: SourceLocation?

    /// Creates a value.
    public init(
        label: String? = nil, configuration: ConfigurationDocument? = nil, placement: PlacementDocument? = nil,
        scheduler: SchedulerDocument? = nil, nicCount: Int? = nil, iovmImage: IOVMImageDocument? = nil,
        weights: WeightsDocument? = nil, source: SourceLocation? = nil
    ) {
        self.label = label
        self.configuration = configuration
        self.placement = placement
        self.scheduler = scheduler
        self.nicCount = nicCount
        self.iovmImage = iovmImage
        self.weights = weights
        self.source = source
    }
}

/// A scheduler for the domains of a cell, with rtds reservations when it is rtds.
public struct SchedulerDocument: Codable, Sendable, Equatable {
    /// `credit`, `credit2`, `rtds` or `null`, as `Host(scheduler:)` takes it.
    public var name: String
    /// rtds reservation of each IOVM (rtds only; absent keeps the base's, or Xen's default).
    public var iovmRTDS: RTDSDocument?
    /// rtds reservation of each guest.
    public var guestRTDS: RTDSDocument?

    /// Creates a scheduler entry.
    public init(name: String, iovmRTDS: RTDSDocument? = nil, guestRTDS: RTDSDocument? = nil) {
        self.name = name
        self.iovmRTDS = iovmRTDS
        self.guestRTDS = guestRTDS
    }
}

/// What the IOVMs of a cell boot.
public struct IOVMImageDocument: Codable, Sendable, Equatable {
    /// How cells and results name it: `minimal`, `stock`.
    public var label: String
    /// An iovm image (`minimal`); absent for a kernel of the operator's own.
    public var image: String?
    /// The IOVMs' kernel (a stock kernel) in dom0's file system.
    public var kernel: String?
    /// Its initial ramdisk.
    public var ramdisk: String?
    /// The IOVMs' kernel command line.
    public var cmdline: String?
    /// The IOVMs' disks in xl's syntax (a stock IOVM boots from one).
    public var disks: [String]?
    /// Memory of each IOVM in MiB (absent keeps the base's).
    public var memoryMiB: Int?

    /// Creates an image entry.
    public init(
        label: String, image: String? = nil, kernel: String? = nil, ramdisk: String? = nil, cmdline: String? = nil,
        disks: [String]? = nil, memoryMiB: Int? = nil
    ) {
        self.label = label
        self.image = image
        self.kernel = kernel
        self.ramdisk = ramdisk
        self.cmdline = cmdline
        self.disks = disks
        self.memoryMiB = memoryMiB
    }
}

/// Credit weights and caps of a cell; an absent field is credit's default (weight 256, no cap).
public struct WeightsDocument: Codable, Sendable, Equatable {
    /// Weight of each IOVM.
    public var iovmWeight: Int?
    /// Cap of each IOVM in percent of a pCPU.
    public var iovmCap: Int?
    /// Weight of each guest.
    public var guestWeight: Int?
    /// Cap of each guest.
    public var guestCap: Int?

    /// Creates weights.
    public init(iovmWeight: Int? = nil, iovmCap: Int? = nil, guestWeight: Int? = nil, guestCap: Int? = nil) {
        self.iovmWeight = iovmWeight
        self.iovmCap = iovmCap
        self.guestWeight = guestWeight
        self.guestCap = guestCap
    }
}

/// A direction traffic is measured in (paper Section 4.1).
public enum TrafficDirection: String, Codable, Sendable, CaseIterable {
    /// From the client to the guest (receive).
    case rx
    /// From the guest to the client (transmit).
    case tx
    /// Both at once.
    case both
}

/// The directions of an experiment.
public struct DirectionsDocument: Codable, Sendable, Equatable {
    /// The directions, in declaration order.
    public var directions: [TrafficDirection]
    /// Where `Directions(…)` was written.
    public var source: SourceLocation?

    /// Creates a directions entry.
    public init(directions: [TrafficDirection], source: SourceLocation? = nil) {
        self.directions = directions
        self.source = source
    }
}

/// What runs in each cell.
public struct WorkloadDocument: Codable, Sendable, Equatable {
    /// iperf3 streams per client in the paper: "4 TCP connections between each guest OS and the corresponding client".
    public static let paperParallel = 4
    /// Bytes per write in the paper: "The connections are all transmitting 1024 byte buffers".
    public static let paperLength = 1024
    /// The workload's kind.
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// iperf3, one client per NIC (paper Section 4.1).
        case iperf3
        /// A command of the user's, from a template.
        case command
    }
    /// The kind.
    public var kind: Kind
    /// iperf3's `-P`: parallel streams per client.
    public var parallel: Int?
    /// iperf3's `-l`: bytes per write.
    public var length: Int?
    /// The command's template, with `{placeholders}`.
    public var template: String?
    /// The iperf3 server every guest's client connects to, `HOST` or `HOST:PORT` (absent: given with `--server`).
    public var server: String?
    /// Where it was declared.
    public var source: SourceLocation?

    /// Creates a workload entry.
    public init(
        kind: Kind, parallel: Int? = nil, length: Int? = nil, template: String? = nil, server: String? = nil, source: SourceLocation? = nil
    ) {
        self.kind = kind
        self.parallel = parallel
        self.length = length
        self.template = template
        self.server = server
        self.source = source
    }
}

/// How long each cell runs, and how many times every cell runs.
public struct TimingDocument: Codable, Sendable, Equatable {
    /// The timing of an experiment that declares none: 60 s measured after 10 s of warm-up, 3 repetitions.
    public static let defaults = TimingDocument(durationSeconds: 60, warmUpSeconds: 10, repetitions: 3)
    /// Seconds measured in each cell, after the warm-up.
    public var durationSeconds: Double
    /// Seconds the workload runs before measuring starts.
    public var warmUpSeconds: Double
    /// How many times every cell runs; the order is shuffled within each repetition.
    public var repetitions: Int
    /// Where `Timing(…)` was written.
    public var source: SourceLocation?

    /// Creates a timing entry.
    public init(durationSeconds: Double, warmUpSeconds: Double, repetitions: Int, source: SourceLocation? = nil) {
        self.durationSeconds = durationSeconds
        self.warmUpSeconds = warmUpSeconds
        self.repetitions = repetitions
        self.source = source
    }
}
