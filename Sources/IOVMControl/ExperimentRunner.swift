public import FoundationEssentials
public import IOVMCore
public import IOVMWireFormat
public import Logging

/// Why an experiment's run stopped.
public enum ExperimentRunError: Error, Sendable, CustomStringConvertible {
    /// The output directory holds another run, or cannot be used.
    case unusableDirectory(String, reason: String)
    /// A guest's load agent never said it was up.
    case noLoadAgent(guest: String, cell: Int, seconds: Double)
    /// A guest's workload failed in every attempt.
    case workloadFailed(guest: String, cell: Int, reason: String)
    /// An IOVM's counters never appeared.
    case noCounters(iovm: String, cell: Int, seconds: Double)
    /// A step on the host failed.
    case hostFailed(cell: Int, step: String, reason: String)
    /// Ctrl-C or SIGTERM.
    case interrupted(cell: Int?)
    /// The workload names no server for a guest.
    case noServer(guest: String)

    /// The message.
    public var description: String {
        switch self {
        case .unusableDirectory(let path, let reason): "\(path): \(reason)"
        case .noLoadAgent(let guest, let cell, let seconds):
            "cell \(cell): guest \(guest) has no load agent: data/iovm/load/ready did not appear in \(Int(seconds)) s (its image needs iovm's load agent: `iovm image load-agent --out FILE`, started at boot)"
        case .workloadFailed(let guest, let cell, let reason): "cell \(cell): the workload in guest \(guest) failed: \(reason)"
        case .noCounters(let iovm, let cell, let seconds):
            "cell \(cell): \(iovm) published no counters in \(Int(seconds)) s (does it run iovm's counters agent?)"
        case .hostFailed(let cell, let step, let reason): "cell \(cell): \(step) failed: \(reason)"
        case .interrupted(let cell): cell.map { "interrupted during cell \($0); it was not recorded" } ?? "interrupted"
        case .noServer(let guest):
            "the workload names no iperf3 server for guest \(guest): Workload.iperf3(server: \"HOST:PORT\") or --server HOST:PORT (or --server \(guest)=HOST:PORT)"
        }
    }
}

/// What a run did.
public struct ExperimentRunSummary: Sendable, Equatable {
    /// Cells measured by this run.
    public var measured: [Int]
    /// Cells found recorded already (`--resume`).
    public var skipped: [Int]
    /// Seconds the run took.
    public var seconds: Double
}

/// Runs an experiment's cells in their order: brings the host to each cell's combination (recreating or changing
/// live), waits for steady state, runs the workload in every guest through the ``LoadDriver``, measures the IOVMs
/// over the workload's own interval (after its warm-up) and writes each cell's result as it is done.
public final class ExperimentRunner {
    /// What is left on the host when the run ends.
    public enum OnExit: String, Sendable, CaseIterable {
        /// The last cell's topology stays.
        case keep
        /// The topology is destroyed.
        case destroy
    }

    /// How long to wait for things, seconds.
    public struct Timeouts: Sendable {
        /// For each guest's load agent and each IOVM's counters after a transition.
        public var ready: Double = 180
        /// For the workload's results after its planned end.
        public var results: Double = 60
        /// Between asking for the workload and the start of the measured window, on top of the warm-up: the
        /// time the agents take to start iperf3 and iperf3 to connect.
        public var startSlack: Double = 1
        /// Creates the defaults.
        public init() {}
    }

    let run: ExperimentRun
    let directory: URL
    let host: any ExperimentHost
    let load: any LoadDriver
    let meter: any CellMeter
    let clock: any RunnerClock
    let logger: Logger
    /// Called with one line per step of the run.
    public var progress: (String) -> Void = { _ in }
    /// Polled during waits; true stops the run after cancelling the running workload.
    public var shouldStop: () -> Bool = { false }
    /// The waits.
    public var timeouts = Timeouts()
    /// Seconds between the readings recorded inside each window; 0 records none.
    public var sampleInterval = 1.0
    /// Attempts at a cell's workload before the run stops.
    public var attempts = 2
    var lastRequestID = 0

