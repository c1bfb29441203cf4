import IOVMWireFormat

/// The topology every cell of an ``Experiment`` starts from.
public struct Base: ExperimentComponent {
    let document: BaseDocument
    /// Names the base topology: each cell is this topology with the factors' values set in it.
    public init(_ topology: Topology, file: String = #filePath, line: Int = #line) {
        document = BaseDocument(topology: topology.document, source: SourceLocation(file: file, line: line))
    }
    /// The element.
    public var experimentElement: ExperimentElement { ExperimentElement(storage: .base(document)) }
}

/// A factor an ``Experiment`` varies: every cell takes one of its values (the cells are the cross product).
public struct Vary: ExperimentComponent {
    let document: FactorDocument
    /// Varies `factor` over its values.
    public init(_ factor: Factor, file: String = #filePath, line: Int = #line) {
        document = FactorDocument(kind: factor.kind, values: factor.values, source: SourceLocation(file: file, line: line))
    }
    /// The element.
    public var experimentElement: ExperimentElement { ExperimentElement(storage: .factor(document)) }
}

/// What a ``Vary`` varies, with its values.
public struct Factor: Sendable {
    let kind: FactorDocument.Kind
    let values: [FactorValueDocument]

    /// The IOVM configuration (paper Section 2.1), e.g. `[.centralized(), .monolithic()]` (Figs. 6/7).
    public static func configuration(_ values: [Configuration]) -> Factor {
        Factor(kind: .configuration, values: values.map { FactorValueDocument(configuration: $0.document, source: $0.document.source) })
    }
    /// The core assignment scheme, e.g. `[.coLocate(), .separate(), .iovmAffinity()]` (Table 2, Figs. 8/9).
    public static func placement(_ values: [Placement]) -> Factor {
        Factor(kind: .placement, values: values.map { FactorValueDocument(placement: $0.document, source: $0.document.source) })
    }
    /// The scheduler the domains run under, e.g. `[.rtds(), .credit()]` (Section 4.4).
    public static func scheduler(_ values: [Scheduler]) -> Factor {
        Factor(kind: .scheduler, values: values.map { FactorValueDocument(scheduler: $0.document, source: $0.source) })
    }
    /// How many of the base's NICs take part, with the guests that use them: the paper's "number of NICs"
    /// (test loads), e.g. `[1, 2, 3]`. The base's first *n* top-level `NIC`s are kept.
    public static func nicCount(_ values: [Int]) -> Factor {
        Factor(kind: .nicCount, values: values.map { FactorValueDocument(nicCount: $0) })
    }
    /// How many of the base's NICs take part, as a range: `1...3`.
    public static func nicCount(_ values: ClosedRange<Int>) -> Factor {
        nicCount(Array(values))
    }
    /// What the IOVMs boot, e.g. `[.minimal, .stock(kernel: "/boot/vmlinuz-6.1.0-28-amd64", …)]` (Section 3).
    public static func iovmImage(_ values: [IOVMImageChoice]) -> Factor {
        Factor(kind: .iovmImage, values: values.map { FactorValueDocument(iovmImage: $0.document, source: $0.source) })
    }
    /// Credit weights and caps, e.g. `[Weights(), Weights(iovm: 512)]`.
    public static func weights(_ values: [Weights]) -> Factor {
        Factor(kind: .weights, values: values.map { FactorValueDocument(weights: $0.document, source: $0.source) })
    }
    /// Named variants that each set several things together, e.g. Table 3's "Default" and "Core Pinning".
    public static func variants(_ values: [Variant]) -> Factor {
        Factor(kind: .variants, values: values.map(\.document))
    }
}

/// A scheduler for the domains of a cell, as `Host(scheduler:)` names it.
///
/// The base's `Host(scheduler:)` (or `--host-scheduler`) is what the host's Pool-0 runs; a cell with
/// another scheduler runs its domains in a cpupool with it, as a topology asking for it would.
public struct Scheduler: Sendable {
    let document: SchedulerDocument
    let source: SourceLocation?

