/// How many bits a monotonic counter has before it wraps to zero.
public enum CounterWidth: Int, Sendable, Codable, Hashable {
    /// A 32-bit counter (`unsigned long` in a 32-bit kernel, some NIC drivers' own counters).
    case bits32 = 32
    /// A 64-bit counter (libxenstat's CPU nanoseconds, `rtnl_link_stats64`).
    case bits64 = 64

    /// The largest value the counter holds before wrapping.
    public var maximum: UInt64 { self == .bits32 ? UInt64(UInt32.max) : UInt64.max }
}

/// What happened to a counter between two readings.
public enum CounterChange: String, Sendable, Codable, Hashable {
    /// The counter went forward normally.
    case advanced
    /// The counter passed its maximum and started again from zero (known width, plausible jump).
    case wrapped
    /// The counter went backwards or is new: it was (re)started (domain recreated, NIC re-probed,
    /// interface created), so a new epoch began and its traffic is counted from zero.
    case newEpoch
}

/// The traffic (or CPU time) a monotonic counter moved between two readings.
///
/// A counter that goes backwards is never negative traffic: it either wrapped (only when its
/// width is known and the wrapped distance is plausible) or it restarted, which starts a new
/// epoch counted from zero.
public struct CounterDelta: Sendable, Codable, Hashable {
    /// The amount moved since the previous reading.
    public var value: UInt64
    /// Whether the counter advanced, wrapped, or restarted.
    public var change: CounterChange

    /// Creates a delta.
    public init(value: UInt64, change: CounterChange) {
        self.value = value
        self.change = change
    }

    /// Whether this delta starts a new epoch (the counter restarted).
    public var isNewEpoch: Bool { change == .newEpoch }

    /// The delta from `previous` to `current`.
    ///
    /// - Parameters:
    ///   - previous: The earlier reading; `nil` means the counter did not exist then (a new
    ///     interface), so everything it counted is new: a new epoch from zero.
    ///   - current: The later reading.
    ///   - width: The counter's width when known; without it a backwards step is always a restart.
    ///   - maximumPlausible: The largest amount that could have moved in the interval (e.g. line
    ///     rate × interval, or vCPUs × interval for CPU nanoseconds). A wrap is assumed only when
    ///     the wrapped distance is at most this; without it, at most half the counter's range.
    public static func between(
        _ previous: UInt64?, _ current: UInt64, width: CounterWidth? = nil,
        maximumPlausible: UInt64? = nil
    ) -> CounterDelta {
        guard let previous else { return CounterDelta(value: current, change: .newEpoch) }
        if current >= previous { return CounterDelta(value: current - previous, change: .advanced) }
        if let width, previous <= width.maximum, current <= width.maximum {
            // Distance forward through the wrap: (maximum - previous) + 1 + current, in modular arithmetic.
            let wrapped = (width.maximum - previous) &+ 1 &+ current
            let limit = maximumPlausible ?? (width.maximum / 2)
            if wrapped <= limit { return CounterDelta(value: wrapped, change: .wrapped) }
        }
        return CounterDelta(value: current, change: .newEpoch)
    }
}
