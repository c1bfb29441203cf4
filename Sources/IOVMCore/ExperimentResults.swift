public import IOVMWireFormat

/// The files of an experiment's run directory (`iovm experiment FILE --out DIR`).
///
/// ```
/// DIR/experiment.json     ExperimentRun: the expanded experiment (ExperimentPlan) and where it ran
/// DIR/cells/0007.json     ExperimentCellResult of cell 7, written once the cell is measured
/// DIR/report.html|csv|json  what `iovm report DIR` writes
/// ```
public enum ExperimentRunLayout {
    /// The run's description, relative to the run directory.
    public static let runFile = "experiment.json"
    /// The directory of the cells' results, relative to the run directory.
    public static let cellsDirectory = "cells"
    /// The result file of cell `index`, relative to the run directory.
    public static func cellFile(_ index: Int) -> String {
        let digits = String(index)
        return cellsDirectory + "/" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits + ".json"
    }
}

/// An experiment's run: its cells and where and when it ran. Written before the first cell.
public struct ExperimentRun: Sendable, Codable, Equatable {
    /// Version of this JSON format.
    public static let currentFormatVersion = 1
    /// Version of this JSON format.
    public var formatVersion: Int
    /// The expanded experiment: what each cell runs, in which order.
    public var plan: ExperimentPlan
    /// The experiment's fingerprint: `--resume` goes on only with the same one.
    public var fingerprint: String
    /// When the run began, seconds since 1970 (UTC).
    public var startedAt: Double
    /// The host: its name and what Xen reported (`xen 4.17, 4 cores, credit`).
    public var host: String
    /// The iovm version that ran it.
    public var iovmVersion: String
    /// The iperf3 server each guest's client talks to (`HOST:PORT`), per guest name, when the workload is iperf3.
    public var servers: [String: String]
    /// What is done with the topology when the run ends: `keep` (the last cell's) or `destroy`.
    public var onExit: String

    /// Creates a run.
    public init(
        plan: ExperimentPlan, fingerprint: String, startedAt: Double, host: String, iovmVersion: String,
        servers: [String: String], onExit: String
    ) {
        self.formatVersion = Self.currentFormatVersion
        self.plan = plan
        self.fingerprint = fingerprint
        self.startedAt = startedAt
        self.host = host
        self.iovmVersion = iovmVersion
        self.servers = servers
        self.onExit = onExit
    }
}

/// What one cell measured. Written to `cells/NNNN.json` once the cell is done; a cell with a file is never run again
/// by `--resume`.
///
/// Throughput is in Mbit/s (10^6 bit/s, as iperf3 reports). Efficiency follows the paper (Section 4.1): bits moved
/// per processor cycle the IOVMs used (bits/Hz), computed as the bit rate over the cycle rate in the same window.
/// ``efficiency`` uses iperf3's payload bits; ``l2Efficiency`` the Ethernet bytes the IOVMs' NICs counted.
public struct ExperimentCellResult: Sendable, Codable, Equatable {
    /// Version of this JSON format.
    public static let currentFormatVersion = 1
    /// Version of this JSON format.
    public var formatVersion: Int
    /// The cell's position in the run (``ExperimentCell/index``).
    public var cell: Int
    /// Its repetition, from 1.
    public var repetition: Int
    /// The index of its combination in the plan.
    public var combination: Int
    /// The direction measured.
    public var direction: TrafficDirection
    /// What the combination is (a copy of the plan's, so a report needs only the cell files).
    public var settings: CellSettings
    /// When the measured window began, seconds since 1970 (UTC).
    public var startedAt: Double
    /// Length of the measured window, seconds (the workload's own interval, after its warm-up).
    public var windowSeconds: Double
    /// How long the transition before the cell took (apply or live change), seconds.
    public var transitionSeconds: Double
    /// The scheduler the IOVMs actually ran under, read from Xen (their cpupool's), or nil when unknown.
    public var scheduler: String?
    /// Each guest's workload.
    public var guests: [GuestLoadResult]
    /// Each IOVM's CPU and traffic over the window (`Domain-0` for the centralized configuration).
    public var iovms: [IOVMCellFigures]
    /// The guests' payload throughput, summed, Mbit/s.
    public var payloadMbps: Double
    /// The IOVMs' NICs' Ethernet throughput in the measured direction(s), summed, Mbit/s.
    public var l2Mbps: Double
    /// The IOVMs' CPU use, summed, in percent of one core.
    public var cpuPercent: Double
    /// Payload bits per cycle the IOVMs used; nil without cycles.
    public var efficiency: Double?
    /// Ethernet bits per cycle the IOVMs used; nil without cycles or counters.
    public var l2Efficiency: Double?
    /// What went wrong without failing the cell (a guest's retries, counters missing), one line each.
    public var notes: [String]
    /// The window recorded every second (`iovm experiment --sample-interval`), from its first reading; nil when not
    /// recorded.
    public var samples: [CellSample]?

