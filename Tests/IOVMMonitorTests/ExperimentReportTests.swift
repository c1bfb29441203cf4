import Foundation
import IOVMCore
import IOVMDescription
import IOVMMonitor
import IOVMWireFormat
import Testing

/// The experiment report (`iovm report DIR` on an experiment's run directory): aggregation, missing cells, verdicts,
/// the comparison table, CSV and HTML.
@Suite("Experiment report")
struct ExperimentReportTests {
    typealias Synthetic = SyntheticExperimentRun

    /// Figs. 8/9's shape: 3 placements × NIC counts 1 and 2 × Rx, Tx × 2 repetitions.
    static func figures8and9() throws -> (ExperimentRun, [ExperimentCellResult]) {
        let plan = try Synthetic.plan(Experiment.paper.figures8and9, nicCounts: [1, 2], repetitions: 2)
        return (Synthetic.run(plan), Synthetic.measure(plan, Synthetic.figures8and9))
    }

    /// Where a test's run directory goes: under IOVM_EXPERIMENT_REPORT_DEMO_DIR when set (kept to look at), else a temporary one.
    static func directory(_ name: String) -> (url: URL, keep: Bool) {
        if let demo = ProcessInfo.processInfo.environment["IOVM_EXPERIMENT_REPORT_DEMO_DIR"] {
            return (URL(fileURLWithPath: demo).appendingPathComponent(name), true)
        }
        return (FileManager.default.temporaryDirectory.appendingPathComponent("iovm-experiment-report-\(UUID().uuidString)"), false)
    }

    /// A CSV line's fields (quotes undone).
    static func csvFields(_ line: String) -> [String] {
        var fields = [""]
        var quoted = false
        var previous: Character?
        for character in line {
            if character == "\"" {
                if quoted == false && previous == "\"" { fields[fields.count - 1].append("\"") }
                quoted.toggle()
            } else if character == "," && !quoted {
                fields.append("")
            } else {
                fields[fields.count - 1].append(character)
            }
            previous = character
        }
        return fields
    }

    @Test("each combination and direction: mean, min and max over the repetitions of every figure")
    func aggregation() throws {
        let (run, results) = try Self.figures8and9()
        let report = ExperimentReport(run: run, results: results, directory: "run")
        #expect(report.cellsPlanned == 3 * 2 * 2 * 2 && report.cellsMeasured == report.cellsPlanned && report.missingCells.isEmpty)
        #expect(report.groups.count == 6 * 2)
        #expect(report.nicCounts == [1, 2])
        #expect(report.series.map(\.name) == ["co-locate", "separate", "IOVM-affinity"])
        #expect(report.series.allSatisfy { $0.combinations.map { report.combinations[$0].nics } == [1, 2] })

        let combination = try #require(report.combinations.first { $0.settings.placement == "separate" && $0.nics == 2 })
        #expect(combination.label == "separate, 2 NICs")
        let group = try #require(report.group(combination.index, .rx))
        let cells = results.filter { $0.combination == combination.index && $0.direction == .rx }
        #expect(cells.count == 2 && group.measured == 2 && group.planned == 2 && group.cells == cells.map(\.cell))
        let payload = cells.map(\.payloadMbps)
        #expect(group.payloadMbps == RepetitionStatistics(payload))
        let throughput = try #require(group.payloadMbps)
        #expect(abs(throughput.mean - (payload[0] + payload[1]) / 2) < 1e-9)
        #expect(throughput.min == payload.min() && throughput.max == payload.max())
        // Repetition 1 at the formula's value, repetition 2 3 % above: 700 Mbit/s per NIC × 2 × 0.85 (Rx).
        #expect(abs(throughput.min - 1_190) < 0.01 && abs(throughput.max - 1_190 * 1.03) < 0.01)
        let efficiency = try #require(group.efficiency)
        #expect(abs(efficiency.min - 0.85 * 0.9) < 1e-3 && abs(efficiency.max - 0.85 * 0.9 * 1.03) < 1e-3)
        #expect(abs(efficiency.mean - cells.compactMap(\.efficiency).reduce(0, +) / 2) < 1e-12)
        let l2 = try #require(group.l2Mbps)
        #expect(l2.mean > payload.reduce(0, +) / 2)
        #expect(group.cpuPercent?.count == 2 && group.l2Efficiency?.count == 2)
    }

