import FoundationEssentials
import IOVMCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Time and CPU accounting for the sampler, injectable so tests run without waiting.
public protocol SamplerClock {
    /// Monotonic seconds (any origin).
    func monotonic() -> Double
    /// Wall-clock seconds since 1970.
    func wallTime() -> Double
    /// Sleeps until the monotonic time `deadline` (returns at once if it has passed).
    func sleep(until deadline: Double)
    /// This process's CPU time so far, user + system, in seconds.
    func processCPUSeconds() -> Double
}

/// The real clock: `CLOCK_MONOTONIC`, `gettimeofday`, `nanosleep` and `getrusage(RUSAGE_SELF)`.
public struct SystemSamplerClock: SamplerClock {
    /// Creates the system clock.
    public init() {}

    /// `CLOCK_MONOTONIC` in seconds.
    public func monotonic() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// `Date().timeIntervalSince1970`.
    public func wallTime() -> Double { Date().timeIntervalSince1970 }

    /// Sleeps until the deadline (`PThread.sleep(seconds:)`: `nanosleep`, resumed after signals).
    public func sleep(until deadline: Double) {
        PThread.sleep(seconds: deadline - monotonic())
    }

    /// User + system CPU seconds of this process (`getrusage(RUSAGE_SELF)`).
    public func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    }
}

/// What the sampler hands over after each sample.
public struct SamplerOutput: Sendable, Codable {
    /// The raw record (one line of `samples.jsonl`).
    public var record: SampleRecord
    /// The interval since the previous sample (nil for the first sample).
    public var interval: IntervalFigures?
    /// Events at this sample (gaps, recreated IOVMs, counter resets, read errors).
    public var events: [MonitorEvent]
    /// The sampler's own CPU use over the last interval: (user + sys seconds) / wall seconds.
    public var samplerCPURatio: Double?
    /// The sampler's own CPU use since it started.
    public var samplerCPURatioTotal: Double?
}

/// Samples a ``CounterSource`` at a fixed interval and turns the samples into efficiency figures.
///
/// Deadlines are fixed multiples of the interval from the start, so a slow read does not make
/// the schedule drift. An IOVM that disappears is reported as a gap (``MonitorEvent/Kind/disappeared``)
/// and picked up again when it returns; a read that fails is reported and retried, and only
/// ``maximumConsecutiveFailures`` failures in a row stop the run.
public final class Sampler {
    /// Seconds between samples (default 1; 0.1 for 10 Hz).
    public let interval: Double
    /// Consecutive failed reads after which ``run(count:shouldStop:_:)`` throws.
    public var maximumConsecutiveFailures = 5
    private let source: any CounterSource
    private let clock: any SamplerClock
    private let watched: [String]
    private var tracker = EfficiencyTracker()

    /// Per IOVM, the traffic counted exactly so far (see ``TrafficTotals``).
    public var totals: [String: TrafficTotals] { tracker.totals }

    /// Creates a sampler over `source`; `watched` names the IOVMs whose absence is a gap (empty:
    /// any IOVM once seen).
    public init(source: any CounterSource, interval: Double = 1, watched: [String] = [], clock: any SamplerClock = SystemSamplerClock()) {
        precondition(interval > 0, "interval must be positive")
        self.source = source
        self.interval = interval
        self.watched = watched
        self.clock = clock
    }

    /// Samples until `count` samples were taken (nil: no limit) or `shouldStop` returns true,
    /// calling `body` after each sample. Returns the sampler's own CPU ratio over the whole run.
    @discardableResult
    public func run(count: Int? = nil, shouldStop: () -> Bool = { false }, _ body: (SamplerOutput) throws -> Void) throws -> Double? {
        let start = clock.monotonic()
        let startCPU = clock.processCPUSeconds()
        var lastWall = start
        var lastCPU = startCPU
        var taken = 0
        var failures = 0
        var tick = 0
        var seen = watched
        while count.map({ taken < $0 }) ?? true, !shouldStop() {
            if tick > 0 {
                // Skip deadlines already missed (a slow read) rather than sampling in a burst.
                tick = max(tick, Int(((clock.monotonic() - start) / interval).rounded(.up)))
                clock.sleep(until: start + Double(tick) * interval)
            }
            tick += 1
            if shouldStop() { break }
            let now = clock.monotonic()
            let reading: CounterReading
            do {
                reading = try source.read()
                failures = 0
            } catch {
                failures += 1
                if failures >= maximumConsecutiveFailures { throw error }
                let event = MonitorEvent(elapsed: now - start, iovm: "*", kind: .readFailed, detail: "\(error)")
                try body(
                    SamplerOutput(
                        record: SampleRecord(time: clock.wallTime(), elapsed: now - start, cpuHz: 0, iovms: []),
                        interval: nil, events: [event]))
                continue
            }
            for sample in reading.iovms where !seen.contains(sample.iovm) { seen.append(sample.iovm) }
            let present = Set(reading.iovms.map(\.iovm))
            let cpu = clock.processCPUSeconds()
            let record = SampleRecord(
                time: reading.recordedTime ?? clock.wallTime(), elapsed: reading.recordedElapsed ?? (now - start),
                cpuHz: reading.cpuHz, iovms: reading.iovms,
                missing: seen.filter { !present.contains($0) }, samplerCPUSeconds: cpu - startCPU)
            let step = tracker.add(record)
            let ratio = taken > 0 && now > lastWall ? (cpu - lastCPU) / (now - lastWall) : nil
            let total = now > start ? (cpu - startCPU) / (now - start) : nil
            lastWall = now
            lastCPU = cpu
            taken += 1
            try body(SamplerOutput(record: record, interval: step.interval, events: step.events, samplerCPURatio: ratio, samplerCPURatioTotal: total))
        }
        let elapsed = clock.monotonic() - start
        return elapsed > 0 ? (clock.processCPUSeconds() - startCPU) / elapsed : nil
    }
}
