import FoundationEssentials
import IOVMCore
import IOVMWireFormat

/// The output formats of `iovm report` for an experiment's run directory.
public enum ExperimentReportFormat: String, Sendable, CaseIterable, Codable {
    /// A self-contained page with the figures' charts, the comparison and the claims.
    case html
    /// One row per combination and direction: each figure's mean, minimum and maximum.
    case csv
    /// The aggregated report (``ExperimentReport``).
    case json
    /// The header, the comparison table and the claims, for a terminal.
    case text

    /// The format a file name's extension names (`report.html`), if any.
    public init?(fileName: String) {
        let suffix = URL(fileURLWithPath: fileName).pathExtension.lowercased()
        switch suffix {
        case "html", "htm": self = .html
        case "csv": self = .csv
        case "json": self = .json
        case "txt", "text": self = .text
        default: return nil
        }
    }
}

extension ExperimentReport {
    /// The report in `format`.
    public func render(_ format: ExperimentReportFormat) throws -> String {
        switch format {
        case .html: html()
        case .csv: csv()
        case .json: try JSONText.pretty(self) + "\n"
        case .text: text()
        }
    }

    /// The files ``write(_:)`` writes into the run directory, with their contents' kind.
    public static let fileNames = ["report.html", "report.csv", "report.json", "cells.csv", "samples.csv"]

    /// Writes `report.html`, `report.csv` (aggregates), `report.json`, `cells.csv` (raw cells) and `samples.csv` (the
    /// windows recorded per second) into the run directory; returns their paths.
    public static func write(_ files: ExperimentRunDirectory) throws -> [String] {
        let report = ExperimentReport(files)
        let root = URL(fileURLWithPath: files.path)
        let contents = [try report.render(.html), report.csv(), try report.render(.json), cellsCSV(files.results), samplesCSV(files.results)]
        return try zip(fileNames, contents).map { name, text in
            let url = root.appendingPathComponent(name)
            try Data(text.utf8).write(to: url, options: .atomic)
            return url.path
        }
    }

    /// The text summary: header, the Table 3-style comparison and the claims counted.
    public func text() -> String {
        var lines = [
            "\(experiment): \(cellsText)",
            "host \(host); iovm \(iovmVersion); started \(startedAtText)",
            "\(workload); \(timingText)",
        ]
        if !factors.isEmpty { lines.append("varies " + factors.map { "\($0.kind.label) (\($0.values.joined(separator: ", ")))" }.joined(separator: " × ")) }
        lines.append("")
        let baselines = table.filter(\.isBaseline).map(\.label)
        lines.append(
            "Means over the repetitions; Δ against \(nicCounts.count > 1 ? "the first combination with the same NIC count" : "the first combination"): "
                + baselines.joined(separator: "; "))
        var titles = [""]
        var header = ["combination"]
        for direction in directions {
            titles += [direction.title, "", "", "", "", ""]
            header += ["Mbit/s", "Δ", "CPU %", "Δ", "bits/Hz", "Δ"]
        }
        var rows = [titles, header]
        for row in table {
            var fields = [row.label]
            for entry in row.entries {
                fields += [
                    Self.number(entry.throughput, 0), Self.shortDelta(entry.throughputDelta), Self.number(entry.cpuPercent, 1), Self.shortDelta(entry.cpuDelta),
                    entry.efficiency.map { String(cFormat: "%.3g", $0) } ?? "-", Self.shortDelta(entry.efficiencyDelta),
                ]
            }
            rows.append(fields)
        }
        lines += Self.columns(rows)
        lines.append("")
        lines += batchSizeText()
        if verdicts.isEmpty {
            lines.append("None of the paper's claims compares series this experiment has.")
        } else {
            lines.append("The paper's claims, counted in the cells (NIC count × direction) where all their series were measured (means):")
            var verdictRows: [[String]] = []
            for verdict in verdicts {
                var count = verdict.countText
                if !verdict.exceptionsText.isEmpty { count += "; not in \(verdict.exceptionsText)" }
                verdictRows.append([
                    "  " + verdict.source, verdict.figure.title, verdict.statement + (verdict.nicCounts.map { " (\($0))" } ?? "") + ":", count,
                ])
            }
            lines += Self.columns(verdictRows, leftAligned: 4)
        }
        if !notes.isEmpty {
            lines.append("")
            lines.append("\(notes.count) note\(notes.count == 1 ? "" : "s") from the cells (see report.html)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The batch size table (packets per notification per IOVM, means over the repetitions) and a blank line; one line
    /// when no cell recorded notifications.
    func batchSizeText() -> [String] {
        guard hasBatchSizes else { return ["Batch size: unknown (no cell recorded its IOVMs' notifications)", ""] }
        var rows = [["combination", "IOVM"] + directions.map(\.title)]
        for row in batchSizeRows() {
            rows.append([row.label, "\(row.iovm) (\(row.nics) NIC\(row.nics == 1 ? "" : "s"))"] + row.entries.map { Self.number($0?.mean, 1) })
        }
        return ["Batch size (packets per notification in each IOVM), means over the repetitions:"] + Self.columns(rows, leftAligned: 2) + [""]
    }

    /// `value` with `digits` decimals, or `-` without one.
    static func number(_ value: Double?, _ digits: Int) -> String { value.map { String(cFormat: "%.\(digits)f", $0) } ?? "-" }

    /// `+7.8%`, or `-` without a delta.
    static func shortDelta(_ value: Double?) -> String { value.map { String(cFormat: "%+.1f%%", $0) } ?? "-" }

    /// `rows` in columns: the first `leftAligned` columns left-aligned, the rest right-aligned, two spaces apart.
    static func columns(_ rows: [[String]], leftAligned: Int = 1) -> [String] {
        let count = rows.map(\.count).max() ?? 0
        let widths = (0..<count).map { column in rows.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, text in
                let fill = String(repeating: " ", count: widths[column] - text.count)
                if column == row.count - 1 && column < leftAligned { return text }
                return column < leftAligned ? text + fill : fill + text
            }.joined(separator: "  ").trimmingTrailingSpaces
        }
    }
}

extension String {
    /// The string without the spaces at its end.
    fileprivate var trimmingTrailingSpaces: String {
        var text = self
        while text.last == " " { text.removeLast() }
        return text
    }
}
