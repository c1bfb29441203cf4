import Foundation
import IOVMMonitor
import Testing

/// Run means from exact counter totals, and intervals with no rate yet marked unknown.
@Suite("Traffic totals and unknown intervals")
struct TrafficTotalsTests {
    /// The agent writes at IOVM uptimes 50, 50 + a₁, … with irregular gaps (1.0–1.9 s, a busy IOVM)
    /// while the traffic rate changes every write; dom0 samples every second. Returns the records
    /// and the true bytes and seconds between the first and the last write dom0 saw.
    static func irregularRun(seconds: Int) -> (records: [SampleRecord], bytes: UInt64, packets: UInt64, span: Double) {
        let gaps = [1.0, 1.3, 1.9, 1.1, 1.6, 1.0, 1.8, 1.2]
        let rates = [1_000_000.0, 4_000_000, 250_000, 3_000_000, 500_000, 2_000_000]  // bytes/s, very uneven
        var writes: [(time: Double, bytes: UInt64, packets: UInt64)] = [(50, 0, 0)]
        while writes.last!.time < 50 + Double(seconds) + 2 {
            let k = writes.count
            let last = writes.last!
            let gap = gaps[k % gaps.count]
            let bytes = UInt64(rates[k % rates.count] * gap)
            writes.append((last.time + gap, last.bytes + bytes, last.packets + bytes / 1514 + 1))
        }
        var records: [SampleRecord] = []
        var seen: [(time: Double, bytes: UInt64, packets: UInt64)] = []
        for second in 0...seconds {
            let uptime = 50.2 + Double(second)
            let w = writes.last { $0.time <= uptime }!
            if seen.last?.time != w.time { seen.append(w) }
            var sample = Sim.iovm("iovm0", cpu: UInt64(second) * 400_000_000, rx: w.bytes, tx: w.bytes / 10)
            sample.nics[0].rxPackets = w.packets
            sample.nics[0].txPackets = w.packets / 2
            sample.counterTime = w.time
            records.append(SampleRecord(time: 1_764_100_000 + Double(second), elapsed: Double(second), cpuHz: 1_000_000_000, iovms: [sample]))
        }
        return (records, seen.last!.bytes - seen.first!.bytes, seen.last!.packets - seen.first!.packets, seen.last!.time - seen.first!.time)
    }

    @Test("totals are the counters' own deltas over the agent's clock, whatever dom0's grid")
    func exactTotals() {
        let run = Self.irregularRun(seconds: 40)
        var tracker = EfficiencyTracker()
        var held: UInt64 = 0
        for record in run.records { held += tracker.add(record).interval?.aggregate.rxBytes ?? 0 }
        let totals = tracker.totals["iovm0"]
        #expect(totals?.rxBytes == run.bytes)
        #expect(totals?.rxPackets == run.packets)
        #expect(abs((totals?.seconds ?? 0) - run.span) < 1e-9)
        #expect(abs((totals?.rxMbps ?? 0) - Double(run.bytes) * 8 / run.span / 1e6) < 1e-9)
        // The held rates spread each write over dom0's grid: close, but not the counters' sum.
        #expect(held != run.bytes, "held rates summed: \(held) bytes; counters: \(run.bytes)")
    }

    @Test("the run summary's means come from the totals; intervals without a rate are unknown, not zero")
    func summary() throws {
        let run = Self.irregularRun(seconds: 40)
        let meta = RunMeta(interval: 1, cpuHz: 1_000_000_000, frequencyWarning: nil, started: 1_764_100_000, iovms: ["iovm0"])
        let recorded = RecordedRun(directory: "/tmp/x", meta: meta, plan: nil, records: run.records)
        // The first interval: dom0 has seen one write only (uptime 50), so no rate yet.
        #expect(recorded.intervals.first?.iovms.first?.trafficKnown == false)
        #expect(recorded.intervals.first?.aggregate.trafficKnown == false)
        #expect(recorded.intervals.dropFirst(2).allSatisfy { $0.aggregate.trafficKnown })
        let summary = RunSummary(recorded)
        let iovm = try #require(summary.iovms.first)
        #expect(iovm.unknownTrafficIntervals >= 1)
        #expect(iovm.samples == 40)
        #expect(abs(iovm.meanRxMbps - Double(run.bytes) * 8 / run.span / 1e6) < 1e-9)
        #expect(iovm.rxBytes == run.bytes && iovm.rxPackets == run.packets)
        // 0.4 of a core at 1 GHz = 4e8 cycles/s; efficiency = mean bits/s over that.
        #expect(abs(iovm.meanCPUPercent - 40) < 1e-6)
        #expect(abs((iovm.efficiency ?? 0) - (iovm.meanRxMbps + iovm.meanTxMbps) * 1e6 / 4e8) < 1e-9)
        #expect(summary.aggregate.meanRxMbps == iovm.meanRxMbps)
        #expect(summary.aggregate.rxBytes == iovm.rxBytes)
        // CSV marks the unknown interval.
        let csv = Report.csv([recorded]).split(separator: "\n")
        #expect(csv[0].hasSuffix(",traffic_known,rx_packets,tx_packets"))
        #expect(csv[1].split(separator: ",", omittingEmptySubsequences: false)[17] == "0")
        #expect(csv[3].split(separator: ",", omittingEmptySubsequences: false)[17] == "1")
    }

