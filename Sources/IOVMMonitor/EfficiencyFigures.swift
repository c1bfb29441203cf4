import FoundationEssentials

/// Throughput, CPU and efficiency of one IOVM (or the aggregate of all) over one interval, in the
/// paper's terms (Section 4.1).
///
/// Directions are the guest's, as in the paper: **Rx** is client → guest, **Tx** is guest →
/// client. Both are measured on the physical NICs inside the IOVM: a NIC's rx bytes are Rx
/// traffic, its tx bytes Tx traffic. Efficiency is the bits moved through the IOVM divided by
/// the processor cycles the IOVM used (bits/Hz); cycles are CPU nanoseconds × *nominal* Hz / 1e9.
///
/// A new stored property goes into `write(to:)` too (`MonitorJSONLine.swift`), which `iovm monitor --json` uses.
public struct EfficiencyFigures: Sendable, Codable, Hashable {
    /// IOVM name, or ``EfficiencyFigures/aggregateName`` for all IOVMs together.
    public var iovm: String
    /// Length of the interval in seconds.
    public var seconds: Double
    /// Client → guest bytes (NIC rx inside the IOVM).
    public var rxBytes: UInt64
    /// Guest → client bytes (NIC tx inside the IOVM).
    public var txBytes: UInt64
    /// Client → guest throughput in Mbit/s (10^6 bit/s, as iperf reports).
    public var rxMbps: Double
    /// Guest → client throughput in Mbit/s.
    public var txMbps: Double
    /// Bytes the guests received through their vifs (vif tx in the IOVM), a cross-check of ``rxBytes``.
    public var guestVifRxBytes: UInt64
    /// Bytes the guests sent through their vifs (vif rx in the IOVM), a cross-check of ``txBytes``.
    public var guestVifTxBytes: UInt64
    /// CPU time the IOVM used in the interval, nanoseconds.
    public var cpuNanoseconds: UInt64
    /// CPU use in percent of one core (100 = one core busy the whole interval).
    public var cpuPercent: Double
    /// Processor cycles used: CPU nanoseconds × nominal Hz / 1e9.
    public var cycles: Double
    /// The cycles the efficiency is computed over. Traffic shown for an interval is the agent's
    /// last rate, over the agent's last publication window, which lags dom0's CPU reading by up to
    /// an interval: dividing it by this interval's own cycles would spike when traffic stops (the
    /// last busy rate over idle cycles). So, with the agent's timestamps, the IOVM's cycle rate is
    /// taken over that same window (dom0's CPU readings interpolated at the agent's write times,
    /// mapped to dom0's clock by the smallest observed publish-to-read delay), held alike, times
    /// the interval. Without timestamps it is ``cycles``.
    public var alignedCycles: Double
    /// (Rx + Tx bits) / cycles, in bits/Hz; nil when no cycles were used or Hz is unknown.
    public var efficiency: Double?
    /// Rx bits / cycles. In a run with traffic in one direction only (as in the paper's
    /// experiments) this is that direction's efficiency; in a mixed run both directions share the
    /// cycles and ``rxEfficiency`` + ``txEfficiency`` = ``efficiency``.
    public var rxEfficiency: Double?
    /// Tx bits / cycles (see ``rxEfficiency``).
    public var txEfficiency: Double?
    /// Whether a counter restarted (new epoch) in this interval.
    public var newEpoch: Bool
    /// Whether the in-IOVM agent published traffic counters (false: Rx/Tx unknown, shown as 0).
    public var countersPublished: Bool
    /// Whether Rx/Tx of this interval are measured. False when the counters are not published, or
    /// no rate is known yet: the IOVM (or its agent) just started and has written its counters
    /// only once since. Such intervals show 0 bytes and are left out of means and peaks.
    public var trafficKnown: Bool
    /// Client → guest packets (NIC rx packets inside the IOVM).
    public var rxPackets: UInt64
    /// Guest → client packets (NIC tx packets inside the IOVM).
    public var txPackets: UInt64

    /// The name used for the aggregate of all IOVMs.
    public static let aggregateName = "aggregate"

    /// Computes the figures from the amounts moved in an interval.
    public init(
        iovm: String, seconds: Double, rxBytes: UInt64, txBytes: UInt64, cpuNanoseconds: UInt64, cpuHz: UInt64,
        guestVifRxBytes: UInt64 = 0, guestVifTxBytes: UInt64 = 0, newEpoch: Bool = false, countersPublished: Bool = true,
        trafficKnown: Bool? = nil, rxPackets: UInt64 = 0, txPackets: UInt64 = 0, alignedCycles: Double? = nil
    ) {
        self.iovm = iovm
        self.seconds = seconds
        self.rxBytes = rxBytes
        self.txBytes = txBytes
        self.guestVifRxBytes = guestVifRxBytes
        self.guestVifTxBytes = guestVifTxBytes
        self.cpuNanoseconds = cpuNanoseconds
        self.newEpoch = newEpoch
        self.countersPublished = countersPublished
        self.trafficKnown = trafficKnown ?? countersPublished
        self.rxPackets = rxPackets
        self.txPackets = txPackets
        let rxBits = Double(rxBytes) * 8
        let txBits = Double(txBytes) * 8
        rxMbps = seconds > 0 ? rxBits / seconds / 1e6 : 0
        txMbps = seconds > 0 ? txBits / seconds / 1e6 : 0
        cpuPercent = seconds > 0 ? Double(cpuNanoseconds) / (seconds * 1e9) * 100 : 0
        cycles = Double(cpuNanoseconds) * Double(cpuHz) / 1e9
        let aligned = alignedCycles ?? cycles
        self.alignedCycles = aligned
        efficiency = aligned > 0 ? (rxBits + txBits) / aligned : nil
        rxEfficiency = aligned > 0 ? rxBits / aligned : nil
        txEfficiency = aligned > 0 ? txBits / aligned : nil
    }

    /// The aggregate of several IOVMs over the same interval: bytes and cycles add up, and the
    /// efficiency is total bits over total cycles (not a mean of efficiencies).
    public static func aggregate(_ parts: [EfficiencyFigures], seconds: Double, cpuHz: UInt64) -> EfficiencyFigures {
        EfficiencyFigures(
            iovm: aggregateName, seconds: seconds,
            rxBytes: parts.reduce(0) { $0 + $1.rxBytes }, txBytes: parts.reduce(0) { $0 + $1.txBytes },
            cpuNanoseconds: parts.reduce(0) { $0 + $1.cpuNanoseconds }, cpuHz: cpuHz,
            guestVifRxBytes: parts.reduce(0) { $0 + $1.guestVifRxBytes }, guestVifTxBytes: parts.reduce(0) { $0 + $1.guestVifTxBytes },
            newEpoch: parts.contains { $0.newEpoch }, countersPublished: parts.allSatisfy(\.countersPublished),
            trafficKnown: parts.allSatisfy(\.trafficKnown),
            rxPackets: parts.reduce(0) { $0 + $1.rxPackets }, txPackets: parts.reduce(0) { $0 + $1.txPackets },
            alignedCycles: parts.reduce(0) { $0 + $1.alignedCycles })
    }
}
