public import IOVMWireFormat

/// One line of `iovm monitor --json`: `start`, then an `interval` per sample (or `events` when a sample made no
/// interval), then `summary`.
///
/// Written through ``JSONLineWriter`` at every sample (see there why); `Encodable` gives the same bytes, which the
/// tests compare.
public struct MonitorJSONLine: Encodable, JSONLineWritable, Sendable {
    /// `start`, `interval`, `events` or `summary`.
    public var type: String
    /// Wall-clock seconds since 1970 of the sample.
    public var time: Double?
    /// Start of the interval, seconds since the run began.
    public var start: Double?
    /// End of the interval, seconds since the run began.
    public var end: Double?
    /// Nominal Hz the cycles are counted at.
    public var cpuHz: UInt64?
    /// Each IOVM's figures over the interval.
    public var iovms: [EfficiencyFigures]?
    /// All IOVMs together.
    public var aggregate: EfficiencyFigures?
    /// Events at this sample.
    public var events: [MonitorEvent]?
    /// The sampler's own CPU use over the last interval, a fraction of one core.
    public var samplerCPURatio: Double?
    /// The sampler's own CPU use since it started.
    public var samplerCPURatioTotal: Double?
    /// Intervals reported (summary).
    public var intervals: Int?
    /// What nominal Hz means (start).
    public var nominalHzNote: String?
    /// The frequency-scaling warning, if any (start).
    public var frequencyWarning: String?
    /// Per IOVM, the traffic counted exactly over the run (summary).
    public var totals: [String: TrafficTotals]?

    /// A line of `type` with the given fields.
    public init(
        type: String, time: Double? = nil, start: Double? = nil, end: Double? = nil, cpuHz: UInt64? = nil, iovms: [EfficiencyFigures]? = nil,
        aggregate: EfficiencyFigures? = nil, events: [MonitorEvent]? = nil, samplerCPURatio: Double? = nil, samplerCPURatioTotal: Double? = nil,
        intervals: Int? = nil, nominalHzNote: String? = nil, frequencyWarning: String? = nil, totals: [String: TrafficTotals]? = nil
    ) {
        self.type = type
        self.time = time
        self.start = start
        self.end = end
        self.cpuHz = cpuHz
        self.iovms = iovms
        self.aggregate = aggregate
        self.events = events
        self.samplerCPURatio = samplerCPURatio
        self.samplerCPURatioTotal = samplerCPURatioTotal
        self.intervals = intervals
        self.nominalHzNote = nominalHzNote
        self.frequencyWarning = frequencyWarning
        self.totals = totals
    }

    /// The line, as ``JSONText/line(_:)`` would write it (a non-finite number as `null`, where it throws).
    public var text: String { JSONLineWriter.line(self) }

    /// Writes the fields that are set, in byte order.
    public func write(to writer: inout JSONLineWriter) {
        writer.object { w in
            w.field("aggregate", aggregate)
            w.field("cpuHz", cpuHz)
            w.field("end", end)
            w.field("events", events)
            w.field("frequencyWarning", frequencyWarning)
            w.field("intervals", intervals)
            w.field("iovms", iovms)
            w.field("nominalHzNote", nominalHzNote)
            w.field("samplerCPURatio", samplerCPURatio)
            w.field("samplerCPURatioTotal", samplerCPURatioTotal)
            w.field("start", start)
            w.field("time", time)
            w.field("totals", totals)
            w.field("type", type)
        }
    }
}

extension EfficiencyFigures: JSONLineWritable {
    /// Its fields as its `Encodable` conformance names them, in byte order.
    public func write(to writer: inout JSONLineWriter) {
        writer.object { w in
            w.field("alignedCycles", alignedCycles)
            w.field("countersPublished", countersPublished)
            w.field("cpuNanoseconds", cpuNanoseconds)
            w.field("cpuPercent", cpuPercent)
            w.field("cycles", cycles)
            w.field("efficiency", efficiency)
            w.field("guestVifRxBytes", guestVifRxBytes)
            w.field("guestVifTxBytes", guestVifTxBytes)
            w.field("iovm", iovm)
            w.field("newEpoch", newEpoch)
            w.field("rxBytes", rxBytes)
            w.field("rxEfficiency", rxEfficiency)
            w.field("rxMbps", rxMbps)
            w.field("rxPackets", rxPackets)
            w.field("seconds", seconds)
            w.field("trafficKnown", trafficKnown)
            w.field("txBytes", txBytes)
            w.field("txEfficiency", txEfficiency)
            w.field("txMbps", txMbps)
            w.field("txPackets", txPackets)
        }
    }
}

extension MonitorEvent: JSONLineWritable {
    /// Its fields as its `Encodable` conformance names them, in byte order.
    public func write(to writer: inout JSONLineWriter) {
        writer.object { w in
            w.field("detail", detail)
            w.field("elapsed", elapsed)
            w.field("iovm", iovm)
            w.field("kind", kind.rawValue)
        }
    }
}

extension TrafficTotals: JSONLineWritable {
    /// Its stored fields as its `Encodable` conformance names them, in byte order.
    public func write(to writer: inout JSONLineWriter) {
        writer.object { w in
            w.field("guestVifRxBytes", guestVifRxBytes)
            w.field("guestVifTxBytes", guestVifTxBytes)
            w.field("rxBytes", rxBytes)
            w.field("rxPackets", rxPackets)
            w.field("seconds", seconds)
            w.field("txBytes", txBytes)
            w.field("txPackets", txPackets)
        }
    }
}
