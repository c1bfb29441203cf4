import FoundationEssentials
public import IOVMCore
import IOVMWireFormat

/// A run's figures for one IOVM (or the aggregate), over all its intervals.
///
/// Mean throughput comes from the exact counter totals (``TrafficTotals``: bytes between the
/// agent's writes over the agent's clock) when the agent timestamps its writes; peaks come from
/// the intervals whose traffic is known. CPU is over every interval. Efficiency is the mean bit
/// rate over the mean cycle rate, so the two windows (agent clock, dom0 clock) need not match.
public struct IOVMSummary: Sendable, Codable, Hashable {
    /// IOVM name or `aggregate`.
    public var iovm: String
    /// Intervals with figures.
    public var samples: Int
    /// Intervals whose traffic was unknown (no rate yet after a start or recreation, no counters).
    public var unknownTrafficIntervals: Int
    /// Seconds covered by the intervals (dom0 clock).
    public var seconds: Double
    /// Seconds the traffic means are over (agent clock for exact totals; else known intervals).
    public var trafficSeconds: Double
    /// Client → guest bytes over ``trafficSeconds`` (NIC rx, as the NIC counts them: L2 frames without FCS).
    public var rxBytes: UInt64
    /// Guest → client bytes over ``trafficSeconds`` (NIC tx).
    public var txBytes: UInt64
    /// Client → guest packets over ``trafficSeconds``.
    public var rxPackets: UInt64
    /// Guest → client packets over ``trafficSeconds``.
    public var txPackets: UInt64
    /// Mean client → guest throughput, Mbit/s.
    public var meanRxMbps: Double
    /// Highest interval client → guest throughput, Mbit/s.
    public var peakRxMbps: Double
    /// Mean guest → client throughput, Mbit/s.
    public var meanTxMbps: Double
    /// Highest interval guest → client throughput, Mbit/s.
    public var peakTxMbps: Double
    /// Mean CPU use, percent of one core.
    public var meanCPUPercent: Double
    /// Highest interval CPU use, percent of one core.
    public var peakCPUPercent: Double
    /// Cycles used in all (nominal Hz).
    public var cycles: Double
    /// Mean bit rate (Rx + Tx) / mean cycle rate (bits/Hz).
    public var efficiency: Double?
    /// Mean Rx bit rate / mean cycle rate.
    public var rxEfficiency: Double?
    /// Mean Tx bit rate / mean cycle rate.
    public var txEfficiency: Double?
    /// Gaps: times the IOVM disappeared (or a read failed) during the run.
    public var gaps: Int
    /// Intervals in which a counter restarted (new epoch).
    public var newEpochs: Int

    /// Summarizes `figures` (one per interval) with `gaps` gaps; `totals` are the exact counter
    /// totals of the run when known (else the known intervals are summed).
    public init(iovm: String, figures: [EfficiencyFigures], gaps: Int, totals: TrafficTotals? = nil) {
        self.iovm = iovm
        samples = figures.count
        let known = figures.filter(\.trafficKnown)
        unknownTrafficIntervals = figures.count - known.count
        seconds = figures.reduce(0) { $0 + $1.seconds }
        if let totals, totals.seconds > 0 {
            trafficSeconds = totals.seconds
            (rxBytes, txBytes, rxPackets, txPackets) = (totals.rxBytes, totals.txBytes, totals.rxPackets, totals.txPackets)
        } else {
            trafficSeconds = known.reduce(0) { $0 + $1.seconds }
            rxBytes = known.reduce(0) { $0 + $1.rxBytes }
            txBytes = known.reduce(0) { $0 + $1.txBytes }
            rxPackets = known.reduce(0) { $0 + $1.rxPackets }
            txPackets = known.reduce(0) { $0 + $1.txPackets }
        }
        meanRxMbps = trafficSeconds > 0 ? Double(rxBytes) * 8 / trafficSeconds / 1e6 : 0
        meanTxMbps = trafficSeconds > 0 ? Double(txBytes) * 8 / trafficSeconds / 1e6 : 0
        let cpuNs = figures.reduce(0.0) { $0 + Double($1.cpuNanoseconds) }
        meanCPUPercent = seconds > 0 ? cpuNs / (seconds * 1e9) * 100 : 0
        peakRxMbps = known.map(\.rxMbps).max() ?? 0
        peakTxMbps = known.map(\.txMbps).max() ?? 0
        peakCPUPercent = figures.map(\.cpuPercent).max() ?? 0
        cycles = figures.reduce(0) { $0 + $1.cycles }
        self.gaps = gaps
        newEpochs = figures.filter(\.newEpoch).count
        setEfficiency()
    }

