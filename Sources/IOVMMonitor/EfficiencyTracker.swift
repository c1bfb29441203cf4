import FoundationEssentials

/// Turns a sequence of ``SampleRecord``s into ``IntervalFigures`` and ``MonitorEvent``s, keeping
/// the previous sample of each IOVM as the baseline. The live sampler and the offline report use
/// this same code, so a recorded run reports what was shown live.
public struct EfficiencyTracker: Sendable {
    /// The fastest plausible link, bits/s: bounds how far a wrapped interface counter can have moved.
    public var maximumLineRateBitsPerSecond: Double = 100e9
    private var previous: SampleRecord?
    private var baseline: [String: IOVMSample] = [:]
    private var seen: Set<String> = []
    /// Per IOVM: each counter per second over the agent's last publication interval.
    private var rates: [String: TrafficCounts<Double>] = [:]
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
        let raw = TrafficCounts(
            nicRxBytes: delta(new.nics, old.nics, \.rxBytes, "rx_bytes"), nicTxBytes: delta(new.nics, old.nics, \.txBytes, "tx_bytes"),
            // From the IOVM's side a vif's rx is what the guest sent, its tx what the guest received.
            guestRxBytes: delta(new.vifs, old.vifs, \.txBytes, "tx_bytes"), guestTxBytes: delta(new.vifs, old.vifs, \.rxBytes, "rx_bytes"),
            nicRxPackets: delta(new.nics, old.nics, \.rxPacketCount, "rx_packets"),
            nicTxPackets: delta(new.nics, old.nics, \.txPacketCount, "tx_packets"))
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
            iovm: new.iovm, seconds: seconds, rxBytes: moved.nicRxBytes, txBytes: moved.nicTxBytes, cpuNanoseconds: cpu.value, cpuHz: cpuHz,
            guestVifRxBytes: moved.guestRxBytes, guestVifTxBytes: moved.guestTxBytes, newEpoch: newEpoch, countersPublished: new.countersPublished,
            trafficKnown: known, rxPackets: moved.nicRxPackets, txPackets: moved.nicTxPackets, alignedCycles: alignedCycles)
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

    private mutating func count(_ raw: TrafficCounts<UInt64>, seconds: Double, for iovm: String) {
        var t = totals[iovm] ?? TrafficTotals()
        t.seconds += seconds
        t.rxBytes &+= raw.nicRxBytes
        t.txBytes &+= raw.nicTxBytes
        t.guestVifRxBytes &+= raw.guestRxBytes
        t.guestVifTxBytes &+= raw.guestTxBytes
        t.rxPackets &+= raw.nicRxPackets
        t.txPackets &+= raw.nicTxPackets
        totals[iovm] = t
    }
}

extension InterfaceCounters {
    /// Received packets, 0 when not published.
    var rxPacketCount: UInt64 { rxPackets ?? 0 }
    /// Transmitted packets, 0 when not published.
    var txPacketCount: UInt64 { txPackets ?? 0 }
}
