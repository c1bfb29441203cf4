import Foundation
import IOVMCore
import Testing

/// Runs the built `iovm` binary as an operator would and checks output and exit codes.
@Suite("iovm command line", .serialized)
struct CLITests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The `iovm` executable beside the test bundle (SwiftPM's build directory).
    static var binary: URL? {
        let directory = URL(fileURLWithPath: Bundle.main.executablePath ?? CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [directory, directory.deletingLastPathComponent()] {
            let url = candidate.appending(path: "iovm")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        return nil
    }

    func iovm(_ arguments: String..., stdin: String? = nil) throws -> Result {
        try iovm(arguments, stdin: stdin)
    }

    func iovm(_ arguments: [String], stdin: String? = nil, environment extra: [String: String] = [:]) throws -> Result {
        let binary = try #require(Self.binary, "build the iovm product first (`swift build`; scripts/test does)")
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.currentDirectoryURL = Self.root
        var environment = ProcessInfo.processInfo.environment
        environment["IOVM_CACHE_DIR"] = FileManager.default.temporaryDirectory.appending(path: "iovm-cli-test-cache").path
        environment.merge(extra) { _, new in new }
        process.environment = environment
        let out = Pipe()
        let err = Pipe()
        let input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
            stderr: String(decoding: stderr, as: UTF8.self))
    }

    /// Xen's libraries are loaded on first use (CXenShim's trampolines), not at start-up: the dynamic loader's own
    /// trace of a command that never talks to Xen names libc and no Xen library (issue 16).
    @Test func commandsThatNeverTalkToXenLoadNoXenLibrary() throws {
        let synth = try iovm("synth", "Examples/hybrid.swift")
        #expect(synth.status == 0, "\(synth.stderr)")
        for arguments in [["--version"], ["plan", "--topology-json", "-", "--host-cores", "8", "--json"]] {
            let result = try iovm(arguments, stdin: synth.stdout, environment: ["LD_DEBUG": "files"])
            #expect(result.status == 0, "\(arguments): \(result.stderr.suffix(2000))")
            let ownLines = result.stderr.split(separator: "\n").filter { $0.contains("file=") }
            #expect(ownLines.contains { $0.contains("file=libc.so.6") }, "\(arguments): LD_DEBUG printed no libc: \(result.stderr.prefix(2000))")
            let xen = ownLines.filter { $0.contains("libxen") || $0.contains("libxl") }
            #expect(xen.isEmpty, "\(arguments) loaded \(xen)")
        }
    }

    @Test func planJSONOfTheHybridExample() throws {
        let result = try iovm("plan", "Examples/hybrid.swift", "--json")
        #expect(result.status == 0, "\(result.stderr)")
        let plan = try JSONDecoder().decode(Plan.self, from: Data(result.stdout.utf8))
        #expect(plan.topology == "paper-hybrid")
        #expect(plan.configuration == .hybrid)
        #expect(plan.iovms.map(\.name) == ["iovm0", "iovm1"])
        #expect(plan.iovms.map { $0.nics.count } == [2, 2])
        #expect(plan.guests.count == 4)
        #expect(plan.domains.allSatisfy { $0.weight == 256 })  // Table 3 "Default": credit's default weights
    }

    @Test func planTableShowsDomainsCoresNICsAndWeights() throws {
        let result = try iovm("plan", "Examples/hybrid-pinned.swift")
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        let iovm0 = try #require(lines.first { $0.hasPrefix("iovm0 ") })
        #expect(
            iovm0.split(separator: " ", omittingEmptySubsequences: true).map(String.init).prefix(8)
                == ["iovm0", "IOVM", "1", "256", "MiB", "3", "Pool-0", "512"])
        #expect(iovm0.contains("0000:00:10.0 (br0), 0000:00:11.0 (br1)"))
        #expect(lines.contains("  core 3: iovm0"))
        #expect(lines.contains("  core 2: iovm1"))
        #expect(lines.contains("  core 0: guest1, guest2, guest3, guest4"))
    }

    @Test func typeErrorExits65WithLineAndColumn() throws {
        let result = try iovm("plan", "Examples/invalid/type-error.swift")
        #expect(result.status == 65)
        #expect(result.stderr.contains("Examples/invalid/type-error.swift:9:29: error: cannot convert value of type 'String'"), "\(result.stderr)")
        #expect(result.stdout.isEmpty)
    }

    @Test func mistakesExit65WithEveryError() throws {
        let result = try iovm("plan", "Examples/invalid/mistakes.swift")
        #expect(result.status == 65)
        for fragment in [
            "mistakes.swift:10: error: NIC \"0000:00:10.0.1\"", "mistakes.swift:13: error: NIC 0000:00:10.0 is claimed twice",
            "mistakes.swift:15: error: guest guest1 is backed by unknown IOVM \"net-c\"",
            "mistakes.swift:16: error: guest guest2 has 8 vCPUs", "mistakes.swift:17: error: duplicate domain name \"guest2\"",
            "mistakes.swift:6: error: the domains need", "6 errors in the topology; nothing was touched.",
        ] {
            #expect(result.stderr.contains(fragment), "missing \(fragment) in \(result.stderr)")
        }
    }

    @Test func usageErrorsExit64() throws {
        #expect(try iovm("plan").status == 64)
        #expect(try iovm("plan", "Examples/hybrid.swift", "--host-cores", "0").status == 64)
        #expect(try iovm("frobnicate").status == 64)
        #expect(try iovm("kernel-config", "--nic-driver", "tulip").status == 64)
    }

    @Test("pin and weight refuse bad targets with a usage error, before opening the host")
    func liveVerbsValidateTheirTargets() throws {
        let cases: [([String], String)] = [
            (["pin", "iovm0"], "iovm0: give its cores as iovm0=CORES or with --cpus"),
            (["pin", "iovm0=all"], "iovm0=all: cores must be listed; use `iovm unpin` for all"),
            (["pin", "iovm0=9-2"], "iovm0=9-2: invalid CPU list"),
            (["pin", "iovm0", "--cpus", "^0"], #"iovm0: "^0" names no core"#),
            (["pin", "iovm0="], #"iovm0=: "" names no core"#),
            (["experiment", "Examples/experiment.swift", "--server", "a:99999"], #"--server a:99999: "a:99999" is not HOST or HOST:PORT"#),
            (["pin"], "Missing expected argument"),
            (["weight", "iovm0", "big"], "the last argument must be the weight (a number), not big"),
            (["weight", "iovm0=70000"], "iovm0: weight must be 1-65535"),
            (["weight", "iovm0=256", "512"], "weight 512 is for no domain: every one has its own"),
            (["weight", "512"], "name a domain and a weight: DOMAIN... WEIGHT, or DOMAIN=WEIGHT"),
        ]
        for (arguments, message) in cases {
            let process = Process()
            process.executableURL = try #require(Self.binary)
            process.arguments = arguments
            let err = Pipe()
            process.standardError = err
            process.standardOutput = Pipe()
            try process.run()
            let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 64, "\(arguments)")
            #expect(stderr.contains(message), "\(arguments): \(stderr)")
        }
    }

    @Test func missingFileExits65() throws {
        let result = try iovm("plan", "Examples/nope.swift")
        #expect(result.status == 65)
        #expect(result.stderr.contains("Examples/nope.swift: error: not a usable topology document: no such readable file"))
    }

    @Test func synthJSONPlansTheSameWithoutSwift() throws {
        let synth = try iovm("synth", "Examples/multiple-small.swift")
        #expect(synth.status == 0, "\(synth.stderr)")
        let direct = try iovm("plan", "Examples/multiple-small.swift", "--json")
        let viaJSON = try iovm("plan", "--topology-json", "-", "--json", stdin: synth.stdout)
        #expect(viaJSON.status == 0, "\(viaJSON.stderr)")
        #expect(viaJSON.stdout == direct.stdout)
        let file = FileManager.default.temporaryDirectory.appending(path: "iovm-synth-\(UUID().uuidString).json")
        try synth.stdout.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        #expect(try iovm("plan", file.path, "--json").stdout == direct.stdout)
    }

    @Test func hostOverrideReplansForFewerCores() throws {
        let result = try iovm("plan", "Examples/hybrid-pinned.swift", "--host-cores", "2")
        #expect(result.status == 65)
        #expect(result.stderr.contains("hybrid-pinned.swift:14: error: hybrid pinning gives each IOVM a core of its own"), "\(result.stderr)")
    }

    @Test func planShowsTheSchedulerAndItsPool() throws {
        // Pool-0 runs another scheduler: every domain in an rtds cpupool, with its reservation.
        let other = try iovm("plan", "Examples/rtds.swift", "--host-scheduler", "credit2")
        #expect(other.status == 0, "\(other.stderr)")
        let lines = other.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("  host           4 cores, 4096 MiB, Pool-0 scheduler credit2, cores 0 reserved for dom0"))
        #expect(lines.contains("  scheduler      rtds in cpupool iovm-rtds (6 domains)"))
        #expect(lines.contains("cpupools: iovm-rtds (rtds, cores 1-3)"))
        #expect(lines.contains("  iovm0: period 10000 us, budget 4000 us, extratime"))
        #expect(lines.contains("  guest4: period 10000 us, budget 2000 us, extratime"))
        // Pool-0 runs it (off Xen the file's scheduler is assumed): no pool, no scheduler line.
        let same = try iovm("plan", "Examples/rtds.swift", "--host-scheduler", "rtds")
        #expect(same.status == 0, "\(same.stderr)")
        #expect(!same.stdout.contains("cpupools:") && !same.stdout.contains("  scheduler "))
        #expect(same.stdout.contains("Pool-0 scheduler rtds"))
        // The paper's credit topologies plan as before on a credit host; on credit2 hybrid pinning leaves dom0 no core.
        #expect(try iovm("plan", "Examples/hybrid-pinned.swift", "--json", "--host-scheduler", "credit").stdout == iovm("plan", "Examples/hybrid-pinned.swift", "--json").stdout)
        let refused = try iovm("plan", "Examples/hybrid-pinned.swift", "--host-scheduler", "credit2")
        #expect(refused.status == 65)
        #expect(
            refused.stderr.contains("hybrid-pinned.swift:8: error: the host's Pool-0 runs credit2, so the domains would run in cpupool iovm-credit under credit"),
            "\(refused.stderr)")
        #expect(try iovm("plan", "Examples/rtds.swift", "--host-scheduler", "sedf").status == 64)
    }

    @Test func renderWritesParsableFiles() throws {
        let out = FileManager.default.temporaryDirectory.appending(path: "iovm-render-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let result = try iovm("render", "Examples/explicit.swift", "--out", out.path)
        #expect(result.status == 0, "\(result.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: out.path).sorted()
        #expect(
            files == [
                "batch.cfg", "batch.json", "db.cfg", "db.json", "net-a.cfg", "net-a.json", "net-b.cfg", "net-b.json",
                "plan.json", "web.cfg", "web.json",
            ])
        let netA = try String(contentsOf: out.appending(path: "net-a.cfg"), encoding: .utf8)
        #expect(netA.contains("pci = [ '0000:00:10.0', '0000:00:11.0' ]"))
        #expect(netA.contains("extra = \"console=hvc0 iovm=1\""))
    }

    @Test func connectRefusesAHostItCannotDriveNamingIt() throws {
        // A libvirt without the Xen driver (libvirt's own test driver, no daemon needed).
        let test = try iovm("status", "--connect", "test:///default")
        #expect(test.status == 1)
        #expect(test.stderr.contains("connect to test:///default failed: its libvirt driver is TEST, not Xen's libxl driver"), "\(test.stderr)")
        // An unreachable host: the error names it; the plan is never applied anywhere.
        let unreachable = try iovm("apply", "Examples/explicit.swift", "--connect", "xen+ssh://root@127.0.0.1:1/system?no_verify=1", "--host-cores", "8")
        #expect(unreachable.status == 1)
        #expect(unreachable.stderr.contains("connect to xen+ssh://root@127.0.0.1:1/system?no_verify=1 failed"), "\(unreachable.stderr)")
        #expect(unreachable.stderr.contains("127.0.0.1 port 1"), "\(unreachable.stderr)")
        for verb in ["pin", "weight"] {
            let live = try iovm(verb, "iovm0=1", "--connect", "test:///default")
            #expect(live.status == 1, "\(verb): \(live.stderr)")
            #expect(live.stderr.contains("its libvirt driver is TEST"), "\(verb): \(live.stderr)")
        }
        let monitor = try iovm("monitor", "--connect", "test:///default", "--iovm", "iovm0", "--count", "1")
        #expect(monitor.status == 1)
        #expect(monitor.stderr.contains("its libvirt driver is TEST"), "\(monitor.stderr)")
        let replay = try iovm("monitor", "--connect", "test:///default", "--replay", "/nonexistent")
        #expect(replay.status == 64)
        #expect(replay.stderr.contains("--replay reads a recording, not a host"), "\(replay.stderr)")
        let doctor = try iovm("doctor", "--connect", "test:///default")
        #expect(doctor.status == 1)
        #expect(doctor.stdout.contains("libvirt driver  FAILED  test:///default runs libvirt's TEST driver"), "\(doctor.stdout)")
    }

    /// A topology over two hosts: `plan` prints each host's share; `status --on-host` takes one, and only with a file.
    @Test func aTopologyOverTwoHostsIsPlannedPerHostAndStatusTakesOneHost() throws {
        let plan = try iovm("plan", "Examples/two-hosts.swift", "--images", "/nonexistent")
        #expect(plan.status == 0, "\(plan.stderr)")
        let lines = plan.stdout.split(separator: "\n").map(String.init)
        let hosts = lines.filter { $0.hasPrefix("Host ") }
        #expect(
            hosts == [
                "Host xen-a (libvirt: xen+ssh://root@xen-a.example.org/system?keyfile=/root/.ssh/iovm)",
                "Host xen-b (libvirt: xen+ssh://root@xen-b.example.org/system?keyfile=/root/.ssh/iovm)",
            ])
        // Each host's IOVM has that host's two NICs (the same addresses on both).
        #expect(lines.contains { $0.contains("iovm0   IOVM") && $0.contains("0000:03:00.0 (br0), 0000:04:00.0 (br1)") }, "\(plan.stdout)")
        #expect(lines.contains { $0.contains("iovm1   IOVM") && $0.contains("0000:03:00.0 (br0), 0000:04:00.0 (br1)") }, "\(plan.stdout)")
        let unknown = try iovm("status", "Examples/two-hosts.swift", "--on-host", "xen-z")
        #expect(unknown.status == 65)
        #expect(unknown.stderr.contains("--on-host xen-z: the topology has no such host (hosts: xen-a, xen-b)"), "\(unknown.stderr)")
        let noFile = try iovm("status", "--on-host", "xen-b")
        #expect(noFile.status == 64)
        #expect(noFile.stderr.contains("--on-host names a host of a topology file"), "\(noFile.stderr)")
    }

    @Test func renderLibvirtWritesXMLOrRefusesACpupool() throws {
        let out = FileManager.default.temporaryDirectory.appending(path: "iovm-render-libvirt-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let result = try iovm("render", "Examples/explicit.swift", "--format", "libvirt", "--out", out.path)
        #expect(result.status == 0, "\(result.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: out.path).sorted()
        #expect(files == ["batch.xml", "db.xml", "net-a.xml", "net-b.xml", "web.xml"])
        #expect(result.stdout.split(separator: "\n").map { URL(fileURLWithPath: String($0)).lastPathComponent }.sorted() == files)
        let netA = try String(contentsOf: out.appending(path: "net-a.xml"), encoding: .utf8)
        #expect(netA.contains("<address domain='0x0000' bus='0x00' slot='0x10' function='0x0'/>"))
        #expect(netA.contains("<cmdline>console=hvc0 iovm=1</cmdline>"))
        #expect(result.stderr.contains("note: batch: credit cap 50 has no libvirt XML"), "\(result.stderr)")
        let pooled = out.appending(path: "pooled")
        let refused = try iovm("render", "Examples/explicit.swift", "--format", "libvirt", "--host-scheduler", "credit2", "--out", pooled.path)
        #expect(refused.status == 65)  // bad input for libvirt: refused like a bad topology
        #expect(refused.stderr.contains("libvirt's libxl driver has no cpupools: use Placement.iovmAffinity() without dedicatedPool"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: pooled.path))
    }

    @Test func kernelConfigPrintsTheFragment() throws {
        let result = try iovm("kernel-config", "--nic-driver", "e1000")
        #expect(result.status == 0)
        #expect(result.stdout.contains("CONFIG_XEN_NETDEV_BACKEND=y"))
        #expect(result.stdout.contains("CONFIG_E1000=y"))
        #expect(try iovm("kernel-config", "--list").stdout == "e1000\ne1000e\nigb\nixgbe\nvirtio\n")
    }

    /// A recorded run of one IOVM, written as `iovm monitor --record` would: 6 samples a second apart,
    /// 1 MB/s received and 0.25 MB/s sent on eth0, half a core; the agent's first write comes with
    /// the second sample (so the first interval's traffic is unknown).
    static func writeRun(_ directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let meta = #"{"formatVersion":1,"interval":1,"cpuHz":2000000000,"nominalHzNote":"nominal","started":1764100000,"iovms":["iovm0"],"label":"replayed"}"#
        try Data(meta.utf8).write(to: directory.appending(path: "meta.json"))
        var lines: [String] = []
        for k in 0..<6 {
            let published = k == 0 ? "false" : "true"
            let nics = k == 0 ? "[]" : #"[{"name":"eth0","kind":"nic","rxBytes":\#(k * 1_000_000),"txBytes":\#(k * 250_000),"rxPackets":\#(k * 700),"txPackets":\#(k * 400)}]"#
            let time = k == 0 ? "" : #","counterTime":\#(100 + k)"#
            lines.append(
                #"{"time":\#(1_764_100_000 + k),"elapsed":\#(k),"cpuHz":2000000000,"missing":[],"iovms":[{"iovm":"iovm0","domid":5,"cpuNanoseconds":\#(k * 500_000_000),"vcpus":1,"nics":\#(nics),"vifs":[],"countersPublished":\#(published)\#(time)}]}"#
            )
        }
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: directory.appending(path: "samples.jsonl"))
    }

    @Test func monitorReplayAndReportOfARecordedRun() throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "iovm-cli-run-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try Self.writeRun(directory)
        // monitor replays the samples as if live: JSON lines, then a summary with the exact totals.
        let live = try iovm("monitor", "--replay", directory.path, "--interval", "10ms", "--count", "5", "--json")
        #expect(live.status == 0, "\(live.stderr)")
        let lines = live.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.contains(#""type":"start""#) == true)
        let intervals = lines.filter { $0.contains(#""type":"interval""#) }
        #expect(intervals.count == 5)
        #expect(intervals.first?.contains(#""trafficKnown":false"#) == true)  // the agent had not written yet
        #expect(intervals.last?.contains(#""rxMbps":8"#) == true)  // 1 MB/s
        let summary = try #require(lines.last)
        #expect(summary.contains(#""type":"summary""#))
        #expect(summary.contains(#""rxBytes":4000000"#) && summary.contains(#""seconds":4"#), "\(summary)")  // writes 101→102 … 104→105
        // report: the run's means from the exact totals, the unknown interval left out.
        let report = try iovm("report", directory.path, "--format", "json")
        #expect(report.status == 0, "\(report.stderr)")
        let runs = try #require(try JSONSerialization.jsonObject(with: Data(report.stdout.utf8)) as? [[String: Any]])
        let iovm0 = try #require((runs.first?["iovms"] as? [[String: Any]])?.first)
        #expect(iovm0["meanRxMbps"] as? Double == 8)
        #expect(iovm0["meanTxMbps"] as? Double == 2)
        #expect(iovm0["unknownTrafficIntervals"] as? Int == 1)
        #expect(iovm0["rxPackets"] as? Int == 2800)
        #expect(abs((iovm0["meanCPUPercent"] as? Double ?? 0) - 50) < 1e-9)
        // 10 Mbit/s over 1e9 cycles/s
        #expect(abs((iovm0["efficiency"] as? Double ?? 0) - 0.01) < 1e-12)
        let csv = try iovm("report", directory.path, "--format", "csv")
        #expect(csv.stdout.split(separator: "\n").first?.hasSuffix("traffic_known,rx_packets,tx_packets") == true)
    }

    @Test func reportMergesTheRecordingsOfSeveralHosts() throws {
        let root = FileManager.default.temporaryDirectory.appending(path: "iovm-cli-merge-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        // xen-a's recording has no host in meta.json (as before iovm wrote one): its directory names the host.
        let a = root.appending(path: "xen-a")
        try Self.writeRun(a)
        // xen-b's: the same samples (so the same period, and an IOVM of the same name) recorded by monitor with --host.
        let b = root.appending(path: "run-b")
        let recorded = try iovm("monitor", "--replay", a.path, "--interval", "10ms", "--count", "5", "--json", "--record", b.path, "--host", "xen-b")
        #expect(recorded.status == 0, "\(recorded.stderr)")
        let meta = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: b.appending(path: "meta.json"))) as? [String: Any])
        #expect(meta["host"] as? String == "xen-b")

        let report = try iovm("report", "--merge", a.path, b.path, "--format", "json")
        #expect(report.status == 0, "\(report.stderr)")
        #expect(report.stderr.contains("merged 2 hosts (xen-a, xen-b) over 5.0 s"))
        let merged = try #require(try JSONSerialization.jsonObject(with: Data(report.stdout.utf8)) as? [String: Any])
        let hosts = try #require(merged["hosts"] as? [[String: Any]])
        #expect(hosts.map { $0["host"] as? String } == ["xen-a", "xen-b"])
        let iovms = try #require(merged["iovms"] as? [[String: Any]])
        #expect(iovms.map { $0["iovm"] as? String } == ["xen-a/iovm0", "xen-b/iovm0"])
        #expect(iovms.map { $0["meanRxMbps"] as? Double } == [8, 8])
        // Each host: Rx 8 + Tx 2 Mbit/s at half a 2 GHz core (1e9 cycles/s). The fleet: 20 Mbit/s over 2e9 cycles/s.
        let fleet = try #require(merged["fleet"] as? [String: Any])
        #expect(fleet["meanRxMbps"] as? Double == 16)
        #expect(fleet["meanTxMbps"] as? Double == 4)
        #expect(abs((fleet["meanCPUPercent"] as? Double ?? 0) - 100) < 1e-9)
        #expect(abs((fleet["efficiency"] as? Double ?? 0) - 0.01) < 1e-12)

        // Refused, naming the directories: two recordings of one host; recordings of different periods; one recording.
        let c = root.appending(path: "run-c")
        try FileManager.default.copyItem(at: b, to: c)
        let twice = try iovm("report", "--merge", a.path, b.path, c.path)
        #expect(twice.status == 1)
        #expect(twice.stderr.contains("iovm: error: \(b.path) and \(c.path) were both recorded on host xen-b"), "\(twice.stderr)")
        let later = root.appending(path: "xen-d")
        try Self.writeRun(later)
        let samples = later.appending(path: "samples.jsonl")
        try Data(try String(contentsOf: samples, encoding: .utf8).replacingOccurrences(of: #""time":17641"#, with: #""time":17642"#).utf8).write(to: samples)
        let apart = try iovm("report", "--merge", a.path, later.path)
        #expect(apart.status == 1)
        #expect(apart.stderr.contains("the recordings do not overlap in time"), "\(apart.stderr)")
        #expect(apart.stderr.contains("\(a.path) (host xen-a) 2025-11-25T19:46:40Z") && apart.stderr.contains("\(later.path) (host xen-d)"), "\(apart.stderr)")
        #expect(try iovm("report", "--merge", a.path).status == 64)
    }

    @Test func helpAndCompletions() throws {
        let help = try iovm("--help")
        #expect(help.status == 0)
        for command in ["synth", "plan", "render", "kernel-config"] { #expect(help.stdout.contains(command)) }
        let completion = try iovm("--generate-completion-script", "bash")
        #expect(completion.status == 0)
        #expect(completion.stdout.contains("_iovm"))
    }

    /// A store holding a (fake) e1000 image with a manifest as `iovm image build` writes it.
    static func fakeStore() throws -> (root: URL, hash: String) {
        let root = FileManager.default.temporaryDirectory.appending(path: "iovm-cli-images-\(UUID().uuidString)")
        let hash = "00112233aabbccdd"
        let directory = root.appending(path: hash)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let fragment = try KernelConfig.fragment(nicDrivers: ["e1000"])
        let manifest: [String: Any] = [
            "formatVersion": 1, "hash": hash, "kind": "minimal", "nicDrivers": ["e1000"], "iovmVersion": IOVMVersion.current,
            "fragmentDigest": String(StableHash.fnv1a(fragment), radix: 16), "kernelSource": "test", "kernelRelease": "6.1.0-test",
            "packages": [String: String](), "sysroot": "/", "files": [Any](), "sizes": ["vmlinux": 1, "bzImage": 1, "initrd": 1, "initrdUnpacked": 1],
            "buildSeconds": 1, "builtAt": "2026-12-01T00:00:00Z", "enabledSymbols": ["E1000"],
        ]
        try JSONSerialization.data(withJSONObject: manifest).write(to: directory.appending(path: "manifest.json"))
        return (root, hash)
    }

    static let imageTopology = """
        import IOVMDescription
        let topology = Topology("image-test") {
            Host(cores: 4, memory: .gib(4))
            Defaults(kernel: "/guest/vmlinux", iovmImage: .minimal)
            Configuration.monolithic()
            NIC("0000:00:10.0", bridge: "uplink0", driver: "e1000")
            Guest("g1", nic: "0000:00:10.0")
            Placement.credit()
        }
        """

    @Test("plan and render point an IOVM that names no kernel at the store's image; without it, render refuses with the build command")
    func imageInPlanAndRender() throws {
        let (store, hash) = try Self.fakeStore()
        defer { try? FileManager.default.removeItem(at: store) }
        let file = store.appending(path: "image-test.swift")
        try Self.imageTopology.write(to: file, atomically: true, encoding: .utf8)
        let plan = try iovm("plan", file.path, "--images", store.path)
        #expect(plan.status == 0, "\(plan.stderr)")
        #expect(plan.stdout.contains("iovm0: minimal image \(hash) for e1000"), "\(plan.stdout)")
        #expect(plan.stdout.contains("kernel \(store.path)/\(hash)/vmlinux"))

        let out = store.appending(path: "rendered")
        let render = try iovm("render", file.path, "--images", store.path, "--out", out.path)
        #expect(render.status == 0, "\(render.stderr)")
        let config = try String(contentsOf: out.appending(path: "iovm0.cfg"), encoding: .utf8)
        #expect(config.contains("kernel = \"\(store.path)/\(hash)/vmlinux\""))
        #expect(config.contains("ramdisk = \"\(store.path)/\(hash)/initrd.img\""))
        #expect(config.contains("extra = \"console=hvc0 iovm.nics=0000:00:10.0=uplink0\""))
        #expect(config.contains("# Boots iovm's minimal image \(hash) for e1000."))

        let empty = store.appending(path: "empty")
        let refused = try iovm("render", file.path, "--images", empty.path, "--out", out.path)
        #expect(refused.status == 1)
        #expect(
            refused.stderr.contains(
                "IOVM iovm0 boots the minimal image: the minimal IOVM image for e1000 is not built in \(empty.path): run `iovm image build \(file.path) --out \(empty.path)`"
            ), "\(refused.stderr)")
        let listed = try iovm("image", "list", "--out", store.path)
        #expect(listed.stdout.contains(hash) && listed.stdout.contains("6.1.0-test"))
    }

    @Test("image build refuses an unknown driver and names the supported ones; a missing kernel source says to run scripts/setup")
    func imageBuildErrors() throws {
        let unknown = try iovm("image", "build", "--nic-driver", "tulip", "--out", "/nonexistent")
        #expect(unknown.status == 65)
        #expect(unknown.stderr.contains("no kernel fragment for NIC driver \"tulip\" (supported: e1000, e1000e, igb, ixgbe, virtio)"), "\(unknown.stderr)")
        let store = FileManager.default.temporaryDirectory.appending(path: "iovm-cli-nosource-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: store) }
        let noSource = try iovm("image", "build", "--nic-driver", "e1000", "--out", store.path, "--kernel-source", "/nonexistent/linux.tar.xz")
        #expect(noSource.status == 1)
        #expect(noSource.stderr.contains("no kernel source at /nonexistent/linux.tar.xz: run scripts/setup"), "\(noSource.stderr)")

        // With a topology: a NIC that is not on this host and names no driver is an error at its line.
        let file = store.appending(path: "absent-nic.swift")
        try FileManager.default.createDirectory(at: store, withIntermediateDirectories: true)
        try Self.imageTopology.replacingOccurrences(of: ", driver: \"e1000\"", with: "").replacingOccurrences(of: "0000:00:10.0", with: "0000:7f:1f.7")
            .write(to: file, atomically: true, encoding: .utf8)
        let absent = try iovm("image", "build", file.path, "--out", store.path)
        #expect(absent.status == 65)
        #expect(absent.stderr.contains("absent-nic.swift:6: error: NIC 0000:7f:1f.7 is not on this host and the topology names no driver"), "\(absent.stderr)")
    }

    @Test("image load-agent writes the static load agent, executable; it prints its usage")
    func imageLoadAgent() throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "iovm-cli-load-agent-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appending(path: "iovm-load").path
        let result = try iovm("image", "load-agent", "--out", file)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.hasPrefix("wrote \(file) ("), "\(result.stderr)")
        #expect(FileManager.default.isExecutableFile(atPath: file))
        let bytes = try #require(FileManager.default.contents(atPath: file))
        #expect(bytes.prefix(4) == Data([0x7f, 0x45, 0x4c, 0x46]))  // an ELF program
        let usage = Process()
        usage.executableURL = URL(fileURLWithPath: file)
        usage.arguments = ["-h"]
        let out = Pipe()
        usage.standardOutput = out
        try usage.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        usage.waitUntilExit()
        #expect(usage.terminationStatus == 0)
        #expect(text.contains("[-s SOCKET] [-b IPERF3] [-t TMPDIR] [-1]"), "\(text)")
        let missing = try iovm("image", "load-agent")
        #expect(missing.status == 64)
    }

    // MARK: Experiments

    /// `iovm experiment --dry-run` of Table 3, as printed: the order is fixed by the name's seed.
    static let table3DryRun = """
        Experiment "paper-table3" (Examples/experiments/table3.swift:21)
          base        paper-hybrid (Examples/experiments/table3.swift:22)
          varies      variant: Default, Core Pinning
          directions  Rx, Tx
          workload    iperf3 -P 4 -l 1024, one client per NIC
          timing      60 s measured after 10 s of warm-up, 3 repetitions
          order       shuffled within each repetition, seed 10738779201496717799 (from the name; --seed N for another)
          cells       12: 2 combinations x 2 directions x 3 repetitions

        CELL  REP  VARIANT       CONFIGURATION  PLACEMENT      SCHEDULER  NICS  IMAGE    WEIGHTS              DIRECTION  BEFORE IT
           1    1  Default       hybrid(2)      credit         credit     4     minimal  default              Tx         create
           2    1  Default       hybrid(2)      credit         credit     4     minimal  default              Rx         same
           3    1  Core Pinning  hybrid(2)      hybrid-pinned  credit     4     minimal  iovm 512, guest 256  Rx         live
           4    1  Core Pinning  hybrid(2)      hybrid-pinned  credit     4     minimal  iovm 512, guest 256  Tx         same
           5    2  Core Pinning  hybrid(2)      hybrid-pinned  credit     4     minimal  iovm 512, guest 256  Rx         same
           6    2  Core Pinning  hybrid(2)      hybrid-pinned  credit     4     minimal  iovm 512, guest 256  Tx         same
           7    2  Default       hybrid(2)      credit         credit     4     minimal  default              Rx         live
           8    2  Default       hybrid(2)      credit         credit     4     minimal  default              Tx         same
           9    3  Core Pinning  hybrid(2)      hybrid-pinned  credit     4     minimal  iovm 512, guest 256  Tx         live
          10    3  Core Pinning  hybrid(2)      hybrid-pinned  credit     4     minimal  iovm 512, guest 256  Rx         same
          11    3  Default       hybrid(2)      credit         credit     4     minimal  default              Tx         live
          12    3  Default       hybrid(2)      credit         credit     4     minimal  default              Rx         same

        What changes before each cell:
          1: create: iovm0, iovm1, guest1, guest2, guest3, guest4
          2: same: direction Tx -> Rx
          3: live: iovm0 pin any -> 3; iovm0 weight 256 -> 512; iovm1 pin any -> 2; iovm1 weight 256 -> 512; guest1 pin any -> 0-1; guest2 pin any -> 0-1; guest3 pin any -> 0-1; guest4 pin any -> 0-1
          4: same: direction Rx -> Tx
          5: same: direction Tx -> Rx
          6: same: direction Rx -> Tx
          7: live: iovm0 pin 3 -> any; iovm0 weight 512 -> 256; iovm1 pin 2 -> any; iovm1 weight 512 -> 256; guest1 pin 0-1 -> any; guest2 pin 0-1 -> any; guest3 pin 0-1 -> any; guest4 pin 0-1 -> any; direction Tx -> Rx
          8: same: direction Rx -> Tx
          9: live: iovm0 pin any -> 3; iovm0 weight 256 -> 512; iovm1 pin any -> 2; iovm1 weight 256 -> 512; guest1 pin any -> 0-1; guest2 pin any -> 0-1; guest3 pin any -> 0-1; guest4 pin any -> 0-1
          10: same: direction Tx -> Rx
          11: live: iovm0 pin 3 -> any; iovm0 weight 512 -> 256; iovm1 pin 2 -> any; iovm1 weight 512 -> 256; guest1 pin 0-1 -> any; guest2 pin 0-1 -> any; guest3 pin 0-1 -> any; guest4 pin 0-1 -> any; direction Rx -> Tx
          12: same: direction Tx -> Rx

        Transitions: 1 create, 0 recreate, 4 live, 7 same
        Estimated time: 16 min
          measuring   12 cells x (10 s warm-up + 60 s) = 14 min
          recreating  1 create or recreate x 90 s, assumed (destroy and apply; Table 3's hybrid took 73 s to apply in the lab under TCG) = 2 min
          live        4 live changes x 2 s, assumed (one iovm pin or weight call took 1.0-1.2 s in the lab) = 8 s

        Dry run: nothing was run.

        """

    @Test("experiment --dry-run prints the cells of Table 3, what changes before each and the estimated time")
    func experimentDryRun() throws {
        let result = try iovm("experiment", "Examples/experiments/table3.swift", "--dry-run")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == Self.table3DryRun)
        #expect(result.stderr.isEmpty, "\(result.stderr)")
    }

    @Test("experiment --seed reorders the cells; --json carries the same cells")
    func experimentSeedAndJSON() throws {
        let json = try iovm("experiment", "Examples/experiments/table3.swift", "--dry-run", "--json", "--seed", "42")
        #expect(json.status == 0, "\(json.stderr)")
        let plan = try JSONDecoder().decode(ExperimentPlan.self, from: Data(json.stdout.utf8))
        #expect(plan.seed == 42 && !plan.seedFromName)
        #expect(plan.cells.count == 12)
        #expect(plan.combinations.map(\.settings.variant) == ["Default", "Core Pinning"])
        #expect(plan.cells.map(\.transition.kind).filter { $0 == .recreate }.isEmpty)
        let text = try iovm("experiment", "Examples/experiments/table3.swift", "--dry-run", "--seed", "42")
        #expect(text.stdout.contains("seed 42 (--seed)"))
        #expect(text.stdout != Self.table3DryRun)
    }

    @Test("report DIR of an experiment's run: writes report.html|csv|json and cells.csv, prints the table and the claims; --format prints one")
    func experimentReport() throws {
        let json = try iovm("experiment", "Examples/experiments/table3.swift", "--dry-run", "--json")
        let plan = try JSONDecoder().decode(ExperimentPlan.self, from: Data(json.stdout.utf8))
        let directory = FileManager.default.temporaryDirectory.appending(path: "iovm-cli-report-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(at: directory.appending(path: "cells"), withIntermediateDirectories: true)
        let run = ExperimentRun(plan: plan, fingerprint: "f", startedAt: 1_764_100_000, host: "lab", iovmVersion: "test", servers: [:], onExit: "keep")
        try JSONEncoder().encode(run).write(to: directory.appending(path: ExperimentRunLayout.runFile))
        // Every cell but the last two: Core Pinning moves more and uses fewer cycles.
        for cell in plan.cells.dropLast(2) {
            let settings = plan.combination(of: cell).settings
            let pinned = settings.variant == "Core Pinning"
            let guest = GuestLoadResult(guest: "guest1", iovm: "iovm0", nic: "0000:00:10.0", bytes: pinned ? 17_000_000_000 : 15_000_000_000, seconds: 60, retransmits: 0)
            let iovm = IOVMCellFigures(
                iovm: "iovm0", cpuNanoseconds: 60_000_000_000, windowSeconds: 60, cpuHz: pinned ? 2_000_000_000 : 2_400_000_000, rxBytes: 1, txBytes: 1,
                rxPackets: 1, txPackets: 1, countersPublished: true)
            let result = ExperimentCellResult(
                cell: cell, settings: settings, startedAt: 1_764_100_000, windowSeconds: 60, transitionSeconds: 1, scheduler: "credit", guests: [guest], iovms: [iovm])
            try JSONEncoder().encode(result).write(to: directory.appending(path: ExperimentRunLayout.cellFile(cell.index)))
        }
        let report = try iovm("report", directory.path)
        #expect(report.status == 0, "\(report.stderr)")
        #expect(report.stdout.hasPrefix("paper-table3: 10 of 12 cells measured; missing: 11, 12\n"))
        #expect(report.stdout.contains("Table 3  efficiency  Core Pinning > Default:  held in "))
        for name in ["report.html", "report.csv", "report.json", "cells.csv", "samples.csv"] {
            #expect(FileManager.default.fileExists(atPath: directory.appending(path: name).path), "\(name)")
        }
        let csv = try iovm("report", directory.path, "--format", "csv")
        #expect(csv.status == 0 && csv.stdout.split(separator: "\n").count == 1 + 2 * 2)
        let html = directory.appending(path: "page.html")
        #expect(try iovm("report", directory.path, "--out", html.path).status == 0)
        #expect(try String(contentsOf: html, encoding: .utf8).contains("<svg"))
        #expect(try iovm("report", directory.path, "--out", directory.appending(path: "x.pdf").path).status == 64)
        // A cell file that is not a result: the error names it.
        try Data("{".utf8).write(to: directory.appending(path: ExperimentRunLayout.cellFile(11)))
        let broken = try iovm("report", directory.path)
        #expect(broken.status != 0 && broken.stderr.contains("cells/0011.json: error: not a cell result"))
    }

    @Test("experiment without --dry-run: a workload without a server, then a host without the NICs, refused before anything starts")
    func experimentRunRefusals() throws {
        let noServer = try iovm("experiment", "Examples/experiments/figures8and9.swift")
        #expect(noServer.status == 1)
        #expect(noServer.stdout.isEmpty)
        #expect(
            noServer.stderr.contains(
                "iovm: error: the workload names no iperf3 server for guest guest1: Workload.iperf3(server: \"HOST:PORT\") or --server HOST:PORT (or --server guest1=HOST:PORT)"
            ), "\(noServer.stderr)")
        // Off Xen (and on a host without these NICs) every combination is refused, naming its first cell.
        let directory = FileManager.default.temporaryDirectory.appending(path: "iovm-cli-run-\(UUID().uuidString)")
        let elsewhere = try iovm("experiment", "Examples/experiments/table3.swift", "--server", "10.0.0.1:5201", "--out", directory.path)
        #expect(elsewhere.status == 65)
        #expect(elsewhere.stderr.contains("NIC 0000:00:13.0 is not on this host"), "\(elsewhere.stderr)")
        #expect(
            elsewhere.stderr.contains("iovm: error: cell 1 (Default, hybrid(2), placement credit, credit scheduler, 4 NICs): NIC 0000:00:10.0 is not on this host"),
            "\(elsewhere.stderr)")
        #expect(elsewhere.stderr.contains("iovm: error: the experiment cannot run on this host; nothing was started"))
        #expect(!FileManager.default.fileExists(atPath: directory.path))
        #expect(try iovm("experiment", "Examples/experiments/table3.swift", "--resume").status == 64)
    }

    @Test("experiment with a command workload: {iperf3} without a server is refused; without it the run goes on to the host checks")
    func experimentCommandWorkload() throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "iovm-cli-command-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        func write(_ template: String) throws -> String {
            let file = directory.appending(path: "ssh.swift")
            try """
            import IOVMDescription
            let experiment = Experiment("ssh-load") {
                Base(Topology("b") {
                    Host(cores: 4, memory: .gib(4))
                    Defaults(kernel: "/k", ramdisk: "/r")
                    Configuration.monolithic()
                    NIC("0000:00:1e.0")
                    Guest("g1")
                })
                Workload.command("\(template)")
            }
            """.write(to: file, atomically: true, encoding: .utf8)
            return file.path
        }
        let run = directory.appending(path: "run").path
        let noServer = try iovm("experiment", try write("ssh root@{guest} iperf3 {iperf3}"), "--out", run)
        #expect(noServer.status == 1, "\(noServer.stderr)")
        #expect(noServer.stderr.contains("names no iperf3 server for guest g1"), "\(noServer.stderr)")
        // No server needed: the command is accepted and the run stops at the first host check (this machine has no such NIC).
        let own = try iovm("experiment", try write("ssh root@{guest} run-load {direction} {duration}"), "--out", run)
        #expect(own.status == 65, "\(own.stderr)")
        #expect(own.stderr.contains("NIC 0000:00:1e.0 is not on this host"), "\(own.stderr)")
        #expect(!own.stderr.contains("not implemented"), "\(own.stderr)")
        #expect(!FileManager.default.fileExists(atPath: run))
    }

    @Test("an invalid experiment exits 65 with every error at its line")
    func invalidExperimentExits65() throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "iovm-cli-experiment-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appending(path: "bad.swift")
        try """
        import IOVMDescription

        let base = Topology("three") {
            Host(cores: 4, memory: .gib(4), scheduler: "credit")
            Configuration.monolithic()
            for index in 0..<3 { NIC("0000:00:1\\(index).0") }
        }

        let experiment = Experiment("bad") {
            Base(base)
            Vary(.nicCount([1, 5]))
            Vary(.placement([]))
            Timing(duration: .seconds(5), warmUp: .seconds(10), repetitions: 0)
        }
        """.write(to: file, atomically: true, encoding: .utf8)
        let result = try iovm("experiment", file.path, "--dry-run")
        #expect(result.status == 65)
        #expect(result.stdout.isEmpty)
        let lines = result.stderr.split(separator: "\n").map(String.init)
        #expect(
            lines == [
                "\(file.path):11: error: NIC count 5 is more than the 3 NICs of the base topology three: declare more NIC(…)s in it",
                "\(file.path):12: error: Vary(.placement([])) lists no value: give at least one",
                "\(file.path):13: error: repetitions must be at least 1, not 0",
                "\(file.path):13: error: the duration (5 s) must be longer than the warm-up (10 s): the measured part would be no longer than the unmeasured one",
                "4 errors in the experiment; nothing was run.",
            ], "\(result.stderr)")
    }

    @Test("watch refuses a --crash-loop that is not K/N, and lists its flags in its help")
    func watchFlags() throws {
        let bad = try iovm("watch", "Examples/hybrid.swift", "--crash-loop", "3")
        #expect(bad.status == 64)
        #expect(bad.stderr.contains("--crash-loop wants K/N, e.g. 3/300: K deaths (1 or more) within N seconds"), "\(bad.stderr)")
        let remote = try iovm("watch", "Examples/hybrid.swift", "--connect", "xen+ssh://root@host2/system")
        #expect(remote.status == 64)
        #expect(remote.stderr.contains("iovm watch keeps this dom0's IOVMs alive and takes no --connect (xen+ssh://root@host2/system)"), "\(remote.stderr)")
        let help = try iovm("watch", "--help")
        #expect(help.status == 0)
        for flag in ["--metrics-port", "--crash-loop", "--recheck", "--wait"] { #expect(help.stdout.contains(flag), "\(flag)") }
    }
}
