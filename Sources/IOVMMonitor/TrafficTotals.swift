import FoundationEssentials

/// The traffic one IOVM's counters moved over a whole run, counted exactly: the sum of the counter
/// deltas between consecutive agent writes, over the agent's own clock (its uptime at each write).
///
/// Interval figures hold the agent's rate between writes, which smooths the display but spreads
/// each write's bytes over dom0's sampling grid; these totals are what a run's mean throughput is
/// computed from. Writes across a reboot or recreation of the IOVM are not counted (their span is
/// unknown); a counter reset inside a running IOVM counts from zero.
///
/// A new stored property goes into `write(to:)` too (`MonitorJSONLine.swift`), which `iovm monitor --json` uses.
public struct TrafficTotals: Sendable, Codable, Hashable {
    /// Seconds between the first and last counted agent writes, summed over epochs (agent clock).
    public var seconds: Double = 0
    /// Client → guest bytes (NIC rx).
    public var rxBytes: UInt64 = 0
    /// Guest → client bytes (NIC tx).
    public var txBytes: UInt64 = 0
    /// Client → guest packets (NIC rx).
    public var rxPackets: UInt64 = 0
    /// Guest → client packets (NIC tx).
    public var txPackets: UInt64 = 0
    /// Bytes the guests received through their vifs.
    public var guestVifRxBytes: UInt64 = 0
    /// Bytes the guests sent through their vifs.
    public var guestVifTxBytes: UInt64 = 0

    /// Empty totals.
    public init() {}

    /// Client → guest throughput over ``seconds``, Mbit/s (0 when nothing was counted).
    public var rxMbps: Double { seconds > 0 ? Double(rxBytes) * 8 / seconds / 1e6 : 0 }
    /// Guest → client throughput over ``seconds``, Mbit/s.
    public var txMbps: Double { seconds > 0 ? Double(txBytes) * 8 / seconds / 1e6 : 0 }
}
