import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// One line of a line chart: points in data units; `nil` breaks the line (a gap).
public struct ChartSeries: Sendable {
    /// Legend text.
    public var name: String
    /// Stroke color (CSS).
    public var color: String
    /// Dashed (Tx lines) or solid (Rx lines).
    public var dashed: Bool
    /// Stroke width.
    public var width: Double
    /// The points; nil marks a gap.
    public var points: [(x: Double, y: Double)?]

    /// Creates a series.
    public init(name: String, color: String, dashed: Bool = false, width: Double = 1.6, points: [(x: Double, y: Double)?]) {
        self.name = name
        self.color = color
        self.dashed = dashed
        self.width = width
        self.points = points
    }
}

/// One bar series of a grouped bar chart: a value per group.
public struct BarSeries: Sendable {
    /// Legend text.
    public var name: String
    /// Fill color (CSS).
    public var color: String
    /// One value per group; nil draws no bar.
    public var values: [Double?]
    /// Per group, the range an error bar spans (minimum to maximum over repetitions); empty or nil draws none.
    public var ranges: [ClosedRange<Double>?]

    /// Creates a bar series.
    public init(name: String, color: String, values: [Double?], ranges: [ClosedRange<Double>?] = []) {
        self.name = name
        self.color = color
        self.values = values
        self.ranges = ranges
    }
}

/// Small, dependency-free SVG charts: axes with ticks and labels, a legend, polylines and bars.
public enum SVGChart {
    /// Colors for IOVMs, readable on white and distinct from the aggregate's near-black.
    public static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
    /// The aggregate's color.
    public static let aggregateColor = "#222222"

    /// Ticks from 0 to a "nice" maximum at or above `maximum` (1, 2, 2.5 or 5 × 10^n steps).
    public static func niceTicks(upTo maximum: Double, targetCount: Int = 5) -> [Double] {
        let top = maximum.isFinite && maximum > 0 ? maximum : 1
        let rough = top / Double(targetCount)
        let exponent = floor(log10(rough))
        let magnitude = pow(10, exponent)
        let normalized = rough / magnitude
        let mantissa: Double = normalized <= 1 ? 1 : normalized <= 2 ? 2 : normalized <= 2.5 ? 2.5 : normalized <= 5 ? 5 : 10
        let step = mantissa * magnitude
        let count = Int((top / step - 1e-9).rounded(.up))
        // Dividing by 10^-n (exact) instead of multiplying by 10^n (inexact) keeps 0.6 from becoming 0.6000000000000001.
        return (0...max(count, 1)).map { exponent < 0 ? Double($0) * mantissa / pow(10, -exponent) : Double($0) * step }
    }

    /// A tick label: as few decimals as the step needs.
    public static func label(_ value: Double, step: Double) -> String {
        var decimals = 0
        while decimals < 6 {
            let scaled = step * pow(10, Double(decimals))
            if abs(scaled - scaled.rounded()) < 1e-6 * max(1, scaled) { break }
            decimals += 1
        }
        return String(cFormat: "%.\(decimals)f", value)
    }

    /// Escapes text for XML content and attributes.
    public static func escape(_ text: String) -> String {
        // By scalar: a '<' with a combining mark after it is one Character, which a Character match would miss.
        var escaped = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }

    static func n(_ value: Double) -> String { String(cFormat: "%.1f", value) }

    private struct Frame {
        let width: Double, height: Double
        let left = 66.0, right = 190.0, top = 36.0, bottom = 48.0
        var plotWidth: Double { width - left - right }
        var plotHeight: Double { height - top - bottom }
    }

    private static func open(_ frame: Frame, title: String, xLabel: String, yLabel: String, yTicks: [Double]) -> [String] {
        var svg = [
            "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"\(Int(frame.width))\" height=\"\(Int(frame.height))\" viewBox=\"0 0 \(Int(frame.width)) \(Int(frame.height))\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">",
            "<title>\(escape(title))</title>",
            "<rect x=\"0\" y=\"0\" width=\"\(Int(frame.width))\" height=\"\(Int(frame.height))\" fill=\"#ffffff\"/>",
            "<text class=\"chart-title\" x=\"\(n(frame.left))\" y=\"20\" font-size=\"14\" font-weight=\"bold\" fill=\"#222\">\(escape(title))</text>",
        ]
        let yTop = yTicks.last ?? 1
        let step = yTicks.count > 1 ? yTicks[1] - yTicks[0] : 1
        for tick in yTicks {
            let y = frame.top + frame.plotHeight * (1 - tick / yTop)
            svg.append("<line x1=\"\(n(frame.left))\" y1=\"\(n(y))\" x2=\"\(n(frame.left + frame.plotWidth))\" y2=\"\(n(y))\" stroke=\"#e4e4e4\" stroke-width=\"1\"/>")
            svg.append("<text class=\"tick y\" x=\"\(n(frame.left - 6))\" y=\"\(n(y + 4))\" text-anchor=\"end\" fill=\"#444\">\(label(tick, step: step))</text>")
        }
        let midY = frame.top + frame.plotHeight / 2
        svg.append("<text class=\"axis-label y\" x=\"16\" y=\"\(n(midY))\" text-anchor=\"middle\" transform=\"rotate(-90 16 \(n(midY)))\" fill=\"#222\">\(escape(yLabel))</text>")
        svg.append(
            "<text class=\"axis-label x\" x=\"\(n(frame.left + frame.plotWidth / 2))\" y=\"\(n(frame.height - 8))\" text-anchor=\"middle\" fill=\"#222\">\(escape(xLabel))</text>")
        return svg
    }

