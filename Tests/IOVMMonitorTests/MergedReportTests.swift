import Foundation
import IOVMMonitor
import Testing

@Suite("Merged reports of several hosts")
struct MergedReportTests {
    /// One second of an IOVM's traffic and CPU: bytes received and sent on its NIC, CPU nanoseconds.
    typealias Second = (rx: UInt64, tx: UInt64, cpu: UInt64)

    /// A recording as `iovm monitor --record` writes it on `host` (nil: written before iovm recorded hosts): one
    /// sample a second from wall-clock `from`, each IOVM's NIC counters and CPU time advancing by `seconds[k]`
    /// between samples k and k + 1 (the agent without timestamps: dom0's clock).
    static func record(
        _ directory: URL, host: String?, cpuHz: UInt64, from: Double, iovms: [String], seconds: [Second]
    ) throws {
        let meta = RunMeta(interval: 1, cpuHz: cpuHz, frequencyWarning: nil, started: from, iovms: iovms, host: host)
        let recorder = try RunRecorder(directory: directory, meta: meta)
        var counters: Second = (0, 0, 0)
        for k in 0...seconds.count {
            if k > 0 { counters = (counters.rx + seconds[k - 1].rx, counters.tx + seconds[k - 1].tx, counters.cpu + seconds[k - 1].cpu) }
            let samples = iovms.enumerated().map { index, name in
                IOVMSample(
                    iovm: name, domid: UInt32(index + 1), cpuNanoseconds: counters.cpu,
                    nics: [InterfaceCounters(name: "eth0", kind: .nic, rxBytes: counters.rx, txBytes: counters.tx)])
            }
            try recorder.append(SampleRecord(time: from + Double(k), elapsed: 50 + Double(k), cpuHz: cpuHz, iovms: samples))
        }
    }

    static func root() -> URL { FileManager.default.temporaryDirectory.appendingPathComponent("iovm-merge-\(UUID().uuidString)") }

    /// xen-a (2 GHz) records iovm0 from 1000 to 1010 s; xen-b (1 GHz) records iovm1 from 1004.5 to 1014.5 s. They share
    /// 1004.5 … 1010: xen-a's samples at 1005 … 1010 (5 intervals), xen-b's at 1004.5 … 1009.5 (5 intervals). Outside
    /// it each moves 10 MB/s, which must not count.
    static func twoHosts(in root: URL, bName: String = "iovm1", aHost: String? = "xen-a", bHost: String? = "xen-b") throws -> [URL] {
        let a = root.appendingPathComponent("a")
        let b = root.appendingPathComponent("b")
        // xen-a: 10 MB/s before 1005; then Rx 1 MB/s but 3 MB/s from 1006 to 1007, Tx 0.5 MB/s; a quarter of a core.
        let aSeconds: [Second] = (0..<10).map { k in
            (rx: k < 5 ? 10_000_000 : k == 6 ? 3_000_000 : 1_000_000, tx: 500_000, cpu: 250_000_000)
        }
        try record(a, host: aHost, cpuHz: 2_000_000_000, from: 1000, iovms: ["iovm0"], seconds: aSeconds)
        // xen-b: Rx 2 MB/s, no Tx, half a core until 1009.5; then 10 MB/s.
        let bSeconds: [Second] = (0..<10).map { k in (rx: k < 5 ? 2_000_000 : 10_000_000, tx: 0, cpu: 500_000_000) }
        try record(b, host: bHost, cpuHz: 1_000_000_000, from: 1004.5, iovms: [bName], seconds: bSeconds)
        return [a, b]
    }

    static func close(_ value: Double?, _ expected: Double, _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(abs((value ?? .nan) - expected) < 1e-9, comment, sourceLocation: sourceLocation)
    }

