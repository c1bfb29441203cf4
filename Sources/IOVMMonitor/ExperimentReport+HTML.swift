import FoundationEssentials
import IOVMCore
import IOVMWireFormat

extension ExperimentReport {
    private static let extraCSS = """
        td.held { color: #1a7f37; font-weight: bold; }
        td.not-held { color: #b42318; font-weight: bold; }
        td.quote { text-align: left; font-style: italic; color: #444; max-width: 420px; }
        td.delta { color: #555; }
        tr.baseline td { background: #fafafa; }
        span.range { color: #666; font-size: 12px; }
        table.comparison td, table.comparison th, table.figures td { white-space: nowrap; }
        table.comparison th.direction { text-align: center; }
        table.comparison .first { border-left: 2px solid #aaa; }
        div.panels { display: flex; flex-wrap: wrap; gap: 0 16px; }
        """

    /// The report as one self-contained page (inline CSS and SVG, no script) that is also well-formed XML: the header,
    /// throughput and efficiency against the NIC count (one panel per direction), the Table 3-style comparison, the
    /// paper's claims counted, and every group's figures.
    public func html() -> String {
        var html = [
            "<!DOCTYPE html>", "<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">", "<head>", "<meta charset=\"utf-8\"/>",
            "<title>\(e("Experiment \(experiment)"))</title>", "<style>\n\(HTMLReport.css)\n\(Self.extraCSS)\n</style>", "</head>", "<body>",
            "<h1>Experiment \(e(experiment))</h1>", "<dl>",
        ]
        func item(_ name: String, _ value: String) { html.append("<dt>\(e(name))</dt><dd>\(e(value))</dd>") }
        item("host", host)
        item("iovm", iovmVersion)
        item("started", startedAtText)
        item("cells", cellsText)
        for factor in factors { item("varies \(factor.kind.label)", factor.values.joined(separator: ", ")) }
        item("directions", directions.map(\.title).joined(separator: ", "))
        item("workload", workload)
        item("timing", timingText)
        item("run directory", directory)
        html.append("</dl>")
        html.append("<p class=\"note\">\(e(Self.sources))</p>")
        if cellsMeasured < cellsPlanned { html.append("<p class=\"warning\">\(e(cellsText)). Missing cells are left out, never filled in.</p>") }
        for figure in [ExperimentFigure.throughput, .efficiency] {
            html.append("<h2>\(figure == .throughput ? "Throughput" : "Efficiency")</h2>")
            html.append("<div class=\"panels\">")
            html += directions.map { chart(figure, $0) }
            html.append("</div>")
        }
        html += comparisonTable()
        html += batchSizeSection()
        html += verdictTable()
        html += figuresTable()
        if !notes.isEmpty {
            html.append("<h2>Notes from the cells</h2>")
            html.append("<ul class=\"events\">")
            for note in notes.prefix(200) { html.append("<li>\(e(note))</li>") }
            if notes.count > 200 { html.append("<li>… \(notes.count - 200) more</li>") }
            html.append("</ul>")
        }
        html += ["</body>", "</html>"]
        return html.joined(separator: "\n") + "\n"
    }

    private func e(_ text: String) -> String { HTMLReport.e(text) }
    private func f(_ value: Double?, _ digits: Int) -> String { HTMLReport.f(value, digits) }
    /// Bits/Hz with three significant digits (the lab's 0.00301 and 0.00352 are not both 0.003).
    private func g(_ value: Double?) -> String { value.map { String(cFormat: "%.3g", $0) } ?? "–" }

    /// `+7.8 %`, `-3.0 %`, or a dash.
    static func delta(_ value: Double?) -> String {
        guard let value else { return "–" }
        return String(cFormat: "%+.1f%%", value)
    }

    /// Words for a direction in a chart's title.
    static func directionTitle(_ direction: TrafficDirection) -> String {
        switch direction {
        case .rx: "Rx (client → guest)"
        case .tx: "Tx (guest → client)"
        case .both: "Rx and Tx at once"
        }
    }

