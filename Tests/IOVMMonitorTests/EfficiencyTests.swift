import Foundation
import IOVMMonitor
import Testing

@Suite("Efficiency (bits/Hz)")
struct EfficiencyTests {
    @Test("Fig. 7: 940 Mbit/s over 1 s with 0.78e9 cycles is about 1.2 bits/Hz")
    func paperFigure7() throws {
        // 940 Mbit/s for 1 s = 117,500,000 bytes; 0.78e9 cycles at 2.4 GHz = 325 ms of CPU.
        let figures = EfficiencyFigures(
            iovm: "iovm0", seconds: 1, rxBytes: 117_500_000, txBytes: 0,
            cpuNanoseconds: 325_000_000, cpuHz: 2_400_000_000)
        #expect(abs(figures.rxMbps - 940) < 1e-9)
        #expect(figures.txMbps == 0)
        #expect(abs(figures.cycles - 0.78e9) < 1)
        #expect(abs(figures.cpuPercent - 32.5) < 1e-9)
        let efficiency = try #require(figures.efficiency)
        #expect(abs(efficiency - 940e6 / 0.78e9) < 1e-9)  // 1.205…
        #expect(String(format: "%.1f", efficiency) == "1.2")
        #expect(figures.rxEfficiency == figures.efficiency)
        #expect(figures.txEfficiency == 0)
    }

    @Test("Table 3: 2,271 Mbit/s at 0.82 bits/Hz needs about 2.77e9 cycles/s; over two IOVMs the aggregate is total bits / total cycles")
    func aggregate() throws {
        // Two IOVMs over 2 s: A moves 1,200 Mbit/s Tx using 1.5e9 cycles/s; B 1,071 Mbit/s Tx using 1.27e9 cycles/s. Hz = 1 GHz, so ns = cycles.
        let a = EfficiencyFigures(iovm: "a", seconds: 2, rxBytes: 0, txBytes: 300_000_000, cpuNanoseconds: 3_000_000_000, cpuHz: 1_000_000_000)
        let b = EfficiencyFigures(iovm: "b", seconds: 2, rxBytes: 0, txBytes: 267_750_000, cpuNanoseconds: 2_540_000_000, cpuHz: 1_000_000_000)
        let all = EfficiencyFigures.aggregate([a, b], seconds: 2, cpuHz: 1_000_000_000)
        #expect(abs(all.txMbps - 2_271) < 1e-9)
        #expect(abs(all.cycles / 2 - 2.77e9) < 1)
        #expect(abs(try #require(all.efficiency) - 2_271e6 / 2.77e9) < 1e-9)  // 0.8199
        #expect(abs(all.cpuPercent - 277) < 1e-9)  // 2.77 cores' worth
        // Not the mean of the two efficiencies.
        #expect(try #require(all.efficiency) != (try #require(a.efficiency) + (try #require(b.efficiency))) / 2)
    }

    @Test("no cycles: efficiency unknown, not infinite")
    func noCycles() {
        let idle = EfficiencyFigures(iovm: "x", seconds: 1, rxBytes: 10, txBytes: 10, cpuNanoseconds: 0, cpuHz: 2_000_000_000)
        #expect(idle.efficiency == nil && idle.rxEfficiency == nil && idle.txEfficiency == nil)
        let unknownHz = EfficiencyFigures(iovm: "x", seconds: 1, rxBytes: 10, txBytes: 10, cpuNanoseconds: 5, cpuHz: 0)
        #expect(unknownHz.efficiency == nil)
    }

    @Test("directions: NIC rx is Rx (client → guest), NIC tx is Tx; vifs are counted the other way round")
    func directions() throws {
        var tracker = EfficiencyTracker()
        _ = tracker.add(SampleRecord(time: 0, elapsed: 0, cpuHz: 1_000_000_000, iovms: [Sim.iovm("iovm0", cpu: 0, rx: 0, tx: 0)]))
        let step = tracker.add(
            SampleRecord(
                time: 1, elapsed: 1, cpuHz: 1_000_000_000,
                iovms: [Sim.iovm("iovm0", cpu: 500_000_000, rx: 100_000_000, tx: 25_000_000)]))
        let figures = try #require(step.interval?.iovms.first)
        #expect(figures.rxMbps == 800)
        #expect(figures.txMbps == 200)
        #expect(figures.guestVifRxBytes == 100_000_000)  // vif tx: what the guest received
        #expect(figures.guestVifTxBytes == 25_000_000)  // vif rx: what the guest sent
        #expect(figures.efficiency == 1_000e6 / 0.5e9)
        #expect(try #require(figures.rxEfficiency) + (try #require(figures.txEfficiency)) == figures.efficiency)
        #expect(step.events.isEmpty)
    }

    @Test("a domain recreated between samples is a new epoch counted from zero, not negative traffic")
    func recreated() throws {
        var tracker = EfficiencyTracker()
        _ = tracker.add(SampleRecord(time: 0, elapsed: 0, cpuHz: 1_000_000_000, iovms: [Sim.iovm("iovm0", domid: 3, cpu: 90_000_000_000, rx: 9_000_000_000, tx: 0)]))
        let step = tracker.add(SampleRecord(time: 1, elapsed: 1, cpuHz: 1_000_000_000, iovms: [Sim.iovm("iovm0", domid: 7, cpu: 200_000_000, rx: 12_500_000, tx: 0)]))
        let figures = try #require(step.interval?.iovms.first)
        #expect(figures.rxMbps == 100)
        #expect(figures.cpuNanoseconds == 200_000_000)
        #expect(figures.newEpoch)
        #expect(step.events.map(\.kind) == [.recreated])
    }

