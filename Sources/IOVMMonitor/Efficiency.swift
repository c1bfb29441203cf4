import Foundation

/// Throughput, CPU and efficiency of one IOVM (or the aggregate of all) over one interval, in the
/// paper's terms (Section 4.1).
///
/// Directions are the guest's, as in the paper: **Rx** is client → guest, **Tx** is guest →
/// client. Both are measured on the physical NICs inside the IOVM: a NIC's rx bytes are Rx
/// traffic, its tx bytes Tx traffic. Efficiency is the bits moved through the IOVM divided by
/// the processor cycles the IOVM used (bits/Hz); cycles are CPU nanoseconds × *nominal* Hz / 1e9.
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

/// Something that happened to an IOVM during a run, reported instead of wrong numbers.
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
        String(format: "%.1fs %@ %@", elapsed, iovm, kind.rawValue) + (detail.isEmpty ? "" : ": \(detail)")
    }
}

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

/// The traffic one IOVM's counters moved over a whole run, counted exactly: the sum of the counter
/// deltas between consecutive agent writes, over the agent's own clock (its uptime at each write).
///
/// Interval figures hold the agent's rate between writes, which smooths the display but spreads
/// each write's bytes over dom0's sampling grid; these totals are what a run's mean throughput is
/// computed from. Writes across a reboot or recreation of the IOVM are not counted (their span is
/// unknown); a counter reset inside a running IOVM counts from zero.
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

/// Turns a sequence of ``SampleRecord``s into ``IntervalFigures`` and ``MonitorEvent``s, keeping
/// the previous sample of each IOVM as the baseline. The live sampler and the offline report use
/// this same code, so a recorded run reports what was shown live.
public struct EfficiencyTracker: Sendable {
    /// The fastest plausible link, bits/s: bounds how far a wrapped interface counter can have moved.
    public var maximumLineRateBitsPerSecond: Double = 100e9
    private var previous: SampleRecord?
    private var baseline: [String: IOVMSample] = [:]
    private var seen: Set<String> = []
    /// Per IOVM: per second (NIC rx bytes, NIC tx bytes, guest rx bytes, guest tx bytes, NIC rx packets,
    /// NIC tx packets) over the agent's last publication interval.
    private var rates: [String: [Double]] = [:]
    /// Per IOVM: recent (dom0 elapsed seconds, CPU nanoseconds) readings of the current epoch.
    private var cpuHistory: [String: [(time: Double, nanoseconds: Double)]] = [:]
    /// Per IOVM: the smallest (dom0 elapsed − agent uptime) seen when a new write was first read:
    /// maps the agent's clock onto dom0's (both run on Xen's system time) up to that delay.
    private var clockOffset: [String: Double] = [:]
    /// Per IOVM: CPU nanoseconds per second over the agent's last publication window.
    private var cpuRates: [String: Double] = [:]
    /// Per IOVM: the traffic counted exactly over the run so far (see ``TrafficTotals``).
    public private(set) var totals: [String: TrafficTotals] = [:]

    /// Creates a tracker with no baseline.
    public init() {}

    /// What one new record yields: the interval since the previous record (nil for the first) and events.
    public struct Step: Sendable {
        /// The interval ending at this record, when there was a previous record.
        public var interval: IntervalFigures?
        /// Events noticed at this record.
        public var events: [MonitorEvent]
    }

    /// Adds the next record.
    public mutating func add(_ record: SampleRecord) -> Step {
        var events: [MonitorEvent] = []
        var figures: [EfficiencyFigures] = []
        let seconds = previous.map { record.elapsed - $0.elapsed } ?? 0
        let first = previous == nil
        for sample in record.iovms {
            defer {
                baseline[sample.iovm] = sample
                seen.insert(sample.iovm)
            }
            if !sample.countersPublished, baseline[sample.iovm]?.countersPublished != false {
                events.append(
                    MonitorEvent(
                        elapsed: record.elapsed, iovm: sample.iovm, kind: .noCounters,
                        detail: "no data/iovm/counters in domain \(sample.domid): is the agent running inside it?"))
            }
            guard let old = baseline[sample.iovm] else {
                if seen.contains(sample.iovm) {
                    events.append(MonitorEvent(elapsed: record.elapsed, iovm: sample.iovm, kind: .reappeared, detail: "domain \(sample.domid)"))
                } else if !first {
                    events.append(MonitorEvent(elapsed: record.elapsed, iovm: sample.iovm, kind: .appeared, detail: "domain \(sample.domid)"))
                }
                continue
            }
            guard seconds > 0 else { continue }
            figures.append(interval(from: old, to: sample, seconds: seconds, cpuHz: record.cpuHz, at: record.elapsed, events: &events))
        }
        let present = Set(record.iovms.map(\.iovm))
        for name in baseline.keys.sorted() where !present.contains(name) {
            baseline[name] = nil
            events.append(MonitorEvent(elapsed: record.elapsed, iovm: name, kind: .disappeared, detail: "gap starts"))
        }
        var interval: IntervalFigures?
        if let previous, seconds > 0 {
            interval = IntervalFigures(
                start: previous.elapsed, end: record.elapsed, time: record.time, cpuHz: record.cpuHz,
                iovms: figures, aggregate: .aggregate(figures, seconds: seconds, cpuHz: record.cpuHz))
        }
        previous = record
        return Step(interval: interval, events: events)
    }

