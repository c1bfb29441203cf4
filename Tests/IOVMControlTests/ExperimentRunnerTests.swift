import Foundation
import IOVMDescription
import IOVMWireFormat
import Logging
import Testing

@testable import IOVMControl
@testable import IOVMCore

/// A clock that moves only when slept on.
final class FakeRunnerClock: RunnerClock {
    var time = 1000.0
    func now() -> Double { time }
    func wallTime() -> Double { 1_790_000_000 + time }
    func sleep(_ seconds: Double) { time += max(seconds, 0.001) }
}

/// Guests whose iperf3 moves `mbps` and ends `seconds` after it starts; records every request.
final class FakeLoadDriver: LoadDriver {
    let clock: FakeRunnerClock
    var mbps = 400.0
    var seconds: Double
    var missing: Set<String> = []
    var failing: [String: String] = [:]
    var requests: [(guest: String, id: Int, arguments: [String], at: Double)] = []
    var cancelled: [(String, Int)] = []

    init(clock: FakeRunnerClock, seconds: Double) {
        self.clock = clock
        self.seconds = seconds
    }

    func isReady(guest: String) throws -> Bool { !missing.contains(guest) }
    var loadRequests: [LoadRequest] = []
    func start(_ request: LoadRequest) throws {
        loadRequests.append(request)
        requests.append((request.guest, request.id, request.iperf3Arguments, clock.time))
    }
    func outcome(guest: String, id: Int) throws -> LoadOutcome? {
        guard let request = requests.last(where: { $0.guest == guest && $0.id == id }), clock.time >= request.at + seconds else { return nil }
        if let error = failing[guest] { return LoadOutcome(status: 1, output: "{\"error\": \"\(error)\"}") }
        let bytes = UInt64(mbps * 1e6 / 8 * 50)
        return LoadOutcome(
            status: 0, output: "{\"end\": {\"sum_received\": {\"bytes\": \(bytes), \"seconds\": 50.0}, \"sum_sent\": {\"retransmits\": 3}}}")
    }
    func cancel(guest: String, id: Int) throws { cancelled.append((guest, id)) }
}

/// Domains whose CPU and NIC counters grow with the clock: each IOVM at `cpuShare` of a core, `mbps` on its NICs.
final class FakeCellMeter: CellMeter {
    let clock: FakeRunnerClock
    var cpuShare = 0.5
    var mbps = 800.0
    var unpublished: Set<String> = []
    /// Seconds each read takes after it sampled (a starved dom0), and the agents' clock's offset from the runner's.
    var readCost = 0.0
    var agentClockOffset = -500.0
    /// Each domain's vifs' notifications and packets so far at a time (nil: its agent publishes no notifications).
    var batches: (String, Double) -> (notifications: UInt64, packets: UInt64)? = { _, _ in nil }
    init(clock: FakeRunnerClock) { self.clock = clock }
    func read(_ domains: [String]) throws -> MeterReading {
        let t = clock.time
        defer { clock.time += readCost }
        var counters: [String: MeterReading.Counters] = [:]
        for name in domains {
            let bytes = UInt64(t * mbps * 1e6 / 8)
            counters[name] = MeterReading.Counters(
                cpuNanoseconds: UInt64(t * cpuShare * 1e9), rxBytes: bytes, txBytes: bytes / 2, rxPackets: bytes / 1000, txPackets: bytes / 2000,
                published: !unpublished.contains(name), counterTime: t + agentClockOffset, notifications: batches(name, t)?.notifications,
                vifPackets: batches(name, t)?.packets)
        }
        return MeterReading(cpuHz: 2_000_000_000, domains: counters)
    }
}

/// Records what the runner asked of the host.
final class RecordingExperimentHost: ExperimentHost {
    var calls: [String] = []
    func apply(_ plan: Plan) throws {
        let pins = plan.iovms.map { "\($0.name)@\($0.hardAffinity?.description ?? "any")" }.joined(separator: ",")
        calls.append("apply \(plan.topology) \(pins)")
    }
    func destroy(topology: String, nics: [PCIAddress]) throws { calls.append("destroy \(topology) \(nics.count) NICs") }
    func scheduler(of domains: [String]) throws -> String? { "credit" }
}

/// Running an experiment's cells against fakes: transitions, the measured window, results, resume, failures.
@Suite("Experiment runner")
struct ExperimentRunnerTests {
    struct Rig {
        let clock = FakeRunnerClock()
        let load: FakeLoadDriver
        let meter: FakeCellMeter
        let host = RecordingExperimentHost()
        let directory: URL
        let run: ExperimentRun
        var lines: [String] = []