    @Test("a missing cell is reported as missing, never filled in: N of M cells measured")
    func missingCell() throws {
        let (run, all) = try Self.figures8and9()
        let dropped = try #require(all.first { $0.settings.placement == "co-locate" && $0.settings.nics == 1 && $0.direction == .tx })
        let report = ExperimentReport(run: run, results: all.filter { $0.cell != dropped.cell }, directory: "run")
        #expect(report.cellsMeasured == 23 && report.missingCells == [dropped.cell])
        #expect(report.cellsText == "23 of 24 cells measured; missing: \(dropped.cell)")
        let group = try #require(report.group(dropped.combination, .tx))
        #expect(group.measured == 1 && group.planned == 2 && group.payloadMbps?.count == 1)
        #expect(report.text().contains("23 of 24 cells measured"))
        #expect(report.html().contains("23 of 24 cells measured"))
        // Without any result, a group has no figures at all (not zeros).
        let empty = ExperimentReport(run: run, results: [], directory: "run")
        #expect(empty.cellsMeasured == 0 && empty.groups.allSatisfy { $0.payloadMbps == nil && $0.efficiency == nil })
        #expect(empty.verdicts.allSatisfy { $0.cells == 0 && $0.countText == "no cell has all its series measured yet" })
    }

    @Test("a claim is counted in the cells where all its series were measured: held in exactly 2 of 3")
    func verdictCounting() throws {
        let plan = try Synthetic.plan(Experiment.paper.figures8and9, repetitions: 1)
        // Rx only (Tx never measured): IOVM-affinity > separate > co-locate at 1 and 3 NICs, not at 2 (separate on top).
        let results = Synthetic.measure(plan) { settings, cell in
            guard cell.direction == .rx else { return nil }
            let efficiency: Double =
                switch settings.placement {
                case "co-locate": 0.6
                case "separate": settings.nics == 2 ? 1.3 : 0.8
                default: 1.1
                }
            return (1_000 * Double(settings.nics), efficiency)
        }
        let report = ExperimentReport(run: Synthetic.run(plan), results: results, directory: "run")
        let fig9 = try #require(report.verdicts.first { $0.source == "Fig. 9" })
        #expect(fig9.statement == "IOVM-affinity > separate > co-locate" && fig9.figure == .efficiency)
        #expect(fig9.held == 2 && fig9.cells == 3)
        #expect(fig9.countText == "held in 2 of 3 cells" && fig9.exceptionsText == "2 NICs Rx")
        #expect(fig9.outcomes.map(\.nics) == [1, 2, 3] && fig9.outcomes.map(\.held) == [true, false, true])
        #expect(fig9.outcomes[1].means.map(\.series) == ["IOVM-affinity", "separate", "co-locate"])
        #expect(fig9.quote.hasPrefix("Co-locate has the worst efficiency, IOVM-affinity has the best efficiency"))
        // Throughput is the same in every placement: a strict ordering never holds on ties.
        let fig8 = try #require(report.verdicts.first { $0.source == "Fig. 8" })
        #expect(fig8.held == 0 && fig8.cells == 3)
        // Claims whose series the experiment lacks are not listed.
        #expect(Set(report.verdicts.map(\.source)) == ["Fig. 8", "Fig. 9"])
        #expect(report.text().contains("Fig. 9  efficiency  IOVM-affinity > separate > co-locate:  held in 2 of 3 cells; not in 2 NICs Rx"))
    }