    private mutating func interval(
        from old: IOVMSample, to new: IOVMSample, seconds: Double, cpuHz: UInt64, at elapsed: Double,
        events: inout [MonitorEvent]
    ) -> EfficiencyFigures {
        let recreated = old.domid != new.domid
        if recreated {
            events.append(MonitorEvent(elapsed: elapsed, iovm: new.iovm, kind: .recreated, detail: "domain \(old.domid) → \(new.domid); counting from zero"))
        }
        let maxCPU = UInt64(Double(max(new.vcpus, old.vcpus, 1)) * seconds * 1e9 * 1.5)
        let cpu = CounterDelta.between(recreated ? nil : old.cpuNanoseconds, new.cpuNanoseconds, width: .bits64, maximumPlausible: maxCPU)
        if cpu.isNewEpoch && !recreated {
            events.append(MonitorEvent(elapsed: elapsed, iovm: new.iovm, kind: .counterReset, detail: "cpu_ns \(old.cpuNanoseconds) → \(new.cpuNanoseconds)"))
        }
        var newEpoch = recreated || cpu.isNewEpoch
        let maxBytes = UInt64(min(maximumLineRateBitsPerSecond * seconds / 8, 1.8e19))
        func delta(_ list: [InterfaceCounters], _ oldList: [InterfaceCounters], _ field: KeyPath<InterfaceCounters, UInt64>, _ label: String) -> UInt64 {
            var total: UInt64 = 0
            for counters in list {
                let before = recreated ? nil : oldList.first { $0.name == counters.name }.map { $0[keyPath: field] }
                let d = CounterDelta.between(before, counters[keyPath: field], width: new.counterWidth, maximumPlausible: maxBytes)
                switch d.change {
                case .advanced: break
                case .wrapped:
                    events.append(MonitorEvent(elapsed: elapsed, iovm: new.iovm, kind: .counterWrapped, detail: "\(counters.name) \(label)"))
                case .newEpoch:
                    newEpoch = true
                    let detail = before == nil ? "\(counters.name) is new; counting from zero" : "\(counters.name) \(label) went back; counting from zero"
                    // One event per interface and cause, not one per counter of it.
                    if !recreated && !events.contains(where: { $0.iovm == new.iovm && $0.kind == .counterReset && $0.detail == detail }) {
                        events.append(MonitorEvent(elapsed: elapsed, iovm: new.iovm, kind: .counterReset, detail: detail))
                    }
                }
                total &+= d.value
            }
            return total
        }
        let raw = [
            delta(new.nics, old.nics, \.rxBytes, "rx_bytes"), delta(new.nics, old.nics, \.txBytes, "tx_bytes"),
            // From the IOVM's side a vif's rx is what the guest sent, its tx what the guest received.
            delta(new.vifs, old.vifs, \.txBytes, "tx_bytes"), delta(new.vifs, old.vifs, \.rxBytes, "rx_bytes"),
            delta(new.nics, old.nics, \.rxPacketCount, "rx_packets"), delta(new.nics, old.nics, \.txPacketCount, "tx_packets"),
        ]
        var moved = raw
        var known = new.countersPublished
        var alignedCycles: Double?
        if let now = new.counterTime {
            // With the agent's own timestamps, traffic is a rate over the agent's interval, held until its next
            // write: a busy IOVM publishes late, and bytes counted per dom0 interval would come in bursts
            // (seen in the lab: zero for three intervals, then three intervals' worth at once). The IOVM's
            // CPU is taken over the same agent window, for efficiency (see ``EfficiencyFigures/alignedCycles``).
            if recreated || (old.counterTime.map { now < $0 } ?? false) {
                cpuHistory[new.iovm] = nil
                clockOffset[new.iovm] = nil
                cpuRates[new.iovm] = nil
            }
            var history = cpuHistory[new.iovm] ?? (recreated ? [] : [(elapsed - seconds, Double(old.cpuNanoseconds))])
            history.append((elapsed, (history.last?.nanoseconds ?? 0) + Double(cpu.value)))
            if history.count > 64 { history.removeFirst(history.count - 64) }
            cpuHistory[new.iovm] = history
            if !recreated, let before = old.counterTime, old.countersPublished {
                if now > before {
                    rates[new.iovm] = raw.map { Double($0) / (now - before) }
                    let offset = min(clockOffset[new.iovm] ?? .infinity, elapsed - now)
                    clockOffset[new.iovm] = offset
                    if let from = Self.interpolate(history, at: before + offset), let to = Self.interpolate(history, at: now + offset) {
                        cpuRates[new.iovm] = max(0, to - from) / (now - before)
                    } else {
                        cpuRates[new.iovm] = nil
                    }
                    count(raw, seconds: now - before, for: new.iovm)
                } else if now < before {
                    rates[new.iovm] = nil  // the IOVM rebooted: no rate until its next write
                }
            } else {
                rates[new.iovm] = nil  // recreated, or the agent's first write: no rate yet
                clockOffset[new.iovm] = nil
            }
            if let held = rates[new.iovm] {
                moved = held.map { UInt64(($0 * seconds).rounded()) }
                alignedCycles = cpuRates[new.iovm].map { $0 * seconds * Double(cpuHz) / 1e9 }
            } else {
                moved = raw.map { _ in 0 }
                known = false
            }
        } else if known && !recreated && old.countersPublished {
            count(raw, seconds: seconds, for: new.iovm)  // an agent without timestamps: dom0's clock
        }
        return EfficiencyFigures(
            iovm: new.iovm, seconds: seconds, rxBytes: moved[0], txBytes: moved[1], cpuNanoseconds: cpu.value, cpuHz: cpuHz,
            guestVifRxBytes: moved[2], guestVifTxBytes: moved[3], newEpoch: newEpoch, countersPublished: new.countersPublished,
            trafficKnown: known, rxPackets: moved[4], txPackets: moved[5], alignedCycles: alignedCycles)
    }

