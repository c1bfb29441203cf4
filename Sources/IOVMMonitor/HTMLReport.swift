import FoundationEssentials
import IOVMCore

/// The HTML report: one self-contained page (inline CSS and SVG, no script) that is also
/// well-formed XML, so tests can parse it.
public enum HTMLReport {
    static let css = """
        body { font-family: Helvetica, Arial, sans-serif; color: #222; margin: 24px auto; max-width: 1000px; padding: 0 12px; }
        h1 { font-size: 22px; margin-bottom: 4px; }
        h2 { font-size: 18px; border-bottom: 1px solid #ccc; padding-bottom: 4px; margin-top: 32px; }
        h3 { font-size: 15px; margin: 18px 0 6px; }
        table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; }
        th, td { border: 1px solid #d8d8d8; padding: 3px 8px; text-align: right; }
        th { background: #f2f2f2; }
        td.name, th.name { text-align: left; }
        tr.aggregate td { font-weight: bold; background: #fafafa; }
        .note { color: #555; font-size: 13px; }
        .warning { background: #fff4e0; border-left: 4px solid #e69500; padding: 6px 10px; font-size: 13px; }
        dl { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; font-size: 13px; }
        dt { font-weight: bold; }
        dd { margin: 0; }
        svg.chart { display: block; margin: 8px 0 18px; border: 1px solid #eee; }
        ul.events { font-size: 12px; color: #444; }
        """

    /// The page for `runs` (several runs add a comparison like the paper's Figs. 6 and 7).
    public static func page(_ runs: [RecordedRun]) -> String {
        let summaries = runs.map(RunSummary.init)
        var html = head(runs.count == 1 ? "IOVM efficiency: \(summaries[0].label)" : "IOVM efficiency: \(runs.count) runs")
        if runs.count > 1 { html += comparison(summaries) }
        for (run, summary) in zip(runs, summaries) { html += section(run, summary) }
        html += ["</body>", "</html>"]
        return html.joined(separator: "\n") + "\n"
    }