    /// Creates a result; the sums and efficiencies are computed from `guests` and `iovms`.
    public init(
        cell: ExperimentCell, settings: CellSettings, startedAt: Double, windowSeconds: Double, transitionSeconds: Double,
        scheduler: String?, guests: [GuestLoadResult], iovms: [IOVMCellFigures], notes: [String] = [], samples: [CellSample]? = nil
    ) {
        self.samples = samples
        self.formatVersion = Self.currentFormatVersion
        self.cell = cell.index
        self.repetition = cell.repetition
        self.combination = cell.combination
        self.direction = cell.direction
        self.settings = settings
        self.startedAt = startedAt
        self.windowSeconds = windowSeconds
        self.transitionSeconds = transitionSeconds
        self.scheduler = scheduler
        self.guests = guests
        self.iovms = iovms
        self.notes = notes
        payloadMbps = guests.reduce(0) { $0 + $1.mbps }
        // Each IOVM's Ethernet rate over its agent's own span when known (its counters are written once a period), else
        // over the window.
        l2Mbps = iovms.reduce(0.0) { sum, iovm in
            let bytes: UInt64
            switch cell.direction {
            case .rx: bytes = iovm.rxBytes
            case .tx: bytes = iovm.txBytes
            case .both: bytes = iovm.rxBytes + iovm.txBytes
            }
            let seconds = iovm.counterSeconds ?? windowSeconds
            return seconds > 0 ? sum + Double(bytes) * 8 / seconds / 1e6 : sum
        }
        let cycles = iovms.reduce(0.0) { $0 + $1.cycles }
        cpuPercent = iovms.reduce(0.0) { $0 + $1.cpuPercent }
        let cyclesPerSecond = windowSeconds > 0 ? cycles / windowSeconds : 0
        efficiency = cyclesPerSecond > 0 ? payloadMbps * 1e6 / cyclesPerSecond : nil
        l2Efficiency = cyclesPerSecond > 0 && iovms.allSatisfy(\.countersPublished) ? l2Mbps * 1e6 / cyclesPerSecond : nil
    }
}

/// One reading inside a cell's window: each measured domain's counters since the window's first reading.
public struct CellSample: Sendable, Codable, Equatable {
    /// One domain's counters since the window's first reading.
    public struct Counters: Sendable, Codable, Equatable {
        /// CPU time, nanoseconds.
        public var cpuNanoseconds: UInt64
        /// Bytes its NICs received and sent (0 without a counters agent).
        public var rxBytes: UInt64, txBytes: UInt64
        /// Seconds by the domain's own clock between the agent's writes of the first reading and of this one; nil when
        /// unknown.
        public var counterSeconds: Double?
        /// Creates counters.
        public init(cpuNanoseconds: UInt64, rxBytes: UInt64, txBytes: UInt64, counterSeconds: Double? = nil) {
            self.cpuNanoseconds = cpuNanoseconds
            self.rxBytes = rxBytes
            self.txBytes = txBytes
            self.counterSeconds = counterSeconds
        }
    }
    /// Seconds since the window's first reading.
    public var seconds: Double
    /// The measured domains' counters, by name.
    public var domains: [String: Counters]
    /// Creates a sample.
    public init(seconds: Double, domains: [String: Counters]) {
        self.seconds = seconds
        self.domains = domains
    }
}

