public import IOVMWireFormat

/// Errors that make an experiment unusable: exit code 65 (`EX_DATAERR`), like an invalid topology.
public enum ExperimentError: Error, Sendable, CustomStringConvertible {
    /// Validation found errors (warnings may come along).
    case invalid([Diagnostic])
    /// The experiment file did not compile; `output` holds the compiler's `file:line:col` messages.
    case compilationFailed(file: String, output: String)
    /// The compiled experiment ran but failed or wrote no document.
    case evaluationFailed(file: String, reason: String)
    /// The JSON document could not be read or has an unknown schema.
    case unreadableDocument(file: String, reason: String)

    /// The same failure of the machinery experiments share with topologies, in an experiment's words.
    package init(_ error: TopologyError) {
        switch error {
        case .invalid(let diagnostics): self = .invalid(diagnostics)
        case .compilationFailed(let file, let output): self = .compilationFailed(file: file, output: output)
        case .evaluationFailed(let file, let reason): self = .evaluationFailed(file: file, reason: reason)
        case .unreadableDocument(let file, let reason): self = .unreadableDocument(file: file, reason: reason)
        }
    }

    /// Human-readable text, one diagnostic per line.
    public var description: String {
        switch self {
        case .invalid(let diagnostics):
            return Diagnostic.report(diagnostics, summary: "in the experiment; nothing was run.")
        case .compilationFailed(let file, let output):
            return output.trimmingSuffixNewlines() + "\nerror: \(file) does not compile as an experiment; nothing was run."
        case .evaluationFailed(let file, let reason):
            return "\(file): error: evaluating the experiment failed: \(reason)"
        case .unreadableDocument(let file, let reason):
            return "\(file): error: not a usable experiment document: \(reason)"
        }
    }
}

/// An experiment expanded into its cells: what `iovm experiment --dry-run` shows and a run will follow.
///
/// Each combination of the factors' values is a topology of its own, planned by the ``Planner``; a cell
/// is a combination measured in one direction in one repetition. The cells of a repetition run in an
/// order shuffled by a seeded generator, so the same seed gives the same order.
public struct ExperimentPlan: Sendable, Codable, Equatable {
    /// Version of this JSON format.
    public static let currentFormatVersion = 1
    /// Version of this JSON format.
    public var formatVersion: Int
    /// Experiment name.
    public var experiment: String
    /// Where it was declared.
    public var source: SourceLocation?
    /// Name of the base topology.
    public var base: String
    /// Where `Base(…)` was written.
    public var baseSource: SourceLocation?
    /// The factors, in declaration order.
    public var factors: [ExperimentFactor]
    /// The directions each combination is measured in.
    public var directions: [TrafficDirection]
    /// What runs in each cell.
    public var workload: WorkloadDocument
    /// Duration, warm-up and repetitions.
    public var timing: TimingDocument
    /// The seed of the cell order.
    public var seed: UInt64
    /// Whether the seed was derived from the experiment's name (else given with `--seed`).
    public var seedFromName: Bool
    /// What the host's Pool-0 was assumed to run: the scheduler of cells that ask for another one runs in a cpupool.
    public var poolZeroScheduler: String?
    /// Every combination of the factors' values, in declaration order (the last factor varies fastest).
    public var combinations: [ExperimentCombination]
    /// The cells, in the order they run.
    public var cells: [ExperimentCell]
    /// How long running every cell would take.
    public var estimate: ExperimentEstimate
    /// Warnings found while planning the combinations.
    public var warnings: [Diagnostic]

    /// Cells per repetition.
    public var cellsPerRepetition: Int { combinations.count * directions.count }
    /// The combination a cell measures.
    public func combination(of cell: ExperimentCell) -> ExperimentCombination { combinations[cell.combination] }
}

/// A factor as planned: what it varies and its values' labels.
public struct ExperimentFactor: Sendable, Codable, Equatable {
    /// What it varies.
    public var kind: FactorDocument.Kind
    /// Each value as cells name it (`co-locate`, `hybrid(2)`, `3`, `Core Pinning`).
    public var values: [String]
    /// Where `Vary(…)` was written.
    public var source: SourceLocation?
}

/// One combination of the factors' values: a topology of its own, planned.
public struct ExperimentCombination: Sendable, Codable, Equatable {
    /// Its position in declaration order, from 0.
    public var index: Int
    /// The index of the value each factor takes, in the order of ``ExperimentPlan/factors``.
    public var choices: [Int]
    /// What the cells show of it.
    public var settings: CellSettings
    /// The base with the chosen values set in it.
    public var topology: TopologyDocument
    /// Its plan.
    public var plan: Plan
}

/// What a combination is, as the cells table shows it.
public struct CellSettings: Sendable, Codable, Equatable, Hashable {
    /// The variant's name, when the experiment has variants.
    public var variant: String?
    /// `centralized`, `monolithic`, `multiple-small`, `hybrid(2)`, `explicit`.
    public var configuration: String
    /// `credit`, `co-locate`, `separate`, `IOVM-affinity`, `hybrid-pinned`.
    public var placement: String
    /// The scheduler its domains run under.
    public var scheduler: String
    /// How many NICs it uses.
    public var nics: Int
    /// What its IOVMs boot: `minimal`, the label of a stock kernel, `kernel` (the base's own), `-` (no IOVM).
    public var image: String
    /// Its credit weights: `default` or `iovm 512, guest 256`.
    public var weights: String
}

/// A cell: a combination measured in one direction, in one repetition.
public struct ExperimentCell: Sendable, Codable, Equatable {
    /// Its position in the run, from 1.
    public var index: Int
    /// Its repetition, from 1.
    public var repetition: Int
    /// The index of its combination in ``ExperimentPlan/combinations``.
    public var combination: Int
    /// The direction it measures.
    public var direction: TrafficDirection
    /// What changes on the host before it runs.
    public var transition: CellTransition
}

/// What changes on the host between one cell and the next.
public struct CellTransition: Sendable, Codable, Equatable {
    /// How the host gets from the previous cell to this one.
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// The first cell: every domain is created.
        case create
        /// The configuration, the NIC set, an image or a domain's memory differ: domains are destroyed and made again.
        case recreate
        /// Only pinning, weights, caps, rtds reservations or cpupools differ: applied to the running domains.
        case live
        /// The same domains: only the workload (its direction) changes.
        case same
    }
    /// How.
    public var kind: Kind
    /// What changes, one item each (`iovm0 pin 3 -> 2`, `configuration hybrid(2) -> monolithic`).
    public var changes: [String]

    /// Creates a transition.
    public init(kind: Kind, changes: [String]) {
        self.kind = kind
        self.changes = changes
    }
}

/// How long an experiment takes, with the costs it assumes.
public struct ExperimentEstimate: Sendable, Codable, Equatable {
    /// Seconds assumed for destroying and creating domains (a create or a recreate): Table 3's hybrid took
    /// 73 s to apply in the lab under TCG (CI run 12), and destroying takes a few seconds more.
    public static let assumedRecreateSeconds = 90.0
    /// Seconds assumed for a live change: one `iovm pin`/`weight` call took 1.0-1.2 s in the lab.
    public static let assumedLiveSeconds = 2.0

    /// Cells × (warm-up + duration).
    public var measuringSeconds: Double
    /// Creates and recreates × ``assumedRecreateSeconds``.
    public var recreatingSeconds: Double
    /// Live changes × ``assumedLiveSeconds``.
    public var liveSeconds: Double
    /// The sum.
    public var totalSeconds: Double { measuringSeconds + recreatingSeconds + liveSeconds }
}