    /// The credit scheduler (the paper's credit-based scheduler, Section 4.4).
    public static func credit(file: String = #filePath, line: Int = #line) -> Scheduler {
        Scheduler(document: SchedulerDocument(name: "credit"), source: SourceLocation(file: file, line: line))
    }
    /// credit2, Xen 4.17's default.
    public static func credit2(file: String = #filePath, line: Int = #line) -> Scheduler {
        Scheduler(document: SchedulerDocument(name: "credit2"), source: SourceLocation(file: file, line: line))
    }
    /// rtds, the EDF scheduler that succeeded the paper's SEDF; reservations as in `Scheduling.rtds`
    /// (nil keeps the base's, or Xen's default of 4 ms every 10 ms).
    public static func rtds(
        iovm: Scheduling.RTDS? = nil, guest: Scheduling.RTDS? = nil, file: String = #filePath, line: Int = #line
    ) -> Scheduler {
        Scheduler(
            document: SchedulerDocument(name: "rtds", iovmRTDS: iovm?.document, guestRTDS: guest?.document),
            source: SourceLocation(file: file, line: line))
    }
    /// A scheduler by Xen's name.
    public static func named(_ name: String, file: String = #filePath, line: Int = #line) -> Scheduler {
        Scheduler(document: SchedulerDocument(name: name), source: SourceLocation(file: file, line: line))
    }
}

/// What the IOVMs of a cell boot (paper Section 3: the minimal IOVM against a stock one).
public struct IOVMImageChoice: Sendable {
    let document: IOVMImageDocument
    let source: SourceLocation?

    /// iovm's minimal image (`iovm image build`), with the base's IOVM memory; its diagnostics point at its `Vary`.
    public static var minimal: IOVMImageChoice {
        IOVMImageChoice(document: IOVMImageDocument(label: "minimal", image: IOVMImage.minimal.rawValue), source: nil)
    }

    /// iovm's minimal image, with `memory` for each IOVM (nil keeps the base's).
    public static func minimal(memory: Memory? = nil, file: String = #filePath, line: Int = #line) -> IOVMImageChoice {
        IOVMImageChoice(
            document: IOVMImageDocument(label: "minimal", image: IOVMImage.minimal.rawValue, memoryMiB: memory?.mebibytes),
            source: SourceLocation(file: file, line: line))
    }

    /// A stock driver domain: a distribution's kernel (in dom0's file system), usually with a root disk.
    /// - Parameters:
    ///   - label: How cells and results name it.
    ///   - memory: Memory of each IOVM (nil keeps the base's; a stock Debian IOVM needs far more than the minimal one).
    public static func stock(
        kernel: String, ramdisk: String? = nil, cmdline: String? = nil, disks: [String]? = nil, memory: Memory? = nil,
        label: String = "stock", file: String = #filePath, line: Int = #line
    ) -> IOVMImageChoice {
        IOVMImageChoice(
            document: IOVMImageDocument(
                label: label, kernel: kernel, ramdisk: ramdisk, cmdline: cmdline, disks: disks, memoryMiB: memory?.mebibytes),
            source: SourceLocation(file: file, line: line))
    }
}

/// Credit weights and caps for a cell; what is left nil is credit's default (weight 256, no cap).
public struct Weights: Sendable {
    let document: WeightsDocument
    let source: SourceLocation?

    /// Weights (1-65535) and caps (percent of a pCPU, 0 = none) of the IOVMs and the guests.
    public init(
        iovm: Int? = nil, guest: Int? = nil, iovmCap: Int? = nil, guestCap: Int? = nil,
        file: String = #filePath, line: Int = #line
    ) {
        document = WeightsDocument(iovmWeight: iovm, iovmCap: iovmCap, guestWeight: guest, guestCap: guestCap)
        source = SourceLocation(file: file, line: line)
    }
}

/// A named set of values that vary together: one value of `Vary(.variants([…]))`.
///
/// ```swift
/// Vary(.variants([
///     Variant("Default", placement: .credit(), weights: Weights()),
///     Variant("Core Pinning", placement: .hybridPinned(), weights: Weights(iovm: 512, guest: 256)),
/// ]))
/// ```
public struct Variant: Sendable {
    let document: FactorValueDocument
    /// A variant; what it leaves nil stays as in the base (or as another `Vary` sets it).
    public init(
        _ name: String, configuration: Configuration? = nil, placement: Placement? = nil, scheduler: Scheduler? = nil,
        nicCount: Int? = nil, iovmImage: IOVMImageChoice? = nil, weights: Weights? = nil,
        file: String = #filePath, line: Int = #line
    ) {
        document = FactorValueDocument(
            label: name, configuration: configuration?.document, placement: placement?.document, scheduler: scheduler?.document,
            nicCount: nicCount, iovmImage: iovmImage?.document, weights: weights?.document,
            source: SourceLocation(file: file, line: line))
    }
}