    /// Efficiency from the means: bits per second over cycles per second.
    private mutating func setEfficiency() {
        setEfficiency(cyclesPerSecond: seconds > 0 ? cycles / seconds : 0)
    }

    /// Efficiency from the means: bits per second over `cyclesPerSecond`.
    private mutating func setEfficiency(cyclesPerSecond: Double) {
        let known = trafficSeconds > 0
        efficiency = cyclesPerSecond > 0 && known ? (meanRxMbps + meanTxMbps) * 1e6 / cyclesPerSecond : nil
        rxEfficiency = cyclesPerSecond > 0 && known ? meanRxMbps * 1e6 / cyclesPerSecond : nil
        txEfficiency = cyclesPerSecond > 0 && known ? meanTxMbps * 1e6 / cyclesPerSecond : nil
    }

    /// The aggregate of `parts` over the aggregate intervals `figures`: means and totals add up
    /// (each IOVM's mean over its own counted span), efficiency is their sum over the cycles' rate.
    public static func aggregate(_ parts: [IOVMSummary], figures: [EfficiencyFigures], gaps: Int) -> IOVMSummary {
        var summary = IOVMSummary(iovm: EfficiencyFigures.aggregateName, figures: figures, gaps: gaps)
        guard parts.contains(where: { $0.trafficSeconds > 0 }) else { return summary }
        summary.trafficSeconds = parts.map(\.trafficSeconds).max() ?? 0
        summary.rxBytes = parts.reduce(0) { $0 + $1.rxBytes }
        summary.txBytes = parts.reduce(0) { $0 + $1.txBytes }
        summary.rxPackets = parts.reduce(0) { $0 + $1.rxPackets }
        summary.txPackets = parts.reduce(0) { $0 + $1.txPackets }
        summary.meanRxMbps = parts.reduce(0) { $0 + $1.meanRxMbps }
        summary.meanTxMbps = parts.reduce(0) { $0 + $1.meanTxMbps }
        summary.setEfficiency()
        return summary
    }

    /// The name of the whole fleet's figures in a merged report.
    public static let fleetName = "fleet"

    /// The fleet total of several hosts' aggregates `hosts` over one period, as ``aggregate(_:figures:gaps:)`` adds
    /// IOVMs up: means, bytes, CPU % and cycles add up (each host's over its own intervals), efficiency is the
    /// summed bit rate over the summed cycle rate (total bits / total Hz). Peaks, intervals and seconds come from
    /// `figures`, the fleet's intervals (every host's rate summed where all hosts have one).
    public static func fleet(_ hosts: [IOVMSummary], figures: [EfficiencyFigures]) -> IOVMSummary {
        var summary = IOVMSummary(iovm: fleetName, figures: figures, gaps: hosts.reduce(0) { $0 + $1.gaps })
        summary.trafficSeconds = hosts.map(\.trafficSeconds).max() ?? 0
        summary.rxBytes = hosts.reduce(0) { $0 + $1.rxBytes }
        summary.txBytes = hosts.reduce(0) { $0 + $1.txBytes }
        summary.rxPackets = hosts.reduce(0) { $0 + $1.rxPackets }
        summary.txPackets = hosts.reduce(0) { $0 + $1.txPackets }
        summary.meanRxMbps = hosts.reduce(0) { $0 + $1.meanRxMbps }
        summary.meanTxMbps = hosts.reduce(0) { $0 + $1.meanTxMbps }
        summary.meanCPUPercent = hosts.reduce(0) { $0 + $1.meanCPUPercent }
        summary.cycles = hosts.reduce(0) { $0 + $1.cycles }
        summary.newEpochs = hosts.reduce(0) { $0 + $1.newEpochs }
        summary.setEfficiency(cyclesPerSecond: hosts.reduce(0) { $0 + ($1.seconds > 0 ? $1.cycles / $1.seconds : 0) })
        return summary
    }
}

/// One run in a report: where it came from, what it ran under, and its summaries.
public struct RunSummary: Sendable, Codable, Hashable {
    /// The run's label.
    public var label: String
    /// The run's directory.
    public var directory: String
    /// Topology name.
    public var topology: String?
    /// Configuration (paper's name).
    public var configuration: String?
    /// Placement (paper's name).
    public var placement: String?
    /// Sampling interval, seconds.
    public var interval: Double
    /// Nominal Hz used for cycles.
    public var cpuHz: UInt64
    /// How cycles are computed.
    public var nominalHzNote: String
    /// Frequency-scaling warning recorded at the start, if any.
    public var frequencyWarning: String?
    /// Per IOVM, in order of first appearance.
    public var iovms: [IOVMSummary]
    /// All IOVMs together.
    public var aggregate: IOVMSummary
    /// Gaps, recreations, counter resets and wraps.
    public var events: [MonitorEvent]
    /// The schedulers Xen ran when the run was recorded (``RunMeta/schedulers``).
    public var schedulers: SchedulerReading?