    @Test("Figs. 10/11: static (rtds) and pinned credit against credit, the efficiency claims split by NIC count as the paper states them")
    func schedulerClaims() throws {
        let plan = try Synthetic.plan(Experiment.paper.figures10and11, repetitions: 1)
        let results = Synthetic.measure(plan) { settings, _ in
            // rtds and pinned credit behave as the paper's static scheduler.
            let isStatic = settings.scheduler == "rtds"
            let isPinned = settings.scheduler == "credit" && settings.placement.hasPrefix("IOVM-affinity")
            if isPinned { return (950, settings.nics == 1 ? 1.0 : 0.95) }
            return (isStatic ? 900 : 1_000, isStatic ? 1.0 : (settings.nics == 3 ? 1.1 : 0.9))
        }
        let report = ExperimentReport(run: Synthetic.run(plan), results: results, directory: "run")
        #expect(report.series.map(\.name) == ["static", "pinned credit", "credit"])
        let claims = report.verdicts.map { "\($0.source) \($0.figure.title) \($0.statement)\($0.nicCounts.map { " (\($0))" } ?? ""): \($0.held)/\($0.cells)" }
        #expect(
            claims == [
                "Fig. 10 throughput credit ≥ static: 6/6", "Fig. 11 efficiency static > credit (1-2 NICs): 4/4",
                "Fig. 11 efficiency credit > static (3+ NICs): 2/2", "Fig. 10 throughput credit ≥ pinned credit: 6/6",
                "Fig. 11 efficiency pinned credit > credit (1-2 NICs): 4/4", "Fig. 11 efficiency credit > pinned credit (3+ NICs): 2/2",
            ])
    }

    @Test("Figs. 6/7: IOVM against centralized; throughput only at 2 and 3 NICs, where the paper claims it")
    func centralizedClaims() throws {
        let plan = try Synthetic.plan(Experiment.paper.figures6and7, repetitions: 1)
        let results = Synthetic.measure(plan) { settings, _ in
            settings.configuration == "centralized" ? (940 * Double(settings.nics) * 0.9, 0.8) : (940 * Double(settings.nics), 1.2)
        }
        let report = ExperimentReport(run: Synthetic.run(plan), results: results, directory: "run")
        #expect(report.series.map(\.name) == ["centralized", "monolithic"])
        #expect(
            report.verdicts.map { "\($0.source) \($0.figure.title) \($0.statement) \($0.nicCounts ?? "all"): \($0.held)/\($0.cells)" } == [
                "Figs. 6/7 throughput IOVM > centralized 2+ NICs: 4/4", "Figs. 6/7 efficiency IOVM > centralized all: 6/6",
            ])
    }

    @Test("another factor besides the claim's: each of its values is a cell of its own, named in the verdict")
    func claimWithOtherFactor() throws {
        let nics = ["0000:00:10.0", "0000:00:11.0"]
        let base = Topology("two-placements") {
            Host(cores: 4, memory: .gib(4), scheduler: "credit")
            Defaults(kernel: "/boot/vmlinuz", ramdisk: "/boot/initrd.img", iovmImage: .minimal)
            Configuration.multipleSmall()
            for pci in nics { NIC(pci) }
            for (index, pci) in nics.enumerated() { Guest("guest\(index + 1)", nic: pci) }
            Placement.iovmAffinity()
        }
        let experiment = Experiment("placements-and-weights") {
            Base(base)
            Vary(.placement([.coLocate(), .separate(), .iovmAffinity()]))
            Vary(.weights([Weights(), Weights(iovm: 512, guest: 256)]))
            Directions(.tx)
            Timing(duration: .seconds(10), warmUp: .seconds(1), repetitions: 1)
        }
        let plan = try Synthetic.plan(experiment)
        let results = Synthetic.measure(plan) { settings, _ in
            let weighted = settings.weights != "default"
            let efficiency: Double =
                switch settings.placement {
                case "co-locate": 0.6
                case "separate": weighted ? 1.2 : 0.8
                default: 1.0
                }
            return (1_000, efficiency)
        }
        let report = ExperimentReport(run: Synthetic.run(plan), results: results, directory: "run")
        #expect(report.series.first?.name == "co-locate / default")
        let fig9 = try #require(report.verdicts.first { $0.source == "Fig. 9" })
        #expect(fig9.held == 1 && fig9.cells == 2)
        #expect(fig9.outcomes.map(\.context) == ["weights default", "weights iovm 512, guest 256"])
        #expect(fig9.exceptionsText == "2 NICs Tx (weights iovm 512, guest 256)")
    }

    @Test("the Table 3-style table: each combination's means and their change in % against the first")
    func tableDeltas() throws {
        let plan = try Synthetic.plan(Experiment.paper.table3, repetitions: 1)
        let report = ExperimentReport(run: Synthetic.run(plan), results: Synthetic.measure(plan, Synthetic.table3), directory: "run")
        #expect(report.table.map(\.label) == ["Default", "Core Pinning"])
        let (base, pinned) = (report.table[0], report.table[1])
        #expect(base.isBaseline && !pinned.isBaseline && pinned.baseline == base.combination)
        #expect(base.entries.allSatisfy { $0.throughputDelta == nil && $0.cpuDelta == nil && $0.efficiencyDelta == nil })
        let tx = try #require(pinned.entries.first { $0.direction == .tx })
        let throughput: Double = try #require(tx.throughput)
        let throughputDelta: Double = try #require(tx.throughputDelta)
        let efficiencyDelta: Double = try #require(tx.efficiencyDelta)
        let cpuDelta: Double = try #require(tx.cpuDelta)
        let expectedThroughputDelta: Double = (2_271.0 / 2_106.0 - 1) * 100  // +7.8 %
        let expectedEfficiencyDelta: Double = (0.82 / 0.72 - 1) * 100  // +13.9 %
        // CPU = throughput / efficiency: 2,271/0.82 against 2,106/0.72 cycles, -5.3 %.
        let expectedCPUDelta: Double = ((2_271.0 / 0.82) / (2_106.0 / 0.72) - 1) * 100
        #expect(abs(throughput - 2_271) < 0.01)
        #expect(abs(throughputDelta - expectedThroughputDelta) < 1e-3)
        #expect(abs(efficiencyDelta - expectedEfficiencyDelta) < 0.05)
        #expect(abs(cpuDelta - expectedCPUDelta) < 0.05)
        let text = report.text()
        #expect(text.contains("Core Pinning") && text.contains("+7.8%") && text.contains("+13.9%"))
        #expect(
            report.verdicts.map { "\($0.source) \($0.figure.title) \($0.countText)" } == ["Table 3 throughput held in 2 of 2 cells", "Table 3 efficiency held in 2 of 2 cells"])
    }

    @Test("CSV: report.csv has a header and one row per combination and direction; cells.csv one row per cell, every column filled")
    func csv() throws {
        let (run, results) = try Self.figures8and9()
        let report = ExperimentReport(run: run, results: results, directory: "run")
        let lines = report.csv().split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.first == Substring(ExperimentReport.csvHeader))
        #expect(lines.count == 1 + 6 * 2)
        let columns = ExperimentReport.csvHeader.split(separator: ",").map(String.init)
        #expect(columns.contains("efficiency_bits_per_hz_mean") && columns.contains("l2_mbps_max") && columns.contains("repetitions_measured"))
        let row = Self.csvFields(String(lines[1]))
        #expect(lines.allSatisfy { Self.csvFields(String($0)).count == columns.count })
        #expect(row[columns.firstIndex(of: "label")!] == "co-locate, 1 NIC" && row[columns.firstIndex(of: "direction")!] == "rx")
        let group = try #require(report.group(0, .rx))
        #expect(abs(Double(row[columns.firstIndex(of: "payload_mbps_mean")!])! - group.payloadMbps!.mean) < 1e-3)

        let cells = ExperimentReport.cellsCSV(results).split(separator: "\n").map(String.init)
        #expect(cells.first == ExperimentReport.cellsCSVHeader)
        #expect(cells.count == 1 + results.count)
        let cellColumns = ExperimentReport.cellsCSVHeader.split(separator: ",").map(String.init)
        let first = Self.csvFields(cells[1])
        #expect(cells.allSatisfy { Self.csvFields($0).count == cellColumns.count })
        #expect(first[0] == "1")
        #expect(first[cellColumns.firstIndex(of: "guests")!].hasPrefix("guest1|"))
        #expect(first[cellColumns.firstIndex(of: "iovms")!].hasPrefix("iovm"))
    }

    @Test("samples.csv: one row per recorded interval and IOVM; cells.csv gives each cell's per-second range")
    func samplesCSV() throws {
        let (_, results) = try Self.figures8and9()
        var cell = try #require(results.first { $0.iovms.count == 1 && $0.direction == .rx })
        let iovm = try #require(cell.iovms.first).iovm
        // 3 samples a second apart: 50% then 100% then 50% of a core; 800, then 400 Mbit/s received, then nothing new
        // from the agent (its counter time unchanged: L2 unknown for that interval).
        func counters(_ cpu: Double, _ megabits: Double, _ span: Double) -> CellSample.Counters {
            CellSample.Counters(cpuNanoseconds: UInt64(cpu * 1e9), rxBytes: UInt64(megabits * 1e6 / 8), txBytes: 0, counterSeconds: span)
        }
        cell.samples = [
            CellSample(seconds: 1, domains: [iovm: counters(0.5, 800, 1)]), CellSample(seconds: 2, domains: [iovm: counters(1.5, 1200, 2)]),
            CellSample(seconds: 3, domains: [iovm: counters(2.0, 1200, 2)]),
        ]
        let rows = ExperimentReport.samplesCSV([cell]).split(separator: "\n").map(String.init)
        #expect(rows.first == ExperimentReport.samplesCSVHeader)
        #expect(
            rows.dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).suffix(4).joined(separator: ",") } == [
                "\(iovm),1.000,50.00,800.000", "\(iovm),2.000,100.00,400.000", "\(iovm),3.000,50.00,",
            ])
        let columns = ExperimentReport.cellsCSVHeader.split(separator: ",").map(String.init)
        let fields = Self.csvFields(ExperimentReport.cellsCSV([cell]).split(separator: "\n").map(String.init)[1])
        let value = { (name: String) in fields[columns.firstIndex(of: name)!] }
        #expect(value("samples") == "3")
        #expect(value("l2_mbps_per_s_min") == "400.000" && value("l2_mbps_per_s_max") == "800.000")
        #expect(value("cpu_percent_per_s_min") == "50.00" && value("cpu_percent_per_s_max") == "100.00")
        // Not recorded: no rows, empty ranges.
        #expect(ExperimentReport.samplesCSV(results) == ExperimentReport.samplesCSVHeader + "\n")
    }

    @Test("a domain missing from one sample is measured from its last sample; the totals skip the end it missed")
    func samplesWithAGap() throws {
        let (_, results) = try Self.figures8and9()
        var cell = try #require(results.first { $0.iovms.count == 2 })
        let (a, b) = (cell.iovms[0].iovm, cell.iovms[1].iovm)
        func counters(_ cpu: Double) -> CellSample.Counters { CellSample.Counters(cpuNanoseconds: UInt64(cpu * 1e9), rxBytes: 0, txBytes: 0) }
        // Both at half a core; b is missing from the second sample.
        cell.samples = [
            CellSample(seconds: 1, domains: [a: counters(0.5), b: counters(0.5)]), CellSample(seconds: 2, domains: [a: counters(1.0)]),
            CellSample(seconds: 3, domains: [a: counters(1.5), b: counters(1.5)]),
        ]
        #expect(cell.intervals.map { "\($0.domain)@\(Int($0.end)) \(Int($0.cpuPercent.rounded()))" } == ["\(a)@1 50", "\(b)@1 50", "\(a)@2 50", "\(a)@3 50", "\(b)@3 50"])
        #expect(cell.intervalTotals.map { "\(Int($0.end)) \(Int($0.cpuPercent.rounded()))" } == ["1 100", "3 100"])
    }

    @Test("HTML: well-formed, one <svg> per panel (throughput and efficiency × direction), legends name the series, error bars span min-max")
    func html() throws {
        let (run, results) = try Self.figures8and9()
        let report = ExperimentReport(run: run, results: results, directory: "run")
        let text = report.html()
        let page = try XMLCollector.parse(text)
        #expect(!text.contains("<script") && !text.contains("src=") && !text.contains("href="))
        #expect(page.all("svg").count == 2 * 2)
        #expect(page.all("title").map(\.text).filter { $0.hasPrefix("Throughput, ") || $0.hasPrefix("Efficiency, ") }.count == 4)
        let legends = page.all("text", "class", "legend").map(\.text)
        #expect(legends.count == 4 * 3)
        for name in ["co-locate", "separate", "IOVM-affinity"] { #expect(legends.filter { $0 == name }.count == 4) }
        // One bar and one error bar per series and NIC count on each panel.
        #expect(page.all("rect", "data-series", "IOVM-affinity").count == 4 * 2)
        let errorBars = page.elements.filter { $0.name == "path" && $0.attributes["class"] == "error-bar" }
        #expect(errorBars.count == 4 * 3 * 2)
        // The first panel is throughput in Rx.
        let group = try #require(report.group(report.series[2].combinations[1], .rx))
        let bar = try #require(errorBars.first { $0.attributes["data-series"] == "IOVM-affinity" && $0.attributes["data-group"] == "2 NICs" })
        #expect(Double(bar.attributes["data-min"]!) == group.payloadMbps?.min && Double(bar.attributes["data-max"]!) == group.payloadMbps?.max)
        #expect(page.all("text", "class", "group").map(\.text).prefix(2) == ["1 NIC", "2 NICs"])
        #expect(text.contains("lab (xen 4.17, 4 cores, credit)") && text.contains("0.0.0-test") && text.contains("2025-11-25 19:46:40 UTC"))
        #expect(text.contains("24 of 24 cells measured"))
    }

    @Test("one NIC count (Figs. 12/13): one group of bars per panel, one bar per configuration; the Fig. 13 claim is counted")
    func singleNICCount() throws {
        let plan = try Synthetic.plan(Experiment.paper.figures12and13, repetitions: 2)
        let results = Synthetic.measure(plan) { settings, _ in
            switch settings.configuration {
            case "monolithic": (1_500, 1.1)
            case "multiple-small": (2_400, 0.6)
            default: (2_100, 0.7)
            }
        }
        let report = ExperimentReport(run: Synthetic.run(plan), results: results, directory: "run")
        #expect(report.nicCounts == [3] && report.series.map(\.name) == ["monolithic", "multiple-small", "hybrid(2)"])
        #expect(report.combinations.map(\.label) == ["monolithic", "multiple-small", "hybrid(2)"])
        let page = try XMLCollector.parse(report.html())
        #expect(page.all("svg").count == 4)
        #expect(page.all("text", "class", "group").map(\.text) == Array(repeating: "3 NICs", count: 4))
        #expect(page.all("rect", "data-series", "hybrid(2)").count == 4)
        #expect(
            report.verdicts.map { "\($0.source) \($0.statement) \($0.countText)" } == [
                "Fig. 12 Multiple Small > Monolithic, Hybrid held in 2 of 2 cells", "Fig. 13 Monolithic > Hybrid > Multiple Small held in 2 of 2 cells",
            ])
    }

    /// `results` with Fig. 14's shape where `keep` says: each IOVM's vifs at 10 packets per notification per NIC it carries,
    /// 10 % more in the second repetition.
    static func withBatchSizes(_ results: [ExperimentCellResult], keep: (ExperimentCellResult) -> Bool = { _ in true }) -> [ExperimentCellResult] {
        results.map { result in
            guard keep(result) else { return result }
            var result = result
            for index in result.iovms.indices {
                let nics = Set(result.guests.filter { $0.iovm == result.iovms[index].iovm }.map(\.nic)).count
                let notifications: UInt64 = 100_000
                let packets = UInt64(Double(notifications) * 10 * Double(nics) * (result.repetition == 1 ? 1 : 1.1))
                result.iovms[index] = IOVMCellFigures(
                    iovm: result.iovms[index].iovm, cpuNanoseconds: result.iovms[index].cpuNanoseconds, windowSeconds: result.windowSeconds,
                    cpuHz: Synthetic.cpuHz, rxBytes: result.iovms[index].rxBytes, txBytes: result.iovms[index].txBytes,
                    rxPackets: result.iovms[index].rxPackets, txPackets: result.iovms[index].txPackets, countersPublished: true,
                    notifications: notifications, vifPackets: packets)
            }
            return result
        }
    }

    /// Figs. 12/13's plan (3 NICs: monolithic, multiple-small, hybrid(2)) over 2 repetitions, measured.
    static func figures12and13() throws -> (ExperimentRun, [ExperimentCellResult]) {
        let plan = try Synthetic.plan(Experiment.paper.figures12and13, repetitions: 2)
        let results = Synthetic.measure(plan) { settings, _ in settings.configuration == "monolithic" ? (1_500, 1.1) : (2_100, 0.7) }
        return (Synthetic.run(plan), results)
    }

    @Test("the batch size (Fig. 14): each IOVM's packets per notification over the repetitions, in the text, HTML and CSV")
    func batchSize() throws {
        let (run, plain) = try Self.figures12and13()
        let results = Self.withBatchSizes(plain)
        let report = ExperimentReport(run: run, results: results, directory: "run")
        #expect(report.hasBatchSizes)
        let hybrid = try #require(report.combinations.first { $0.label == "hybrid(2)" })
        let group = try #require(report.group(hybrid.index, .rx))
        // The hybrid's IOVM with 2 NICs batches twice what the one with 1 does: 20 and 22 (mean 21) against 10 and 11.
        #expect(group.iovmBatchSizes.map(\.nics) == [2, 1])
        let two = group.iovmBatchSizes[0].packetsPerNotification
        #expect(abs(two.mean - 21) < 1e-9 && abs(two.min - 20) < 1e-9 && abs(two.max - 22) < 1e-9 && two.count == 2)
        #expect(abs(group.iovmBatchSizes[1].packetsPerNotification.mean - 10.5) < 1e-9)
        // Pooled over the cell's IOVMs: 30 (or 33) packets over 2 notifications.
        #expect(abs(try #require(group.batchSize).mean - 15.75) < 1e-9)
        let single = try #require(report.combinations.first { $0.label == "monolithic" })
        let monolithic = try #require(report.group(single.index, .tx))
        let pooled = try #require(monolithic.batchSize)
        #expect(monolithic.iovmBatchSizes.map(\.nics) == [3] && abs(pooled.mean - 31.5) < 1e-9)

        let text = report.text()
        #expect(text.contains("Batch size (packets per notification in each IOVM), means over the repetitions:"))
        let rows = text.split(separator: "\n").filter { $0.hasPrefix("hybrid(2)") && $0.contains("NIC") }
        #expect(rows.count == 2)
        #expect(rows.first.map { $0.contains("(2 NICs)") && $0.hasSuffix("21.0  21.0") } == true, "\(rows)")
        #expect(rows.last.map { $0.contains("(1 NIC)") && $0.hasSuffix("10.5  10.5") } == true, "\(rows)")

        let page = try XMLCollector.parse(report.html())
        #expect(page.all("svg").count == 4 + 2)
        #expect(page.all("title").map(\.text).filter { $0.hasPrefix("Batch size, ") }.count == 2)
        let cells = page.all("td").map { $0.text.trimmingCharacters(in: .whitespaces) }
        #expect(cells.contains("21.0") && cells.contains("10.5") && cells.contains("31.5"))
        #expect(page.all("span", "class", "range").contains { $0.text == "[20.0 – 22.0]" })

        let csv = report.csv().split(separator: "\n").map(String.init)
        let columns = ExperimentReport.csvHeader.split(separator: ",").map(String.init)
        let column = try #require(columns.firstIndex(of: "packets_per_notification_mean"))
        #expect(csv.allSatisfy { Self.csvFields($0).count == columns.count })
        let hybridRow = try #require(csv.dropFirst().map(Self.csvFields).first { $0[1] == "hybrid(2)" && $0[columns.firstIndex(of: "direction")!] == "rx" })
        #expect(hybridRow[column] == "15.7500")
        let cellsCSV = ExperimentReport.cellsCSV(results).split(separator: "\n").map(String.init)
        let cellColumns = ExperimentReport.cellsCSVHeader.split(separator: ",").map(String.init)
        #expect(cellsCSV.allSatisfy { Self.csvFields($0).count == cellColumns.count })
        let first = Self.csvFields(cellsCSV[1])
        #expect(!first[try #require(cellColumns.firstIndex(of: "packets_per_notification"))].isEmpty)
        #expect(first[cellColumns.firstIndex(of: "iovms")!].hasSuffix("|1|100000|3000000"))

        let json = try report.render(.json)
        #expect(try JSONDecoder().decode(ExperimentReport.self, from: Data(json.utf8)) == report)
    }

    @Test("cells without notifications (recorded before them, or by the shell agent): the batch size is unknown, shown as -")
    func batchSizeUnknown() throws {
        let (run, results) = try Self.figures12and13()
        // Cell files as older iovms wrote them: no notifications keys at all.
        let (root, keep) = Self.directory("batch-unknown")
        defer { if !keep { try? FileManager.default.removeItem(at: root) } }
        try? FileManager.default.removeItem(at: root)
        try Synthetic.write(run, results, to: root)
        let cell = try String(contentsOf: root.appendingPathComponent(ExperimentRunLayout.cellFile(1)), encoding: .utf8)
        #expect(!cell.contains("notifications") && !cell.contains("vifPackets") && !cell.contains("packetsPerNotification"))
        let report = ExperimentReport(try ExperimentRunDirectory.load(root.path))
        #expect(!report.hasBatchSizes && report.groups.allSatisfy { $0.batchSize == nil && $0.iovmBatchSizes.isEmpty })
        #expect(report.text().contains("Batch size: unknown (no cell recorded its IOVMs' notifications)"))
        let html = report.html()
        let page = try XMLCollector.parse(html)
        #expect(page.all("svg").count == 4)
        #expect(html.contains("Unknown: no cell recorded its IOVMs' notifications"))
        let columns = ExperimentReport.csvHeader.split(separator: ",").map(String.init)
        let column = try #require(columns.firstIndex(of: "packets_per_notification_mean"))
        #expect(report.csv().split(separator: "\n").dropFirst().allSatisfy { Self.csvFields(String($0))[column].isEmpty })
        _ = try ExperimentReport.write(try ExperimentRunDirectory.load(root.path))

        // Only the Rx cells recorded them: Tx is "-" in the text, "–" in the page.
        let mixed = ExperimentReport(run: run, results: Self.withBatchSizes(results) { $0.direction == .rx }, directory: "run")
        #expect(mixed.hasBatchSizes)
        let rows = mixed.text().split(separator: "\n").filter { $0.hasPrefix("monolithic") && $0.contains("(3 NICs)") }
        #expect(rows.count == 1 && rows.first.map { $0.contains("  31.5  ") && $0.hasSuffix("  -") } == true, "\(rows)")
        let mixedPage = try XMLCollector.parse(mixed.html())
        #expect(mixedPage.all("svg").count == 6)
        #expect(mixedPage.all("td", "class", "first").contains { $0.text == "–" })
    }

    @Test("a run directory reads back from disk; the report files are written next to it; an unreadable cell names its file")
    func directoryRoundTrip() throws {
        let (run, results) = try Self.figures8and9()
        let (root, keep) = Self.directory("figures8and9")
        defer { if !keep { try? FileManager.default.removeItem(at: root) } }
        try? FileManager.default.removeItem(at: root)
        // One cell missing, so the page shows it.
        try Synthetic.write(run, results.filter { $0.cell != 5 }, to: root)
        #expect(ExperimentRunDirectory.isRunDirectory(root.path))
        let files = try ExperimentRunDirectory.load(root.path)
        #expect(files.results.count == results.count - 1)
        let report = ExperimentReport(files)
        #expect(report == ExperimentReport(run: run, results: results.filter { $0.cell != 5 }, directory: root.path))
        let written = try ExperimentReport.write(files)
        #expect(written.map { URL(fileURLWithPath: $0).lastPathComponent } == ["report.html", "report.csv", "report.json", "cells.csv", "samples.csv"])
        let json = try Data(contentsOf: root.appendingPathComponent("report.json"))
        #expect(try JSONDecoder().decode(ExperimentReport.self, from: json) == report)

        // Not a cell result: the error names the file.
        let broken = root.appendingPathComponent(ExperimentRunLayout.cellFile(5))
        try Data("{\"cell\": 5".utf8).write(to: broken)
        let error = try #require(throws: MonitorError.self) { try ExperimentRunDirectory.load(root.path) }
        #expect(error.description.hasPrefix(broken.path + ": error: not a cell result"))
        try FileManager.default.removeItem(at: broken)
        // No experiment.json: the error names it.
        let missing = root.appendingPathComponent("nothing-here")
        let noRun = try #require(throws: MonitorError.self) { try ExperimentRunDirectory.load(missing.path) }
        #expect(noRun.description.hasPrefix(missing.appendingPathComponent("experiment.json").path + ": error: cannot read an experiment run"))

        if keep {
            // Table 3's shape and Figs. 12/13's (one NIC count) next to it, to look at.
            let table3 = try Synthetic.plan(Experiment.paper.table3, repetitions: 3)
            let table3Root = root.deletingLastPathComponent().appendingPathComponent("table3")
            try? FileManager.default.removeItem(at: table3Root)
            try Synthetic.write(Synthetic.run(table3), Synthetic.measure(table3, Synthetic.table3), to: table3Root)
            _ = try ExperimentReport.write(try ExperimentRunDirectory.load(table3Root.path))
            let figures12and13 = try Synthetic.plan(Experiment.paper.figures12and13, repetitions: 3)
            let figuresRoot = root.deletingLastPathComponent().appendingPathComponent("figures12and13")
            try? FileManager.default.removeItem(at: figuresRoot)
            let results = Synthetic.measure(figures12and13) { settings, cell in
                let wobble = 1 + 0.04 * Double((cell.repetition % 3) - 1)
                return switch settings.configuration {
                case "monolithic": (1_500 * wobble, 1.1 * wobble)
                case "multiple-small": (2_400 * wobble, 0.6 * wobble)
                default: (2_100 * wobble, 0.7 * wobble)
                }
            }
            try Synthetic.write(Synthetic.run(figures12and13), results, to: figuresRoot)
            _ = try ExperimentReport.write(try ExperimentRunDirectory.load(figuresRoot.path))
        }
    }
}