    /// A panel: `figure` in `direction` against the NIC count, one bar per series with min–max error bars. With one
    /// NIC count the panels are half as wide, so the directions stand side by side.
    func chart(_ figure: ExperimentFigure, _ direction: TrafficDirection) -> String {
        let groupsShown = nicCounts.map { "\($0) NIC\($0 == 1 ? "" : "s")" }
        let bars = series.enumerated().map { index, line in
            let statistics = nicCounts.map { count -> RepetitionStatistics? in
                guard let combination = line.combinations.first(where: { combinations[$0].nics == count }) else { return nil }
                return group(combination, direction)?.statistics(figure)
            }
            return BarSeries(
                name: line.name, color: SVGChart.palette[index % SVGChart.palette.count], values: statistics.map { $0?.mean },
                ranges: statistics.map { $0.map { $0.min...$0.max } })
        }
        let name: String
        let yLabel: String
        switch figure {
        case .throughput: (name, yLabel) = ("Throughput", "payload Mbit/s")
        case .batchSize: (name, yLabel) = ("Batch size", "packets/notification")
        default: (name, yLabel) = ("Efficiency", "payload bits/Hz")
        }
        // Whole Mbit/s from 100 up; below, three significant digits (the lab's 0.003 bits/Hz, 4.2 Mbit/s).
        let largest = bars.flatMap { $0.values.compactMap { $0 } }.max() ?? 0
        let valueFormat = figure == .throughput && largest >= 100 ? "%.0f" : "%.3g"
        return SVGChart.bars(
            title: "\(name), \(Self.directionTitle(direction))", xLabel: "NICs (test loads)", yLabel: yLabel, groups: groupsShown, series: bars,
            valueFormat: valueFormat, width: nicCounts.count > 1 ? 980 : 480)
    }