    /// Creates a runner for `run`, writing into `directory`.
    public init(
        run: ExperimentRun, directory: URL, host: any ExperimentHost, load: any LoadDriver, meter: any CellMeter,
        clock: any RunnerClock = SystemRunnerClock(), logger: Logger
    ) {
        self.run = run
        self.directory = directory
        self.host = host
        self.load = load
        self.meter = meter
        self.clock = clock
        self.logger = logger
    }

    /// The fingerprint of an expanded experiment: the same cells, settings, order and workload.
    public static func fingerprint(_ plan: ExperimentPlan) -> String {
        // Without where things were written (`source`, absolute paths and lines): a comment added to the file, or the
        // same file in another checkout, is the same experiment.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(plan), let object = try? JSONDecoder().decode(JSONValue.self, from: data) else { return plan.experiment }
        let stripped = (try? encoder.encode(object.removingMembers(["source", "baseSource"]))) ?? data
        return String(StableHash.fnv1a(String(decoding: stripped, as: UTF8.self)), radix: 16)
    }

    /// Prepares `directory` for `run`: a new run writes `experiment.json`; `resume` reads the one there and checks
    /// it is the same experiment. Returns the run to follow (on resume, the recorded one) and the cells recorded.
    public static func prepare(directory: URL, run: ExperimentRun, resume: Bool) throws -> (ExperimentRun, Set<Int>) {
        let files = FileManager.default
        let runFile = directory.appendingPathComponent(ExperimentRunLayout.runFile)
        let cells = directory.appendingPathComponent(ExperimentRunLayout.cellsDirectory)
        if files.fileExists(atPath: runFile.path) {
            guard resume else {
                throw ExperimentRunError.unusableDirectory(
                    directory.path, reason: "holds a run already (\(ExperimentRunLayout.runFile)); --resume goes on with it, or choose another --out")
            }
            let recorded: ExperimentRun
            do {
                recorded = try JSONDecoder().decode(ExperimentRun.self, from: Data(contentsOf: runFile))
            } catch {
                throw ExperimentRunError.unusableDirectory(runFile.path, reason: "not a readable run: \(error)")
            }
            guard recorded.fingerprint == run.fingerprint else {
                throw ExperimentRunError.unusableDirectory(
                    directory.path,
                    reason:
                        "holds a run of another experiment (fingerprint \(recorded.fingerprint), this one \(run.fingerprint): the file, the seed or --host-scheduler differ); nothing was run"
                )
            }
            return (recorded, recordedCells(in: cells))
        }
        guard !resume else {
            throw ExperimentRunError.unusableDirectory(directory.path, reason: "holds no run to resume (\(ExperimentRunLayout.runFile) is missing)")
        }
        do {
            try files.createDirectory(at: cells, withIntermediateDirectories: true)
            try writeAtomically(run, to: runFile)
        } catch {
            throw ExperimentRunError.unusableDirectory(directory.path, reason: "cannot write: \(error)")
        }
        return (run, [])
    }