    @Test("a NIC counter that restarts in a living domain is reported and counted from zero")
    func counterReset() throws {
        var tracker = EfficiencyTracker()
        _ = tracker.add(SampleRecord(time: 0, elapsed: 0, cpuHz: 1_000_000_000, iovms: [Sim.iovm("iovm0", cpu: 1_000, rx: 5_000_000_000, tx: 0)]))
        let step = tracker.add(SampleRecord(time: 1, elapsed: 1, cpuHz: 1_000_000_000, iovms: [Sim.iovm("iovm0", cpu: 2_000, rx: 1_000, tx: 0)]))
        #expect(try #require(step.interval?.iovms.first).rxBytes == 1_000)
        #expect(step.events.contains { $0.kind == .counterReset && $0.detail.contains("eth0 rx_bytes") })
    }

    @Test("a 32-bit NIC counter that wraps is counted through the wrap")
    func nicWrap() throws {
        var tracker = EfficiencyTracker()
        let top = UInt64(UInt32.max)
        _ = tracker.add(SampleRecord(time: 0, elapsed: 0, cpuHz: 1_000_000_000, iovms: [Sim.iovm("iovm0", cpu: 0, rx: top - 999, tx: 0, width: .bits32)]))
        let step = tracker.add(SampleRecord(time: 1, elapsed: 1, cpuHz: 1_000_000_000, iovms: [Sim.iovm("iovm0", cpu: 1, rx: 1_000, tx: 0, width: .bits32)]))
        let figures = try #require(step.interval?.iovms.first)
        #expect(figures.rxBytes == 2_000)
        #expect(!figures.newEpoch)
        #expect(step.events.contains { $0.kind == .counterWrapped })
    }

    @Test("an IOVM that disappears is a gap; when it returns its figures start again from the next interval")
    func gap() throws {
        var tracker = EfficiencyTracker()
        func record(_ t: Double, _ iovms: [IOVMSample]) -> SampleRecord { SampleRecord(time: t, elapsed: t, cpuHz: 1_000_000_000, iovms: iovms) }
        _ = tracker.add(record(0, [Sim.iovm("a", cpu: 0, rx: 0, tx: 0), Sim.iovm("b", domid: 2, cpu: 0, rx: 0, tx: 0)]))
        let gone = tracker.add(record(1, [Sim.iovm("a", cpu: 100, rx: 125_000, tx: 0)]))
        #expect(gone.events.map(\.kind) == [.disappeared])
        #expect(gone.interval?.iovms.map(\.iovm) == ["a"])
        let back = tracker.add(record(2, [Sim.iovm("a", cpu: 200, rx: 250_000, tx: 0), Sim.iovm("b", domid: 5, cpu: 10, rx: 10, tx: 0)]))
        #expect(back.events.map(\.kind) == [.reappeared])
        #expect(back.interval?.iovms.map(\.iovm) == ["a"])  // no baseline for b yet
        let later = tracker.add(record(3, [Sim.iovm("a", cpu: 300, rx: 375_000, tx: 0), Sim.iovm("b", domid: 5, cpu: 110, rx: 125_010, tx: 0)]))
        #expect(later.events.isEmpty)
        let b = try #require(later.interval?.iovms.first { $0.iovm == "b" })
        #expect(b.rxMbps == 1 && b.cpuNanoseconds == 100 && !b.newEpoch)
        #expect(later.interval?.aggregate.rxMbps == 2)
    }

    @Test("an IOVM without the agent is flagged once: its traffic is unknown, not zero")
    func noAgent() {
        var tracker = EfficiencyTracker()
        let silent = IOVMSample(iovm: "quiet", domid: 4, cpuNanoseconds: 0, countersPublished: false)
        #expect(tracker.add(SampleRecord(time: 0, elapsed: 0, cpuHz: 1, iovms: [silent])).events.map(\.kind) == [.noCounters])
        #expect(tracker.add(SampleRecord(time: 1, elapsed: 1, cpuHz: 1, iovms: [silent])).events.isEmpty)
    }

    @Test("frequency scaling: a governor other than performance warns; performance or no cpufreq does not")
    func frequencyCheck() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("cpufreq-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        #expect(FrequencyScalingCheck(cpuRoot: root.path).warning() == nil)  // no directory at all
        for cpu in 0..<2 {
            let dir = root.appendingPathComponent("cpu\(cpu)/cpufreq")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try "performance\n".write(to: dir.appendingPathComponent("scaling_governor"), atomically: true, encoding: .utf8)
        }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("cpufreq"), withIntermediateDirectories: true)
        #expect(FrequencyScalingCheck(cpuRoot: root.path).warning() == nil)
        try "schedutil\n".write(to: root.appendingPathComponent("cpu1/cpufreq/scaling_governor"), atomically: true, encoding: .utf8)
        let warning = try #require(FrequencyScalingCheck(cpuRoot: root.path).warning())
        #expect(warning.contains("schedutil on 1 CPU(s)"))
        #expect(FrequencyScalingCheck.nominalNote.contains("nominal Hz"))
    }
}
