import IOVMWireFormat

/// Every diagnostic the experiment planner gives, by name, as the topology planner's
/// (`Planner+Diagnostics.swift`): the wording lives here once, the planner says which.
extension Diagnostic {
    // MARK: Document and base

    static func unsupportedExperimentSchema(_ version: Int, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "experiment schema version \(version) is not supported (this iovm reads version \(ExperimentDocument.currentSchemaVersion))", at: location)
    }
    static func invalidExperimentName(_ name: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "experiment name \"\(name)\" is not a valid name (use letters, digits, '_', '.', '-'; at most 64; not starting with '-' or '.')", at: location)
    }
    static func noBase(at location: SourceLocation?) -> Diagnostic {
        .init(.error, "the experiment names no base topology: add Base(topology) with a Topology(…) { … } of the file", at: location)
    }
    static func unsupportedBaseSchema(_ version: Int, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "the base topology has schema version \(version); this iovm reads version \(TopologyDocument.currentSchemaVersion)", at: location)
    }

    // MARK: Factors

    static func emptyFactor(_ kind: FactorDocument.Kind, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "Vary(.\(kind.rawValue)([])) lists no value: give at least one", at: location)
    }
    static func variedTwice(_ aspect: FactorDocument.Kind, first: SourceLocation?, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "\(aspect.words) is varied twice\(first.map { " (first at \($0))" } ?? ""): vary it once, or set it together with the rest in Variant(…)s", at: location)
    }
    static func repeatedValue(_ kind: FactorDocument.Kind, _ label: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "\(kind.words) \(label) is listed twice: its cells would repeat (Timing(repetitions:) repeats every cell)", at: location)
    }
    static func factorNeedsGenerator(_ kind: FactorDocument.Kind, base: String, at location: SourceLocation?) -> Diagnostic {
        .init(
            .error,
            "\(kind.words) cannot vary: the base topology \(base) declares its IOVMs one by one; vary it on a base with a Configuration and top-level NIC(…)s",
            at: location)
    }
    static func factorValueMissesAspect(_ kind: FactorDocument.Kind, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "a value of Vary(.\(kind.rawValue)(…)) does not set \(kind.words)", at: location)
    }
    static func factorValueSetsOther(_ kind: FactorDocument.Kind, _ other: FactorDocument.Kind, at location: SourceLocation?) -> Diagnostic {
        .init(
            .error,
            "a value of Vary(.\(kind.rawValue)(…)) also sets \(other.words): vary \(other.words) in a factor of its own, or set both in Variant(…)s",
            at: location)
    }
    static func nicCountBelowOne(_ count: Int, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "NIC count \(count) is not a number of NICs: the smallest is 1", at: location)
    }
    static func nicCountOverBase(_ count: Int, base: String, nics: Int, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "NIC count \(count) is more than the \(nics) NIC\(nics == 1 ? "" : "s") of the base topology \(base): declare more NIC(…)s in it", at: location)
    }
    static func unknownSchedulerValue(_ name: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "unknown scheduler \"\(name)\" (Xen offers \(Planner.schedulers.joined(separator: ", ")))", at: location)
    }
    static func schedulerNeedsPoolZero(at location: SourceLocation?) -> Diagnostic {
        .init(
            .error,
            "the scheduler varies, but nothing says which one the host's Pool-0 runs (the others run in a cpupool): give the base Host(scheduler:) or pass --host-scheduler",
            at: location)
    }
    static func stockWithoutKernel(_ label: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "IOVM image \(label) names no kernel: give .stock(kernel: \"/boot/vmlinuz-…\")", at: location)
    }
    static func imageOverriddenByIOVM(_ iovm: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "the IOVM image varies, but IOVM \(iovm) of the base names its own kernel, which wins over the image: drop its kernel:", at: location)
    }
    static func unnamedVariant(at location: SourceLocation?) -> Diagnostic {
        .init(.error, "a Variant needs a name: it labels its cells and their results", at: location)
    }
    static func duplicateVariant(_ name: String, first: SourceLocation?, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "two variants are named \"\(name)\"\(first.map { " (first at \($0))" } ?? "")", at: location)
    }

    // MARK: Directions, workload, timing

    static func noDirections(at location: SourceLocation?) -> Diagnostic {
        .init(.error, "Directions() names no direction: give .rx, .tx or .both", at: location)
    }
    static func repeatedDirection(_ direction: TrafficDirection, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "direction \(direction.title) is listed twice", at: location)
    }
    static func iperf3Parallel(_ parallel: Int, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "iperf3 runs 1-128 parallel streams (-P), not \(parallel)", at: location)
    }
    static func iperf3Length(_ length: Int, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "iperf3's buffer length (-l) must be positive, not \(length)", at: location)
    }
    static func emptyCommand(at location: SourceLocation?) -> Diagnostic {
        .init(.error, "Workload.command has an empty template", at: location)
    }
    static func unknownPlaceholder(_ name: String, at location: SourceLocation?) -> Diagnostic {
        .init(
            .error,
            "Workload.command uses {\(name)}, which is not a placeholder (known: \(ExperimentWorkload.placeholders.map { "{\($0)}" }.joined(separator: ", ")); {{ is a literal {)",
            at: location)
    }
    static func repetitionsBelowOne(_ repetitions: Int, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "repetitions must be at least 1, not \(repetitions)", at: location)
    }
    static func badServer(_ server: String, _ problem: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "the iperf3 server \(server.debugDescription) is not HOST or HOST:PORT: \(problem)", at: location)
    }
    static func tooManyRepetitions(_ repetitions: Int, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "repetitions must be at most \(ExperimentPlanner.maximumRepetitions), not \(repetitions)", at: location)
    }
    static func durationTooLong(_ seconds: Double, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "a cell's duration and warm-up must be at most \(Int(ExperimentPlanner.maximumSeconds)) s (a day), not \(ExperimentWorkload.seconds(seconds))", at: location)
    }
    static func durationNotPositive(_ seconds: Double, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "the duration must be positive, not \(ExperimentWorkload.seconds(seconds))", at: location)
    }
    static func negativeWarmUp(_ seconds: Double, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "the warm-up cannot be negative (\(ExperimentWorkload.seconds(seconds)))", at: location)
    }
    static func durationNotOverWarmUp(_ duration: Double, warmUp: Double, at location: SourceLocation?) -> Diagnostic {
        .init(
            .error,
            "the duration (\(ExperimentWorkload.seconds(duration))) must be longer than the warm-up (\(ExperimentWorkload.seconds(warmUp))): the measured part would be no longer than the unmeasured one",
            at: location)
    }

    // MARK: Combinations

    /// A diagnostic of the topology planner about one combination's topology, saying which combination (nothing to
    /// say when no factor varies: the base itself is wrong).
    static func inCombination(_ diagnostic: Diagnostic, _ combination: String) -> Diagnostic {
        combination.isEmpty
            ? .init(diagnostic.severity, "in the base topology: \(diagnostic.message)", at: diagnostic.location)
            : .init(diagnostic.severity, "in the cells with \(combination): \(diagnostic.message)", at: diagnostic.location)
    }
}

extension FactorDocument.Kind {
    /// The words for what it varies, in messages.
    var words: String {
        switch self {
        case .configuration: "the configuration"
        case .placement: "the placement"
        case .scheduler: "the scheduler"
        case .nicCount: "the NIC count"
        case .iovmImage: "the IOVM image"
        case .weights: "the weights"
        case .variants: "the variant"
        }
    }
}

extension TrafficDirection {
    /// The paper's words: `Rx`, `Tx`, `both`.
    public var title: String {
        switch self {
        case .rx: "Rx"
        case .tx: "Tx"
        case .both: "both"
        }
    }
}
