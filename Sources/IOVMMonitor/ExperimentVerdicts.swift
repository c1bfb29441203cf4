public import IOVMCore
public import IOVMWireFormat

/// A claim of the paper's evaluation (Section 4) that an experiment can check: an ordering of series by one figure.
///
/// A claim is checked in each cell of the experiment where all its series were measured: here a cell is a NIC count
/// and a direction (and the values of any other factor the claim does not compare), and the series' mean over the
/// repetitions are compared. A verdict counts the cells where the ordering held; it asserts nothing else.
public struct PaperClaim: Sendable {
    /// One series the claim names: which combinations it is.
    public struct Series: Sendable {
        /// Its name in the claim (`IOVM-affinity`, `static (rtds)`).
        public var name: String
        /// Whether a combination is it.
        public var matches: @Sendable (CellSettings) -> Bool

        /// Creates a series.
        public init(_ name: String, matches: @escaping @Sendable (CellSettings) -> Bool) {
            self.name = name
            self.matches = matches
        }
    }

    /// One comparison of the claim: the series at `higher` above (or, with ``orEqual``, not below) the one at `lower`.
    public struct Relation: Sendable {
        /// Index in ``series`` of the series claimed higher.
        public var higher: Int
        /// Index in ``series`` of the series claimed lower.
        public var lower: Int
    }

    /// Where the paper says it (`Figs. 8/9`).
    public var source: String
    /// The ordering in short (`IOVM-affinity > separate > co-locate`).
    public var statement: String
    /// The paper's words.
    public var quote: String
    /// The figure compared.
    public var figure: ExperimentFigure
    /// The series it names.
    public var series: [Series]
    /// The comparisons that must all hold.
    public var relations: [Relation]
    /// Whether equal means hold (the paper's "equal or higher").
    public var orEqual: Bool
    /// The NIC counts it is about.
    public var nicCounts: ClosedRange<Int>

    /// Creates a claim; `relations` are pairs of indices into `series`, higher first.
    public init(
        source: String, statement: String, quote: String, figure: ExperimentFigure, series: [Series], relations: [(Int, Int)], orEqual: Bool = false,
        nicCounts: ClosedRange<Int> = 1...Int.max
    ) {
        self.source = source
        self.statement = statement
        self.quote = quote
        self.figure = figure
        self.series = series
        self.relations = relations.map { Relation(higher: $0.0, lower: $0.1) }
        self.orEqual = orEqual
        self.nicCounts = nicCounts
    }

    /// `a > b > c` as relations.
    static func chain(_ count: Int) -> [(Int, Int)] { (0..<(count - 1)).map { ($0, $0 + 1) } }

    static let monolithic = Series("IOVM (Monolithic)") { $0.configuration == "monolithic" }
    static let centralized = Series("centralized") { $0.configuration == "centralized" }
    static let affinity = Series("IOVM-affinity") { $0.placement.hasPrefix("IOVM-affinity") }
    static let separate = Series("separate") { $0.placement == "separate" }
    static let coLocate = Series("co-locate") { $0.placement == "co-locate" }
    static let staticScheduler = Series("static (rtds)") { $0.scheduler == "rtds" || $0.scheduler == "sedf" }
    static let credit = Series("credit") { $0.scheduler == "credit" && $0.placement == "credit" }
    /// Every domain on a fixed core under credit: the static placement where Xen has no rtds (Debian's has none).
    static let pinnedCredit = Series("pinned credit") { $0.scheduler == "credit" && $0.placement.hasPrefix("IOVM-affinity") }
    static let monolithicConfiguration = Series("Monolithic") { $0.configuration == "monolithic" }
    static let hybrid = Series("Hybrid") { $0.configuration.hasPrefix("hybrid") }
    static let multipleSmall = Series("Multiple Small") { $0.configuration == "multiple-small" }
    static let corePinning = Series("Core Pinning") { $0.placement == "hybrid-pinned" }
    static let defaultHybrid = Series("Default") { $0.placement == "credit" && $0.configuration.hasPrefix("hybrid") }