    @Test("two hosts over an overlapping period: per-host, per-IOVM and fleet figures over the common period only")
    func twoHostsMerged() throws {
        let root = Self.root()
        defer { try? FileManager.default.removeItem(at: root) }
        let runs = try Self.twoHosts(in: root).map { try RecordedRun.load($0.path) }
        let merged = try MergedRun.merge(runs)
        #expect(merged.start == 1004.5 && merged.end == 1010)
        let summary = try JSONDecoder().decode(FleetSummary.self, from: Data(try Report.render(merged, format: .json).utf8))
        #expect(summary.hosts.map(\.host) == ["xen-a", "xen-b"])
        #expect(summary.iovms.map(\.iovm) == ["xen-a/iovm0", "xen-b/iovm1"])

        // xen-a, 1005 … 1010: Rx 1+3+1+1+1 = 7 MB in 5 s = 11.2 Mbit/s (peak 24), Tx 4 Mbit/s, CPU 25 %:
        // 0.25 × 2e9 = 5e8 cycles/s, (11.2 + 4) Mbit/s / 5e8 Hz = 0.0304 bits/Hz.
        let a = summary.hosts[0].run
        #expect(a.iovms.count == 1 && a.iovms[0].iovm == "iovm0" && a.iovms[0].samples == 5)
        #expect(a.iovms[0].rxBytes == 7_000_000 && a.iovms[0].txBytes == 2_500_000)
        Self.close(a.iovms[0].meanRxMbps, 11.2)
        Self.close(a.iovms[0].peakRxMbps, 24)
        Self.close(a.iovms[0].meanTxMbps, 4)
        Self.close(a.iovms[0].meanCPUPercent, 25)
        Self.close(a.iovms[0].efficiency, 0.0304)
        Self.close(a.aggregate.efficiency, 0.0304)
        // xen-b, 1004.5 … 1009.5: Rx 16 Mbit/s, CPU 50 % of a 1 GHz core: 5e8 cycles/s, 16e6 / 5e8 = 0.032 bits/Hz.
        let b = summary.hosts[1].run
        #expect(b.iovms[0].iovm == "iovm1" && b.iovms[0].samples == 5 && b.iovms[0].rxBytes == 10_000_000)
        Self.close(b.iovms[0].meanRxMbps, 16)
        Self.close(b.iovms[0].peakRxMbps, 16)
        Self.close(b.iovms[0].meanCPUPercent, 50)
        Self.close(b.iovms[0].efficiency, 0.032)

        // The fleet: Rx 11.2 + 16 = 27.2, Tx 4 Mbit/s, CPU 25 + 50 = 75 %, cycles 5e8 + 5e8 = 1e9 per second:
        // (27.2 + 4) Mbit/s / 1e9 Hz = 0.0312 bits/Hz (not the mean of 0.0304 and 0.032).
        let fleet = summary.fleet
        #expect(fleet.iovm == "fleet")
        #expect(fleet.rxBytes == 17_000_000 && fleet.txBytes == 2_500_000)
        Self.close(fleet.meanRxMbps, 27.2)
        Self.close(fleet.meanTxMbps, 4)
        Self.close(fleet.meanCPUPercent, 75)
        Self.close(fleet.cycles, 2.5e9 + 2.5e9)
        Self.close(fleet.efficiency, 0.0312)
        Self.close(fleet.rxEfficiency, 0.0272)
        Self.close(fleet.txEfficiency, 0.004)
        // Both hosts have an interval from 1005 to 1009.5 (period seconds 0.5 … 5), cut at every half second: 9 pieces.
        // xen-a's 24 Mbit/s (1006 … 1007) meets xen-b's 16: the fleet's peak is 40 Mbit/s; CPU 75 % throughout.
        #expect(fleet.samples == 9)
        Self.close(fleet.seconds, 4.5)
        Self.close(fleet.peakRxMbps, 40)
        Self.close(fleet.peakTxMbps, 4)
        Self.close(fleet.peakCPUPercent, 75)
        #expect(merged.intervals.map(\.start) == stride(from: 0.5, to: 5, by: 0.5).map { $0 })
        let peak = try #require(merged.intervals.first { $0.start == 1.5 })
        #expect(peak.iovms.map(\.iovm) == ["xen-a", "xen-b"])
        Self.close(peak.aggregate.rxMbps, 40)
        // That piece's bits/Hz: 40 Mbit/s + 4 Mbit/s over 1e9 cycles/s.
        Self.close(peak.aggregate.efficiency, 0.044)

        // CSV: each host's rows (run = host), then the fleet's pieces: a row per host and a fleet row.
        let csv = try Report.render(merged, format: .csv).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        #expect(csv.filter { $0[0] == "xen-a" && $0[4] == "iovm0" }.count == 5)
        #expect(csv.filter { $0[0] == "xen-b" && $0[4] == "iovm1" }.count == 5)
        let fleetRows = csv.filter { $0[0] == "fleet" && $0[4] == "fleet" }
        #expect(fleetRows.count == 9)
        #expect(fleetRows.map { $0[5] }.max() == "40.000")
        #expect(fleetRows.first.map { [$0[1], $0[2], $0[7]] } == ["0.500", "1.000", "75.00"])

        // HTML: the fleet's table, its charts with one line per host and the fleet, and each host's section.
        let page = try XMLCollector.parse(try Report.render(merged, format: .html))
        let cells = page.all("td").map(\.text)
        #expect(cells.contains("fleet") && cells.contains("40.0") && cells.contains("24.0"))
        #expect(page.all("polyline", "data-series", "fleet Rx").count == 1)
        #expect(page.all("polyline", "data-series", "xen-b Rx").count == 1)
        #expect(page.all("h2").map(\.text) == ["Fleet: xen-a, xen-b", "xen-a", "xen-b"])
    }