    @Test("two IOVMs: the aggregate mean is the sum of their means; an IOVM recreated mid-run is not counted across the gap")
    func aggregateAndRecreation() {
        var tracker = EfficiencyTracker()
        var records: [SampleRecord] = []
        for second in 0...20 {
            // iovm0: 1 MB/s, writes every second. iovm1: 2 MB/s, recreated at second 10 (new domid, uptime from 0).
            var a = Sim.iovm("iovm0", domid: 1, cpu: UInt64(second) * 100_000_000, rx: UInt64(second) * 1_000_000, tx: 0)
            a.counterTime = 10 + Double(second)
            let life = second < 10 ? second : second - 10
            var b = Sim.iovm("iovm1", domid: second < 10 ? 2 : 3, cpu: UInt64(life) * 100_000_000, rx: UInt64(life) * 2_000_000, tx: 0)
            b.counterTime = 5 + Double(life)
            records.append(SampleRecord(time: Double(second), elapsed: Double(second), cpuHz: 1_000_000_000, iovms: [a, b]))
        }
        var unknownAfterRecreation = false
        for record in records {
            let step = tracker.add(record)
            if record.elapsed == 10, let f = step.interval?.iovms.first(where: { $0.iovm == "iovm1" }) { unknownAfterRecreation = !f.trafficKnown }
        }
        #expect(unknownAfterRecreation)
        #expect(tracker.totals["iovm0"]?.rxBytes == 20_000_000 && tracker.totals["iovm0"]?.seconds == 20)
        // iovm1: 9 s before (writes at 5…14) and 10 s after (writes at 5…15 of its new life); the recreation itself is not counted.
        #expect(tracker.totals["iovm1"]?.rxBytes == 38_000_000)
        #expect(tracker.totals["iovm1"]?.seconds == 19)
        let meta = RunMeta(interval: 1, cpuHz: 1_000_000_000, frequencyWarning: nil, started: 0, iovms: ["iovm0", "iovm1"])
        let summary = RunSummary(RecordedRun(directory: "/tmp/x", meta: meta, plan: nil, records: records))
        #expect(abs(summary.aggregate.meanRxMbps - 24) < 1e-9)  // 8 + 16 Mbit/s
    }

    @Test("Prometheus leaves unknown traffic out instead of exporting zero")
    func expositionOmitsUnknown() {
        let unknown = EfficiencyFigures(iovm: "iovm0", seconds: 1, rxBytes: 0, txBytes: 0, cpuNanoseconds: 1_000, cpuHz: 1_000_000_000, trafficKnown: false)
        let text = Exposition.text(
            for: IntervalFigures(start: 0, end: 1, time: 1, cpuHz: 1_000_000_000, iovms: [unknown], aggregate: unknown),
            samplerCPURatio: nil)
        #expect(!text.contains("iovm_throughput_bits_per_second{"))
        #expect(text.contains("iovm_cpu_cycles_per_second{"))
    }
}

/// Efficiency per interval compares traffic and cycles of the same seconds.
@Suite("Efficiency over the agent's window")
struct AlignedEfficiencyTests {
    @Test("when traffic stops, the last busy rate is not divided by idle cycles (no spike)")
    func noSpikeWhenTrafficStops() {
        // 10 MB/s at half a core until t = 40 s, then nothing at 5% of a core. The agent writes every
        // 1.07 s (uptime = t - 100); dom0 samples every second at t = 0.5, 1.5, ...
        let stop = 40.0
        let rate = 10_000_000.0
        func bytes(_ t: Double) -> UInt64 { UInt64(rate * min(t, stop)) }
        func cpu(_ t: Double) -> UInt64 { UInt64(0.5e9 * min(t, stop) + 0.05e9 * max(0, t - stop)) }
        var tracker = EfficiencyTracker()
        var figures: [EfficiencyFigures] = []
        for k in 0..<70 {
            let t = 0.5 + Double(k)
            let write = (t / 1.07).rounded(.down) * 1.07
            var sample = Sim.iovm("iovm0", cpu: cpu(t), rx: bytes(write), tx: 0)
            sample.counterTime = write + 100
            if let interval = tracker.add(SampleRecord(time: t, elapsed: t, cpuHz: 1_000_000_000, iovms: [sample])).interval {
                figures += interval.iovms
            }
        }
        let steady = 80e6 / 0.5e9  // 0.16 bits/Hz
        let known = figures.filter { $0.trafficKnown && $0.rxBytes > 0 }
        let unaligned = known.map { Double($0.rxBytes) * 8 / $0.cycles }.max() ?? 0
        #expect(unaligned > 3 * steady, "the naive ratio spikes: \(unaligned)")
        let worst = known.compactMap(\.efficiency).max() ?? 0
        #expect(worst < 1.25 * steady, "aligned efficiency peaks at \(worst), steady \(steady)")
        // In the steady part the aligned figure is the steady one.
        let middle = figures.filter { $0.trafficKnown }.dropFirst(10).prefix(20).compactMap(\.efficiency)
        #expect(middle.allSatisfy { abs($0 - steady) < 0.01 }, "\(middle)")
    }
}