    /// The paper's claims, in the order of its Section 4.
    public static let all: [PaperClaim] = [
        PaperClaim(
            source: "Figs. 6/7", statement: "IOVM > centralized",
            quote: "When we move on to 2 NICs, we can see that the IOVM network virtualization continues to deliver nearly line rate (1880 Mbits/sec), "
                + "but the centralized network virtualization can not (1760Mbits/sec). […] When we move on to 3 NICs, it becomes more apparent that "
                + "IOVM network virtualization can support higher throughput.",
            figure: .throughput, series: [monolithic, centralized], relations: [(0, 1)], nicCounts: 2...Int.max),
        PaperClaim(
            source: "Figs. 6/7", statement: "IOVM > centralized",
            quote: "So a network IOVM is more efficient in terms of CPU usage. This claim is also true for the 2 NICs case in Fig. 7. When there are 3 NICs, "
                + "the efficiency of IOVM is still much higher than that of centralized network virtualization in terms of transmit, but the efficiency "
                + "difference in terms of receive becomes small.",
            figure: .efficiency, series: [monolithic, centralized], relations: [(0, 1)]),
        PaperClaim(
            source: "Fig. 8", statement: "IOVM-affinity > separate > co-locate",
            quote: "co-locate has the lowest throughput, IOVM-affinity has the highest throughput, and separate has a throughput in between the other two schemes.",
            figure: .throughput, series: [affinity, separate, coLocate], relations: chain(3)),
        PaperClaim(
            source: "Fig. 9", statement: "IOVM-affinity > separate > co-locate",
            quote: "Co-locate has the worst efficiency, IOVM-affinity has the best efficiency, and separate has efficiency in between the other two schemes.",
            figure: .efficiency, series: [affinity, separate, coLocate], relations: chain(3)),
        PaperClaim(
            source: "Fig. 10", statement: "credit ≥ static",
            quote: "using credit-based scheduler can achieve equal or higher throughput than using a static scheduler.",
            figure: .throughput, series: [credit, staticScheduler], relations: [(0, 1)], orEqual: true),
        PaperClaim(
            source: "Fig. 11", statement: "static > credit",
            quote: "the credit-based scheduler is not as efficient as a static scheduler when there are one or two test loads.",
            figure: .efficiency, series: [staticScheduler, credit], relations: [(0, 1)], nicCounts: 1...2),
        PaperClaim(
            source: "Fig. 11", statement: "credit > static",
            quote: "when the network IOVM is saturated (3 NICs), the credit-based scheduler results in better efficiency than the static scheduler, especially for receive.",
            figure: .efficiency, series: [credit, staticScheduler], relations: [(0, 1)], nicCounts: 3...Int.max),
        PaperClaim(
            source: "Fig. 10", statement: "credit ≥ pinned credit",
            quote: "using credit-based scheduler can achieve equal or higher throughput than using a static scheduler.",
            figure: .throughput, series: [credit, pinnedCredit], relations: [(0, 1)], orEqual: true),
        PaperClaim(
            source: "Fig. 11", statement: "pinned credit > credit",
            quote: "the credit-based scheduler is not as efficient as a static scheduler when there are one or two test loads.",
            figure: .efficiency, series: [pinnedCredit, credit], relations: [(0, 1)], nicCounts: 1...2),
        PaperClaim(
            source: "Fig. 11", statement: "credit > pinned credit",
            quote: "when the network IOVM is saturated (3 NICs), the credit-based scheduler results in better efficiency than the static scheduler, especially for receive.",
            figure: .efficiency, series: [credit, pinnedCredit], relations: [(0, 1)], nicCounts: 3...Int.max),
        PaperClaim(
            source: "Fig. 12", statement: "Multiple Small > Monolithic, Hybrid",
            quote: "the Multiple Small IOVMs configuration has the highest throughput",
            figure: .throughput, series: [multipleSmall, monolithicConfiguration, hybrid], relations: [(0, 1), (0, 2)]),
        PaperClaim(
            source: "Fig. 13", statement: "Monolithic > Hybrid > Multiple Small",
            quote: "the Monolithic IOVM configuration is the most efficient, the Multiple Small IOVMs configuration has the highest throughput but is the least efficient, "
                + "and the Hybrid configuration has good enough throughput and is more efficient than the Multiple Small IOVMs configuration.",
            figure: .efficiency, series: [monolithicConfiguration, hybrid, multipleSmall], relations: chain(3)),
        PaperClaim(
            source: "Table 3", statement: "Core Pinning > Default",
            quote: "using limited core pinning (or static assignment) results in improved efficiency as well as higher throughput (a pleasant side effect).",
            figure: .throughput, series: [corePinning, defaultHybrid], relations: [(0, 1)]),
        PaperClaim(
            source: "Table 3", statement: "Core Pinning > Default",
            quote: "using limited core pinning (or static assignment) results in improved efficiency as well as higher throughput (a pleasant side effect).",
            figure: .efficiency, series: [corePinning, defaultHybrid], relations: [(0, 1)]),
    ]

