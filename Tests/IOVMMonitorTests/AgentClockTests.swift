import Foundation
import IOVMMonitor
import Testing

/// Rates over the agent's own clock: a busy IOVM that publishes every ~3.5 s while dom0 samples
/// every second must not look like bursts of traffic separated by silence (seen in the lab).
@Suite("Rates over the agent's clock")
struct AgentClockTests {
    /// 10 MB/s both ways, agent writes at IOVM uptimes 100, 103.5, 107, 110.5, ...; dom0 samples each second.
    func run(withAgentClock: Bool) -> [EfficiencyFigures] {
        var tracker = EfficiencyTracker()
        var figures: [EfficiencyFigures] = []
        let rate = 10_000_000.0
        var published = (time: 100.0, bytes: 0.0)
        for second in 0...20 {
            let uptime = 100.0 + Double(second) + 0.2
            if uptime - published.time >= 3.5 { published = (published.time + 3.5, (published.time + 3.5 - 100) * rate) }
            var sample = Sim.iovm("iovm0", cpu: UInt64(second) * 500_000_000, rx: UInt64(published.bytes), tx: UInt64(published.bytes))
            if withAgentClock { sample.counterTime = published.time }
            let step = tracker.add(SampleRecord(time: Double(second), elapsed: Double(second), cpuHz: 1_000_000_000, iovms: [sample]))
            if let interval = step.interval { figures.append(contentsOf: interval.iovms) }
        }
        return figures
    }

    @Test func withoutTheAgentClockTrafficComesInBursts() {
        let mbps = run(withAgentClock: false).map(\.rxMbps)
        #expect(mbps.filter { $0 == 0 }.count >= 10, "\(mbps)")
        #expect(mbps.max()! > 200, "\(mbps)")
    }

    @Test func withTheAgentClockEveryIntervalAfterTheFirstWriteShowsTheRate() {
        let figures = run(withAgentClock: true)
        let afterFirstWrite = figures.dropFirst(4)  // the first 3.5 s have no rate yet
        for figure in afterFirstWrite {
            #expect(abs(figure.rxMbps - 80) < 0.01, "\(figure.rxMbps)")  // 10 MB/s = 80 Mbit/s
            #expect(abs(figure.txMbps - 80) < 0.01)
        }
        // efficiency from the held rate: 80e6 bits/s × 2 directions over 0.5e9 cycles/s
        #expect(abs((afterFirstWrite.last?.efficiency ?? 0) - 0.32) < 0.001)
    }
}
