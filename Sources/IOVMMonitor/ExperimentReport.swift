import FoundationEssentials
public import IOVMCore
public import IOVMWireFormat

/// An experiment's report: its cells' results grouped by combination and direction over the repetitions, the
/// series of its figures, a Table 3-style comparison and the paper's claims counted.
///
/// Built from a run directory (``load(directory:)``): `experiment.json` says what was planned, `cells/*.json`
/// what was measured. A cell without a file is missing, never filled in.
public struct ExperimentReport: Sendable, Codable, Equatable {
    /// Version of this JSON format.
    public static let currentFormatVersion = 1
    /// Version of this JSON format.
    public var formatVersion: Int
    /// Experiment name.
    public var experiment: String
    /// The run directory.
    public var directory: String
    /// The host it ran on, as the run recorded it.
    public var host: String
    /// The iovm version that ran it.
    public var iovmVersion: String
    /// When the run began, seconds since 1970 (UTC).
    public var startedAt: Double
    /// What ran in each cell (`iperf3 -P 4 -l 1024, one client per NIC`).
    public var workload: String
    /// Duration, warm-up and repetitions.
    public var timing: TimingDocument
    /// The directions each combination was measured in.
    public var directions: [TrafficDirection]
    /// The factors, in declaration order.
    public var factors: [ExperimentFactor]
    /// The NIC counts of the combinations (the paper's number of test loads), ascending.
    public var nicCounts: [Int]
    /// Cells the plan has.
    public var cellsPlanned: Int
    /// Cells with a result.
    public var cellsMeasured: Int
    /// The plan's cells without a result, by index.
    public var missingCells: [Int]
    /// Every combination, in the plan's order.
    public var combinations: [ReportedCombination]
    /// The figures' series: combinations alike but for their NIC count.
    public var series: [ExperimentSeries]
    /// One per combination and direction, in that order.
    public var groups: [ExperimentGroup]
    /// The Table 3-style comparison: one row per combination.
    public var table: [ComparisonRow]
    /// The paper's claims this experiment can check.
    public var verdicts: [ClaimVerdict]
    /// The cells' notes (what went wrong without failing a cell), `cell N: note`.
    public var notes: [String]

    /// Groups `results` (any subset of `run`'s cells) by combination and direction; `directory` is only shown.
    public init(run: ExperimentRun, results: [ExperimentCellResult], directory: String) {
        let plan = run.plan
        formatVersion = Self.currentFormatVersion
        experiment = plan.experiment
        self.directory = directory
        host = run.host
        iovmVersion = run.iovmVersion
        startedAt = run.startedAt
        workload = ExperimentWorkload.describe(plan.workload)
        timing = plan.timing
        directions = plan.directions
        factors = plan.factors
        nicCounts = Array(Set(plan.combinations.map(\.settings.nics))).sorted()
        cellsPlanned = plan.cells.count
        let measured = Set(results.map(\.cell))
        cellsMeasured = plan.cells.filter { measured.contains($0.index) }.count
        missingCells = plan.cells.map(\.index).filter { !measured.contains($0) }.sorted()

        let nicCountVaries = nicCounts.count > 1
        combinations = plan.combinations.map { combination in
            let name = Self.seriesName(combination, factors: plan.factors)
            let nics = combination.settings.nics
            return ReportedCombination(
                index: combination.index, series: name, nics: nics,
                label: nicCountVaries ? "\(name), \(nics) NIC\(nics == 1 ? "" : "s")" : name,
                settings: combination.settings, choices: combination.choices)
        }
        var series: [ExperimentSeries] = []
        for combination in combinations {
            if let index = series.firstIndex(where: { $0.name == combination.series }) {
                series[index].combinations.append(combination.index)
            } else {
                series.append(ExperimentSeries(name: combination.series, combinations: [combination.index]))
            }
        }
        self.series = series.map { line in
            var line = line
            line.combinations.sort { plan.combinations[$0].settings.nics < plan.combinations[$1].settings.nics }
            return line
        }
        var groups: [ExperimentGroup] = []
        for combination in plan.combinations {
            for direction in plan.directions {
                let planned = plan.cells.filter { $0.combination == combination.index && $0.direction == direction }.count
                let measured = results.filter { $0.combination == combination.index && $0.direction == direction }.sorted { $0.repetition < $1.repetition }
                groups.append(ExperimentGroup(combination: combination.index, direction: direction, planned: planned, results: measured))
            }
        }
        self.groups = groups
        notes = results.sorted { $0.cell < $1.cell }.flatMap { result in result.notes.map { "cell \(result.cell): \($0)" } }
        table = []
        verdicts = []
        table = comparisonRows()
        verdicts = PaperClaim.all.compactMap { $0.verdict(in: self) }
    }