    static func recordedCells(in cells: URL) -> Set<Int> {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: cells.path)) ?? []
        return Set(names.compactMap { $0.hasSuffix(".json") ? Int($0.dropLast(5)) : nil })
    }

    static func writeAtomically<T: Encodable>(_ value: T, to url: URL) throws {
        var data = try JSONText.encoder(pretty: true).encode(value)
        data.append(0x0A)
        try data.write(to: url, options: .atomic)
    }

    /// Runs every cell not in `recorded`, in the plan's order. On an error or an interruption, what was recorded
    /// stays; the host is left as `onExit` says either way.
    public func runCells(skipping recorded: Set<Int>, onExit: OnExit) throws -> ExperimentRunSummary {
        let plan = run.plan
        let started = clock.now()
        var measured: [Int] = []
        var applied: Int?  // the combination the host was brought to by this process
        var spent: [CellTransition.Kind: (count: Int, seconds: Double)] = [:]
        let allNICs = Array(Set(plan.combinations.flatMap { $0.plan.hostNICs })).sorted { $0.description < $1.description }
        defer {
            if onExit == .destroy, let applied {
                let topology = plan.combinations[applied].plan.topology
                progress("destroying \(topology) (--on-exit destroy)")
                do { try host.destroy(topology: topology, nics: allNICs) } catch { progress("could not destroy \(topology): \(error)") }
            }
        }
        let pending = plan.cells.filter { !recorded.contains($0.index) }
        if !recorded.isEmpty { progress("resuming: \(recorded.count) of \(plan.cells.count) cells recorded, \(pending.count) to run") }
        for (position, cell) in pending.enumerated() {
            if shouldStop() { throw ExperimentRunError.interrupted(cell: nil) }
            let combination = plan.combination(of: cell)
            let label = Self.label(combination.settings, cell)
            progress("cell \(cell.index)/\(plan.cells.count) (repetition \(cell.repetition)): \(label)")

            // The transition: a fresh apply whenever this process has not yet brought the host to a combination.
            let transitionStart = clock.now()
            var kind = cell.transition.kind
            if applied == nil, kind != .create { kind = .recreate }
            if applied != nil, applied != cell.combination, kind == .same { kind = .live }
            do {
                switch kind {
                case .create, .recreate:
                    progress("  \(kind.rawValue): \(cell.transition.changes.joined(separator: "; "))")
                    // Marked applied before: a failed destroy or apply still leaves something --on-exit destroy removes.
                    applied = cell.combination
                    try host.destroy(topology: combination.plan.topology, nics: allNICs)
                    try host.apply(combination.plan)
                case .live:
                    progress("  live: \(cell.transition.changes.joined(separator: "; "))")
                    try host.apply(combination.plan)
                case .same:
                    break
                }
            } catch {
                throw ExperimentRunError.hostFailed(cell: cell.index, step: kind == .live ? "the live change" : "applying \(label)", reason: "\(error)")
            }
            applied = cell.combination
            let transitionSeconds = clock.now() - transitionStart
            let previous = spent[kind] ?? (0, 0)
            spent[kind] = (previous.count + 1, previous.seconds + transitionSeconds)

            let result = try measure(cell, combination, transitionSeconds: transitionSeconds)
            do {
                try Self.writeAtomically(result, to: directory.appendingPathComponent(ExperimentRunLayout.cellFile(cell.index)))
            } catch {
                throw ExperimentRunError.unusableDirectory(directory.path, reason: "cannot write cell \(cell.index): \(error)")
            }
            measured.append(cell.index)
            let remaining = Array(pending[(position + 1)...])
            progress(
                "  " + Self.figures(result) + " | \(measured.count + recorded.count)/\(plan.cells.count) cells, ETA "
                    + ExperimentWorkload.duration(eta(remaining, spent: spent)))
        }
        return ExperimentRunSummary(measured: measured, skipped: recorded.sorted(), seconds: clock.now() - started)
    }

    /// Seconds the `remaining` cells should take, from the transitions measured so far (else the plan's assumptions).
    func eta(_ remaining: [ExperimentCell], spent: [CellTransition.Kind: (count: Int, seconds: Double)]) -> Double {
        let timing = run.plan.timing
        let perCell = timing.warmUpSeconds + timing.durationSeconds + timeouts.startSlack + 3
        return remaining.reduce(0.0) { sum, cell in
            let kind = cell.transition.kind
            let assumed: Double
            switch kind {
            case .create, .recreate: assumed = ExperimentEstimate.assumedRecreateSeconds
            case .live: assumed = ExperimentEstimate.assumedLiveSeconds
            case .same: assumed = 0
            }
            let measured = spent[kind].flatMap { $0.count > 0 ? $0.seconds / Double($0.count) : nil }
            return sum + perCell + (measured ?? assumed)
        }
    }

    /// Runs the workload of one cell and measures it; retries a failed workload.
    func measure(_ cell: ExperimentCell, _ combination: ExperimentCombination, transitionSeconds: Double) throws -> ExperimentCellResult {
        let plan = combination.plan
        let guests = plan.guests
        let measuredDomains = plan.iovms.isEmpty ? ["Domain-0"] : plan.iovms.map(\.name)
        let readyStart = clock.now()
        try waitReady(cell: cell.index, guests: guests.map(\.name), iovms: plan.iovms.map(\.name))
        let ready = String(cFormat: "agents ready after %.1f s of the %.0f s allowed", clock.now() - readyStart, timeouts.ready)
        var lastError: Error?
        for attempt in 1...max(1, attempts) {
            do {
                var result = try attemptCell(cell, combination, measuredDomains: measuredDomains, transitionSeconds: transitionSeconds)
                result.notes.insert(ready, at: 0)
                return result
            } catch let error as ExperimentRunError {
                if case .interrupted = error { throw error }
                if case .noServer = error { throw error }
                lastError = error
                progress("  attempt \(attempt) failed: \(error)")
            }
        }
        throw lastError ?? ExperimentRunError.interrupted(cell: cell.index)
    }

    func waitReady(cell: Int, guests: [String], iovms: [String]) throws {
        let deadline = clock.now() + timeouts.ready
        var waiting = Set(guests)
        var silent = Set(iovms)
        while !waiting.isEmpty || !silent.isEmpty {
            if shouldStop() { throw ExperimentRunError.interrupted(cell: cell) }
            for guest in waiting.sorted() where (try? load.isReady(guest: guest)) == true { waiting.remove(guest) }
            if !silent.isEmpty, let reading = try? meter.read(silent.sorted()) {
                for (name, counters) in reading.domains where counters.published { silent.remove(name) }
            }
            if waiting.isEmpty && silent.isEmpty { break }
            if clock.now() >= deadline {
                if let guest = waiting.sorted().first { throw ExperimentRunError.noLoadAgent(guest: guest, cell: cell, seconds: timeouts.ready) }
                if let iovm = silent.sorted().first { throw ExperimentRunError.noCounters(iovm: iovm, cell: cell, seconds: timeouts.ready) }
            }
            clock.sleep(0.5)
        }
    }

    func attemptCell(
        _ cell: ExperimentCell, _ combination: ExperimentCombination, measuredDomains: [String], transitionSeconds: Double
    ) throws -> ExperimentCellResult {
        let timing = run.plan.timing
        let guests = combination.plan.guests
        // Unique per attempt, and increasing even if the wall clock steps back: an agent runs only an id it has not run.
        let id = max(lastRequestID + 1, Int(clock.wallTime() * 1000) % 2_000_000_000)
        lastRequestID = id
        var started: [String] = []
        defer {
            for guest in started { try? load.cancel(guest: guest, id: id) }
            // The next attempt starts once the cancelled iperf3s are gone (the agents poll every 200 ms and kill after
            // 2 s): else it would share the servers with them and its warm-up would slip into the window.
            let settle = clock.now() + 10
            var pending = started
            while !pending.isEmpty && clock.now() < settle {
                pending = pending.filter { (try? load.outcome(guest: $0, id: id)) == nil }
                if !pending.isEmpty { clock.sleep(0.5) }
            }
        }
        let t0 = clock.now()
        for guest in guests {
            let request = try loadRequest(guest: guest, id: id, direction: cell.direction)
            do { try load.start(request) } catch {
                throw ExperimentRunError.workloadFailed(guest: guest.name, cell: cell.index, reason: "could not start: \(error)")
            }
            started.append(guest.name)
        }
        let windowStart = t0 + timing.warmUpSeconds + timeouts.startSlack
        let windowEnd = t0 + timing.warmUpSeconds + timing.durationSeconds
        try sleep(until: windowStart, cell: cell.index)
        // The window runs from just before the first read to just before the second: each read takes libxenstat's
        // snapshot (the CPU times) first, and a starved dom0 can take seconds to finish one under load.
        let startedAt = clock.wallTime()
        let beforeTime = clock.now()
        let before = try readMeter(measuredDomains, cell: cell.index)
        let firstRead = clock.now() - beforeTime
        // The window recorded every `sampleInterval` seconds, as `iovm monitor --record` would; the window's last
        // reading is the last sample, and no sample starts that could delay it (half an interval, or 1.5 times the
        // slowest read so far, before the end). Not for dom0 (the centralized configuration): its own readings would
        // count in the CPU measured.
        let recording = sampleInterval > 0 && measuredDomains != ["Domain-0"]
        var samples: [CellSample] = []
        var slowestSample = 0.0
        if recording {
            var slowest = firstRead
            var next = beforeTime + sampleInterval
            while next + max(sampleInterval / 2, slowest * 1.5) < windowEnd {
                try sleep(until: next, cell: cell.index)
                let at = clock.now()
                if let reading = try? meter.read(measuredDomains) { samples.append(Self.sample(reading, since: before, at: at - beforeTime)) }
                slowest = max(slowest, clock.now() - at)
                slowestSample = max(slowestSample, clock.now() - at)
                next = max(next + sampleInterval, clock.now() + sampleInterval / 2)
            }
        }
        try sleep(until: max(windowEnd, clock.now() + 0.1), cell: cell.index)
        let afterTime = clock.now()
        let after = try readMeter(measuredDomains, cell: cell.index)
        let secondRead = clock.now() - afterTime
        let window = afterTime - beforeTime
        if recording { samples.append(Self.sample(after, since: before, at: window)) }

        // The results: every guest's iperf3 ends about `windowEnd` (plus the agent's start-up); wait for all.
        var outcomes: [String: LoadOutcome] = [:]
        let deadline = windowEnd + timeouts.startSlack + timeouts.results
        while outcomes.count < guests.count {
            if shouldStop() { throw ExperimentRunError.interrupted(cell: cell.index) }
            for guest in guests where outcomes[guest.name] == nil {
                if let outcome = try? load.outcome(guest: guest.name, id: id) { outcomes[guest.name] = outcome }
            }
            if outcomes.count == guests.count { break }
            if clock.now() > deadline {
                let late = guests.map(\.name).filter { outcomes[$0] == nil }.joined(separator: ", ")
                throw ExperimentRunError.workloadFailed(
                    guest: late, cell: cell.index, reason: "no result \(Int(timeouts.results)) s after the workload's planned end")
            }
            clock.sleep(0.5)
        }
        started = []
        let lastResult = clock.now() - windowEnd

        var results: [GuestLoadResult] = []
        for guest in guests {
            let outcome = outcomes[guest.name]!
            let summary: IperfSummary
            do { summary = try IperfSummary(json: outcome.output) } catch {
                let stderr = outcome.errorOutput.trimmingWhitespace()
                throw ExperimentRunError.workloadFailed(
                    guest: guest.name, cell: cell.index,
                    reason: "iperf3 exited \(outcome.status): \(error)\(stderr.isEmpty ? "" : " (stderr: \(stderr.suffix(300)))")")
            }
            let vif = guest.vifs.first
            let iovm = vif?.backend ?? "Domain-0"
            results.append(
                GuestLoadResult(
                    guest: guest.name, iovm: iovm, nic: vif?.nic?.description ?? "-", bytes: summary.bytes, seconds: summary.seconds,
                    retransmits: summary.retransmits))
        }

        var figures: [IOVMCellFigures] = []
        var notes: [String] = []
        notes.append(
            String(
                cFormat: "results %.1f s after the planned end, of the %.0f s allowed", lastResult, timeouts.startSlack + timeouts.results))
        if max(firstRead, secondRead) > 1 {
            notes.append(String(cFormat: "reading the counters took %.1f s and %.1f s: dom0 was starved", firstRead, secondRead))
        }
        if slowestSample > 1 { notes.append(String(cFormat: "the slowest reading inside the window took %.1f s", slowestSample)) }
        // The last reading is due at the planned end, when the workload stops: later, the window holds idle time.
        if afterTime - windowEnd > timeouts.startSlack {
            notes.append(
                String(
                    cFormat: "the window's last reading came %.1f s after the workload's planned end: its figures include that much idle time",
                    afterTime - windowEnd))
        }
        for name in measuredDomains {
            guard let a = before.domains[name], let b = after.domains[name] else {
                throw ExperimentRunError.hostFailed(cell: cell.index, step: "reading \(name)'s counters", reason: "\(name) vanished during the cell")
            }
            if b.cpuNanoseconds < a.cpuNanoseconds || b.rxBytes < a.rxBytes || b.txBytes < a.txBytes {
                throw ExperimentRunError.hostFailed(cell: cell.index, step: "reading \(name)'s counters", reason: "its counters went backwards: it restarted")
            }
            let published = a.published && b.published
            if !published { notes.append("\(name): no traffic counters (L2 figures unknown)") }
            // The batch size: the vifs' packets per notification in the window; unknown when either reading lacks them or
            // they went backwards (a vif reconnected, a CPU's 32-bit interrupt count wrapped).
            var notifications: UInt64?
            var vifPackets: UInt64?
            if let first = a.notifications, let last = b.notifications, let firstPackets = a.vifPackets, let lastPackets = b.vifPackets,
                last >= first, lastPackets >= firstPackets
            {
                notifications = last - first
                vifPackets = lastPackets - firstPackets
            }
            var iovm = IOVMCellFigures(
                iovm: name, cpuNanoseconds: b.cpuNanoseconds - a.cpuNanoseconds, windowSeconds: window, cpuHz: after.cpuHz,
                rxBytes: b.rxBytes - a.rxBytes, txBytes: b.txBytes - a.txBytes, rxPackets: b.rxPackets &- a.rxPackets,
                txPackets: b.txPackets &- a.txPackets, countersPublished: published, notifications: notifications, vifPackets: vifPackets)
            // The agent writes its counters once a period with its own clock: their rate is over that clock's span.
            if let start = a.counterTime, let end = b.counterTime, end > start { iovm.counterSeconds = end - start }
            figures.append(iovm)
        }
        let scheduler = try? host.scheduler(of: measuredDomains == ["Domain-0"] ? guests.map(\.name) : measuredDomains)
        return ExperimentCellResult(
            cell: cell, settings: combination.settings, startedAt: startedAt, windowSeconds: window, transitionSeconds: transitionSeconds,
            scheduler: scheduler ?? nil, guests: results, iovms: figures, notes: notes, samples: recording ? samples : nil)
    }

    /// `reading` as a sample `at` seconds into the window: each domain's counters since `first` (a domain missing or
    /// gone backwards in either is left out).
    static func sample(_ reading: MeterReading, since first: MeterReading, at seconds: Double) -> CellSample {
        var domains: [String: CellSample.Counters] = [:]
        for (name, now) in reading.domains {
            guard let start = first.domains[name], now.cpuNanoseconds >= start.cpuNanoseconds, now.rxBytes >= start.rxBytes,
                now.txBytes >= start.txBytes
            else { continue }
            var span: Double?
            if let a = start.counterTime, let b = now.counterTime { span = b - a }
            domains[name] = CellSample.Counters(
                cpuNanoseconds: now.cpuNanoseconds - start.cpuNanoseconds, rxBytes: now.rxBytes - start.rxBytes, txBytes: now.txBytes - start.txBytes,
                counterSeconds: span)
        }
        return CellSample(seconds: seconds, domains: domains)
    }

    func readMeter(_ domains: [String], cell: Int) throws -> MeterReading {
        do { return try meter.read(domains) } catch {
            throw ExperimentRunError.hostFailed(cell: cell, step: "reading the counters", reason: "\(error)")
        }
    }

    func sleep(until deadline: Double, cell: Int) throws {
        while clock.now() < deadline {
            if shouldStop() { throw ExperimentRunError.interrupted(cell: cell) }
            clock.sleep(min(0.5, deadline - clock.now()))
        }
    }

    /// What `guest` runs in a cell: iperf3's arguments, and for a command workload its placeholders' values.
    func loadRequest(guest: DomainSpec, id: Int, direction: TrafficDirection) throws -> LoadRequest {
        let server = run.servers[guest.name] ?? run.servers["*"]
        // A command workload needs a server only when its template says {server} or {iperf3} (checked before the run).
        let arguments = server == nil && run.plan.workload.kind == .command ? [] : try workloadArguments(guest: guest.name, direction: direction)
        return LoadRequest(
            guest: guest.name, id: id, direction: direction, durationSeconds: Int(run.plan.timing.durationSeconds.rounded(.up)),
            warmUpSeconds: Int(run.plan.timing.warmUpSeconds.rounded(.up)), nic: guest.vifs.first?.nic?.description ?? "-", server: server,
            iperf3Arguments: arguments)
    }

    /// iperf3's arguments for `guest`: `-c HOST [-p PORT] -t D -O W -P 4 -l 1024 -J -i 0`, `-R` for Rx (the client
    /// machine sends to the guest), `--bidir` for both.
    public func workloadArguments(guest: String, direction: TrafficDirection) throws -> [String] {
        guard let server = run.servers[guest] ?? run.servers["*"] else { throw ExperimentRunError.noServer(guest: guest) }
        let workload = run.plan.workload
        let timing = run.plan.timing
        var arguments: [String]
        if let colon = server.lastIndex(of: ":"), !server.hasSuffix("]"), server.filter({ $0 == ":" }).count == 1 {
            arguments = ["-c", String(server[..<colon]), "-p", String(server[server.index(after: colon)...])]
        } else {
            arguments = ["-c", server]
        }
        // iperf3 takes whole seconds; the warm-up (-O) runs before the -t seconds it reports.
        arguments += [
            "-t", "\(Int(timing.durationSeconds.rounded(.up)))", "-O", "\(Int(timing.warmUpSeconds.rounded(.up)))",
            "-P", "\(workload.parallel ?? WorkloadDocument.paperParallel)", "-l", "\(workload.length ?? WorkloadDocument.paperLength)",
            "-J", "-i", "0",
        ]
        switch direction {
        case .rx: arguments.append("-R")
        case .tx: break
        case .both: arguments.append("--bidir")
        }
        return arguments
    }

    static func label(_ settings: CellSettings, _ cell: ExperimentCell) -> String {
        var parts: [String] = []
        if let variant = settings.variant { parts.append(variant) }
        parts += [settings.configuration, settings.placement, settings.scheduler, "\(settings.nics) NIC\(settings.nics == 1 ? "" : "s")"]
        if settings.image != "-" { parts.append("image \(settings.image)") }
        if settings.weights != "default" { parts.append(settings.weights) }
        parts.append(cell.direction.title)
        return parts.joined(separator: ", ")
    }

    static func figures(_ result: ExperimentCellResult) -> String {
        let efficiency = result.efficiency.map { String(cFormat: "%.4f", $0) } ?? "-"
        let batches = result.iovms.compactMap { iovm in iovm.packetsPerNotification.map { iovm.iovm + " " + String(cFormat: "%.1f", $0) } }
        return String(cFormat: "%.1f Mbit/s payload, %.1f Mbit/s L2, IOVM CPU %.1f%%, ", result.payloadMbps, result.l2Mbps, result.cpuPercent)
            + "efficiency \(efficiency) bits/Hz over " + String(cFormat: "%.1f s", result.windowSeconds)
            + (batches.isEmpty ? "" : ", packets per notification: " + batches.joined(separator: ", "))
    }
}