    @Test("the same IOVM name on two hosts (each host's Domain-0) is merged, named HOST/IOVM; without a recorded host, the directory names the host")
    func sameNameOnTwoHosts() throws {
        let root = Self.root()
        defer { try? FileManager.default.removeItem(at: root) }
        let a = root.appendingPathComponent("xen-a")
        let b = root.appendingPathComponent("xen-b")
        try Self.record(
            a, host: nil, cpuHz: 2_000_000_000, from: 1000, iovms: ["Domain-0"], seconds: Array(repeating: (rx: 1_000_000, tx: 0, cpu: 250_000_000), count: 10))
        try Self.record(
            b, host: nil, cpuHz: 1_000_000_000, from: 1004.5, iovms: ["Domain-0"], seconds: Array(repeating: (rx: 2_000_000, tx: 0, cpu: 500_000_000), count: 10))
        let runs = [try RecordedRun.load(a.path), try RecordedRun.load(b.path + "/")]
        #expect(runs.map(\.host) == ["xen-a", "xen-b"])
        let summary = FleetSummary(try MergedRun.merge(runs))
        #expect(summary.iovms.map(\.iovm) == ["xen-a/Domain-0", "xen-b/Domain-0"])
        #expect(summary.hosts.map { $0.run.iovms.map(\.iovm) } == [["Domain-0"], ["Domain-0"]])
        // 8 + 16 Mbit/s; 25 % of 2 GHz + 50 % of 1 GHz = 1e9 cycles/s: 24e6 / 1e9 bits/Hz.
        Self.close(summary.fleet.meanRxMbps, 24)
        Self.close(summary.fleet.meanCPUPercent, 75)
        Self.close(summary.fleet.efficiency, 0.024)
    }

    @Test("refused: two recordings of one host, recordings that do not overlap, fewer than two")
    func refusals() throws {
        let root = Self.root()
        defer { try? FileManager.default.removeItem(at: root) }
        let second: Second = (rx: 1_000_000, tx: 0, cpu: 100_000_000)
        let a = root.appendingPathComponent("monday")
        let b = root.appendingPathComponent("tuesday")
        let c = root.appendingPathComponent("later")
        try Self.record(a, host: "xen-a", cpuHz: 1_000_000_000, from: 1000, iovms: ["iovm0"], seconds: Array(repeating: second, count: 10))
        try Self.record(b, host: "xen-a", cpuHz: 1_000_000_000, from: 1000, iovms: ["iovm1"], seconds: Array(repeating: second, count: 10))
        // Starts at the last sample of `a`: one common instant, no common interval.
        try Self.record(c, host: "xen-c", cpuHz: 1_000_000_000, from: 1010, iovms: ["iovm2"], seconds: Array(repeating: second, count: 10))
        let runs = try [a, b, c].map { try RecordedRun.load($0.path) }

        let sameHost = #expect(throws: MergeError.self) { try MergedRun.merge([runs[0], runs[1]]) }
        #expect(sameHost == .sameHost("xen-a", directories: [a.path, b.path]))
        #expect(
            sameHost?.description
                == "\(a.path) and \(b.path) were both recorded on host xen-a: merge one recording per host (`iovm monitor --host NAME` names the host of a recording)")

        let apart = #expect(throws: MergeError.self) { try MergedRun.merge([runs[0], runs[2]]) }
        guard case .noOverlap(let spans)? = apart else {
            Issue.record("expected noOverlap, got \(String(describing: apart))")
            return
        }
        #expect(spans.map(\.directory) == [a.path, c.path] && spans.map(\.first) == [1000, 1010] && spans.map(\.last) == [1010, 1020])
        let message = try #require(apart?.description)
        #expect(message.hasPrefix("the recordings do not overlap in time"))
        #expect(message.contains("\(a.path) (host xen-a) 1970-01-01T00:16:40Z – 1970-01-01T00:16:50Z"))
        #expect(message.contains("\(c.path) (host xen-c) 1970-01-01T00:16:50Z – 1970-01-01T00:17:00Z"))

        #expect(throws: MergeError.tooFewRecordings([a.path])) { try MergedRun.merge([runs[0]]) }
    }

    @Test("a recording's host is kept in meta.json; older recordings read back without one")
    func hostInMeta() throws {
        let meta = RunMeta(interval: 1, cpuHz: 1, frequencyWarning: nil, started: 0, iovms: [], host: "xen-a")
        #expect(try JSONDecoder().decode(RunMeta.self, from: JSONEncoder().encode(meta)).host == "xen-a")
        let old = #"{"formatVersion":1,"interval":1,"cpuHz":2000000000,"nominalHzNote":"nominal","started":1764100000,"iovms":["iovm0"]}"#
        #expect(try JSONDecoder().decode(RunMeta.self, from: Data(old.utf8)).host == nil)
    }
}
