import FoundationEssentials
public import IOVMCore

extension ExperimentReport {
    /// The header of ``csv()``: one row per combination and direction.
    public static let csvHeader =
        ([
            "combination", "label", "series", "variant", "configuration", "placement", "scheduler", "nics", "image", "weights", "direction",
            "repetitions_planned", "repetitions_measured",
        ]
        + ["payload_mbps", "l2_mbps", "cpu_percent", "efficiency_bits_per_hz", "l2_efficiency_bits_per_hz", "packets_per_notification"].flatMap {
            ["\($0)_mean", "\($0)_min", "\($0)_max"]
        })
        .joined(separator: ",")

    /// The aggregates: one row per combination and direction, each figure's mean, minimum and maximum over the repetitions
    /// (empty when no repetition was measured).
    public func csv() -> String {
        var lines = [Self.csvHeader]
        for group in groups {
            let combination = combinations[group.combination]
            let settings = combination.settings
            var fields = [
                "\(combination.index)", Report.csvField(combination.label), Report.csvField(combination.series), Report.csvField(settings.variant ?? ""),
                Report.csvField(settings.configuration), Report.csvField(settings.placement), Report.csvField(settings.scheduler), "\(settings.nics)",
                Report.csvField(settings.image), Report.csvField(settings.weights), group.direction.rawValue, "\(group.planned)", "\(group.measured)",
            ]
            for figure in [ExperimentFigure.throughput, .l2Throughput, .cpu, .efficiency, .l2Efficiency, .batchSize] {
                let statistics = group.statistics(figure)
                let digits = figure.digits + 3
                fields += [statistics?.mean, statistics?.min, statistics?.max].map { $0.map { Report.fixed($0, digits) } ?? "" }
            }
            lines.append(fields.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The header of ``cellsCSV(_:)``: one row per cell result.
    public static let cellsCSVHeader = [
        "cell", "repetition", "combination", "direction", "variant", "configuration", "placement", "scheduler", "nics", "image", "weights",
        "started_at", "window_s", "transition_s", "scheduler_read", "payload_mbps", "l2_mbps", "cpu_percent", "efficiency_bits_per_hz",
        "l2_efficiency_bits_per_hz", "retransmits", "guests", "iovms", "notes", "packets_per_notification", "samples", "l2_mbps_per_s_min",
        "l2_mbps_per_s_max", "cpu_percent_per_s_min", "cpu_percent_per_s_max",
    ].joined(separator: ",")

    /// The raw cells, one row each in cell order, every field of ``ExperimentCellResult`` flattened. `guests` holds
    /// `guest|iovm|nic|bytes|seconds|mbps|retransmits` and `iovms` holds
    /// `iovm|cpu_ns|cpu_percent|cycles|rx_bytes|tx_bytes|rx_packets|tx_packets|counters_published|notifications|vif_packets`
    /// (the last two empty when unknown), each `;`-separated. `packets_per_notification` pools the cell's IOVMs (empty
    /// when unknown).
    public static func cellsCSV(_ results: [ExperimentCellResult]) -> String {
        var lines = [cellsCSVHeader]
        for result in results.sorted(by: { $0.cell < $1.cell }) {
            let settings = result.settings
            let guests = result.guests.map { guest in
                [guest.guest, guest.iovm, guest.nic, "\(guest.bytes)", Report.fixed(guest.seconds, 3), Report.fixed(guest.mbps, 3), "\(guest.retransmits)"]
                    .joined(separator: "|")
            }
            let iovms = result.iovms.map { iovm in
                [
                    iovm.iovm, "\(iovm.cpuNanoseconds)", Report.fixed(iovm.cpuPercent, 2), Report.fixed(iovm.cycles, 0), "\(iovm.rxBytes)", "\(iovm.txBytes)",
                    "\(iovm.rxPackets)", "\(iovm.txPackets)", iovm.countersPublished ? "1" : "0", iovm.notifications.map { "\($0)" } ?? "",
                    iovm.vifPackets.map { "\($0)" } ?? "",
                ].joined(separator: "|")
            }
            var fields = [
                "\(result.cell)", "\(result.repetition)", "\(result.combination)", result.direction.rawValue, Report.csvField(settings.variant ?? ""),
                Report.csvField(settings.configuration), Report.csvField(settings.placement), Report.csvField(settings.scheduler), "\(settings.nics)",
                Report.csvField(settings.image), Report.csvField(settings.weights), Report.fixed(result.startedAt, 3), Report.fixed(result.windowSeconds, 3),
                Report.fixed(result.transitionSeconds, 3), Report.csvField(result.scheduler ?? ""), Report.fixed(result.payloadMbps, 3),
                Report.fixed(result.l2Mbps, 3), Report.fixed(result.cpuPercent, 2), result.efficiency.map { Report.fixed($0, 6) } ?? "",
                result.l2Efficiency.map { Report.fixed($0, 6) } ?? "", "\(result.guests.reduce(0) { $0 + $1.retransmits })",
                Report.csvField(guests.joined(separator: ";")), Report.csvField(iovms.joined(separator: ";")),
                Report.csvField(result.notes.joined(separator: "; ")), result.packetsPerNotification.map { Report.fixed($0, 3) } ?? "",
            ]
            let totals = result.intervalTotals
            let l2 = totals.compactMap(\.l2Mbps)
            let cpu = totals.map(\.cpuPercent)
            fields += [
                "\(result.samples?.count ?? 0)", l2.min().map { Report.fixed($0, 3) } ?? "", l2.max().map { Report.fixed($0, 3) } ?? "",
                cpu.min().map { Report.fixed($0, 2) } ?? "", cpu.max().map { Report.fixed($0, 2) } ?? "",
            ]
            lines.append(fields.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The header of ``samplesCSV(_:)``.
    public static let samplesCSVHeader = "cell,repetition,direction,variant,configuration,placement,nics,domain,end_s,cpu_percent,l2_mbps"

    /// The cells' recorded windows (`iovm experiment --sample-interval`): one row per cell, interval and measured
    /// domain, `end_s` seconds into the window; `l2_mbps` is empty when unknown.
    public static func samplesCSV(_ results: [ExperimentCellResult]) -> String {
        var lines = [samplesCSVHeader]
        for result in results.sorted(by: { $0.cell < $1.cell }) {
            let settings = result.settings
            let prefix = [
                "\(result.cell)", "\(result.repetition)", result.direction.rawValue, Report.csvField(settings.variant ?? ""),
                Report.csvField(settings.configuration), Report.csvField(settings.placement), "\(settings.nics)",
            ]
            for interval in result.intervals {
                let fields =
                    prefix + [
                        Report.csvField(interval.domain), Report.fixed(interval.end, 3), Report.fixed(interval.cpuPercent, 2),
                        interval.l2Mbps.map { Report.fixed($0, 3) } ?? "",
                    ]
                lines.append(fields.joined(separator: ","))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
