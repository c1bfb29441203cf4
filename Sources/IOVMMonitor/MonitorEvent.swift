import FoundationEssentials

/// Something that happened to an IOVM during a run, reported instead of wrong numbers.
///
/// A new stored property goes into `write(to:)` too (`MonitorJSONLine.swift`), which `iovm monitor --json` uses.
public struct MonitorEvent: Sendable, Codable, Hashable, CustomStringConvertible {
    /// The kinds of event.
    public enum Kind: String, Sendable, Codable, Hashable {
        /// An IOVM appeared for the first time after the run began.
        case appeared
        /// A watched IOVM is gone (destroyed, crashed, or renamed): a gap starts.
        case disappeared
        /// An IOVM is back after a gap; its next interval starts from this sample.
        case reappeared
        /// The IOVM has a new domain id: it was recreated between two samples (new epoch).
        case recreated
        /// A counter went backwards: restarted, counted from zero (new epoch).
        case counterReset
        /// A counter wrapped past its maximum.
        case counterWrapped
        /// The in-IOVM agent publishes no counters: throughput unknown.
        case noCounters
        /// Reading the counters failed (the sample is skipped; the next one is tried).
        case readFailed
    }

    /// Seconds since the run started.
    public var elapsed: Double
    /// The IOVM.
    public var iovm: String
    /// What happened.
    public var kind: Kind
    /// Details (domain ids, counter names).
    public var detail: String

    /// Creates an event.
    public init(elapsed: Double, iovm: String, kind: Kind, detail: String = "") {
        self.elapsed = elapsed
        self.iovm = iovm
        self.kind = kind
        self.detail = detail
    }

    /// One line for people.
    public var description: String {
        String(cFormat: "%.1fs ", elapsed) + "\(iovm) \(kind.rawValue)" + (detail.isEmpty ? "" : ": \(detail)")
    }
}