/// One interval between two consecutive samples of a cell, for one domain.
public struct SampleInterval: Sendable, Equatable {
    /// The domain.
    public var domain: String
    /// When the interval ends, seconds since the window's first reading.
    public var end: Double
    /// CPU use, percent of one core.
    public var cpuPercent: Double
    /// Ethernet throughput in the cell's direction(s), Mbit/s over the agent's own clock; nil when unknown (no
    /// counters, or the agent wrote nothing new in the interval).
    public var l2Mbps: Double?
}

extension ExperimentCellResult {
    /// The recorded window as intervals between consecutive samples (the window's first reading is the zero sample),
    /// per domain in name order; empty when not recorded. A domain missing from a sample is measured from its last
    /// sample before it.
    public var intervals: [SampleInterval] {
        guard let samples, !samples.isEmpty else { return [] }
        let zero = CellSample.Counters(cpuNanoseconds: 0, rxBytes: 0, txBytes: 0, counterSeconds: 0)
        var last: [String: (seconds: Double, counters: CellSample.Counters)] = [:]
        var result: [SampleInterval] = []
        for sample in samples {
            for name in sample.domains.keys.sorted() {
                let now = sample.domains[name]!
                let (since, before) = last[name] ?? (0, zero)
                let seconds = sample.seconds - since
                guard seconds > 0, now.cpuNanoseconds >= before.cpuNanoseconds else { continue }
                last[name] = (sample.seconds, now)
                let cpu = Double(now.cpuNanoseconds - before.cpuNanoseconds) / 1e9 / seconds * 100
                var l2: Double?
                if let end = now.counterSeconds, let start = before.counterSeconds, end > start, now.rxBytes >= before.rxBytes,
                    now.txBytes >= before.txBytes, iovms.first(where: { $0.iovm == name })?.countersPublished ?? false
                {
                    let rx = now.rxBytes - before.rxBytes
                    let tx = now.txBytes - before.txBytes
                    let bytes: UInt64 =
                        switch direction {
                        case .rx: rx
                        case .tx: tx
                        case .both: rx + tx
                        }
                    l2 = Double(bytes) * 8 / (end - start) / 1e6
                }
                result.append(SampleInterval(domain: name, end: sample.seconds, cpuPercent: cpu, l2Mbps: l2))
            }
        }
        return result
    }
}

extension ExperimentCellResult {
    /// The recorded window's intervals summed over the measured domains: CPU percent of one core and L2 Mbit/s (nil
    /// when any domain's is unknown), by interval end; an end where some measured domain has no interval is left out.
    public var intervalTotals: [(end: Double, cpuPercent: Double, l2Mbps: Double?)] {
        let byEnd = Dictionary(grouping: intervals, by: \.end)
        let measured = Set(iovms.map(\.iovm))
        return byEnd.keys.sorted().compactMap { end in
            let parts = byEnd[end]!
            guard measured.isSubset(of: parts.map(\.domain)) else { return nil }
            let l2 = parts.allSatisfy { $0.l2Mbps != nil } ? parts.reduce(0.0) { $0 + $1.l2Mbps! } : nil
            return (end, parts.reduce(0.0) { $0 + $1.cpuPercent }, l2)
        }
    }
}

extension ExperimentCellResult {
    /// The batch size over all the cell's IOVMs (the paper's Fig. 14): their vifs' packets per notification, pooled over
    /// the IOVMs that recorded both; nil when none did (a cell recorded before notifications were) or without notifications.
    public var packetsPerNotification: Double? {
        let known = iovms.compactMap { iovm in iovm.notifications.flatMap { count in iovm.vifPackets.map { (count, $0) } } }
        let notifications = known.reduce(0.0) { $0 + Double($1.0) }
        return known.isEmpty || notifications == 0 ? nil : known.reduce(0.0) { $0 + Double($1.1) } / notifications
    }
}