    /// What a combination is called in the figures: the values its factors take, but the NIC count
    /// (`co-locate`, `hybrid(2)`, `Core Pinning`, `static / rtds`); without such factors, its configuration and placement.
    static func seriesName(_ combination: ExperimentCombination, factors: [ExperimentFactor]) -> String {
        let parts = factors.indices.compactMap { index -> String? in
            guard factors[index].kind != .nicCount, index < combination.choices.count else { return nil }
            let values = factors[index].values
            let choice = combination.choices[index]
            return values.indices.contains(choice) ? values[choice] : nil
        }
        return parts.isEmpty ? "\(combination.settings.configuration) / \(combination.settings.placement)" : parts.joined(separator: " / ")
    }

    /// The group of `combination` in `direction`.
    public func group(_ combination: Int, _ direction: TrafficDirection) -> ExperimentGroup? {
        groups.first { $0.combination == combination && $0.direction == direction }
    }

    /// Reads `directory` (``ExperimentRunDirectory/load(_:)``) and reports it.
    public static func load(directory: String) throws -> ExperimentReport {
        ExperimentReport(try ExperimentRunDirectory.load(directory))
    }

    /// Reports a run directory's files.
    public init(_ files: ExperimentRunDirectory) {
        self.init(run: files.run, results: files.results, directory: files.path)
    }
}

/// An experiment's run directory as read: `experiment.json` and the cell results present.
public struct ExperimentRunDirectory: Sendable {
    /// The directory.
    public var path: String
    /// What was planned and where it ran.
    public var run: ExperimentRun
    /// The cells measured so far, in file name (cell) order.
    public var results: [ExperimentCellResult]

    /// Whether `directory` holds an experiment's run (`experiment.json`) rather than a monitor recording.
    public static func isRunDirectory(_ directory: String) -> Bool {
        FileManager.default.fileExists(atPath: URL(fileURLWithPath: directory).appendingPathComponent(ExperimentRunLayout.runFile).path)
    }

    /// Reads `directory`'s `experiment.json` and every `cells/*.json`; throws an error naming the file that cannot be read.
    public static func load(_ directory: String) throws -> ExperimentRunDirectory {
        let root = URL(fileURLWithPath: directory)
        let runURL = root.appendingPathComponent(ExperimentRunLayout.runFile)
        let run: ExperimentRun = try decode(runURL, what: "an experiment run")
        guard run.formatVersion <= ExperimentRun.currentFormatVersion else {
            throw MonitorError("\(runURL.path): error: format version \(run.formatVersion) is newer than this iovm reads (\(ExperimentRun.currentFormatVersion))")
        }
        let cellsURL = root.appendingPathComponent(ExperimentRunLayout.cellsDirectory)
        var results: [ExperimentCellResult] = []
        let names = (try? FileManager.default.contentsOfDirectory(atPath: cellsURL.path)) ?? []
        for name in names.sorted() where name.hasSuffix(".json") && !name.hasPrefix(".") {
            let url = cellsURL.appendingPathComponent(name)
            let result: ExperimentCellResult = try decode(url, what: "a cell result")
            guard run.plan.combinations.indices.contains(result.combination) else {
                throw MonitorError(
                    "\(url.path): error: combination \(result.combination) is not in the run's plan (\(run.plan.combinations.count) combinations)")
            }
            results.append(result)
        }
        return ExperimentRunDirectory(path: directory, run: run, results: results)
    }

    private static func decode<T: Decodable>(_ url: URL, what: String) throws -> T {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw MonitorError("\(url.path): error: cannot read \(what): \(FileBytes.reason(error))")
        }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch {
            throw MonitorError("\(url.path): error: not \(what): \(TopologyLoader.describe(error, in: data))")
        }
    }
}

