public import IOVMWireFormat

/// Expands an experiment into its cells: checks the document, sets each combination of the factors'
/// values in the base topology, plans each with the ``Planner``, orders the cells of every repetition
/// with a seeded shuffle and says what changes on the host between one cell and the next.
/// Nothing on the host is touched.
public struct ExperimentPlanner: Sendable {
    /// The most repetitions of each combination: more is a typo (a matrix of hours per repetition).
    public static let maximumRepetitions = 1000
    /// The longest a cell's run or warm-up may be, in seconds (a day).
    public static let maximumSeconds = 86_400.0
    /// What the host's Pool-0 runs (`--host-scheduler`); nil: the base's `Host(scheduler:)` when the
    /// scheduler varies, else as `iovm plan` assumes off Xen.
    public var poolZeroScheduler: String?
    /// The seed of the cell order (`--seed`); nil: derived from the experiment's name.
    public var seed: UInt64?

    /// Creates a planner.
    public init(poolZeroScheduler: String? = nil, seed: UInt64? = nil) {
        self.poolZeroScheduler = poolZeroScheduler
        self.seed = seed
    }

    /// The seed an experiment named `name` gets without `--seed`: the same name, the same order.
    public static func defaultSeed(for name: String) -> UInt64 { StableHash.fnv1a("experiment/\(name)") }

    /// Checks `document` and expands it; throws ``ExperimentError/invalid(_:)`` listing every error found.
    public func plan(_ document: ExperimentDocument) throws(ExperimentError) -> ExperimentPlan {
        var run = ExperimentExpansion(document: document, planner: self)
        return try run.plan()
    }
}

/// One expansion; collects diagnostics as it goes.
struct ExperimentExpansion {
    let document: ExperimentDocument
    let planner: ExperimentPlanner
    var diagnostics = DiagnosticCollector()

    init(document: ExperimentDocument, planner: ExperimentPlanner) {
        self.document = document
        self.planner = planner
    }

    /// The aspects of a topology a factor value sets.
    static let aspects: [FactorDocument.Kind] = [.configuration, .placement, .scheduler, .nicCount, .iovmImage, .weights]

    mutating func plan() throws(ExperimentError) -> ExperimentPlan {
        let top = document.source
        guard document.schemaVersion == ExperimentDocument.currentSchemaVersion else {
            throw .invalid([.unsupportedExperimentSchema(document.schemaVersion, at: top)])
        }
        checkName(document.name)
        guard let baseDocument = document.base else {
            diagnostics.emit(.noBase(at: top))
            throw .invalid(diagnostics.diagnostics)
        }
        let base = baseDocument.topology
        if base.schemaVersion != TopologyDocument.currentSchemaVersion {
            diagnostics.emit(.unsupportedBaseSchema(base.schemaVersion, at: baseDocument.source ?? base.source))
            throw .invalid(diagnostics.diagnostics)
        }
        checkFactors(base: base)
        let directions = checkDirections()
        let workload = checkWorkload()
        let timing = checkTiming()
        let poolZero = poolZeroScheduler(base: base)
        if diagnostics.hasErrors { throw .invalid(diagnostics.diagnostics) }

        let combinations = planCombinations(base: base, poolZero: poolZero)
        if diagnostics.hasErrors { throw .invalid(diagnostics.diagnostics) }

        let seed = planner.seed ?? ExperimentPlanner.defaultSeed(for: document.name)
        let cells = order(combinations: combinations, directions: directions, repetitions: timing.repetitions, seed: seed)
        let recreations = cells.filter { $0.transition.kind == .create || $0.transition.kind == .recreate }.count
        let live = cells.filter { $0.transition.kind == .live }.count
        let estimate = ExperimentEstimate(
            measuringSeconds: Double(cells.count) * (timing.warmUpSeconds + timing.durationSeconds),
            recreatingSeconds: Double(recreations) * ExperimentEstimate.assumedRecreateSeconds,
            liveSeconds: Double(live) * ExperimentEstimate.assumedLiveSeconds)
        return ExperimentPlan(
            formatVersion: ExperimentPlan.currentFormatVersion, experiment: document.name, source: top,
            base: base.name, baseSource: baseDocument.source,
            factors: document.factors.map { factor in
                ExperimentFactor(kind: factor.kind, values: factor.values.map { $0.label(of: factor.kind) }, source: factor.source)
            },
            directions: directions, workload: workload, timing: timing, seed: seed, seedFromName: planner.seed == nil,
            poolZeroScheduler: poolZero, combinations: combinations, cells: cells, estimate: estimate,
            warnings: Self.unique(diagnostics.warnings))
    }