/// One guest's workload in a cell: what iperf3 (or the user's command) reported.
public struct GuestLoadResult: Sendable, Codable, Equatable {
    /// The guest.
    public var guest: String
    /// The IOVM that backs its vif.
    public var iovm: String
    /// The PCI address of the NIC its traffic crosses.
    public var nic: String
    /// Payload bytes the receiving side counted (iperf3's `end.sum_received.bytes`).
    public var bytes: UInt64
    /// Over how many seconds (iperf3's `end.sum_received.seconds`, the warm-up omitted).
    public var seconds: Double
    /// Payload throughput, Mbit/s.
    public var mbps: Double
    /// TCP retransmits the sender counted.
    public var retransmits: Int
    /// Creates a guest's result; `mbps` is bytes × 8 / seconds / 1e6.
    public init(guest: String, iovm: String, nic: String, bytes: UInt64, seconds: Double, retransmits: Int) {
        self.guest = guest
        self.iovm = iovm
        self.nic = nic
        self.bytes = bytes
        self.seconds = seconds
        self.mbps = seconds > 0 ? Double(bytes) * 8 / seconds / 1e6 : 0
        self.retransmits = retransmits
    }
}

/// One IOVM's CPU and traffic over a cell's window.
public struct IOVMCellFigures: Sendable, Codable, Equatable {
    /// The IOVM (`Domain-0` for the centralized configuration).
    public var iovm: String
    /// CPU time used in the window, nanoseconds.
    public var cpuNanoseconds: UInt64
    /// Percent of one core.
    public var cpuPercent: Double
    /// Cycles: CPU nanoseconds × nominal Hz / 1e9.
    public var cycles: Double
    /// Bytes its NICs received (client → guest), Ethernet frames.
    public var rxBytes: UInt64
    /// Bytes its NICs sent (guest → client).
    public var txBytes: UInt64
    /// Packets its NICs received.
    public var rxPackets: UInt64
    /// Packets its NICs sent.
    public var txPackets: UInt64
    /// Whether its counters agent published in the window (false: the bytes are unknown, shown as 0).
    public var countersPublished: Bool
    /// The span of the agent's own clock between the two readings of its counters, seconds; nil when unknown (the
    /// bytes are then taken over the window).
    public var counterSeconds: Double?
    /// Notifications its vifs took in the window: the interrupts of their event channels in the IOVM; nil when unknown
    /// (an agent that does not publish them, a cell recorded before they were, a count that went backwards).
    public var notifications: UInt64?
    /// Packets its vifs moved in the window (rx + tx as netback counts them: a GSO packet is one), over the same vifs as
    /// ``notifications``; nil when unknown.
    public var vifPackets: UInt64?
    /// The batch size (the paper's Fig. 14): ``vifPackets`` per notification; nil when unknown or without notifications.
    public var packetsPerNotification: Double?
    /// Creates an IOVM's figures; `packetsPerNotification` is computed from `notifications` and `vifPackets`.
    public init(
        iovm: String, cpuNanoseconds: UInt64, windowSeconds: Double, cpuHz: UInt64, rxBytes: UInt64, txBytes: UInt64,
        rxPackets: UInt64, txPackets: UInt64, countersPublished: Bool, notifications: UInt64? = nil, vifPackets: UInt64? = nil
    ) {
        self.iovm = iovm
        self.cpuNanoseconds = cpuNanoseconds
        self.cpuPercent = windowSeconds > 0 ? Double(cpuNanoseconds) / 1e9 / windowSeconds * 100 : 0
        self.cycles = Double(cpuNanoseconds) * Double(cpuHz) / 1e9
        self.rxBytes = rxBytes
        self.txBytes = txBytes
        self.rxPackets = rxPackets
        self.txPackets = txPackets
        self.countersPublished = countersPublished
        self.notifications = notifications
        self.vifPackets = vifPackets
        if let notifications, let vifPackets, notifications > 0 { packetsPerNotification = Double(vifPackets) / Double(notifications) }
    }
}