/// A direction the traffic is measured in (paper Section 4.1).
public enum Direction: Sendable {
    /// From the client to the guest (receive).
    case rx
    /// From the guest to the client (transmit).
    case tx
    /// Both at once.
    case both

    var document: TrafficDirection {
        switch self {
        case .rx: .rx
        case .tx: .tx
        case .both: .both
        }
    }
}

/// The directions every combination of an ``Experiment`` is measured in (default: Rx and Tx).
public struct Directions: ExperimentComponent {
    let document: DirectionsDocument
    /// Measures in each of `directions`, as cells of their own.
    public init(_ directions: Direction..., file: String = #filePath, line: Int = #line) {
        document = DirectionsDocument(directions: directions.map(\.document), source: SourceLocation(file: file, line: line))
    }
    /// The element.
    public var experimentElement: ExperimentElement { ExperimentElement(storage: .directions(document)) }
}

/// What runs in each cell (default: `.iperf3()` with the paper's settings).
public struct Workload: ExperimentComponent {
    let document: WorkloadDocument

    /// iperf3, one client per NIC, as in the paper (Section 4.1): `-P 4` TCP connections writing `-l 1024`
    /// byte buffers; Rx runs the client's side as sender, Tx the guest's. Each guest's iperf3 connects to `server`
    /// (`HOST` or `HOST:PORT`, the client machine's iperf3 server; `iovm experiment --server` sets or overrides it,
    /// per guest too). The guests run it through iovm's load agent (`iovm image load-agent`).
    public static func iperf3(
        parallel: Int = WorkloadDocument.paperParallel, length: Int = WorkloadDocument.paperLength, server: String? = nil,
        file: String = #filePath, line: Int = #line
    ) -> Workload {
        Workload(
            document: WorkloadDocument(
                kind: .iperf3, parallel: parallel, length: length, server: server, source: SourceLocation(file: file, line: line)))
    }

    /// A command of your own per guest, run in dom0 with `/bin/sh -c` (your way into the guests: ssh, a script),
    /// from a template: `{guest}` (its name), `{nic}` (the PCI address of its NIC), `{direction}` (`rx`, `tx` or
    /// `both`), `{duration}` and `{warmup}` (whole seconds), `{server}` (from `iovm experiment --server`), and
    /// `{iperf3}`, the arguments iovm would give iperf3 (`-c HOST -p PORT -t D -O W -P 4 -l 1024 -J -i 0`, `-R` for
    /// Rx). Values are shell-quoted; `{{` is a literal `{`. The command must print iperf3's JSON on stdout, e.g.
    /// `Workload.command("ssh -o BatchMode=yes root@{guest} timeout $(({warmup} + {duration} + 10)) iperf3 {iperf3}")`
    /// (it runs without a terminal, and a killed ssh leaves the remote iperf3 running: bound it).
    public static func command(_ template: String, file: String = #filePath, line: Int = #line) -> Workload {
        Workload(document: WorkloadDocument(kind: .command, template: template, source: SourceLocation(file: file, line: line)))
    }

    /// The element.
    public var experimentElement: ExperimentElement { ExperimentElement(storage: .workload(document)) }
}

/// How long each cell runs, and how many times the whole set of cells runs.
public struct Timing: ExperimentComponent {
    let document: TimingDocument
    /// - Parameters:
    ///   - duration: Time measured in each cell, after the warm-up.
    ///   - warmUp: Time the workload runs first, unmeasured.
    ///   - repetitions: How many times every cell runs; the order is shuffled within each repetition.
    public init(
        duration: Duration = .seconds(TimingDocument.defaults.durationSeconds),
        warmUp: Duration = .seconds(TimingDocument.defaults.warmUpSeconds),
        repetitions: Int = TimingDocument.defaults.repetitions, file: String = #filePath, line: Int = #line
    ) {
        document = TimingDocument(
            durationSeconds: Timing.seconds(duration), warmUpSeconds: Timing.seconds(warmUp), repetitions: repetitions,
            source: SourceLocation(file: file, line: line))
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// The element.
    public var experimentElement: ExperimentElement { ExperimentElement(storage: .timing(document)) }
}