/// Mean, minimum and maximum of one figure over a combination's repetitions in one direction.
public struct RepetitionStatistics: Sendable, Codable, Equatable {
    /// The mean.
    public var mean: Double
    /// The lowest repetition.
    public var min: Double
    /// The highest repetition.
    public var max: Double
    /// How many repetitions had the figure.
    public var count: Int

    /// The statistics of `values`; nil when there are none.
    public init?(_ values: [Double]) {
        guard let low = values.min(), let high = values.max() else { return nil }
        mean = values.reduce(0, +) / Double(values.count)
        min = low
        max = high
        count = values.count
    }
}

/// A combination's figures in one direction, over its measured repetitions.
public struct ExperimentGroup: Sendable, Codable, Equatable {
    /// The combination's index in the plan.
    public var combination: Int
    /// The direction.
    public var direction: TrafficDirection
    /// Repetitions planned.
    public var planned: Int
    /// The measured cells, by index, in repetition order.
    public var cells: [Int]
    /// Guests' payload throughput (iperf3), Mbit/s.
    public var payloadMbps: RepetitionStatistics?
    /// The IOVMs' NICs' Ethernet throughput, Mbit/s.
    public var l2Mbps: RepetitionStatistics?
    /// The IOVMs' CPU use, percent of one core.
    public var cpuPercent: RepetitionStatistics?
    /// Payload bits per cycle the IOVMs used (bits/Hz).
    public var efficiency: RepetitionStatistics?
    /// Ethernet bits per cycle the IOVMs used (bits/Hz).
    public var l2Efficiency: RepetitionStatistics?
    /// The batch size: the IOVMs' vifs' packets per notification, pooled over the IOVMs of each cell
    /// (``ExperimentCellResult/packetsPerNotification``); nil when no cell recorded notifications.
    public var batchSize: RepetitionStatistics?
    /// Each IOVM's batch size (Fig. 14), in the order the cells name the IOVMs; empty when no cell recorded notifications.
    public var iovmBatchSizes: [IOVMBatchSize]

    /// The group of `results` (one combination, one direction).
    public init(combination: Int, direction: TrafficDirection, planned: Int, results: [ExperimentCellResult]) {
        self.combination = combination
        self.direction = direction
        self.planned = planned
        cells = results.map(\.cell)
        payloadMbps = RepetitionStatistics(results.map(\.payloadMbps))
        // L2 is unknown in a cell where a measured domain published no counters (dom0 in the centralized baseline).
        l2Mbps = RepetitionStatistics(results.filter { $0.iovms.allSatisfy(\.countersPublished) }.map(\.l2Mbps))
        cpuPercent = RepetitionStatistics(results.map(\.cpuPercent))
        efficiency = RepetitionStatistics(results.compactMap(\.efficiency))
        l2Efficiency = RepetitionStatistics(results.compactMap(\.l2Efficiency))
        batchSize = RepetitionStatistics(results.compactMap(\.packetsPerNotification))
        var names: [String] = []
        for result in results { for iovm in result.iovms where !names.contains(iovm.iovm) { names.append(iovm.iovm) } }
        iovmBatchSizes = names.compactMap { name in
            let values = results.compactMap { result in result.iovms.first { $0.iovm == name }?.packetsPerNotification }
            guard let statistics = RepetitionStatistics(values) else { return nil }
            // The NICs whose traffic crosses it: those of the guests it backs.
            let nics = results.map { result in Set(result.guests.filter { $0.iovm == name }.map(\.nic)).count }.max() ?? 0
            return IOVMBatchSize(iovm: name, nics: nics, packetsPerNotification: statistics)
        }
    }

    /// Repetitions measured.
    public var measured: Int { cells.count }

    /// The statistics of `figure`.
    public func statistics(_ figure: ExperimentFigure) -> RepetitionStatistics? {
        switch figure {
        case .throughput: payloadMbps
        case .l2Throughput: l2Mbps
        case .cpu: cpuPercent
        case .efficiency: efficiency
        case .l2Efficiency: l2Efficiency
        case .batchSize: batchSize
        }
    }
}

