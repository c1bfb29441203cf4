import Foundation
import IOVMMonitor
import Testing

@Suite("Sampler")
struct SamplerTests {
    static func reading(_ t: UInt64, iovms: [String] = ["a"]) -> CounterReading {
        CounterReading(
            cpuHz: 1_000_000_000,
            iovms: iovms.enumerated().map { index, name in
                Sim.iovm(name, domid: UInt32(index + 1), cpu: t * 250_000_000, rx: t * 12_500_000, tx: t * 1_250_000)
            })
    }

    @Test("N samples at 10 Hz on fixed deadlines; figures per interval; its own CPU ratio reported")
    func tenHertz() throws {
        let clock = FakeClock(cpuPerRead: 0.0005)
        let source = FakeCounterSource(readings: (0..<5).map { Self.reading(UInt64($0)) })
        let sampler = Sampler(source: source, interval: 0.1, clock: clock)
        var outputs: [SamplerOutput] = []
        let total = try sampler.run(count: 5) { outputs.append($0) }
        #expect(outputs.count == 5 && source.reads == 5)
        #expect(clock.sleeps.map { ($0 - 100) * 10 }.map { $0.rounded() } == [1, 2, 3, 4])
        #expect(outputs[0].interval == nil)
        let interval = try #require(outputs[1].interval)
        #expect(abs(interval.end - interval.start - 0.1) < 1e-9)
        let a = try #require(interval.iovms.first)
        #expect(abs(a.rxMbps - 1_000) < 1e-6)  // 12.5 MB in 0.1 s
        #expect(abs(a.cpuPercent - 250) < 1e-6)  // fake counters: 0.25 s CPU per 0.1 s
        // The fake clock charges 0.0005 s of CPU per sample: 0.0005 s per 0.1 s = 0.5 % of a core.
        #expect(abs(try #require(outputs[2].samplerCPURatio) - 0.005) < 1e-9)
        #expect(outputs[0].samplerCPURatio == nil)
        #expect(try #require(total) > 0)
        #expect(outputs.allSatisfy { $0.record.samplerCPUSeconds != nil })
    }

    @Test("an IOVM that disappears and comes back: events, no crash, later intervals right")
    func survivesGap() throws {
        var script = (0..<6).map { Self.reading(UInt64($0), iovms: ["a", "b"]) }
        script[2] = CounterReading(cpuHz: 1_000_000_000, iovms: [script[2].iovms[0]])
        script[3] = CounterReading(cpuHz: 1_000_000_000, iovms: [script[3].iovms[0]])
        let sampler = Sampler(source: FakeCounterSource(readings: script), interval: 1, watched: ["a", "b"], clock: FakeClock())
        var outputs: [SamplerOutput] = []
        try sampler.run(count: 6) { outputs.append($0) }
        #expect(outputs[2].events.map(\.kind) == [.disappeared])
        #expect(outputs[2].record.missing == ["b"])
        #expect(outputs[3].events.isEmpty && outputs[3].record.missing == ["b"])
        #expect(outputs[4].events.map(\.kind) == [.reappeared])
        #expect(outputs[4].interval?.iovms.map(\.iovm) == ["a"])
        let b = try #require(outputs[5].interval?.iovms.first { $0.iovm == "b" })
        #expect(abs(b.rxMbps - 100) < 1e-9 && !b.newEpoch)
    }

    @Test("a failed read is an event and the sampler goes on; too many in a row stop it")
    func readFailures() throws {
        struct Broken: Error {}
        let source = FakeCounterSource([.success(Self.reading(0)), .failure(Broken()), .success(Self.reading(2)), .success(Self.reading(3))])
        var outputs: [SamplerOutput] = []
        try Sampler(source: source, interval: 1, clock: FakeClock()).run(count: 3) { outputs.append($0) }
        #expect(outputs.count == 4)
        #expect(outputs[1].events.map(\.kind) == [.readFailed])
        #expect(try #require(outputs[2].interval).start == 0)  // the interval spans the failed read
        #expect(abs(try #require(outputs[2].interval?.iovms.first).rxMbps - 100) < 1e-9)  // 25 MB over 2 s

        let dead = Sampler(source: FakeCounterSource([.failure(Broken())]), interval: 1, clock: FakeClock())
        dead.maximumConsecutiveFailures = 3
        #expect(throws: Broken.self) { try dead.run(count: 10) { _ in } }
    }

    @Test("stops when asked")
    func stops() throws {
        var taken = 0
        try Sampler(source: FakeCounterSource(readings: [Self.reading(0)]), interval: 1, clock: FakeClock())
            .run(shouldStop: { taken >= 3 }, { _ in taken += 1 })
        #expect(taken == 3)
    }

    @Test("the real clock measures this process's CPU time and sleeps to the deadline")
    func systemClock() {
        let clock = SystemSamplerClock()
        let start = clock.monotonic()
        let cpu = clock.processCPUSeconds()
        var x = 0.0
        for i in 0..<200_000 { x += sin(Double(i)) }
        #expect(x.isFinite)
        #expect(clock.processCPUSeconds() >= cpu)
        clock.sleep(until: start + 0.02)
        #expect(clock.monotonic() >= start + 0.02)
    }
}

@Suite("Replay")
struct ReplayTests {
    @Test("a replayed run keeps its recorded timing, so rates are those of the recording")
    func replay() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("replay-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        try Sim.run(into: root, label: "r", plan: nil, iovms: [("iovm0", 400, 100, 0.5)], seconds: 3)
        let run = try RecordedRun.load(root.path)
        let clock = FakeClock()
        var outputs: [SamplerOutput] = []
        try Sampler(source: ReplayCounterSource(run), interval: 0.01, clock: clock).run(count: 4) { outputs.append($0) }
        #expect(outputs.compactMap(\.interval).map(\.end) == [1, 2, 3])
        #expect(outputs.compactMap(\.interval).map(\.aggregate) == run.intervals.map(\.aggregate))
        #expect(throws: MonitorError.self) { try Sampler(source: ReplayCounterSource(run), interval: 0.01, clock: clock).run(count: 5) { _ in } }
    }
}
