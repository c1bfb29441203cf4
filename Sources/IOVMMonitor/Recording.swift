import FoundationEssentials
public import IOVMCore
import IOVMWireFormat
import SystemPackage

/// `meta.json` of a recorded run.
public struct RunMeta: Sendable, Codable, Hashable {
    /// Version of the recording format.
    public var formatVersion: Int = 1
    /// Seconds between samples.
    public var interval: Double
    /// Nominal CPU frequency (Hz) at the start of the run; each sample carries its own too.
    public var cpuHz: UInt64
    /// How cycles are computed (always nominal Hz).
    public var nominalHzNote: String = FrequencyScalingCheck.nominalNote
    /// A frequency-scaling warning, when the check found one.
    public var frequencyWarning: String?
    /// Wall-clock start, seconds since 1970.
    public var started: Double
    /// A label for charts and tables (`--label`); default: configuration / placement.
    public var label: String?
    /// Topology name, when a topology was given.
    public var topology: String?
    /// The paper's name of the configuration.
    public var configuration: String?
    /// The paper's name of the placement (core assignment scheme).
    public var placement: String?
    /// The IOVMs watched (empty: every domain publishing counters).
    public var iovms: [String]
    /// The schedulers Xen ran at the start: Pool-0's and each watched or planned domain's pool's (nil in
    /// runs recorded before iovm read them, and in replays).
    public var schedulers: SchedulerReading?
    /// The host the run was recorded on (`iovm monitor --host`, default its hostname); nil in runs recorded
    /// before iovm wrote it. `iovm report --merge` tells the recordings of a fleet apart by it.
    public var host: String?

    /// Creates the metadata of a run.
    public init(
        interval: Double, cpuHz: UInt64, frequencyWarning: String?, started: Double, label: String? = nil,
        plan: Plan? = nil, iovms: [String], schedulers: SchedulerReading? = nil, host: String? = nil
    ) {
        self.interval = interval
        self.cpuHz = cpuHz
        self.frequencyWarning = frequencyWarning
        self.started = started
        self.label = label
        self.topology = plan?.topology
        self.configuration = plan?.configuration.title
        self.placement = plan?.placement.title
        self.iovms = iovms
        self.schedulers = schedulers
        self.host = host
    }
}

/// Writes a run to a directory: `meta.json`, `plan.json` (when planned from a topology),
/// `topology.json` (the topology document, when given) and `samples.jsonl`, one ``SampleRecord``
/// per line, flushed as it goes so a killed run keeps its samples.
public final class RunRecorder {
    /// The directory.
    public let directory: URL
    private let samples: FileDescriptor

    /// Creates `directory` (if needed) and writes the run's metadata.
    public init(directory: URL, meta: RunMeta, plan: Plan? = nil, topologyJSON: Data? = nil) throws {
        self.directory = directory
        let files = FileManager.default
        try files.createDirectory(at: directory, withIntermediateDirectories: true)
        let encoder = JSONText.encoder(pretty: true)
        try encoder.encode(meta).write(to: directory.appendingPathComponent("meta.json"))
        if let plan { try encoder.encode(plan).write(to: directory.appendingPathComponent("plan.json")) }
        if let topologyJSON { try topologyJSON.write(to: directory.appendingPathComponent("topology.json")) }
        let path = directory.appendingPathComponent("samples.jsonl")
        samples = try FileDescriptor.open(
            FilePath(path.path), .writeOnly, options: [.create, .truncate, .closeOnExec], permissions: [.ownerReadWrite, .groupRead, .otherRead])
    }

    deinit { try? samples.close() }

    /// Appends one record as a line.
    public func append(_ record: SampleRecord) throws {
        _ = try samples.writeAll(Array((try JSONLines.line(record) + "\n").utf8))
    }
}

/// A recorded run read back: metadata, plan, samples, and the intervals and events computed from them.
public struct RecordedRun: Sendable {
    /// Where it was read from.
    public var directory: String
    /// `meta.json`.
    public var meta: RunMeta
    /// `plan.json`, when present.
    public var plan: Plan?
    /// `samples.jsonl`.
    public var records: [SampleRecord]
    /// The intervals between consecutive records.
    public var intervals: [IntervalFigures]
    /// Every event in the run (gaps, recreations, counter resets).
    public var events: [MonitorEvent]
    /// Per IOVM, the traffic its counters moved over the run, counted exactly.
    public var totals: [String: TrafficTotals]

    /// The label for charts: `--label`, else configuration / placement, else the directory's name.
    public var label: String {
        if let label = meta.label, !label.isEmpty { return label }
        if let configuration = meta.configuration {
            return [configuration, meta.placement].compactMap { $0 }.joined(separator: " / ")
        }
        return URL(fileURLWithPath: directory).lastPathComponent
    }

    /// The host it was recorded on: ``RunMeta/host``, else (runs recorded before iovm wrote it) the directory's name.
    public var host: String {
        if let host = meta.host, !host.isEmpty { return host }
        return URL(fileURLWithPath: directory).standardizedFileURL.lastPathComponent
    }

    /// Computes intervals and events from records, as the live sampler did.
    public init(directory: String, meta: RunMeta, plan: Plan?, records: [SampleRecord]) {
        self.directory = directory
        self.meta = meta
        self.plan = plan
        self.records = records
        var tracker = EfficiencyTracker()
        var intervals: [IntervalFigures] = []
        var events: [MonitorEvent] = []
        for record in records where record.cpuHz > 0 || !record.iovms.isEmpty {
            let step = tracker.add(record)
            if let interval = step.interval { intervals.append(interval) }
            events += step.events
        }
        self.intervals = intervals
        self.events = events
        totals = tracker.totals
    }

    /// Reads a run directory written by ``RunRecorder``.
    public static func load(_ directory: String) throws -> RecordedRun {
        let url = URL(fileURLWithPath: directory)
        let decoder = JSONDecoder()
        let metaURL = url.appendingPathComponent("meta.json")
        guard FileManager.default.fileExists(atPath: metaURL.path) else {
            throw MonitorError("\(directory): not a recorded run (no meta.json; `iovm monitor --record DIR` writes one)")
        }
        let meta: RunMeta
        let metaData: Data
        do { metaData = try Data(contentsOf: metaURL) } catch {
            throw MonitorError("\(metaURL.path): error: cannot read it: \(FileBytes.reason(error))")
        }
        do {
            meta = try decoder.decode(RunMeta.self, from: metaData)
        } catch {
            throw MonitorError("\(metaURL.path): error: not a recording's meta.json: \(TopologyLoader.describe(error, in: metaData))")
        }
        let plan = try? decoder.decode(Plan.self, from: Data(contentsOf: url.appendingPathComponent("plan.json")))
        let samplesURL = url.appendingPathComponent("samples.jsonl")
        let records: [SampleRecord]
        do {
            records = try JSONLines.decode(SampleRecord.self, from: (try? Data(contentsOf: samplesURL)) ?? Data())
        } catch {
            throw MonitorError("\(samplesURL.path):\(error.line): error: not a sample: \(error.reason)")
        }
        return RecordedRun(directory: directory, meta: meta, plan: plan, records: records)
    }
}