    /// Summarizes a recorded run.
    public init(_ run: RecordedRun) {
        label = run.label
        directory = run.directory
        topology = run.meta.topology
        configuration = run.meta.configuration
        placement = run.meta.placement
        interval = run.meta.interval
        cpuHz = run.records.last(where: { $0.cpuHz > 0 })?.cpuHz ?? run.meta.cpuHz
        nominalHzNote = run.meta.nominalHzNote
        frequencyWarning = run.meta.frequencyWarning
        events = run.events
        schedulers = run.meta.schedulers
        let names = Report.iovmNames(run)
        iovms = names.map { name in
            IOVMSummary(
                iovm: name, figures: run.intervals.compactMap { $0.iovms.first { $0.iovm == name } },
                gaps: run.events.filter { $0.iovm == name && $0.kind == .disappeared }.count, totals: run.totals[name])
        }
        aggregate = IOVMSummary.aggregate(
            iovms, figures: run.intervals.map(\.aggregate),
            gaps: run.events.filter { $0.kind == .disappeared || $0.kind == .readFailed }.count)
    }
}

/// The output formats of `iovm report`.
public enum ReportFormat: String, Sendable, CaseIterable, Codable {
    /// Per-run summaries as JSON.
    case json
    /// One row per interval per IOVM, plus aggregate rows.
    case csv
    /// A self-contained page with tables and SVG charts.
    case html
}

/// Reports over recorded runs.
public enum Report {
    /// The IOVM names of a run in order of first appearance.
    public static func iovmNames(_ run: RecordedRun) -> [String] {
        var names = run.meta.iovms
        for record in run.records { for sample in record.iovms where !names.contains(sample.iovm) { names.append(sample.iovm) } }
        return names
    }

    /// Renders `runs` in `format`.
    public static func render(_ runs: [RecordedRun], format: ReportFormat) throws -> String {
        switch format {
        case .json: try json(runs)
        case .csv: csv(runs)
        case .html: HTMLReport.page(runs)
        }
    }

    /// The summaries as pretty JSON (an array, one element per run).
    public static func json(_ runs: [RecordedRun]) throws -> String {
        try JSONText.pretty(runs.map(RunSummary.init)) + "\n"
    }

    /// The CSV header.
    public static let csvHeader =
        "run,start_s,end_s,time,iovm,rx_mbps,tx_mbps,cpu_percent,cycles,efficiency_bits_per_hz,rx_efficiency_bits_per_hz,tx_efficiency_bits_per_hz,rx_bytes,tx_bytes,cpu_ns,cpu_hz,new_epoch,traffic_known,rx_packets,tx_packets"

    /// One row per interval per IOVM, then the interval's aggregate row.
    public static func csv(_ runs: [RecordedRun]) -> String {
        var lines = [csvHeader]
        for run in runs {
            for interval in run.intervals {
                for figures in interval.iovms + [interval.aggregate] {
                    lines.append(
                        [
                            csvField(run.label), fixed(interval.start, 3), fixed(interval.end, 3), fixed(interval.time, 3), csvField(figures.iovm),
                            fixed(figures.rxMbps, 3), fixed(figures.txMbps, 3), fixed(figures.cpuPercent, 2), fixed(figures.cycles, 0),
                            figures.efficiency.map { fixed($0, 4) } ?? "", figures.rxEfficiency.map { fixed($0, 4) } ?? "",
                            figures.txEfficiency.map { fixed($0, 4) } ?? "", "\(figures.rxBytes)", "\(figures.txBytes)",
                            "\(figures.cpuNanoseconds)", "\(interval.cpuHz)", figures.newEpoch ? "1" : "0", figures.trafficKnown ? "1" : "0",
                            "\(figures.rxPackets)", "\(figures.txPackets)",
                        ].joined(separator: ","))
                }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func csvField(_ text: String) -> String {
        text.contains { $0 == "," || $0 == "\"" || $0 == "\n" } ? "\"" + text.replacing("\"", with: "\"\"") + "\"" : text
    }

    static func fixed(_ value: Double, _ digits: Int) -> String { String(cFormat: "%.\(digits)f", value) }
}