/// The figures of an iperf3 `-J` run that a cell keeps.
public struct IperfSummary: Sendable, Equatable {
    /// Payload bytes the receiver counted (both directions' receivers with `--bidir`).
    public var bytes: UInt64
    /// Over how many seconds.
    public var seconds: Double
    /// The senders' retransmits.
    public var retransmits: Int

    /// What went wrong reading iperf3's JSON.
    public struct Unreadable: Error, CustomStringConvertible {
        /// Why.
        public var description: String
    }

    /// Creates a summary.
    public init(bytes: UInt64, seconds: Double, retransmits: Int) {
        self.bytes = bytes
        self.seconds = seconds
        self.retransmits = retransmits
    }

    /// Reads iperf3's JSON.
    public init(json: String) throws {
        guard let object = try? JSONDecoder().decode(JSONValue.self, from: Data(json.utf8)), case .object = object else {
            throw Unreadable(description: json.isEmpty ? "no output" : "not iperf3's JSON: \(json.prefix(120))")
        }
        if let error = object["error"]?.string { throw Unreadable(description: "iperf3: \(error)") }
        guard let end = object["end"], let received = end["sum_received"], let bytes = received["bytes"]?.double, let seconds = received["seconds"]?.double
        else { throw Unreadable(description: "iperf3's JSON has no end.sum_received") }
        var total = UInt64(max(bytes, 0))
        if let more = end["sum_received_bidir_reverse"]?["bytes"]?.double { total += UInt64(max(more, 0)) }
        let retransmits = ["sum_sent", "sum_sent_bidir_reverse"].reduce(0) { $0 + Int(end[$1]?["retransmits"]?.double ?? 0) }
        self.bytes = total
        self.seconds = seconds
        self.retransmits = retransmits
    }
}