    /// CPU nanoseconds at dom0 time `time`, linear between the two readings around it; nil when
    /// `time` is outside the readings (then the window cannot be aligned).
    static func interpolate(_ history: [(time: Double, nanoseconds: Double)], at time: Double) -> Double? {
        guard let first = history.first, let last = history.last, time >= first.time - 1e-9, time <= last.time + 1e-9 else { return nil }
        guard let upper = history.firstIndex(where: { $0.time >= time }) else { return last.nanoseconds }
        if upper == 0 { return first.nanoseconds }
        let a = history[upper - 1]
        let b = history[upper]
        return b.time > a.time ? a.nanoseconds + (b.nanoseconds - a.nanoseconds) * (time - a.time) / (b.time - a.time) : b.nanoseconds
    }

    private mutating func count(_ raw: [UInt64], seconds: Double, for iovm: String) {
        var t = totals[iovm] ?? TrafficTotals()
        t.seconds += seconds
        t.rxBytes &+= raw[0]
        t.txBytes &+= raw[1]
        t.guestVifRxBytes &+= raw[2]
        t.guestVifTxBytes &+= raw[3]
        t.rxPackets &+= raw[4]
        t.txPackets &+= raw[5]
        totals[iovm] = t
    }
}

extension InterfaceCounters {
    /// Received packets, 0 when not published.
    var rxPacketCount: UInt64 { rxPackets ?? 0 }
    /// Transmitted packets, 0 when not published.
    var txPacketCount: UInt64 { txPackets ?? 0 }
}

/// Whether the nominal CPU frequency can be trusted for turning CPU time into cycles.
///
/// libxenstat reports the nominal frequency; with frequency scaling the cores may run slower
/// (or faster, with turbo), and cycles = CPU time × nominal Hz is then wrong by that ratio. The
/// check looks for dom0's cpufreq governors; a governor other than `performance` earns a warning.
/// (When Xen itself manages frequency, dom0 has no cpufreq directory: check `xenpm get-cpufreq-para`.)
public struct FrequencyScalingCheck: Sendable {
    /// The sysfs CPU directory (injectable for tests).
    public var cpuRoot: String

    /// The note every report carries.
    public static let nominalNote = "cycles = CPU time × nominal Hz (libxenstat xenstat_node_cpu_hz); with frequency scaling or turbo the true cycle count differs"

    /// Creates a check over `cpuRoot`.
    public init(cpuRoot: String = "/sys/devices/system/cpu") {
        self.cpuRoot = cpuRoot
    }

    /// A warning when some CPU has a cpufreq governor other than `performance`, else nil.
    public func warning() -> String? {
        let files = FileManager.default
        guard let entries = try? files.contentsOfDirectory(atPath: cpuRoot) else { return nil }
        var governors: [String: [String]] = [:]
        for cpu in entries.sorted() where cpu.hasPrefix("cpu") && cpu.dropFirst(3).allSatisfy(\.isNumber) && cpu.count > 3 {
            let path = "\(cpuRoot)/\(cpu)/cpufreq/scaling_governor"
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
            governors[text.trimmingCharacters(in: .whitespacesAndNewlines), default: []].append(cpu)
        }
        let others = governors.filter { $0.key != "performance" }
        guard !others.isEmpty else { return nil }
        let list = others.keys.sorted().map { "\($0) on \(others[$0]!.count) CPU(s)" }.joined(separator: ", ")
        return
            "frequency scaling is active (cpufreq governor \(list)): cycles from the nominal Hz may overstate the real cycles; set the governor to performance (or xenpm set-scaling-governor performance) for the paper's figures"
    }
}
