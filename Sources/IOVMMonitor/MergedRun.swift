import FoundationEssentials
import IOVMWireFormat

/// Why recordings cannot be merged into one report of a fleet (`iovm report --merge`).
public enum MergeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Fewer than two recordings were given.
    case tooFewRecordings([String])
    /// Two or more recordings come from the same host: the host's IOVMs would be counted twice.
    case sameHost(String, directories: [String])
    /// The recordings share no period of at least one interval on every host.
    case noOverlap([RecordingSpan])

    /// The message for people, naming the directories.
    public var description: String {
        switch self {
        case .tooFewRecordings(let directories):
            return "--merge needs the recordings of at least two hosts (given: \(directories.isEmpty ? "none" : directories.joined(separator: ", ")))"
        case .sameHost(let host, let directories):
            return "\(directories.joined(separator: " and ")) were both recorded on host \(host): merge one recording per host "
                + "(`iovm monitor --host NAME` names the host of a recording)"
        case .noOverlap(let spans):
            let list = spans.map(\.description).joined(separator: "; ")
            return "the recordings do not overlap in time (each host needs two samples in a common period): \(list)"
        }
    }
}

/// The wall-clock span of one recording, for ``MergeError/noOverlap(_:)``.
public struct RecordingSpan: Sendable, Equatable, CustomStringConvertible {
    /// The recording's directory.
    public var directory: String
    /// The host it was recorded on.
    public var host: String
    /// Its first sample, seconds since 1970 (nil: no sample).
    public var first: Double?
    /// Its last sample, seconds since 1970.
    public var last: Double?

    /// Creates a span.
    public init(directory: String, host: String, first: Double?, last: Double?) {
        self.directory = directory
        self.host = host
        self.first = first
        self.last = last
    }

    /// `DIR (host H) FROM – TO`, times in UTC.
    public var description: String {
        guard let first, let last else { return "\(directory) (host \(host)) has no sample" }
        return "\(directory) (host \(host)) \(Date(timeIntervalSince1970: first).formatted(.iso8601)) – \(Date(timeIntervalSince1970: last).formatted(.iso8601))"
    }
}

/// Recordings of the same period from several hosts (`iovm monitor --record` on each), merged into one run of the
/// fleet: each host's recording restricted to the period all of them cover, and the fleet's intervals.
///
/// Hosts are told apart by ``RecordedRun/host``. IOVMs of the same name on two hosts (every host's Domain-0, the
/// IOVM of the centralized configuration) are different domains, so they are not refused: where IOVMs of several
/// hosts are listed together they are named `HOST/IOVM`.
public struct MergedRun: Sendable {
    /// One host's recording over the period.
    public struct HostRun: Sendable {
        /// The host's name.
        public var host: String
        /// The recording restricted to the period, its elapsed times counted from the period's start.
        public var run: RecordedRun
    }

    /// Start of the period every recording covers, seconds since 1970.
    public var start: Double
    /// End of the period, seconds since 1970.
    public var end: Double
    /// Each host's recording, in the order given.
    public var hosts: [HostRun]
    /// The fleet's intervals: the period cut at every host's interval boundaries where all hosts have an interval;
    /// per host (named by the host) its aggregate's rates held over the piece, and their sum as the aggregate. Their
    /// `cpuHz` is the hosts' nominal Hz, 0 when hosts differ (each piece's cycles are at its own host's Hz).
    public var intervals: [IntervalFigures]

    /// Merges `runs`, one per host; refuses fewer than two, two from one host, and runs that share no period.
    public static func merge(_ runs: [RecordedRun]) throws(MergeError) -> MergedRun {
        guard runs.count >= 2 else { throw .tooFewRecordings(runs.map(\.directory)) }
        for run in runs {
            let same = runs.filter { $0.host == run.host }
            if same.count > 1 { throw .sameHost(run.host, directories: same.map(\.directory)) }
        }
        let counted = runs.map { $0.records.filter { $0.cpuHz > 0 || !$0.iovms.isEmpty } }
        let spans = zip(runs, counted).map { RecordingSpan(directory: $0.directory, host: $0.host, first: $1.first?.time, last: $1.last?.time) }
        let start = spans.compactMap(\.first).max() ?? 0
        let end = spans.compactMap(\.last).min() ?? 0
        let tolerance = 1e-6
        var hosts: [HostRun] = []
        for (run, records) in zip(runs, counted) {
            let inside = records.filter { $0.time >= start - tolerance && $0.time <= end + tolerance }
            guard inside.count >= 2, let first = inside.first else { throw .noOverlap(spans) }
            // The same monotonic clock, counted from the period's start: the hosts' intervals line up.
            let offset = first.elapsed - (first.time - start)
            let rebased = inside.map { record in
                var record = record
                record.elapsed -= offset
                return record
            }
            var meta = run.meta
            meta.started = start
            hosts.append(HostRun(host: run.host, run: RecordedRun(directory: run.directory, meta: meta, plan: run.plan, records: rebased)))
        }
        return MergedRun(start: start, end: end, hosts: hosts, intervals: Self.fleetIntervals(hosts, start: start))
    }

