import FoundationEssentials

/// The figures of one interval between two sample records: per IOVM and the aggregate.
public struct IntervalFigures: Sendable, Codable, Hashable {
    /// Start, seconds since the run started.
    public var start: Double
    /// End, seconds since the run started.
    public var end: Double
    /// Wall-clock time of the end, seconds since 1970.
    public var time: Double
    /// Nominal CPU frequency used for cycles.
    public var cpuHz: UInt64
    /// Each IOVM present at both ends of the interval, in the order of the samples.
    public var iovms: [EfficiencyFigures]
    /// All of them together.
    public var aggregate: EfficiencyFigures

    /// Creates the figures of an interval.
    public init(start: Double, end: Double, time: Double, cpuHz: UInt64, iovms: [EfficiencyFigures], aggregate: EfficiencyFigures) {
        self.start = start
        self.end = end
        self.time = time
        self.cpuHz = cpuHz
        self.iovms = iovms
        self.aggregate = aggregate
    }
}