    private func comparisonTable() -> [String] {
        var html = ["<h2>Comparison (like the paper's Table 3)</h2>"]
        let baselines = table.filter(\.isBaseline).map(\.label)
        let which = nicCounts.count > 1 ? "the first combination with the same NIC count" : "the first combination"
        html.append("<p class=\"note\">Means over the repetitions. Δ: the change against the baseline, \(which) (\(e(baselines.joined(separator: "; ")))).</p>")
        var header = "<table class=\"comparison\"><tr><th class=\"name\" rowspan=\"2\">combination</th>"
        for direction in directions { header += "<th class=\"direction first\" colspan=\"6\">\(e(direction.title))</th>" }
        header += "</tr><tr>"
        for _ in directions { header += "<th class=\"first\">Mbit/s</th><th>Δ</th><th>CPU %</th><th>Δ</th><th>bits/Hz</th><th>Δ</th>" }
        html.append(header + "</tr>")
        for row in table {
            var line = "<tr\(row.isBaseline ? " class=\"baseline\"" : "")><td class=\"name\">\(e(row.label))\(row.isBaseline ? " (baseline)" : "")</td>"
            for entry in row.entries {
                line += "<td class=\"first\">\(f(entry.throughput, 0))</td><td class=\"delta\">\(Self.delta(entry.throughputDelta))</td>"
                line += "<td>\(f(entry.cpuPercent, 1))</td><td class=\"delta\">\(Self.delta(entry.cpuDelta))</td>"
                line += "<td>\(g(entry.efficiency))</td><td class=\"delta\">\(Self.delta(entry.efficiencyDelta))</td>"
            }
            html.append(line + "</tr>")
        }
        html.append("</table>")
        return html
    }

    /// The batch size (Fig. 14): a chart per direction of each cell's batch size over its IOVMs, and each IOVM's.
    private func batchSizeSection() -> [String] {
        var html = ["<h2>Batch size (like the paper's Fig. 14)</h2>"]
        guard hasBatchSizes else {
            html.append("<p class=\"note\">Unknown: no cell recorded its IOVMs' notifications (they need the static counters agent).</p>")
            return html
        }
        html.append("<p class=\"note\">\(e(Self.batchSizeSource)) The charts pool each cell's IOVMs.</p>")
        html.append("<div class=\"panels\">")
        html += directions.map { chart(.batchSize, $0) }
        html.append("</div>")
        var header = "<table class=\"comparison batch\"><tr><th class=\"name\">combination</th><th class=\"name\">IOVM</th><th>NICs</th>"
        for direction in directions { header += "<th class=\"first\">\(e(direction.title)) packets/notification</th>" }
        html.append(header + "</tr>")
        for row in batchSizeRows() {
            var line = "<tr><td class=\"name\">\(e(row.label))</td><td class=\"name\">\(e(row.iovm))</td><td>\(row.nics)</td>"
            for entry in row.entries {
                let range = entry.map { $0.count > 1 ? " <span class=\"range\">[\(f($0.min, 1)) – \(f($0.max, 1))]</span>" : "" } ?? ""
                line += "<td class=\"first\">\(f(entry?.mean, 1))\(range)</td>"
            }
            html.append(line + "</tr>")
        }
        html.append("</table>")
        return html
    }

    private func verdictTable() -> [String] {
        var html = ["<h2>The paper's claims</h2>"]
        guard !verdicts.isEmpty else {
            html.append("<p class=\"note\">None of the paper's claims compares series this experiment has.</p>")
            return html
        }
        html.append(
            "<p class=\"note\">Each claim is counted in the cells (NIC count × direction) where all its series were measured, "
                + "comparing their means over the repetitions. A count is what the data shows, nothing more.</p>")
        html.append(
            "<table><tr><th class=\"name\">paper</th><th class=\"name\">figure</th><th class=\"name\">claim</th><th>held</th><th class=\"name\">not held in</th><th class=\"name\">the paper's words</th></tr>"
        )
        for verdict in verdicts {
            let status = verdict.cells == 0 ? "" : verdict.held == verdict.cells ? "held" : "not-held"
            let claim = verdict.statement + (verdict.nicCounts.map { " (\($0))" } ?? "")
            html.append(
                "<tr><td class=\"name\">\(e(verdict.source))</td><td class=\"name\">\(e(verdict.figure.title))</td><td class=\"name\">\(e(claim))</td>"
                    + "<td class=\"\(status)\">\(e(verdict.cells == 0 ? "–" : "\(verdict.held) of \(verdict.cells)"))</td>"
                    + "<td class=\"name\">\(e(verdict.exceptionsText))</td><td class=\"quote\">“\(e(verdict.quote))”</td></tr>")
        }
        html.append("</table>")
        return html
    }

    private func figuresTable() -> [String] {
        var html = [
            "<h2>All figures</h2>",
            "<p class=\"note\">Per combination and direction: the mean over the measured repetitions, then [min – max].</p>",
            "<table class=\"figures\"><tr><th class=\"name\">combination</th><th class=\"name\">dir.</th><th>reps</th><th>payload Mbit/s</th><th>L2 Mbit/s</th><th>CPU %</th><th>bits/Hz</th><th>L2 bits/Hz</th><th>packets/notification</th></tr>",
        ]
        func cell(_ statistics: RepetitionStatistics?, _ digits: Int) -> String {
            guard let statistics else { return "<td>–</td>" }
            let show = { (value: Double) in digits < 0 ? g(value) : f(value, digits) }
            let range = statistics.count > 1 ? " <span class=\"range\">[\(show(statistics.min)) – \(show(statistics.max))]</span>" : ""
            return "<td>\(show(statistics.mean))\(range)</td>"
        }
        for group in groups {
            let label = combinations[group.combination].label
            html.append(
                "<tr><td class=\"name\">\(e(label))</td><td class=\"name\">\(e(group.direction.title))</td><td>\(group.measured) of \(group.planned)</td>"
                    + cell(group.payloadMbps, 0) + cell(group.l2Mbps, 0) + cell(group.cpuPercent, 1) + cell(group.efficiency, -1) + cell(group.l2Efficiency, -1)
                    + cell(group.batchSize, 1) + "</tr>")
        }
        html.append("</table>")
        return html
    }
}
