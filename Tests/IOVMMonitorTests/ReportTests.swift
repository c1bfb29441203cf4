import Foundation
import IOVMCore
import IOVMMonitor
import Testing

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// Collects elements of an XML document with their attributes and text (XMLParser, so the page must be well-formed).
final class XMLCollector: NSObject, XMLParserDelegate {
    struct Element {
        var name: String
        var attributes: [String: String]
        var text = ""
    }
    var elements: [Element] = []
    private var open: [Int] = []
    var error: (any Error)?

    static func parse(_ text: String) throws -> XMLCollector {
        let collector = XMLCollector()
        let parser = XMLParser(data: Data(text.utf8))
        parser.delegate = collector
        guard parser.parse() else { throw MonitorError("not well-formed XML: \(String(describing: parser.parserError)) at line \(parser.lineNumber)") }
        return collector
    }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        elements.append(Element(name: name, attributes: attributes))
        open.append(elements.count - 1)
    }
    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) { open.removeLast() }
    func parser(_ parser: XMLParser, foundCharacters string: String) { if let last = open.last { elements[last].text += string } }

    func all(_ name: String, _ attribute: String? = nil, _ value: String? = nil) -> [Element] {
        elements.filter { $0.name == name && (attribute == nil || $0.attributes[attribute!] == value) }
    }
}

@Suite("Reports")
struct ReportTests {
    /// Three recorded runs shaped like the paper's Figs. 12 and 13 (3 NICs, Tx): Monolithic ≈ 1,500 Mbit/s at
    /// 1.1 bits/Hz, Multiple Small ≈ 2,400 Mbit/s at 0.6, Hybrid ≈ 2,100 Mbit/s at 0.7 (with a gap in one IOVM).
    static func makeRuns(in root: URL) throws -> [URL] {
        let hz = Double(Sim.hz)
        func iovms(_ plan: Plan, totalMbps: Double, efficiency: Double) -> [(name: String, rxMbps: Double, txMbps: Double, cpuShare: Double)] {
            // Traffic in proportion to each IOVM's NICs (the Hybrid's first IOVM has 2 of the 3).
            let nics = Double(plan.iovms.reduce(0) { $0 + $1.nics.count })
            return plan.iovms.map { iovm in
                let mbps = totalMbps * Double(iovm.nics.count) / nics
                return (iovm.name, 0, mbps, mbps * 1e6 / (efficiency * hz))
            }
        }
        let monolithic = try Sim.plan(.monolithic, placement: .credit)
        let small = try Sim.plan(.multipleSmall, placement: .credit)
        let hybrid = try Sim.plan(.hybrid, placement: .credit)
        let dirs = ["monolithic", "multiple-small", "hybrid"].map { root.appendingPathComponent($0) }
        try Sim.run(into: dirs[0], label: nil, plan: monolithic, iovms: iovms(monolithic, totalMbps: 1_500, efficiency: 1.1), seconds: 30)
        try Sim.run(into: dirs[1], label: nil, plan: small, iovms: iovms(small, totalMbps: 2_400, efficiency: 0.6), seconds: 30)
        try Sim.run(
            into: dirs[2], label: nil, plan: hybrid, iovms: iovms(hybrid, totalMbps: 2_100, efficiency: 0.7), seconds: 30,
            gap: (hybrid.iovms[1].name, 12, 15))
        return dirs
    }

    static func temporaryRoot() throws -> URL {
        if let demo = ProcessInfo.processInfo.environment["IOVM_MONITOR_DEMO_DIR"] { return URL(fileURLWithPath: demo) }
        return FileManager.default.temporaryDirectory.appendingPathComponent("iovm-report-\(UUID().uuidString)")
    }

    @Test("a recorded run reads back; JSON has per-IOVM and aggregate mean/peak, CPU, bits/Hz, samples and gaps")
    func json() throws {
        let root = try Self.temporaryRoot()
        let dirs = try Self.makeRuns(in: root)
        let runs = try dirs.map { try RecordedRun.load($0.path) }
        #expect(runs[0].records.count == 31 && runs[0].intervals.count == 30)
        #expect(runs[0].plan?.configuration == .monolithic)
        #expect(runs[0].label == "Monolithic / credit (unpinned)")
        let summaries = try JSONDecoder().decode([RunSummary].self, from: Data(try Report.json(runs).utf8))
        #expect(summaries.count == 3)
        let mono = summaries[0].aggregate
        #expect(mono.samples == 30)
        #expect(abs(mono.meanTxMbps - 1_500) < 1_500 * 0.02)  // the simulated load wobbles by ±4 %
        #expect(abs(try #require(mono.efficiency) - 1.1) < 0.05)
        #expect(mono.peakTxMbps > mono.meanTxMbps)
        #expect(mono.meanRxMbps == 0 && mono.rxEfficiency == 0)
        #expect(summaries[1].iovms.count == 3)
        #expect(abs(try #require(summaries[1].aggregate.efficiency) - 0.6) < 0.03)
        let hybrid = summaries[2]
        #expect(hybrid.iovms.map(\.gaps) == [0, 1])
        #expect(hybrid.iovms[1].samples == 30 - 5)  // absent at 12...15: the intervals ending at 12...16 are lost
        #expect(hybrid.events.map(\.kind) == [.disappeared, .reappeared])
        #expect(summaries[0].nominalHzNote.contains("nominal Hz") && summaries[0].cpuHz == Sim.hz)
        if ProcessInfo.processInfo.environment["IOVM_MONITOR_DEMO_DIR"] == nil { try? FileManager.default.removeItem(at: root) }
    }