    private static func axes(_ frame: Frame) -> [String] {
        let bottom = frame.top + frame.plotHeight
        return [
            "<line x1=\"\(n(frame.left))\" y1=\"\(n(frame.top))\" x2=\"\(n(frame.left))\" y2=\"\(n(bottom))\" stroke=\"#444\" stroke-width=\"1\"/>",
            "<line x1=\"\(n(frame.left))\" y1=\"\(n(bottom))\" x2=\"\(n(frame.left + frame.plotWidth))\" y2=\"\(n(bottom))\" stroke=\"#444\" stroke-width=\"1\"/>",
        ]
    }

    private static func legend(_ frame: Frame, _ entries: [(name: String, color: String, dashed: Bool, bar: Bool)]) -> [String] {
        var svg: [String] = []
        let x = frame.left + frame.plotWidth + 16
        for (index, entry) in entries.enumerated() {
            let y = frame.top + 8 + Double(index) * 18
            if entry.bar {
                svg.append("<rect x=\"\(n(x))\" y=\"\(n(y - 8))\" width=\"22\" height=\"10\" fill=\"\(entry.color)\"/>")
            } else {
                svg.append(
                    "<line x1=\"\(n(x))\" y1=\"\(n(y - 3))\" x2=\"\(n(x + 22))\" y2=\"\(n(y - 3))\" stroke=\"\(entry.color)\" stroke-width=\"2.2\"\(entry.dashed ? " stroke-dasharray=\"5 3\"" : "")/>"
                )
            }
            let name = entry.name.count > 24 ? String(entry.name.prefix(23)) + "…" : entry.name
            svg.append("<text class=\"legend\" x=\"\(n(x + 28))\" y=\"\(n(y + 1))\" fill=\"#222\">\(escape(name))</text>")
        }
        return svg
    }

    /// A line chart with the x axis from 0 and the y axis from 0 to a nice maximum over the data.
    ///
    /// `gaps` are shaded as bands (x from, x to, label) behind the lines: time when some IOVM had no data.
    public static func lines(
        title: String, xLabel: String, yLabel: String, series: [ChartSeries],
        gaps: [(from: Double, to: Double, label: String)] = [],
        width: Double = 980, height: Double = 300
    ) -> String {
        let frame = Frame(width: width, height: height)
        let all = series.flatMap { $0.points.compactMap { $0 } }
        let yTicks = niceTicks(upTo: all.map(\.y).max() ?? 0)
        let xTicks = niceTicks(upTo: all.map(\.x).max() ?? 0, targetCount: 8)
        let xTop = xTicks.last!
        let yTop = yTicks.last!
        var svg = open(frame, title: title, xLabel: xLabel, yLabel: yLabel, yTicks: yTicks)
        let xStep = xTicks.count > 1 ? xTicks[1] - xTicks[0] : 1
        for tick in xTicks {
            let x = frame.left + frame.plotWidth * tick / xTop
            svg.append("<text class=\"tick x\" x=\"\(n(x))\" y=\"\(n(frame.top + frame.plotHeight + 16))\" text-anchor=\"middle\" fill=\"#444\">\(label(tick, step: xStep))</text>")
        }
        for gap in gaps {
            let x0 = frame.left + frame.plotWidth * gap.from / xTop
            let x1 = frame.left + frame.plotWidth * gap.to / xTop
            svg.append("<rect class=\"gap\" x=\"\(n(x0))\" y=\"\(n(frame.top))\" width=\"\(n(max(x1 - x0, 1)))\" height=\"\(n(frame.plotHeight))\" fill=\"#f3e3e3\"/>")
            svg.append(
                "<text class=\"gap-label\" x=\"\(n((x0 + x1) / 2))\" y=\"\(n(frame.top + 12))\" text-anchor=\"middle\" font-size=\"10\" fill=\"#a33\">\(escape(gap.label))</text>")
        }
        svg += axes(frame)
        if all.isEmpty {
            svg.append("<text x=\"\(n(frame.left + frame.plotWidth / 2))\" y=\"\(n(frame.top + frame.plotHeight / 2))\" text-anchor=\"middle\" fill=\"#888\">no data</text>")
        }
        for line in series {
            var runs: [[(x: Double, y: Double)]] = [[]]
            for point in line.points {
                if let point { runs[runs.count - 1].append(point) } else if !runs[runs.count - 1].isEmpty { runs.append([]) }
            }
            for run in runs where !run.isEmpty {
                let points = run.map { "\(n(frame.left + frame.plotWidth * $0.x / xTop)),\(n(frame.top + frame.plotHeight * (1 - $0.y / yTop)))" }
                if run.count == 1 {
                    let xy = points[0].split(separator: ",")
                    svg.append("<circle data-series=\"\(escape(line.name))\" cx=\"\(xy[0])\" cy=\"\(xy[1])\" r=\"2.5\" fill=\"\(line.color)\"/>")
                } else {
                    svg.append(
                        "<polyline data-series=\"\(escape(line.name))\" fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"\(line.width)\" stroke-linejoin=\"round\"\(line.dashed ? " stroke-dasharray=\"6 4\"" : "") points=\"\(points.joined(separator: " "))\"/>"
                    )
                }
            }
        }
        svg += legend(frame, series.map { ($0.name, $0.color, $0.dashed, false) })
        svg.append("</svg>")
        return svg.joined(separator: "\n")
    }

    /// A grouped bar chart (like the paper's Figs. 6 and 7): one group per configuration, one bar per series, values on top,
    /// and error bars where a series has ``BarSeries/ranges``.
    public static func bars(
        title: String, xLabel: String = "", yLabel: String, groups: [String], series: [BarSeries], valueFormat: String = "%.0f",
        width: Double = 980, height: Double = 320
    ) -> String {
        let frame = Frame(width: width, height: height)
        let highest = series.flatMap { $0.values.compactMap { $0 } + $0.ranges.compactMap { $0?.upperBound } }.max()
        // Headroom for the value labels above the highest bar.
        let yTicks = niceTicks(upTo: (highest ?? 0) * 1.06)
        let yTop = yTicks.last!
        var svg = open(frame, title: title, xLabel: xLabel, yLabel: yLabel, yTicks: yTicks)
        svg += axes(frame)
        if highest == nil {
            svg.append("<text x=\"\(n(frame.left + frame.plotWidth / 2))\" y=\"\(n(frame.top + frame.plotHeight / 2))\" text-anchor=\"middle\" fill=\"#888\">no data</text>")
        }
        let groupWidth = frame.plotWidth / Double(max(groups.count, 1))
        let barWidth = min(48, groupWidth * 0.8 / Double(max(series.count, 1)))
        for (g, group) in groups.enumerated() {
            let start = frame.left + groupWidth * Double(g) + (groupWidth - barWidth * Double(series.count)) / 2
            for (s, bar) in series.enumerated() {
                guard g < bar.values.count, let value = bar.values[g] else { continue }
                let h = frame.plotHeight * value / yTop
                let x = start + barWidth * Double(s)
                svg.append(
                    "<rect data-series=\"\(escape(bar.name))\" data-group=\"\(escape(group))\" data-value=\"\(value)\" x=\"\(n(x + 1))\" y=\"\(n(frame.top + frame.plotHeight - h))\" width=\"\(n(barWidth - 2))\" height=\"\(n(h))\" fill=\"\(bar.color)\"/>"
                )
                var labelTop = frame.top + frame.plotHeight - h
                if g < bar.ranges.count, let range = bar.ranges[g] {
                    let center = x + barWidth / 2
                    let cap = max(2, barWidth / 6)
                    let low = frame.top + frame.plotHeight * (1 - range.lowerBound / yTop)
                    let high = frame.top + frame.plotHeight * (1 - range.upperBound / yTop)
                    svg.append(
                        "<path class=\"error-bar\" data-series=\"\(escape(bar.name))\" data-group=\"\(escape(group))\" data-min=\"\(range.lowerBound)\" data-max=\"\(range.upperBound)\" d=\"M\(n(center)) \(n(low)) V\(n(high)) M\(n(center - cap)) \(n(low)) H\(n(center + cap)) M\(n(center - cap)) \(n(high)) H\(n(center + cap))\" stroke=\"#222\" stroke-width=\"1.2\" fill=\"none\"/>"
                    )
                    labelTop = min(labelTop, high)
                }
                svg.append(
                    "<text class=\"bar-value\" x=\"\(n(x + barWidth / 2))\" y=\"\(n(labelTop - 4))\" text-anchor=\"middle\" font-size=\"10\" fill=\"#333\">\(String(cFormat: valueFormat, value))</text>"
                )
            }
            // Group labels: split "configuration / placement" over two lines.
            let parts = group.components(separatedBy: " / ")
            for (line, part) in parts.prefix(2).enumerated() {
                svg.append(
                    "<text class=\"group\" x=\"\(n(frame.left + groupWidth * (Double(g) + 0.5)))\" y=\"\(n(frame.top + frame.plotHeight + 16 + Double(line) * 14))\" text-anchor=\"middle\" fill=\"#222\">\(escape(part))</text>"
                )
            }
        }
        svg += legend(frame, series.map { ($0.name, $0.color, false, true) })
        svg.append("</svg>")
        return svg.joined(separator: "\n")
    }
}