    // MARK: Checks

    mutating func checkName(_ name: String) {
        let allowed = name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }
        if name.isEmpty || !allowed || name.first == "-" || name.first == "." || name.count > 64 {
            diagnostics.emit(.invalidExperimentName(name, at: document.source))
        }
    }

    /// Each factor has values, none twice; no aspect is varied by two factors; each value fits the base.
    mutating func checkFactors(base: TopologyDocument) {
        var variedAt: [FactorDocument.Kind: SourceLocation?] = [:]
        let explicitBase = base.configuration.kind == .explicit
        for factor in document.factors {
            if factor.values.isEmpty {
                diagnostics.emit(.emptyFactor(factor.kind, at: factor.source))
                continue
            }
            let sets = factor.kind == .variants ? Self.aspects.filter { aspect in factor.values.contains { $0.sets(aspect) } } : [factor.kind]
            for aspect in sets {
                if let first = variedAt[aspect] {
                    diagnostics.emit(.variedTwice(aspect, first: first, at: factor.source))
                } else {
                    variedAt[aspect] = factor.source
                }
            }
            var seen: [FactorValueDocument] = []
            var names: [String: SourceLocation?] = [:]
            for value in factor.values {
                let location = value.source ?? factor.source
                if factor.kind == .variants {
                    let name = value.label ?? ""
                    if name.isEmpty {
                        diagnostics.emit(.unnamedVariant(at: location))
                    } else if let first = names[name] {
                        diagnostics.emit(.duplicateVariant(name, first: first, at: location))
                    } else {
                        names[name] = location
                    }
                } else if !value.sets(factor.kind) {
                    diagnostics.emit(.factorValueMissesAspect(factor.kind, at: location))
                } else if seen.contains(value.withoutSources) {
                    diagnostics.emit(.repeatedValue(factor.kind, value.label(of: factor.kind), at: location))
                }
                if factor.kind != .variants && value.sets(factor.kind) {
                    // A value that also set another aspect would vary it unseen: its cells would be labelled by this factor alone.
                    for other in Self.aspects where other != factor.kind && value.sets(other) {
                        diagnostics.emit(.factorValueSetsOther(factor.kind, other, at: location))
                    }
                }
                seen.append(value.withoutSources)
                checkValue(value, at: location, base: base, explicitBase: explicitBase)
            }
        }
    }

    /// What one value sets, against the base.
    mutating func checkValue(_ value: FactorValueDocument, at location: SourceLocation?, base: TopologyDocument, explicitBase: Bool) {
        if value.configuration != nil && explicitBase {
            diagnostics.emit(.factorNeedsGenerator(.configuration, base: base.name, at: location))
        }
        if let count = value.nicCount {
            if explicitBase {
                diagnostics.emit(.factorNeedsGenerator(.nicCount, base: base.name, at: location))
            } else if count < 1 {
                diagnostics.emit(.nicCountBelowOne(count, at: location))
            } else if count > base.nics.count {
                diagnostics.emit(.nicCountOverBase(count, base: base.name, nics: base.nics.count, at: location))
            }
        }
        if let scheduler = value.scheduler, !Planner.schedulers.contains(scheduler.name) {
            diagnostics.emit(.unknownSchedulerValue(scheduler.name, at: location))
        }
        if let image = value.iovmImage {
            if image.image == nil && (image.kernel ?? "").isEmpty {
                diagnostics.emit(.stockWithoutKernel(image.label, at: location))
            }
            for iovm in base.iovms where iovm.resources.kernel != nil {
                diagnostics.emit(.imageOverriddenByIOVM(iovm.name, at: location))
            }
        }
    }

    /// The directions; Rx and Tx when the experiment names none.
    mutating func checkDirections() -> [TrafficDirection] {
        guard let declared = document.directions else { return [.rx, .tx] }
        if declared.directions.isEmpty { diagnostics.emit(.noDirections(at: declared.source ?? document.source)) }
        var seen: [TrafficDirection] = []
        for direction in declared.directions {
            if seen.contains(direction) {
                diagnostics.emit(.repeatedDirection(direction, at: declared.source ?? document.source))
            } else {
                seen.append(direction)
            }
        }
        return seen
    }

    /// The workload; iperf3 with the paper's settings when the experiment names none.
    mutating func checkWorkload() -> WorkloadDocument {
        var workload = document.workload ?? WorkloadDocument(kind: .iperf3)
        let location = workload.source ?? document.source
        if let server = workload.server, let problem = ExperimentWorkload.serverProblem(server) {
            diagnostics.emit(.badServer(server, problem, at: location))
        }
        switch workload.kind {
        case .iperf3:
            let parallel = workload.parallel ?? WorkloadDocument.paperParallel
            let length = workload.length ?? WorkloadDocument.paperLength
            if !(1...128).contains(parallel) { diagnostics.emit(.iperf3Parallel(parallel, at: location)) }
            if length < 1 { diagnostics.emit(.iperf3Length(length, at: location)) }
            workload.parallel = parallel
            workload.length = length
        case .command:
            let template = workload.template ?? ""
            if template.allSatisfy(\.isWhitespace) { diagnostics.emit(.emptyCommand(at: location)) }
            for name in ExperimentWorkload.placeholders(in: template) where !ExperimentWorkload.placeholders.contains(name) {
                diagnostics.emit(.unknownPlaceholder(name, at: location))
            }
        }
        return workload
    }

    /// The timing; the defaults when the experiment names none.
    mutating func checkTiming() -> TimingDocument {
        let timing = document.timing ?? TimingDocument.defaults
        let location = timing.source ?? document.source
        if timing.repetitions < 1 { diagnostics.emit(.repetitionsBelowOne(timing.repetitions, at: location)) }
        if timing.repetitions > ExperimentPlanner.maximumRepetitions { diagnostics.emit(.tooManyRepetitions(timing.repetitions, at: location)) }
        if timing.durationSeconds <= 0 {
            diagnostics.emit(.durationNotPositive(timing.durationSeconds, at: location))
        } else if timing.durationSeconds > ExperimentPlanner.maximumSeconds || timing.warmUpSeconds > ExperimentPlanner.maximumSeconds {
            diagnostics.emit(.durationTooLong(max(timing.durationSeconds, timing.warmUpSeconds), at: location))
        } else if timing.warmUpSeconds < 0 {
            diagnostics.emit(.negativeWarmUp(timing.warmUpSeconds, at: location))
        } else if timing.durationSeconds <= timing.warmUpSeconds {
            diagnostics.emit(.durationNotOverWarmUp(timing.durationSeconds, warmUp: timing.warmUpSeconds, at: location))
        }
        return timing
    }

    /// What Pool-0 runs for planning the combinations: `--host-scheduler`, else the base's scheduler when
    /// the scheduler varies (a cell asking for another one runs in a cpupool), else unknown as `iovm plan` off Xen.
    mutating func poolZeroScheduler(base: TopologyDocument) -> String? {
        if let given = planner.poolZeroScheduler { return given }
        let varying = document.factors.first { factor in factor.values.contains { $0.scheduler != nil } }
        guard let varying else { return nil }
        guard let declared = base.host?.scheduler else {
            diagnostics.emit(.schedulerNeedsPoolZero(at: varying.source))
            return nil
        }
        return declared
    }

    // MARK: Combinations

    /// Every combination of the factors' values (the last factor varies fastest), each set in the base and planned.
    mutating func planCombinations(base: TopologyDocument, poolZero: String?) -> [ExperimentCombination] {
        let factors = document.factors
        let count = factors.reduce(1) { $0 * $1.values.count }
        let variants = factors.firstIndex { $0.kind == .variants }
        var combinations: [ExperimentCombination] = []
        for index in 0..<count {
            var choices: [Int] = []
            var rest = index
            for factor in factors.reversed() {
                choices.insert(rest % factor.values.count, at: 0)
                rest /= factor.values.count
            }
            // A value written without a place of its own (a NIC count, `.minimal`) is where its Vary is.
            let values = zip(factors, choices).map { factor, choice in
                var value = factor.values[choice]
                value.source = value.source ?? factor.source
                return value
            }
            let topology = Self.derive(base, with: values)
            let description = zip(factors, values).map { factor, value in "\(factor.kind.label) \(value.label(of: factor.kind))" }
                .joined(separator: ", ")
            let topologyPlanner = Planner(poolZeroScheduler: poolZero)
            do {
                let plan = try topologyPlanner.plan(topology)
                for warning in plan.warnings { diagnostics.emit(.inCombination(warning, description)) }
                let image = values.compactMap(\.iovmImage).last?.label
                let settings = CellSettings(
                    variant: variants.map { values[$0].label ?? "" },
                    configuration: topology.configuration.label,
                    placement: topology.placement.label,
                    scheduler: plan.domains.first.map { plan.scheduler(of: $0) } ?? plan.host.scheduler,
                    nics: topology.nics.count + topology.iovms.reduce(0) { $0 + $1.nics.count },
                    image: plan.iovms.isEmpty ? "-" : (image ?? plan.iovms[0].image?.kind ?? "kernel"),
                    weights: (topology.scheduling.map(WeightsDocument.init(of:)) ?? WeightsDocument()).label)
                combinations.append(ExperimentCombination(index: index, choices: choices, settings: settings, topology: topology, plan: plan))
            } catch {
                guard case .invalid(let found) = error else { continue }
                for diagnostic in found { diagnostics.emit(.inCombination(diagnostic, description)) }
            }
        }
        return combinations
    }

    /// The base with `values` set in it, in the order of the factors.
    static func derive(_ base: TopologyDocument, with values: [FactorValueDocument]) -> TopologyDocument {
        var topology = base
        for value in values {
            if let configuration = value.configuration { topology.configuration = configuration }
            if let placement = value.placement { topology.placement = placement }
            if let scheduler = value.scheduler {
                var host = topology.host ?? HostDocument(source: value.source)
                host.scheduler = scheduler.name
                topology.host = host
                var scheduling = topology.scheduling ?? SchedulingDocument(source: value.source)
                if scheduler.name == "rtds" {
                    scheduling.iovmRTDS = scheduler.iovmRTDS ?? scheduling.iovmRTDS
                    scheduling.guestRTDS = scheduler.guestRTDS ?? scheduling.guestRTDS
                } else {
                    // Reservations are rtds's: under another scheduler they would only warn.
                    scheduling.iovmRTDS = nil
                    scheduling.guestRTDS = nil
                }
                if topology.scheduling != nil || scheduling.iovmRTDS != nil || scheduling.guestRTDS != nil { topology.scheduling = scheduling }
            }
            if let weights = value.weights {
                var scheduling = topology.scheduling ?? SchedulingDocument()
                scheduling.iovmWeight = weights.iovmWeight
                scheduling.iovmCap = weights.iovmCap
                scheduling.guestWeight = weights.guestWeight
                scheduling.guestCap = weights.guestCap
                scheduling.source = value.source ?? scheduling.source  // the planner's weight errors point at the value
                topology.scheduling = scheduling
            }
            if let image = value.iovmImage {
                var defaults = topology.defaults ?? DefaultsDocument()
                defaults.iovmImage = image.image
                defaults.iovmKernel = image.kernel
                defaults.iovmRamdisk = image.ramdisk
                defaults.iovmCmdline = image.cmdline
                defaults.iovmDisks = image.disks
                if let memory = image.memoryMiB { defaults.iovmMemoryMiB = memory }
                defaults.source = value.source ?? defaults.source  // the planner's image errors point at the value
                topology.defaults = defaults
            }
            if let count = value.nicCount { topology = keepingNICs(count, of: topology) }
        }
        return topology
    }

    /// The topology with its first `count` top-level NICs and the guests that use them: a guest naming a
    /// kept NIC, a guest naming a backend, and a guest naming neither whose position gives it a kept NIC
    /// (guest *i* uses NIC *i* mod the NIC count).
    static func keepingNICs(_ count: Int, of topology: TopologyDocument) -> TopologyDocument {
        var result = topology
        let total = topology.nics.count
        result.nics = Array(topology.nics.prefix(count))
        let kept = Set(result.nics.compactMap { PCIAddress($0.pci) })
        result.guests = topology.guests.enumerated().compactMap { index, guest in
            if let text = guest.nic {
                // A NIC that is not an address stays, for the planner to report.
                guard let address = PCIAddress(text) else { return guest }
                return kept.contains(address) ? guest : nil
            }
            if guest.backend != nil { return guest }
            return total > 0 && index % total < count ? guest : nil
        }
        return result
    }

    // MARK: Order

    /// The cells: every combination in every direction, shuffled within each repetition by a generator
    /// seeded with `seed`, with what changes before each. The combinations are shuffled, then the directions
    /// of each: a combination's directions run one after the other, so the host changes once per combination
    /// and repetition, not once per cell (a recreate costs more than a minute in the lab).
    func order(combinations: [ExperimentCombination], directions: [TrafficDirection], repetitions: Int, seed: UInt64) -> [ExperimentCell] {
        var generator = SplitMix64(seed: seed)
        var cells: [ExperimentCell] = []
        var previous: (ExperimentCombination, TrafficDirection)?
        for repetition in 1...max(repetitions, 1) {
            var shuffled = combinations
            generator.shuffle(&shuffled)
            let round = shuffled.flatMap { combination in
                var ordered = directions
                generator.shuffle(&ordered)
                return ordered.map { (combination, $0) }
            }
            for (combination, direction) in round {
                let transition = CellTransition.between(previous, (combination, direction))
                cells.append(
                    ExperimentCell(
                        index: cells.count + 1, repetition: repetition, combination: combination.index, direction: direction, transition: transition))
                previous = (combination, direction)
            }
        }
        return cells
    }

    /// Each diagnostic once, in order (a warning of the base shows in every combination).
    static func unique(_ diagnostics: [Diagnostic]) -> [Diagnostic] {
        var seen = Set<Diagnostic>()
        return diagnostics.filter { seen.insert($0).inserted }
    }
}

/// SplitMix64 (Steele, Lea and Flood): a small generator whose sequence is fixed by its seed, so the cell
/// order is the same on every machine and toolchain (the standard library's shuffle promises neither). Tests draw
/// seeded values from it as a `RandomNumberGenerator`.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in `0..<bound`, without modulo bias (Lemire's method).
    mutating func next(below bound: Int) -> Int {
        let limit = UInt64(bound)
        var product = next().multipliedFullWidth(by: limit)
        if product.low < limit {
            let threshold = (0 &- limit) % limit
            while product.low < threshold { product = next().multipliedFullWidth(by: limit) }
        }
        return Int(product.high)
    }

    /// Fisher-Yates.
    mutating func shuffle<T>(_ items: inout [T]) {
        guard items.count > 1 else { return }
        for index in stride(from: items.count - 1, to: 0, by: -1) {
            items.swapAt(index, next(below: index + 1))
        }
    }
}
