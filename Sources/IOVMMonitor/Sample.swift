import FoundationEssentials
import IOVMCore
import IOVMWireFormat

/// Which side of an IOVM an interface is on.
public enum InterfaceKind: String, Sendable, Codable, Hashable {
    /// A physical NIC passed through to the IOVM: its rx is client → guest traffic, its tx guest → client.
    case nic
    /// A guest's vif backend port on one of the IOVM's bridges. Seen from the IOVM, a vif's rx
    /// is what the guest transmitted and its tx what the guest received.
    case vif
}

/// One interface's counters inside an IOVM, as the IOVM's kernel counts them.
public struct InterfaceCounters: Sendable, Codable, Hashable {
    /// Interface name inside the IOVM (`eth0`, `vif5.0`).
    public var name: String
    /// Physical NIC or guest vif.
    public var kind: InterfaceKind
    /// Bytes received by this interface (IOVM's view).
    public var rxBytes: UInt64
    /// Bytes transmitted by this interface (IOVM's view).
    public var txBytes: UInt64
    /// Packets received, when published.
    public var rxPackets: UInt64?
    /// Packets transmitted, when published.
    public var txPackets: UInt64?
    /// For a vif: the guest domain it belongs to, when known.
    public var guest: String?
    /// For a vif: its notifications so far, the interrupts of its event channels in the IOVM (all queues, tx and rx, all
    /// CPUs), when the agent published them (`data/iovm/notifications/<key>`); nil when unknown.
    public var notifications: UInt64?

    /// Creates interface counters.
    public init(
        name: String, kind: InterfaceKind, rxBytes: UInt64, txBytes: UInt64,
        rxPackets: UInt64? = nil, txPackets: UInt64? = nil, guest: String? = nil, notifications: UInt64? = nil
    ) {
        self.name = name
        self.kind = kind
        self.rxBytes = rxBytes
        self.txBytes = txBytes
        self.rxPackets = rxPackets
        self.txPackets = txPackets
        self.guest = guest
        self.notifications = notifications
    }
}

/// One IOVM at one sample time: the domain's total CPU time and its interfaces' counters.
public struct IOVMSample: Sendable, Codable, Hashable {
    /// IOVM (domain) name.
    public var iovm: String
    /// Domain id at this sample; a different id than before means the domain was recreated.
    public var domid: UInt32
    /// Domain CPU time, all vCPUs, in nanoseconds (libxenstat `xenstat_domain_cpu_ns`).
    public var cpuNanoseconds: UInt64
    /// Online vCPUs (bounds how much CPU time can plausibly pass in an interval).
    public var vcpus: Int
    /// Physical NICs inside the IOVM.
    public var nics: [InterfaceCounters]
    /// Guest vif ports on the IOVM's bridges.
    public var vifs: [InterfaceCounters]
    /// Width of the interface counters, when the agent published it (`data/iovm/counters/bits`).
    public var counterWidth: CounterWidth?
    /// Whether the in-IOVM agent published any counters (false: traffic unknown, not zero).
    public var countersPublished: Bool
    /// The IOVM's own uptime when the agent wrote these counters (`data/iovm/agent/uptime`), if published.
    public var counterTime: Double?

    /// Creates a sample.
    public init(
        iovm: String, domid: UInt32, cpuNanoseconds: UInt64, vcpus: Int = 1,
        nics: [InterfaceCounters] = [], vifs: [InterfaceCounters] = [],
        counterWidth: CounterWidth? = nil, countersPublished: Bool = true, counterTime: Double? = nil
    ) {
        self.iovm = iovm
        self.domid = domid
        self.cpuNanoseconds = cpuNanoseconds
        self.vcpus = vcpus
        self.nics = nics
        self.vifs = vifs
        self.counterWidth = counterWidth
        self.countersPublished = countersPublished
        self.counterTime = counterTime
    }
}

/// Everything read at one sample time: one line of `samples.jsonl`.
public struct SampleRecord: Sendable, Codable, Hashable {
    /// Wall-clock time of the sample, seconds since 1970 (for people and for joining with iperf3 logs).
    public var time: Double
    /// Monotonic seconds since the run started (what rates are computed from).
    public var elapsed: Double
    /// Nominal CPU frequency in Hz (libxenstat `xenstat_node_cpu_hz`).
    public var cpuHz: UInt64
    /// The IOVMs present at this time.
    public var iovms: [IOVMSample]
    /// IOVMs watched for but absent at this time.
    public var missing: [String]
    /// The sampler's own CPU time so far (user + system, seconds), when measured.
    public var samplerCPUSeconds: Double?

    /// Creates a record.
    public init(
        time: Double, elapsed: Double, cpuHz: UInt64, iovms: [IOVMSample], missing: [String] = [],
        samplerCPUSeconds: Double? = nil
    ) {
        self.time = time
        self.elapsed = elapsed
        self.cpuHz = cpuHz
        self.iovms = iovms
        self.missing = missing
        self.samplerCPUSeconds = samplerCPUSeconds
    }

    /// The sample of `iovm`, if present.
    public func sample(of iovm: String) -> IOVMSample? { iovms.first { $0.iovm == iovm } }
}

/// JSON lines: one compact, key-sorted JSON object per line.
public enum JSONLines {
    /// One record as a single line (no trailing newline).
    public static func line<T: Encodable>(_ value: T) throws -> String {
        try JSONText.line(value)
    }

    /// Decodes every non-empty line of `text`; a torn last line (a run killed mid-write) is skipped.
    ///
    /// - Throws: ``JSONLinesError`` naming the first line (from 1) that does not decode, and why.
    public static func decode<T: Decodable>(_ type: T.Type, from text: String) throws(JSONLinesError) -> [T] {
        try decode(type, from: Data(text.utf8))
    }

    /// Decodes every non-empty line of `data`, split at its newline bytes (a CR before one is dropped: a file that
    /// went through a CRLF tool); a torn last line (no newline after it: a run killed mid-write) is skipped.
    ///
    /// - Throws: ``JSONLinesError`` naming the first line (from 1) that does not decode (invalid UTF-8 included) and
    ///   why, at its JSON path or column.
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws(JSONLinesError) -> [T] {
        let decoder = JSONDecoder()
        let lines = data.split(separator: 0x0A, omittingEmptySubsequences: false)
        let last = lines.lastIndex { !$0.isEmpty }
        var values: [T] = []
        for (index, bytes) in lines.enumerated() where !bytes.isEmpty {
            let line = Data(bytes.last == 0x0D ? bytes.dropLast() : bytes)
            do {
                values.append(try decoder.decode(T.self, from: line))
            } catch {
                if index == last && data.last != 0x0A { break }
                var reason = TopologyLoader.describe(error, in: line)
                if reason.hasPrefix("line 1, column ") { reason = "column " + reason.dropFirst("line 1, column ".count) }
                throw JSONLinesError(line: index + 1, reason: reason)
            }
        }
        return values
    }
}

/// A line of a JSON Lines file that does not decode.
public struct JSONLinesError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The line, from 1.
    public var line: Int
    /// What is wrong with it, at its JSON path.
    public var reason: String

    /// Creates the error of line `line` (from 1).
    public init(line: Int, reason: String) {
        self.line = line
        self.reason = reason
    }

    /// `line N: reason`.
    public var description: String { "line \(line): \(reason)" }
}
