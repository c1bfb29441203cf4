import Foundation
import IOVMCore
import IOVMDescription
import IOVMWireFormat
import Logging
import Testing

@testable import IOVMControl

/// `Workload.command` run for real by /bin/sh: placeholders, environment, output, failures, cancelling a process group.
@Suite("Command load driver")
struct CommandLoadDriverTests {
    static let json = #"{"end": {"sum_received": {"bytes": 125000000, "seconds": 2.0}, "sum_sent": {"retransmits": 7}}}"#

    static func request(_ guest: String = "guest1", id: Int = 7, server: String? = "10.0.2.100:5201") -> LoadRequest {
        LoadRequest(
            guest: guest, id: id, direction: .rx, durationSeconds: 20, warmUpSeconds: 5, nic: "0000:00:10.0", server: server,
            iperf3Arguments: ["-c", "10.0.2.100", "-p", "5201", "-t", "20", "-O", "5", "-P", "4", "-l", "1024", "-J", "-i", "0", "-R"])
    }

    /// Polls until the outcome is there or `seconds` pass.
    static func wait(_ driver: CommandLoadDriver, _ guest: String = "guest1", id: Int = 7, seconds: Double = 10) -> (LoadOutcome?, Double) {
        let start = Date()
        while Date().timeIntervalSince(start) < seconds {
            if let outcome = try? driver.outcome(guest: guest, id: id) { return (outcome, Date().timeIntervalSince(start)) }
            usleep(20_000)
        }
        return (nil, seconds)
    }