    /// The period cut at every host's interval boundaries; a piece where every host has an interval gets each
    /// host's aggregate rates over that interval, and their sum. `start` is the period's wall-clock start.
    static func fleetIntervals(_ hosts: [HostRun], start: Double) -> [IntervalFigures] {
        let tolerance = 1e-9
        let bounds = Set(hosts.flatMap { $0.run.intervals.flatMap { [$0.start, $0.end] } }).sorted()
        var intervals: [IntervalFigures] = []
        var next = hosts.map { _ in 0 }  // per host, the first of its intervals that may hold the piece (pieces come in order)
        for (from, to) in zip(bounds, bounds.dropFirst()) where to - from > tolerance {
            var parts: [EfficiencyFigures] = []
            var hz: Set<UInt64> = []
            for (index, host) in hosts.enumerated() {
                let own = host.run.intervals
                while next[index] < own.count && own[next[index]].end < to - tolerance { next[index] += 1 }
                guard next[index] < own.count, own[next[index]].start <= from + tolerance else { break }
                let interval = own[next[index]]
                parts.append(Self.piece(of: interval.aggregate, named: host.host, seconds: to - from, cpuHz: interval.cpuHz))
                hz.insert(interval.cpuHz)
            }
            guard parts.count == hosts.count else { continue }
            let cpuHz = hz.count == 1 ? hz.first ?? 0 : 0
            var fleet = EfficiencyFigures.aggregate(parts, seconds: to - from, cpuHz: cpuHz)
            fleet.iovm = IOVMSummary.fleetName
            // Rates add up; cycles too, each host's at its own Hz.
            fleet.rxMbps = parts.reduce(0) { $0 + $1.rxMbps }
            fleet.txMbps = parts.reduce(0) { $0 + $1.txMbps }
            fleet.cpuPercent = parts.reduce(0) { $0 + $1.cpuPercent }
            fleet.cycles = parts.reduce(0) { $0 + $1.cycles }
            intervals.append(
                IntervalFigures(start: from, end: to, time: start + to, cpuHz: cpuHz, iovms: parts, aggregate: fleet))
        }
        return intervals
    }

    /// `figures` (over its own interval) held over a piece of `seconds` of it: the same rates and efficiency,
    /// amounts in proportion.
    static func piece(of figures: EfficiencyFigures, named name: String, seconds: Double, cpuHz: UInt64) -> EfficiencyFigures {
        let share = figures.seconds > 0 ? seconds / figures.seconds : 0
        func scaled(_ value: UInt64) -> UInt64 { UInt64((Double(value) * share).rounded()) }
        var piece = EfficiencyFigures(
            iovm: name, seconds: seconds, rxBytes: scaled(figures.rxBytes), txBytes: scaled(figures.txBytes),
            cpuNanoseconds: scaled(figures.cpuNanoseconds), cpuHz: cpuHz, guestVifRxBytes: scaled(figures.guestVifRxBytes),
            guestVifTxBytes: scaled(figures.guestVifTxBytes), newEpoch: figures.newEpoch, countersPublished: figures.countersPublished,
            trafficKnown: figures.trafficKnown, rxPackets: scaled(figures.rxPackets), txPackets: scaled(figures.txPackets),
            alignedCycles: figures.alignedCycles * share)
        (piece.rxMbps, piece.txMbps, piece.cpuPercent, piece.cycles) = (figures.rxMbps, figures.txMbps, figures.cpuPercent, figures.cycles * share)
        (piece.efficiency, piece.rxEfficiency, piece.txEfficiency) = (figures.efficiency, figures.rxEfficiency, figures.txEfficiency)
        return piece
    }

    /// Each host's recording over the period as a run of the report, labeled with the host.
    public var hostRuns: [RecordedRun] {
        hosts.map { host in
            var run = host.run
            run.meta.label = host.host
            return run
        }
    }
}

/// One host in a merged report: its recording over the period, summarized.
public struct HostSummary: Sendable, Codable, Hashable {
    /// The host's name.
    public var host: String
    /// Its recording's directory, label, per-IOVM figures and aggregate over the period.
    public var run: RunSummary
}

/// A merged report of a fleet (`iovm report --merge --format json`).
public struct FleetSummary: Sendable, Codable, Hashable {
    /// Start of the period every recording covers, seconds since 1970.
    public var start: Double
    /// End of the period, seconds since 1970.
    public var end: Double
    /// Each host over the period: its IOVMs and their aggregate.
    public var hosts: [HostSummary]
    /// Every host's IOVMs, named `HOST/IOVM`.
    public var iovms: [IOVMSummary]
    /// The whole fleet: traffic, CPU and cycles of every host's IOVMs added up; bits/Hz = total bits / total cycles.
    public var fleet: IOVMSummary

    /// Summarizes a merged run.
    public init(_ merged: MergedRun) {
        start = merged.start
        end = merged.end
        hosts = zip(merged.hosts, merged.hostRuns).map { HostSummary(host: $0.host, run: RunSummary($1)) }
        iovms = hosts.flatMap { host in
            host.run.iovms.map { iovm in
                var named = iovm
                named.iovm = "\(host.host)/\(iovm.iovm)"
                return named
            }
        }
        fleet = .fleet(hosts.map(\.run.aggregate), figures: merged.intervals.map(\.aggregate))
    }
}

extension Report {
    /// Renders a merged run of several hosts in `format`.
    public static func render(_ merged: MergedRun, format: ReportFormat) throws -> String {
        switch format {
        case .json: try JSONText.pretty(FleetSummary(merged)) + "\n"
        case .csv: csv(merged)
        case .html: HTMLReport.page(merged)
        }
    }

    /// One row per interval per IOVM of each host (run = the host; times from the period's start), each host's
    /// aggregate rows, then the fleet's intervals: a row per host (its aggregate's rates) and a `fleet` row.
    public static func csv(_ merged: MergedRun) -> String {
        var fleet = RecordedRun(directory: IOVMSummary.fleetName, meta: merged.hosts[0].run.meta, plan: nil, records: [])
        fleet.meta.label = IOVMSummary.fleetName
        fleet.intervals = merged.intervals
        return csv(merged.hostRuns + [fleet])
    }
}