        init(_ experiment: Experiment = Experiment.paper.table3, servers: [String: String] = ["*": "10.0.2.100:5201"]) throws {
            let plan = try ExperimentPlanner().plan(experiment.document)
            load = FakeLoadDriver(clock: clock, seconds: plan.timing.warmUpSeconds + plan.timing.durationSeconds + 0.3)
            meter = FakeCellMeter(clock: clock)
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("iovm-runner-\(UUID().uuidString)")
            run = ExperimentRun(
                plan: plan, fingerprint: ExperimentRunner.fingerprint(plan), startedAt: 0, host: "test", iovmVersion: "0", servers: servers,
                onExit: "keep")
        }

        func runner(_ run: ExperimentRun? = nil) -> ExperimentRunner {
            ExperimentRunner(
                run: run ?? self.run, directory: directory, host: host, load: load, meter: meter, clock: clock, logger: Logger(label: "test"))
        }

        func results() throws -> [ExperimentCellResult] {
            let cells = directory.appendingPathComponent(ExperimentRunLayout.cellsDirectory)
            return try FileManager.default.contentsOfDirectory(atPath: cells.path).sorted().map {
                try JSONDecoder().decode(ExperimentCellResult.self, from: Data(contentsOf: cells.appendingPathComponent($0)))
            }
        }
    }

    @Test("Table 3: every cell measured once, in order; one create, live changes between variants, nothing between directions")
    func table3() throws {
        let rig = try Rig()
        let (run, recorded) = try ExperimentRunner.prepare(directory: rig.directory, run: rig.run, resume: false)
        let summary = try rig.runner(run).runCells(skipping: recorded, onExit: .keep)
        let plan = run.plan
        #expect(summary.measured == plan.cells.map(\.index))
        let results = try rig.results()
        #expect(results.map(\.cell) == plan.cells.map(\.index))
        // One destroy + apply at the start, then an apply per live transition, none for `same`.
        let live = plan.cells.filter { $0.transition.kind == .live }.count
        #expect(rig.host.calls.first == "destroy paper-hybrid 4 NICs")
        #expect(rig.host.calls.filter { $0.hasPrefix("apply") }.count == 1 + live)
        #expect(rig.host.calls.filter { $0.hasPrefix("destroy") }.count == 1)
        // Each cell asked every guest once, with -R exactly for Rx.
        #expect(rig.load.requests.count == plan.cells.count * 4)
        for cell in plan.cells {
            let result = try #require(results.first { $0.cell == cell.index })
            #expect(result.direction == cell.direction)
            #expect(result.settings == plan.combination(of: cell).settings)
            #expect(result.guests.map(\.guest) == ["guest1", "guest2", "guest3", "guest4"])
            #expect(result.guests.map(\.iovm) == ["iovm0", "iovm0", "iovm1", "iovm1"])
        }
        let rx = try #require(rig.load.requests.first { $0.arguments.contains("-R") })
        #expect(rx.arguments.prefix(4) == ["-c", "10.0.2.100", "-p", "5201"])
        #expect(rx.arguments.contains("-O") && rx.arguments.contains("-J"))
        #expect(rig.load.requests.filter { $0.arguments.contains("-R") }.count == plan.cells.filter { $0.direction == .rx }.count * 4)
    }

