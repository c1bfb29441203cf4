import Logging

/// Logs at trace how long each phase of a command took, so that `--log-level trace` shows where a slow apply spends
/// its time (issue 16's no-op re-apply).
public struct PhaseTimer {
    private let logger: Logger
    private let prefix: String
    private var last: ContinuousClock.Instant

    /// Starts timing now; each line begins with `prefix` (`apply`).
    public init(_ prefix: String, logger: Logger) {
        self.logger = logger
        self.prefix = prefix
        self.last = ContinuousClock.now
    }

    /// Logs `phase` with the time since the previous lap (or the start), then starts the next phase.
    public mutating func lap(_ phase: @autoclosure () -> String) {
        guard logger.logLevel <= .trace else { return }
        let now = ContinuousClock.now
        let ms = (now - last).milliseconds
        logger.trace("\(prefix): \(phase()) in \(String(cFormat: "%.1f", ms)) ms")
        last = now
    }
}

extension Duration {
    /// The duration in milliseconds, with its fraction.
    public var milliseconds: Double { Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15 }
}