    @Test("placeholders are filled in shell-quoted; {iperf3} word by word; the IOVM_ variables say the same")
    func expansion() throws {
        let driver = CommandLoadDriver(template: "ssh root@{guest} iperf3 {iperf3} # {nic} {direction} {duration} {warmup} {server} {{x}")
        #expect(
            driver.command(for: Self.request())
                == "ssh root@guest1 iperf3 -c 10.0.2.100 -p 5201 -t 20 -O 5 -P 4 -l 1024 -J -i 0 -R # 0000:00:10.0 rx 20 5 10.0.2.100:5201 {x}")
        #expect(
            CommandLoadDriver(template: "ssh -o BatchMode=yes root@{guest} timeout $(({warmup} + {duration} + 10)) iperf3 -J").command(
                for: Self.request()) == "ssh -o BatchMode=yes root@guest1 timeout $((5 + 20 + 10)) iperf3 -J")
        var odd = Self.request("it's a guest")
        odd.iperf3Arguments = ["a b", "$(reboot)"]
        #expect(CommandLoadDriver(template: "echo {guest} {iperf3}").command(for: odd) == #"echo 'it'\''s a guest' 'a b' '$(reboot)'"#)

        let echo = CommandLoadDriver(template: #"printf '%s|%s|%s|%s' {guest} "$IOVM_NIC" "$IOVM_DIRECTION" "$IOVM_IPERF3""#)
        try echo.start(odd)
        let (outcome, _) = Self.wait(echo, "it's a guest")
        #expect(outcome?.status == 0)
        #expect(outcome?.output == "it's a guest|0000:00:10.0|rx|a b $(reboot)")
    }

    @Test("the command's stdout is the result; the runner reads iperf3's JSON from it")
    func output() throws {
        let driver = CommandLoadDriver(template: "printf '%s' '\(Self.json)'; echo warming up >&2")
        #expect(try driver.isReady(guest: "guest1"))
        #expect(try driver.outcome(guest: "guest1", id: 7) == nil)
        try driver.start(Self.request())
        let (outcome, _) = Self.wait(driver)
        let result = try #require(outcome)
        #expect(result.status == 0)
        #expect(result.errorOutput == "warming up\n")
        let summary = try IperfSummary(json: result.output)
        #expect(summary.bytes == 125_000_000)
        #expect(summary.retransmits == 7)
        // Another id is not this one's.
        #expect(try driver.outcome(guest: "guest1", id: 8) == nil)
    }

    @Test("a failing command: its status and the end of its stderr")
    func failure() throws {
        let driver = CommandLoadDriver(template: "head -c 5000 /dev/zero | tr '\\\\0' x >&2; echo; echo 'ssh: connect to host guest1: No route' >&2; exit 255")
        try driver.start(Self.request())
        let (outcome, _) = Self.wait(driver)
        let result = try #require(outcome)
        #expect(result.status == 255)
        #expect(result.output == "\n")
        #expect(result.errorOutput.count == CommandLoadDriver.errorTail)
        #expect(result.errorOutput.hasSuffix("ssh: connect to host guest1: No route\n"))
    }

    @Test("cancel stops the whole process group: SIGTERM, then SIGKILL for what ignores it")
    func cancel() throws {
        let pidFile = FileManager.default.temporaryDirectory.appending(path: "iovm-cancel-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: pidFile) }
        // A child that ignores SIGTERM, in the background, and the shell waiting on it.
        let driver = CommandLoadDriver(template: "(trap '' TERM; exec sleep 30) & echo $! > \(pidFile); sleep 30; wait")
        driver.killAfter = 0.5
        try driver.start(Self.request())
        var child: Int32?
        for _ in 0..<100 where child == nil {
            usleep(20_000)
            child = (try? String(contentsOfFile: pidFile, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        let pid = try #require(child, "the command did not start")
        #expect(try driver.outcome(guest: "guest1", id: 7) == nil)
        try driver.cancel(guest: "guest1", id: 7)
        let (outcome, seconds) = Self.wait(driver, seconds: 10)
        let result = try #require(outcome, "still running 10 s after cancel")
        print("cancelled command ended \(String(format: "%.2f", seconds)) s after cancel (SIGKILL after 0.5 s)")
        #expect(result.status == 128 + Int(SIGTERM))
        // The background child ignored SIGTERM: it was killed with the group, not left running.
        var gone = false
        for _ in 0..<100 where !gone {
            gone = kill(pid, 0) != 0 || Self.isZombie(pid)
            if !gone { usleep(20_000) }
        }
        #expect(gone, "the child \(pid) that ignored SIGTERM is still running")
    }

    /// Whether `pid` has exited and waits for its parent (a zombie still answers kill(pid, 0)).
    static func isZombie(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return true }
        return stat[stat.index(close, offsetBy: 2)...].hasPrefix("Z")
    }

    @Test("the runner with a command workload: no server needed, the template's output measured")
    func runner() throws {
        let base = Topology("one") {
            Host(cores: 4, memory: .gib(4))
            Defaults(kernel: "/k", ramdisk: "/r")
            Configuration.monolithic()
            NIC("0000:00:10.0")
            Guest("g1", nic: "0000:00:10.0")
        }
        let experiment = Experiment("command") {
            Base(base)
            Directions(.tx)
            Workload.command("sleep {duration}; printf '%s' '\(Self.json)'")
            Timing(duration: .seconds(1), warmUp: .seconds(0), repetitions: 1)
        }
        let plan = try ExperimentPlanner().plan(experiment.document)
        let directory = FileManager.default.temporaryDirectory.appending(path: "iovm-command-run-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = ExperimentRun(
            plan: plan, fingerprint: ExperimentRunner.fingerprint(plan), startedAt: 0, host: "test", iovmVersion: "0", servers: [:], onExit: "keep")
        let (prepared, recorded) = try ExperimentRunner.prepare(directory: directory, run: run, resume: false)
        let clock = SystemRunnerClock()
        let meter = FakeCellMeter(clock: FakeRunnerClock())
        let runner = ExperimentRunner(
            run: prepared, directory: directory, host: RecordingExperimentHost(), load: CommandLoadDriver(template: plan.workload.template!),
            meter: meter, clock: clock, logger: Logger(label: "test"))
        runner.timeouts.startSlack = 0.1
        let summary = try runner.runCells(skipping: recorded, onExit: .keep)
        #expect(summary.measured == [1])
        let cell = try JSONDecoder().decode(
            ExperimentCellResult.self, from: Data(contentsOf: directory.appending(path: ExperimentRunLayout.cellFile(1))))
        #expect(cell.guests.map(\.guest) == ["g1"])
        #expect(cell.guests.first?.bytes == 125_000_000)
        #expect(cell.guests.first?.nic == "0000:00:10.0")
    }
}