/// One IOVM's batch size in a group (the paper's Fig. 14): its vifs' packets per notification over the repetitions.
public struct IOVMBatchSize: Sendable, Codable, Equatable {
    /// The IOVM (`Domain-0` for the centralized configuration).
    public var iovm: String
    /// How many NICs carry its guests' traffic (the distinct NICs of the guests it backs).
    public var nics: Int
    /// Packets per notification: mean, minimum and maximum over the repetitions that recorded them.
    public var packetsPerNotification: RepetitionStatistics
}

/// The figures a cell measures.
public enum ExperimentFigure: String, Sendable, Codable, CaseIterable {
    /// Payload throughput, Mbit/s (iperf3).
    case throughput
    /// Ethernet throughput on the IOVMs' NICs, Mbit/s.
    case l2Throughput
    /// The IOVMs' CPU use, percent of one core.
    case cpu
    /// Payload bits per cycle (bits/Hz).
    case efficiency
    /// Ethernet bits per cycle (bits/Hz).
    case l2Efficiency
    /// The IOVMs' vifs' packets per notification (the paper's Fig. 14).
    case batchSize

    /// Its name in tables and verdicts.
    public var title: String {
        switch self {
        case .throughput: "throughput"
        case .l2Throughput: "L2 throughput"
        case .cpu: "CPU"
        case .efficiency: "efficiency"
        case .l2Efficiency: "L2 efficiency"
        case .batchSize: "batch size"
        }
    }

    /// Its unit.
    public var unit: String {
        switch self {
        case .throughput, .l2Throughput: "Mbit/s"
        case .cpu: "% of one core"
        case .efficiency, .l2Efficiency: "bits/Hz"
        case .batchSize: "packets/notification"
        }
    }

    /// Digits after the point it is shown with.
    public var digits: Int {
        switch self {
        case .throughput, .l2Throughput: 0
        case .cpu, .batchSize: 1
        case .efficiency, .l2Efficiency: 3
        }
    }
}

/// A combination as the report names it.
public struct ReportedCombination: Sendable, Codable, Equatable {
    /// Its index in the plan.
    public var index: Int
    /// The series it belongs to.
    public var series: String
    /// How many NICs it uses.
    public var nics: Int
    /// Its row label: the series, with the NIC count when that varies.
    public var label: String
    /// What it is.
    public var settings: CellSettings
    /// The index of the value each factor takes.
    public var choices: [Int]
}

/// One series of the figures: the combinations alike but for their NIC count, in NIC count order.
public struct ExperimentSeries: Sendable, Codable, Equatable {
    /// The values of its factors (`co-locate`, `Core Pinning`).
    public var name: String
    /// Its combinations, by index, in NIC count order.
    public var combinations: [Int]
}

/// A row of the Table 3-style comparison: a combination's means and their change against a baseline.
public struct ComparisonRow: Sendable, Codable, Equatable {
    /// The combination.
    public var combination: Int
    /// Its label.
    public var label: String
    /// The combination the deltas are against: the first one with the same NIC count (itself for the baseline).
    public var baseline: Int
    /// One entry per direction of the plan.
    public var entries: [ComparisonEntry]

    /// Whether this row is its own baseline.
    public var isBaseline: Bool { baseline == combination }
}

/// A comparison row's figures in one direction: means, and the change in percent against the baseline's.
public struct ComparisonEntry: Sendable, Codable, Equatable {
    /// The direction.
    public var direction: TrafficDirection
    /// Mean payload throughput, Mbit/s.
    public var throughput: Double?
    /// Mean CPU use, percent of one core.
    public var cpuPercent: Double?
    /// Mean efficiency, bits/Hz.
    public var efficiency: Double?
    /// Throughput change against the baseline, percent; nil for the baseline or without both means.
    public var throughputDelta: Double?
    /// CPU change against the baseline, percent.
    public var cpuDelta: Double?
    /// Efficiency change against the baseline, percent.
    public var efficiencyDelta: Double?
}