    /// The claim counted over `report`'s cells; nil when the experiment lacks one of its series at the NIC counts it is about.
    public func verdict(in report: ExperimentReport) -> ClaimVerdict? {
        let nicFactor = report.factors.firstIndex { $0.kind == .nicCount }
        // Each combination's series in this claim (the first that matches), nil when it is none of them.
        var role: [Int: Int] = [:]
        for combination in report.combinations where nicCounts.contains(combination.nics) {
            if let index = series.firstIndex(where: { $0.matches(combination.settings) }) { role[combination.index] = index }
        }
        guard Set(role.values).count == series.count else { return nil }
        // The factors that tell the series apart: changing one of them alone changes the series.
        let named = report.combinations.filter { role[$0.index] != nil }
        var comparing = Set<Int>()
        for a in named {
            for b in named where role[a.index] != role[b.index] && a.choices.count == b.choices.count {
                let differing = a.choices.indices.filter { a.choices[$0] != b.choices[$0] }
                if differing.count == 1 { comparing.insert(differing[0]) }
            }
        }
        // The claim's cells: the same values of every other factor, the same NIC count, the same direction.
        struct Key: Hashable {
            var others: [Int]
            var nics: Int
        }
        func key(_ combination: ReportedCombination) -> Key {
            Key(others: combination.choices.indices.filter { $0 != nicFactor && !comparing.contains($0) }.map { combination.choices[$0] }, nics: combination.nics)
        }
        var keys: [Key] = []
        for combination in named where !keys.contains(key(combination)) { keys.append(key(combination)) }
        keys.sort { $0.nics != $1.nics ? $0.nics < $1.nics : $0.others.lexicographicallyPrecedes($1.others) }
        var outcomes: [ClaimOutcome] = []
        var planned = false
        for cellKey in keys {
            let members = named.filter { key($0) == cellKey }
            // Exactly one combination per series, or the cell is not the claim's.
            let bySeries = series.indices.map { index in members.filter { role[$0.index] == index } }
            guard bySeries.allSatisfy({ $0.count == 1 }) else { continue }
            planned = true
            let context = contextLabel(bySeries[0][0], factors: report.factors, excluding: comparing.union(nicFactor.map { [$0] } ?? []))
            for direction in report.directions {
                let means = bySeries.enumerated().map { index, combinations in
                    ClaimOutcome.Mean(
                        series: series[index].name, combination: combinations[0].index, value: report.group(combinations[0].index, direction)?.statistics(figure)?.mean)
                }
                guard means.allSatisfy({ $0.value != nil }) else { continue }
                let held = relations.allSatisfy { relation in
                    let higher = means[relation.higher].value!
                    let lower = means[relation.lower].value!
                    return orEqual ? higher >= lower : higher > lower
                }
                outcomes.append(ClaimOutcome(nics: cellKey.nics, direction: direction, context: context, held: held, means: means))
            }
        }
        guard planned else { return nil }
        return ClaimVerdict(
            source: source, statement: statement, quote: quote, figure: figure,
            nicCounts: nicCounts.upperBound == Int.max
                ? (nicCounts.lowerBound == 1 ? nil : "\(nicCounts.lowerBound)+ NICs") : "\(nicCounts.lowerBound)-\(nicCounts.upperBound) NICs",
            held: outcomes.filter(\.held).count, cells: outcomes.count, outcomes: outcomes)
    }

    /// The values of the factors other than `excluding` (`rtds`), or nil when there are none.
    private func contextLabel(_ combination: ReportedCombination, factors: [ExperimentFactor], excluding: Set<Int>) -> String? {
        let parts = factors.indices.compactMap { index -> String? in
            guard !excluding.contains(index), index < combination.choices.count, factors[index].values.indices.contains(combination.choices[index]) else { return nil }
            return "\(factors[index].kind.label) \(factors[index].values[combination.choices[index]])"
        }
        return parts.isEmpty ? nil : parts.joined(separator: ", ")
    }
}

/// A claim counted over an experiment's cells.
public struct ClaimVerdict: Sendable, Codable, Equatable {
    /// Where the paper says it (`Figs. 8/9`).
    public var source: String
    /// The ordering in short.
    public var statement: String
    /// The paper's words.
    public var quote: String
    /// The figure compared (mean over the repetitions).
    public var figure: ExperimentFigure
    /// The NIC counts it is about, when not all (`1-2 NICs`).
    public var nicCounts: String?
    /// Cells where the ordering held.
    public var held: Int
    /// Cells where all its series were measured.
    public var cells: Int
    /// Each such cell.
    public var outcomes: [ClaimOutcome]

    /// `held in 4 of 6 cells`, or that no cell has all its series yet.
    public var countText: String {
        cells == 0 ? "no cell has all its series measured yet" : "held in \(held) of \(cells) cell\(cells == 1 ? "" : "s")"
    }

    /// The cells where it did not hold (`2 NICs Tx`), comma-separated; empty when none.
    public var exceptionsText: String {
        outcomes.filter { !$0.held }.map(\.cellLabel).joined(separator: ", ")
    }
}

/// A claim in one cell: the series' means and whether the ordering held.
public struct ClaimOutcome: Sendable, Codable, Equatable {
    /// A series' mean in the cell.
    public struct Mean: Sendable, Codable, Equatable {
        /// The series' name in the claim.
        public var series: String
        /// Its combination in this cell.
        public var combination: Int
        /// Its mean over the repetitions.
        public var value: Double?
    }
    /// NIC count.
    public var nics: Int
    /// Direction.
    public var direction: TrafficDirection
    /// The values of other factors in this cell (`scheduler rtds`), when the experiment has any.
    public var context: String?
    /// Whether the ordering held.
    public var held: Bool
    /// Each series' mean, in the claim's order.
    public var means: [Mean]

    /// `2 NICs Tx` (`, scheduler rtds`).
    public var cellLabel: String {
        "\(nics) NIC\(nics == 1 ? "" : "s") \(direction.title)" + (context.map { " (\($0))" } ?? "")
    }
}
