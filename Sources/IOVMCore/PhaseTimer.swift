import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Logs at trace how long each phase of a command took, so that `--log-level trace` shows where a slow apply spends
/// its time (issue 16's no-op re-apply).
///
/// Each line also names the process's user and system CPU and its minor page faults during the phase (`getrusage`,
/// every thread's): under TCG in a PV dom0 a page fault costs some 0.1-0.2 ms, so a phase's faults say as much as its
/// instructions.
public struct PhaseTimer {
    private let logger: Logger
    private let prefix: String
    private var last: ContinuousClock.Instant
    private var lastUsage: Usage?

    /// Starts timing now; each line begins with `prefix` (`apply`).
    public init(_ prefix: String, logger: Logger) {
        self.logger = logger
        self.prefix = prefix
        self.last = ContinuousClock.now
        self.lastUsage = logger.logLevel <= .trace ? Usage.now() : nil
    }

    /// Logs `phase` with the time since the previous lap (or the start), then starts the next phase.
    public mutating func lap(_ phase: @autoclosure () -> String) {
        guard logger.logLevel <= .trace else { return }
        let now = ContinuousClock.now
        let usage = Usage.now()
        let ms = (now - last).milliseconds
        var line = "\(prefix): \(phase()) in \(String(cFormat: "%.1f", ms)) ms"
        if let usage, let before = lastUsage {
            line +=
                " (user \(String(cFormat: "%.1f", usage.userMs - before.userMs)) ms, system "
                + "\(String(cFormat: "%.1f", usage.systemMs - before.systemMs)) ms, \(usage.minorFaults - before.minorFaults) faults)"
        }
        logger.trace("\(line)")
        last = now
        lastUsage = usage
    }

    /// The process's CPU times and minor page faults so far.
    struct Usage {
        var userMs: Double
        var systemMs: Double
        var minorFaults: Int

        static func now() -> Usage? {
            #if canImport(Glibc)
                var usage = rusage()
                guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return nil }
                func ms(_ time: timeval) -> Double { Double(time.tv_sec) * 1000 + Double(time.tv_usec) / 1000 }
                return Usage(userMs: ms(usage.ru_utime), systemMs: ms(usage.ru_stime), minorFaults: usage.ru_minflt)
            #else
                return nil
            #endif
        }
    }
}

extension Duration {
    /// The duration in milliseconds, with its fraction.
    public var milliseconds: Double { Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15 }
}