    /// The page of a merged run of several hosts (`iovm report --merge`): the fleet's figures per host and in all,
    /// its charts over the common period (one line per host, and the fleet), then each host's section.
    public static func page(_ merged: MergedRun) -> String {
        let fleet = FleetSummary(merged)
        var html = head("IOVM efficiency: fleet of \(fleet.hosts.count) hosts")
        html += [
            "<h2>Fleet: \(e(fleet.hosts.map(\.host).joined(separator: ", ")))</h2>", "<dl>",
            "<dt>period</dt><dd>\(e(Date(timeIntervalSince1970: fleet.start).formatted(.iso8601))) – \(e(Date(timeIntervalSince1970: fleet.end).formatted(.iso8601))) (\(f(fleet.end - fleet.start, 1)) s, every recording restricted to it)</dd>",
            "</dl>",
            "<p class=\"note\">Fleet = every host's IOVMs together: throughput, CPU and cycles add up; bits/Hz = all bits ÷ all cycles. Peaks are over the period cut at every host's sample times, each host's rate held over its interval.</p>",
            "<table><tr><th class=\"name\">host</th><th>IOVMs</th><th>Rx Mbit/s mean</th><th>Rx peak</th><th>Tx Mbit/s mean</th><th>Tx peak</th><th>CPU % mean</th><th>CPU % peak</th><th>bits/Hz</th><th>Rx bits/Hz</th><th>Tx bits/Hz</th></tr>",
        ]
        let rows =
            fleet.hosts.map { (name: $0.host, iovms: $0.run.iovms.count, figures: $0.run.aggregate) } + [
                (name: IOVMSummary.fleetName, iovms: fleet.iovms.count, figures: fleet.fleet)
            ]
        for row in rows {
            let s = row.figures
            html.append(
                "<tr\(row.name == IOVMSummary.fleetName ? " class=\"aggregate\"" : "")><td class=\"name\">\(e(row.name))</td><td>\(row.iovms)</td><td>\(f(s.meanRxMbps, 1))</td><td>\(f(s.peakRxMbps, 1))</td><td>\(f(s.meanTxMbps, 1))</td><td>\(f(s.peakTxMbps, 1))</td><td>\(f(s.meanCPUPercent, 1))</td><td>\(f(s.peakCPUPercent, 1))</td><td>\(f(s.efficiency, 3))</td><td>\(f(s.rxEfficiency, 3))</td><td>\(f(s.txEfficiency, 3))</td></tr>"
            )
        }
        html.append("</table>")
        var run = RecordedRun(directory: IOVMSummary.fleetName, meta: merged.hosts[0].run.meta, plan: nil, records: [])
        run.meta.iovms = merged.hosts.map(\.host)
        run.intervals = merged.intervals
        html += charts(run, total: IOVMSummary.fleetName)
        for run in merged.hostRuns { html += section(run, RunSummary(run)) }
        html += ["</body>", "</html>"]
        return html.joined(separator: "\n") + "\n"
    }

    /// The page's head, up to the introduction.
    private static func head(_ title: String) -> [String] {
        [
            "<!DOCTYPE html>", "<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">", "<head>", "<meta charset=\"utf-8\"/>",
            "<title>\(e(title))</title>",
            "<style>\n\(css)\n</style>", "</head>", "<body>", "<h1>IOVM throughput and efficiency</h1>",
            "<p class=\"note\">Rx = client → guest, Tx = guest → client, both counted on the physical NICs inside the IOVMs. Efficiency = bits moved through the IOVM(s) ÷ processor cycles the IOVM(s) used (bits/Hz), as in the paper's Section 4.1. \(e(FrequencyScalingCheck.nominalNote)).</p>",
        ]
    }

    static func e(_ text: String) -> String { SVGChart.escape(text) }
    static func f(_ value: Double?, _ digits: Int) -> String { value.map { String(cFormat: "%.\(digits)f", $0) } ?? "–" }

    private static func comparison(_ summaries: [RunSummary]) -> [String] {
        let groups = summaries.map(\.label)
        var html = ["<h2>Comparison</h2>"]
        html.append(
            SVGChart.bars(
                title: "Throughput (mean, all IOVMs)", yLabel: "Mbit/s", groups: groups,
                series: [
                    BarSeries(name: "Rx (client → guest)", color: "#1f77b4", values: summaries.map { $0.aggregate.meanRxMbps }),
                    BarSeries(name: "Tx (guest → client)", color: "#ff7f0e", values: summaries.map { $0.aggregate.meanTxMbps }),
                ]))
        html.append(
            SVGChart.bars(
                title: "Efficiency (all IOVMs)", yLabel: "bits/Hz", groups: groups,
                series: [
                    BarSeries(name: "Rx bits / cycles", color: "#1f77b4", values: summaries.map { $0.aggregate.rxEfficiency }),
                    BarSeries(name: "Tx bits / cycles", color: "#ff7f0e", values: summaries.map { $0.aggregate.txEfficiency }),
                    BarSeries(name: "all bits / cycles", color: "#555555", values: summaries.map { $0.aggregate.efficiency }),
                ], valueFormat: "%.2f"))
        html.append(
            "<table><tr><th class=\"name\">run</th><th>IOVMs</th><th>Rx Mbit/s</th><th>Tx Mbit/s</th><th>CPU %</th><th>bits/Hz</th><th>Rx bits/Hz</th><th>Tx bits/Hz</th></tr>")
        for summary in summaries {
            let a = summary.aggregate
            html.append(
                "<tr><td class=\"name\">\(e(summary.label))</td><td>\(summary.iovms.count)</td><td>\(f(a.meanRxMbps, 0))</td><td>\(f(a.meanTxMbps, 0))</td><td>\(f(a.meanCPUPercent, 1))</td><td>\(f(a.efficiency, 2))</td><td>\(f(a.rxEfficiency, 2))</td><td>\(f(a.txEfficiency, 2))</td></tr>"
            )
        }
        html.append("</table>")
        return html
    }

    private static func section(_ run: RecordedRun, _ summary: RunSummary) -> [String] {
        var html = ["<h2>\(e(summary.label))</h2>", "<dl>"]
        func item(_ name: String, _ value: String?) { if let value { html.append("<dt>\(e(name))</dt><dd>\(e(value))</dd>") } }
        item("recorded in", run.directory)
        item("started", Date(timeIntervalSince1970: run.meta.started).formatted(.iso8601))
        item("topology", summary.topology)
        item("configuration", summary.configuration)
        item("placement", summary.placement)
        if let host = run.plan?.host { item("host", "\(host.cores) cores, scheduler \(host.scheduler)") }
        item("schedulers read from Xen", run.meta.schedulers?.summary)
        item("interval", String(cFormat: "%g s, %ld intervals", summary.interval, run.intervals.count))
        item("nominal frequency", String(cFormat: "%.3f GHz (cycles = CPU time × nominal Hz)", Double(summary.cpuHz) / 1e9))
        html.append("</dl>")
        if let warning = summary.frequencyWarning { html.append("<p class=\"warning\">\(e(warning))</p>") }
        if let plan = run.plan { html += placement(plan) }
        html.append("<h3>Figures</h3>")
        html.append(
            "<table><tr><th class=\"name\">IOVM</th><th>intervals</th><th>Rx Mbit/s mean</th><th>Rx peak</th><th>Tx Mbit/s mean</th><th>Tx peak</th><th>CPU % mean</th><th>CPU % peak</th><th>bits/Hz</th><th>Rx bits/Hz</th><th>Tx bits/Hz</th><th>gaps</th></tr>"
        )
        for s in summary.iovms + [summary.aggregate] {
            html.append(
                "<tr\(s.iovm == EfficiencyFigures.aggregateName ? " class=\"aggregate\"" : "")><td class=\"name\">\(e(s.iovm))</td><td>\(s.samples)</td><td>\(f(s.meanRxMbps, 1))</td><td>\(f(s.peakRxMbps, 1))</td><td>\(f(s.meanTxMbps, 1))</td><td>\(f(s.peakTxMbps, 1))</td><td>\(f(s.meanCPUPercent, 1))</td><td>\(f(s.peakCPUPercent, 1))</td><td>\(f(s.efficiency, 3))</td><td>\(f(s.rxEfficiency, 3))</td><td>\(f(s.txEfficiency, 3))</td><td>\(s.gaps)</td></tr>"
            )
        }
        html.append("</table>")
        html += charts(run)
        if !summary.events.isEmpty {
            html.append("<h3>Events</h3>")
            html.append("<ul class=\"events\">")
            for event in summary.events.prefix(100) { html.append("<li>\(e(event.description))</li>") }
            if summary.events.count > 100 { html.append("<li>… \(summary.events.count - 100) more</li>") }
            html.append("</ul>")
        }
        return html
    }

    private static func placement(_ plan: Plan) -> [String] {
        var html = [
            "<h3>Topology and placement</h3>",
            "<table><tr><th class=\"name\">domain</th><th class=\"name\">role</th><th>vCPUs</th><th class=\"name\">cores</th><th class=\"name\">pool</th><th>weight</th><th class=\"name\">NICs (bridge)</th><th class=\"name\">backs / backend</th></tr>",
        ]
        for domain in plan.domains {
            let nics = domain.nics.map { "\($0.pci) (\($0.bridge))" }.joined(separator: ", ")
            let links = domain.role == .iovm ? domain.backs.joined(separator: ", ") : domain.vifs.map { $0.backend ?? "dom0" }.joined(separator: ", ")
            html.append(
                "<tr><td class=\"name\">\(e(domain.name))</td><td class=\"name\">\(e(domain.role.rawValue))</td><td>\(domain.vcpus)</td><td class=\"name\">\(e(domain.hardAffinity?.description ?? "any"))</td><td class=\"name\">\(e(domain.cpupool))</td><td>\(domain.weight)</td><td class=\"name\">\(e(nics))</td><td class=\"name\">\(e(links))</td></tr>"
            )
        }
        html.append("</table>")
        return html
    }

    /// Charts of `run` over time; `total` names the line of all its IOVMs together.
    private static func charts(_ run: RecordedRun, total: String = EfficiencyFigures.aggregateName) -> [String] {
        let names = Report.iovmNames(run)
        let color = { (index: Int) in SVGChart.palette[index % SVGChart.palette.count] }
        func points(_ name: String?, _ value: (EfficiencyFigures) -> Double?) -> [(x: Double, y: Double)?] {
            run.intervals.map { interval in
                let figures = name.map { n in interval.iovms.first { $0.iovm == n } } ?? interval.aggregate
                return figures.flatMap(value).map { (x: interval.end, y: $0) }
            }
        }
        let many = names.count > 1
        var throughput: [ChartSeries] = []
        var efficiency: [ChartSeries] = []
        var cpu: [ChartSeries] = []
        for (index, name) in names.enumerated() {
            throughput.append(ChartSeries(name: "\(name) Rx", color: color(index), points: points(name) { $0.trafficKnown ? $0.rxMbps : nil }))
            throughput.append(ChartSeries(name: "\(name) Tx", color: color(index), dashed: true, points: points(name) { $0.trafficKnown ? $0.txMbps : nil }))
            efficiency.append(ChartSeries(name: name, color: color(index), points: points(name) { $0.trafficKnown ? $0.efficiency : nil }))
            cpu.append(ChartSeries(name: name, color: color(index), points: points(name) { $0.cpuPercent }))
        }
        if many || names.isEmpty {
            throughput.append(ChartSeries(name: "\(total) Rx", color: SVGChart.aggregateColor, width: 2.4, points: points(nil) { $0.trafficKnown ? $0.rxMbps : nil }))
            throughput.append(
                ChartSeries(name: "\(total) Tx", color: SVGChart.aggregateColor, dashed: true, width: 2.4, points: points(nil) { $0.trafficKnown ? $0.txMbps : nil }))
            efficiency.append(ChartSeries(name: total, color: SVGChart.aggregateColor, width: 2.4, points: points(nil) { $0.trafficKnown ? $0.efficiency : nil }))
        }
        let gaps = gapBands(run, names)
        return [
            SVGChart.lines(title: "Throughput over time (solid Rx, dashed Tx)", xLabel: "time (s)", yLabel: "Mbit/s", series: throughput, gaps: gaps),
            SVGChart.lines(title: "Efficiency over time", xLabel: "time (s)", yLabel: "bits/Hz", series: efficiency, gaps: gaps),
            SVGChart.lines(title: "IOVM CPU use", xLabel: "time (s)", yLabel: "% of one core", series: cpu, gaps: gaps, height: 240),
        ]
    }

    /// Time ranges in which some IOVM had no figures (it was gone, or had just come back), merged
    /// while the same IOVMs are missing: the aggregate there lacks their traffic.
    static func gapBands(_ run: RecordedRun, _ names: [String]) -> [(from: Double, to: Double, label: String)] {
        var bands: [(from: Double, to: Double, label: String)] = []
        for interval in run.intervals {
            let present = Set(interval.iovms.map(\.iovm))
            let missing = names.filter { !present.contains($0) }
            guard !missing.isEmpty else { continue }
            let label = "no data: " + missing.joined(separator: ", ")
            if let last = bands.last, last.label == label, abs(last.to - interval.start) < 1e-9 {
                bands[bands.count - 1].to = interval.end
            } else {
                bands.append((interval.start, interval.end, label))
            }
        }
        return bands
    }
}
