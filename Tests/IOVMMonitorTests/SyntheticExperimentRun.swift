import Foundation
import IOVMCore
import IOVMDescription
import IOVMMonitor
import IOVMWireFormat

/// Synthetic experiment runs for the report's tests: a paper preset's plan, its cells measured by a formula.
enum SyntheticExperimentRun {
    /// The nominal frequency the cycles are counted at.
    static let cpuHz: UInt64 = 2_400_000_000
    /// Each cell's measured window, seconds.
    static let window = 60.0

    /// `experiment`'s plan, with only `nicCounts` of its NIC counts and `repetitions` repetitions when given.
    static func plan(_ experiment: Experiment, nicCounts: [Int]? = nil, repetitions: Int? = nil) throws -> ExperimentPlan {
        var document = experiment.document
        if let nicCounts {
            for index in document.factors.indices where document.factors[index].kind == .nicCount {
                document.factors[index].values = document.factors[index].values.filter { nicCounts.contains($0.nicCount ?? 0) }
            }
        }
        if let repetitions { document.timing?.repetitions = repetitions }
        return try ExperimentPlanner().plan(document)
    }

    /// The run record of `plan`.
    static func run(_ plan: ExperimentPlan) -> ExperimentRun {
        ExperimentRun(
            plan: plan, fingerprint: "synthetic", startedAt: 1_764_100_000, host: "lab (xen 4.17, 4 cores, credit)", iovmVersion: "0.0.0-test",
            servers: [:], onExit: "keep")
    }

    /// What `cell` measured when its guests moved `mbps` in all at `efficiency` payload bits per IOVM cycle: one guest
    /// per NIC sharing the load, the IOVMs sharing the cycles, the NICs counting 5 % of framing on top of the payload.
    static func result(_ cell: ExperimentCell, plan: ExperimentPlan, mbps: Double, efficiency: Double, notes: [String] = []) -> ExperimentCellResult {
        let combination = plan.combination(of: cell)
        let nics = max(combination.settings.nics, 1)
        let iovmNames = combination.plan.iovms.isEmpty ? ["Domain-0"] : combination.plan.iovms.map(\.name)
        let guests = (1...nics).map { index in
            GuestLoadResult(
                guest: "guest\(index)", iovm: iovmNames[(index - 1) % iovmNames.count], nic: "0000:00:1\(index - 1).0",
                bytes: UInt64(mbps / Double(nics) * 1e6 / 8 * window), seconds: window, retransmits: index - 1)
        }
        let cycles = mbps * 1e6 / efficiency * window
        let l2Bytes = UInt64(mbps * 1e6 / 8 * window * 1.05) / UInt64(iovmNames.count)
        let iovms = iovmNames.map { name in
            IOVMCellFigures(
                iovm: name, cpuNanoseconds: UInt64(cycles / Double(iovmNames.count) / Double(cpuHz) * 1e9), windowSeconds: window, cpuHz: cpuHz,
                rxBytes: cell.direction == .tx ? 0 : l2Bytes, txBytes: cell.direction == .rx ? 0 : l2Bytes, rxPackets: l2Bytes / 1_000,
                txPackets: l2Bytes / 1_000, countersPublished: true)
        }
        return ExperimentCellResult(
            cell: cell, settings: combination.settings, startedAt: 1_764_100_000 + Double(cell.index) * 80, windowSeconds: window, transitionSeconds: 2,
            scheduler: combination.settings.scheduler, guests: guests, iovms: iovms, notes: notes)
    }

    /// `plan`'s cells measured by `measure` (throughput, efficiency); nil leaves a cell unmeasured.
    static func measure(_ plan: ExperimentPlan, _ measure: (CellSettings, ExperimentCell) -> (mbps: Double, efficiency: Double)?) -> [ExperimentCellResult] {
        plan.cells.compactMap { cell in
            measure(plan.combination(of: cell).settings, cell).map { result(cell, plan: plan, mbps: $0.mbps, efficiency: $0.efficiency) }
        }
    }

    /// Writes a run directory: `experiment.json` and `cells/NNNN.json`.
    static func write(_ run: ExperimentRun, _ results: [ExperimentCellResult], to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory.appendingPathComponent(ExperimentRunLayout.cellsDirectory), withIntermediateDirectories: true)
        try Data(try JSONText.pretty(run).utf8).write(to: directory.appendingPathComponent(ExperimentRunLayout.runFile))
        for result in results {
            try Data(try JSONText.pretty(result).utf8).write(to: directory.appendingPathComponent(ExperimentRunLayout.cellFile(result.cell)))
        }
    }

    /// Figs. 8 and 9's shape, after the paper: per NIC, co-locate < separate < IOVM-affinity in throughput and efficiency;
    /// co-locate's and separate's efficiency falls with the NIC count, IOVM-affinity's stays. Repetitions wobble by ±3 %;
    /// at 2 NICs Tx separate beats IOVM-affinity's efficiency, so one cell goes against the paper.
    static func figures8and9(settings: CellSettings, cell: ExperimentCell) -> (mbps: Double, efficiency: Double) {
        let n = Double(settings.nics)
        let wobble = 1 + 0.03 * Double((cell.repetition % 3) - 1)
        let perNIC: Double
        var efficiency: Double
        switch settings.placement {
        case "co-locate": (perNIC, efficiency) = (560, 0.75 - 0.12 * (n - 1))
        case "separate": (perNIC, efficiency) = (700, 0.95 - 0.1 * (n - 1))
        default: (perNIC, efficiency) = (880, 1.1)
        }
        if cell.direction == .rx { efficiency *= 0.9 }
        if settings.placement == "separate" && settings.nics == 2 && cell.direction == .tx { efficiency = 1.2 }
        return (perNIC * n * (cell.direction == .rx ? 0.85 : 1) * wobble, efficiency * wobble)
    }

    /// Table 3's shape: the paper's Default (2,106 Mbit/s, 0.72 bits/Hz) and Core Pinning (2,271, 0.82), wobbling by ±2 %.
    static func table3(settings: CellSettings, cell: ExperimentCell) -> (mbps: Double, efficiency: Double) {
        let wobble = 1 + 0.02 * Double((cell.repetition % 3) - 1)
        let pinned = settings.variant == "Core Pinning"
        let direction = cell.direction == .rx ? 0.93 : 1
        return ((pinned ? 2_271 : 2_106) * direction * wobble, (pinned ? 0.82 : 0.72) * direction * wobble)
    }
}