extension ExperimentReport {
    /// The Table 3-style rows: each combination's means against the first combination with the same NIC count.
    func comparisonRows() -> [ComparisonRow] {
        combinations.map { combination in
            let baseline = combinations.first { $0.nics == combination.nics }?.index ?? combination.index
            let entries = directions.map { direction in
                let own = group(combination.index, direction)
                let base = group(baseline, direction)
                func delta(_ figure: ExperimentFigure) -> Double? {
                    guard baseline != combination.index, let value = own?.statistics(figure)?.mean, let reference = base?.statistics(figure)?.mean,
                        reference != 0
                    else { return nil }
                    return (value - reference) / reference * 100
                }
                return ComparisonEntry(
                    direction: direction, throughput: own?.payloadMbps?.mean, cpuPercent: own?.cpuPercent?.mean, efficiency: own?.efficiency?.mean,
                    throughputDelta: delta(.throughput), cpuDelta: delta(.cpu), efficiencyDelta: delta(.efficiency))
            }
            return ComparisonRow(combination: combination.index, label: combination.label, baseline: baseline, entries: entries)
        }
    }

    /// Whether any cell recorded its IOVMs' notifications (a batch size to show).
    public var hasBatchSizes: Bool { groups.contains { !$0.iovmBatchSizes.isEmpty } }

    /// The batch size table's rows: each combination's IOVMs that have a batch size in some direction, with their
    /// statistics in each of ``directions`` (nil where unknown).
    func batchSizeRows() -> [(label: String, iovm: String, nics: Int, entries: [RepetitionStatistics?])] {
        combinations.flatMap { combination in
            let groups = directions.map { group(combination.index, $0) }
            var names: [String] = []
            var nics: [String: Int] = [:]
            for batch in groups.flatMap({ $0?.iovmBatchSizes ?? [] }) {
                if !names.contains(batch.iovm) { names.append(batch.iovm) }
                nics[batch.iovm] = max(nics[batch.iovm] ?? 0, batch.nics)
            }
            return names.map { name in
                (
                    combination.label, name, nics[name] ?? 0,
                    groups.map { group in group?.iovmBatchSizes.first { $0.iovm == name }?.packetsPerNotification }
                )
            }
        }
    }

    /// What the batch size is, one paragraph.
    public static let batchSizeSource =
        "Batch size (the paper's Fig. 14) is packets per notification: the packets the IOVM's vifs moved (rx + tx as netback "
        + "counts them, a GSO packet once) over the interrupts of their event channels in the IOVM (/proc/interrupts, all queues, "
        + "tx and rx, all CPUs) in the window, as the static counters agent publishes them; each IOVM's mean over the repetitions."

    /// `2025-11-25 14:03:07 UTC`.
    public var startedAtText: String {
        // ISO 8601 in UTC, `2025-11-25T14:03:07Z`, with a space for the T and the zone spelled out.
        let iso = Date(timeIntervalSince1970: startedAt).formatted(.iso8601)
        return iso.replacing("T", with: " ").replacing("Z", with: "") + " UTC"
    }

    /// `7 of 12 cells measured` (`, missing: 3, 8, …`).
    public var cellsText: String {
        var text = "\(cellsMeasured) of \(cellsPlanned) cells measured"
        if !missingCells.isEmpty {
            let shown = missingCells.prefix(20).map(String.init).joined(separator: ", ")
            text += "; missing: \(shown)\(missingCells.count > 20 ? ", … (\(missingCells.count) in all)" : "")"
        }
        return text
    }

    /// `60 s after 10 s of warm-up, 3 repetitions`.
    public var timingText: String {
        "\(ExperimentWorkload.seconds(timing.durationSeconds)) after \(ExperimentWorkload.seconds(timing.warmUpSeconds)) of warm-up, "
            + "\(timing.repetitions) repetition\(timing.repetitions == 1 ? "" : "s")"
    }

    /// Where each number comes from, one paragraph.
    public static let sources =
        "Throughput is the guests' payload as iperf3 counted it (the receiving side's bytes over its seconds, the warm-up left out). "
        + "L2 throughput is the Ethernet bytes the IOVMs' NICs counted in the measured direction over the window. "
        + "CPU is the IOVMs' CPU time in the window (libxenstat, as xentop), in percent of one core. "
        + "Efficiency is bits per processor cycle the IOVMs used (bits/Hz, the paper's Section 4.1): the bit rate over the cycle rate in the "
        + "same window, cycles = CPU time × nominal Hz; L2 efficiency uses the NICs' bits. Each figure is the mean over the repetitions, "
        + "the error bars their minimum and maximum."
}