    @Test("the schedulers read from Xen are kept with the run and shown in its report; older runs have none")
    func schedulersRecorded() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("iovm-sched-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let reading = SchedulerReading(
            poolZero: "credit2", domains: [.init(domain: "iovm0", pool: "iovm-rtds", scheduler: "rtds"), .init(domain: "guest1", pool: "Pool-0", scheduler: "credit2")])
        let meta = RunMeta(interval: 1, cpuHz: Sim.hz, frequencyWarning: nil, started: 1_764_100_000, iovms: ["iovm0"], schedulers: reading)
        _ = try RunRecorder(directory: directory, meta: meta, plan: nil)
        let run = try RecordedRun.load(directory.path)
        #expect(run.meta.schedulers == reading)
        let summaries = try JSONDecoder().decode([RunSummary].self, from: Data(try Report.json([run]).utf8))
        #expect(summaries.first?.schedulers == reading)
        #expect(HTMLReport.page([run]).contains("iovm-rtds rtds: iovm0; Pool-0 credit2: guest1"))
        let old = #"{"formatVersion":1,"interval":1,"cpuHz":2000000000,"nominalHzNote":"nominal","started":1764100000,"iovms":["iovm0"]}"#
        #expect(try JSONDecoder().decode(RunMeta.self, from: Data(old.utf8)).schedulers == nil)
    }

    @Test("CSV: one row per interval per IOVM plus an aggregate row per interval")
    func csv() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("iovm-csv-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let runs = try Self.makeRuns(in: root).map { try RecordedRun.load($0.path) }
        let lines = Report.csv([runs[1]]).split(separator: "\n")
        #expect(lines[0] == Substring(Report.csvHeader))
        #expect(lines.count == 1 + 30 * (3 + 1))
        let aggregate = lines.filter { $0.split(separator: ",")[4] == "aggregate" }
        #expect(aggregate.count == 30)
        let columns = Report.csvHeader.split(separator: ",")
        let row = aggregate[0].split(separator: ",", omittingEmptySubsequences: false)
        #expect(row.count == columns.count)
        #expect(row[0] == "Multiple Small IOVMs / credit (unpinned)")
        #expect(abs(Double(row[columns.firstIndex(of: "efficiency_bits_per_hz")!])! - 0.6) < 0.05)
    }

    @Test("HTML is well-formed, self-contained, and its charts carry the data: N points per line, y axis up to the data's nice maximum")
    func html() throws {
        let root = try Self.temporaryRoot()
        let runs = try Self.makeRuns(in: root).map { try RecordedRun.load($0.path) }
        let single = try Report.render([runs[0]], format: .html)
        let page = try XMLCollector.parse(single)
        #expect(!single.contains("<script") && !single.contains("src=") && !single.contains("href="))  // self-contained
        #expect(page.all("svg").count == 3)
        let iovm = try #require(runs[0].plan?.iovms.first?.name)
        let tx = try #require(page.all("polyline", "data-series", "\(iovm) Tx").first)
        let points = try #require(tx.attributes["points"]).split(separator: " ")
        #expect(points.count == 30)
        // The throughput chart's top y tick is the nice maximum over the data, and its label says so.
        let peak = runs[0].intervals.map { $0.iovms[0].txMbps }.max()!
        let ticks = SVGChart.niceTicks(upTo: peak)
        #expect(ticks.last! >= peak && ticks.last! - peak < ticks[1])
        let yLabels = page.all("text", "class", "tick y").map(\.text)
        #expect(yLabels.contains(SVGChart.label(ticks.last!, step: ticks[1])))
        // The topology table names every domain of the plan.
        let cells = Set(page.all("td").map(\.text))
        #expect(runs[0].plan!.domains.allSatisfy { cells.contains($0.name) })
        #expect(single.contains("nominal Hz"))

        // A gap breaks the hybrid run's line of the missing IOVM into two polylines.
        let hybrid = try XMLCollector.parse(try Report.render([runs[2]], format: .html))
        let second = try #require(runs[2].plan?.iovms.last?.name)
        #expect(hybrid.all("polyline", "data-series", "\(second) Tx").map { $0.attributes["points"]!.split(separator: " ").count } == [11, 14])
        // …and the time without its data is shaded and labeled on each chart.
        #expect(hybrid.all("rect", "class", "gap").count == 3)
        #expect(hybrid.all("text", "class", "gap-label").first?.text == "no data: \(second)")

        // Several runs: bar charts with one bar per run and direction, like Figs. 6 and 7.
        let compared = try Report.render(runs, format: .html)
        let comparison = try XMLCollector.parse(compared)
        #expect(comparison.all("rect", "data-series", "Tx (guest → client)").count == 3)
        let efficiencyBars = comparison.all("rect", "data-series", "all bits / cycles")
        #expect(efficiencyBars.map(\.attributes["data-group"]) == runs.map(\.label))
        #expect(abs(Double(efficiencyBars[0].attributes["data-value"]!)! - 1.1) < 0.05)
        if let demo = ProcessInfo.processInfo.environment["IOVM_MONITOR_DEMO_DIR"] {
            try compared.write(toFile: "\(demo)/compare.html", atomically: true, encoding: .utf8)
            try Report.render([runs[2]], format: .html).write(toFile: "\(demo)/hybrid.html", atomically: true, encoding: .utf8)
            try SVGChart.lines(title: "demo", xLabel: "time (s)", yLabel: "Mbit/s", series: []).write(toFile: "\(demo)/empty.svg", atomically: true, encoding: .utf8)
        } else {
            try? FileManager.default.removeItem(at: root)
        }
    }

    @Test("nice ticks and their labels")
    func ticks() {
        #expect(SVGChart.niceTicks(upTo: 940) == [0, 200, 400, 600, 800, 1000])
        #expect(SVGChart.niceTicks(upTo: 1.205) == [0, 0.25, 0.5, 0.75, 1, 1.25])
        #expect(SVGChart.niceTicks(upTo: 0) == [0, 0.2, 0.4, 0.6, 0.8, 1])
        #expect(SVGChart.label(0.25, step: 0.25) == "0.25")
        #expect(SVGChart.label(1000, step: 200) == "1000")
        #expect(SVGChart.label(7.5, step: 2.5) == "7.5")
    }

    @Test("a torn last line (a run killed mid-write) is skipped")
    func tornLine() throws {
        let good = try JSONLines.line(SampleRecord(time: 1, elapsed: 0, cpuHz: 1, iovms: []))
        #expect(try JSONLines.decode(SampleRecord.self, from: good + "\n" + "{\"time\":2,\"ela").count == 1)
        #expect(throws: JSONLinesError.self) { _ = try JSONLines.decode(SampleRecord.self, from: "{bad}\n" + good + "\n") }
    }

    @Test("a sample line that does not decode is named by file, line and JSON path or column; CRLF lines read; a torn last line is not an error")
    func badSampleLineIsLocated() throws {
        let good = try JSONLines.line(SampleRecord(time: 1, elapsed: 0, cpuHz: 1, iovms: []))
        let wrongType = #"{"time":"soon","elapsed":0,"cpuHz":1,"iovms":[]}"#
        do {
            _ = try JSONLines.decode(SampleRecord.self, from: good + "\n\n" + wrongType + "\n" + good + "\n")
            Issue.record("a sample whose time is a string decoded")
        } catch {
            #expect(error.line == 3 && error.reason.hasPrefix("at $.time: expected a number"), "\(error)")
        }
        do {
            _ = try JSONLines.decode(SampleRecord.self, from: good + "\n" + #"{"time": 1,, }"# + "\n")
            Issue.record("a line that is not JSON decoded")
        } catch {
            #expect(error.line == 2 && error.reason.hasPrefix("column "), "\(error)")
        }
        #expect(try JSONLines.decode(SampleRecord.self, from: good + "\r\n" + good + "\r\n").count == 2)
        var invalid = Data((good + "\n").utf8)
        invalid.append(contentsOf: [0x7B, 0x22, 0xFF, 0x22, 0x7D, 0x0A])  // {"<0xFF>"}
        #expect(throws: JSONLinesError.self) { _ = try JSONLines.decode(SampleRecord.self, from: invalid) }

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("iovm-badline-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let meta = RunMeta(interval: 1, cpuHz: Sim.hz, frequencyWarning: nil, started: 1_764_100_000, iovms: ["iovm0"], schedulers: nil)
        _ = try RunRecorder(directory: directory, meta: meta, plan: nil)
        let samples = directory.appendingPathComponent("samples.jsonl")
        try Data((good + "\n" + wrongType + "\n").utf8).write(to: samples)
        #expect {
            _ = try RecordedRun.load(directory.path)
        } throws: { error in
            "\(error)".hasPrefix("\(samples.path):2: error: not a sample: at $.time: expected a number")
        }
        try invalid.write(to: samples)
        #expect {
            _ = try RecordedRun.load(directory.path)
        } throws: { error in
            "\(error)".hasPrefix("\(samples.path):2: error: not a sample: ")
        }
        try Data((good + "\n" + wrongType).utf8).write(to: samples)
        #expect(try RecordedRun.load(directory.path).records.count == 1)
    }
}