    @Test("the window is the workload's own interval after warm-up; efficiency is payload bits per IOVM cycle")
    func figures() throws {
        let rig = try Rig()
        let (run, _) = try ExperimentRunner.prepare(directory: rig.directory, run: rig.run, resume: false)
        _ = try rig.runner(run).runCells(skipping: [], onExit: .keep)
        let result = try #require(try rig.results().first)
        let timing = run.plan.timing
        // The window starts after the warm-up and the start slack, and ends with the planned duration.
        #expect(abs(result.windowSeconds - (timing.durationSeconds - 1)) < 0.6)
        #expect(result.iovms.map(\.iovm) == ["iovm0", "iovm1"])
        for iovm in result.iovms { #expect(abs(iovm.cpuPercent - 50) < 1) }
        // 4 guests x 400 Mbit/s over 2 IOVMs at half a core of 2 GHz each: 1600e6 / 2e9 = 0.8 bits/Hz.
        #expect(abs(result.payloadMbps - 1600) < 1)
        #expect(abs(try #require(result.efficiency) - 0.8) < 0.01)
        // L2: each IOVM's NICs moved 800 Mbit/s received (Rx) or 400 sent (Tx).
        let expectedL2 = result.direction == .rx ? 1600.0 : 800.0
        #expect(abs(result.l2Mbps - expectedL2) / expectedL2 < 0.02)
        #expect(result.scheduler == "credit")
        // How close the waits came to their limits.
        #expect(result.notes.first == "agents ready after 0.0 s of the 180 s allowed")
        #expect(result.notes.contains { $0.hasPrefix("results ") && $0.hasSuffix("after the planned end, of the 61 s allowed") })
    }

    @Test("the window is recorded every second: each interval's CPU and L2 as the cell's; the last sample is the window's end")
    func recording() throws {
        let rig = try Rig()
        let (run, _) = try ExperimentRunner.prepare(directory: rig.directory, run: rig.run, resume: false)
        _ = try rig.runner(run).runCells(skipping: [], onExit: .keep)
        let result = try #require(try rig.results().first)
        let samples = try #require(result.samples)
        #expect(samples.count == Int(result.windowSeconds.rounded(.down)), "\(samples.map(\.seconds))")
        #expect(samples.last?.seconds == result.windowSeconds)
        #expect(zip(samples, samples.dropFirst()).allSatisfy { $0.seconds < $1.seconds })
        let intervals = result.intervals
        #expect(intervals.count == samples.count * 2)
        let expectedL2 = result.direction == .rx ? 800.0 : 400.0
        for interval in intervals {
            #expect(abs(interval.cpuPercent - 50) < 1, "\(interval)")
            #expect(abs(try #require(interval.l2Mbps) - expectedL2) / expectedL2 < 0.02, "\(interval)")
        }
        // Off: no samples in the file.
        let off = try Rig()
        let (offRun, _) = try ExperimentRunner.prepare(directory: off.directory, run: off.run, resume: false)
        let runner = off.runner(offRun)
        runner.sampleInterval = 0
        _ = try runner.runCells(skipping: [], onExit: .keep)
        #expect(try off.results().allSatisfy { $0.samples == nil && $0.intervals.isEmpty })
    }

    @Test("the batch size: each IOVM's vif packets per notification in the window, pooled over the IOVMs for the cell")
    func batchSize() throws {
        let rig = try Rig()
        // iovm0: 16 packets per notification; iovm1: 4 (its notifications twice as frequent, its packets half).
        rig.meter.batches = { name, t in
            name == "iovm0" ? (UInt64(t * 1_000), UInt64(t * 16_000)) : (UInt64(t * 2_000), UInt64(t * 8_000))
        }
        let (run, _) = try ExperimentRunner.prepare(directory: rig.directory, run: rig.run, resume: false)
        var lines: [String] = []
        let runner = rig.runner(run)
        runner.progress = { lines.append($0) }
        _ = try runner.runCells(skipping: [], onExit: .keep)
        let result = try #require(try rig.results().first)
        let window = result.windowSeconds
        let iovm0 = try #require(result.iovms.first { $0.iovm == "iovm0" })
        let iovm1 = try #require(result.iovms.first { $0.iovm == "iovm1" })
        #expect(abs(Double(try #require(iovm0.notifications)) - window * 1_000) <= 2)
        #expect(abs(Double(try #require(iovm0.vifPackets)) - window * 16_000) <= 2)
        #expect(abs(try #require(iovm0.packetsPerNotification) - 16) < 0.01)
        #expect(abs(try #require(iovm1.packetsPerNotification) - 4) < 0.01)
        // Pooled: (16 + 8) thousand packets over (1 + 2) thousand notifications a second.
        #expect(abs(try #require(result.packetsPerNotification) - 8) < 0.01)
        #expect(lines.contains { $0.contains(", packets per notification: iovm0 16.0, iovm1 4.0 | ") })
    }

    @Test("the batch size is unknown without notifications, where they went backwards, and where the window saw none")
    func batchSizeUnknown() throws {
        let rig = try Rig()
        rig.meter.batches = { name, t in
            switch name {
            case "iovm0": (UInt64(1e9 - t * 1_000), UInt64(t * 16_000))  // backwards: a vif reconnected
            default: (7, UInt64(t * 100))  // no notification in the window
            }
        }
        let (run, _) = try ExperimentRunner.prepare(directory: rig.directory, run: rig.run, resume: false)
        _ = try rig.runner(run).runCells(skipping: [], onExit: .keep)
        let result = try #require(try rig.results().first)
        let iovm0 = try #require(result.iovms.first { $0.iovm == "iovm0" })
        let iovm1 = try #require(result.iovms.first { $0.iovm == "iovm1" })
        #expect(iovm0.notifications == nil && iovm0.vifPackets == nil && iovm0.packetsPerNotification == nil)
        #expect(iovm1.notifications == 0 && iovm1.packetsPerNotification == nil)
        #expect(result.packetsPerNotification == nil)

        // No agent publishes notifications: the cell file has none of the new keys, as before.
        let plain = try Rig()
        let (plainRun, _) = try ExperimentRunner.prepare(directory: plain.directory, run: plain.run, resume: false)
        _ = try plain.runner(plainRun).runCells(skipping: [], onExit: .keep)
        let file = plain.directory.appendingPathComponent(ExperimentRunLayout.cellFile(plainRun.plan.cells[0].index))
        let text = try String(contentsOf: file, encoding: .utf8)
        #expect(!text.contains("notifications") && !text.contains("vifPackets") && !text.contains("packetsPerNotification"))
        let decoded = try #require(try plain.results().first)
        #expect(decoded.iovms.allSatisfy { $0.notifications == nil && $0.packetsPerNotification == nil } && decoded.packetsPerNotification == nil)
    }

    @Test("a starved dom0 whose reads take seconds: the window runs from before each read; L2 over the agents' own clock")
    func slowReads() throws {
        let rig = try Rig()
        rig.meter.readCost = 3
        let (run, _) = try ExperimentRunner.prepare(directory: rig.directory, run: rig.run, resume: false)
        _ = try rig.runner(run).runCells(skipping: [], onExit: .keep)
        let result = try #require(try rig.results().first)
        for iovm in result.iovms {
            #expect(abs(iovm.cpuPercent - 50) < 1, "\(iovm)")
            #expect(iovm.counterSeconds.map { abs($0 - result.windowSeconds) < 0.01 } == true)
        }
        #expect(abs(result.payloadMbps - 1600) < 1)
        #expect(abs(try #require(result.efficiency) - 0.8) < 0.01)
        #expect(result.notes.contains { $0.hasPrefix("reading the counters took 3.0 s and 3.0 s") })
        // Slow reads inside the window: none started that could delay its last one past the planned end.
        let timing = run.plan.timing
        #expect(result.windowSeconds <= timing.durationSeconds - 1 + 0.5, "\(result.windowSeconds)")
        let samples = try #require(result.samples)
        #expect(samples.count > 1 && samples.count < Int(timing.durationSeconds) / 3 + 2, "\(samples.map(\.seconds))")
        #expect(result.notes.contains("the slowest reading inside the window took 3.0 s"))
        #expect(!result.notes.contains { $0.contains("after the workload's planned end") }, "\(result.notes)")
    }

    @Test("the centralized baseline runs: dom0 is what is measured (no counters agent there: L2 unknown), its NICs are the topology's")
    func centralizedMeasuresDom0() throws {
        let rig = try Rig(Experiment.paper.figures6and7)
        rig.meter.unpublished = ["Domain-0"]
        let (run, recorded) = try ExperimentRunner.prepare(directory: rig.directory, run: rig.run, resume: false)
        _ = try rig.runner(run).runCells(skipping: recorded, onExit: .keep)
        // Destroy is told every NIC of every combination: the centralized ones carry dom0's bridges.
        #expect(rig.host.calls.first == "destroy paper-monolithic 3 NICs")
        let centralized = try rig.results().filter { $0.settings.configuration == "centralized" }
        #expect(centralized.count == run.plan.cells.filter { run.plan.combination(of: $0).settings.configuration == "centralized" }.count)
        for result in centralized {
            #expect(result.iovms.map(\.iovm) == ["Domain-0"])
            #expect(result.guests.allSatisfy { $0.iovm == "Domain-0" })
            #expect(result.efficiency != nil)
            #expect(result.l2Efficiency == nil)
            #expect(result.notes.contains("Domain-0: no traffic counters (L2 figures unknown)"))
            #expect(result.samples == nil)
        }
    }

    @Test("--resume runs only the cells not recorded, starting with a fresh apply; another experiment is refused")
    func resume() throws {
        let rig = try Rig()
        let (run, _) = try ExperimentRunner.prepare(directory: rig.directory, run: rig.run, resume: false)
        let runner = rig.runner(run)
        var count = 0
        runner.progress = { line in if line.contains("cells, ETA") { count += 1 } }
        runner.shouldStop = { count >= 3 }
        #expect(throws: ExperimentRunError.self) { try runner.runCells(skipping: [], onExit: .destroy) }
        #expect(try rig.results().count == 3)
        #expect(rig.host.calls.last?.hasPrefix("destroy") == true)  // --on-exit destroy, also when stopped

        rig.host.calls = []
        let (again, recorded) = try ExperimentRunner.prepare(directory: rig.directory, run: rig.run, resume: true)
        #expect(recorded == Set(run.plan.cells.prefix(3).map(\.index)))
        let summary = try rig.runner(again).runCells(skipping: recorded, onExit: .keep)
        #expect(summary.measured == run.plan.cells.dropFirst(3).map(\.index))
        #expect(summary.skipped == run.plan.cells.prefix(3).map(\.index))
        #expect(rig.host.calls.first == "destroy paper-hybrid 4 NICs")
        #expect(rig.host.calls.dropFirst().first?.hasPrefix("apply paper-hybrid") == true)
        #expect(try rig.results().count == run.plan.cells.count)

        // The same directory with another experiment, and a fresh run over a recorded one: refused.
        var other = rig.run
        other.fingerprint = "different"
        #expect(throws: ExperimentRunError.self) { try ExperimentRunner.prepare(directory: rig.directory, run: other, resume: true) }
        #expect(throws: ExperimentRunError.self) { try ExperimentRunner.prepare(directory: rig.directory, run: rig.run, resume: false) }
    }

    @Test("a guest without the load agent: a timeout naming the guest, nothing recorded")
    func missingAgent() throws {
        let rig = try Rig()
        rig.load.missing = ["guest3"]
        let (run, _) = try ExperimentRunner.prepare(directory: rig.directory, run: rig.run, resume: false)
        let runner = rig.runner(run)
        runner.timeouts.ready = 30
        let error = #expect(throws: ExperimentRunError.self) { try runner.runCells(skipping: [], onExit: .keep) }
        #expect(error?.description.contains("guest guest3 has no load agent") == true)
        #expect(error?.description.contains("30 s") == true)
        #expect(try rig.results().isEmpty)
    }

    @Test("a failing workload is tried again, then stops the run naming the guest and iperf3's error")
    func failingWorkload() throws {
        let rig = try Rig()
        rig.load.failing = ["guest2": "unable to connect to server: Connection refused"]
        let (run, _) = try ExperimentRunner.prepare(directory: rig.directory, run: rig.run, resume: false)
        let error = #expect(throws: ExperimentRunError.self) { try rig.runner(run).runCells(skipping: [], onExit: .keep) }
        #expect(error?.description.contains("guest guest2") == true)
        #expect(error?.description.contains("Connection refused") == true)
        #expect(Set(rig.load.requests.map(\.id)).count == 2)  // two attempts, each its own request id
        #expect(try rig.results().isEmpty)
    }

    @Test("no server for a guest is refused before anything runs")
    func noServer() throws {
        let rig = try Rig(servers: ["guest1": "10.0.0.1"])
        let (run, _) = try ExperimentRunner.prepare(directory: rig.directory, run: rig.run, resume: false)
        let error = #expect(throws: ExperimentRunError.self) { try rig.runner(run).runCells(skipping: [], onExit: .keep) }
        #expect(error?.description.contains("no iperf3 server for guest guest2") == true)
        #expect(rig.load.requests.allSatisfy { $0.guest == "guest1" })
    }

    @Test("the fingerprint ignores where things were written: a comment added, or another checkout, is the same experiment")
    func fingerprintWithoutSources() throws {
        let plan = try ExperimentPlanner().plan(Experiment.paper.table3.document)
        var moved = plan
        moved.source = SourceLocation(file: "/elsewhere/table3.swift", line: 99)
        moved.combinations[0].topology.source = SourceLocation(file: "/elsewhere/table3.swift", line: 7)
        #expect(ExperimentRunner.fingerprint(moved) == ExperimentRunner.fingerprint(plan))
        var other = plan
        other.seed &+= 1
        #expect(ExperimentRunner.fingerprint(other) != ExperimentRunner.fingerprint(plan))
    }

    @Test("iperf3's JSON: sums, --bidir's reverse sums, and its error")
    func iperfSummary() throws {
        let bidir = try IperfSummary(
            json: """
                {"end": {"sum_received": {"bytes": 1000, "seconds": 10.0}, "sum_received_bidir_reverse": {"bytes": 500, "seconds": 10.0},
                 "sum_sent": {"retransmits": 2}, "sum_sent_bidir_reverse": {"retransmits": 5}}}
                """)
        #expect(bidir == IperfSummary(bytes: 1500, seconds: 10, retransmits: 7))
        #expect(throws: IperfSummary.Unreadable.self) { try IperfSummary(json: "{\"error\": \"busy\"}") }
        #expect(throws: IperfSummary.Unreadable.self) { try IperfSummary(json: "") }
    }
}
