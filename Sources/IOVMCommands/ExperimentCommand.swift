import ArgumentParser
import IOVMCore
import IOVMWireFormat

/// `iovm experiment FILE`: expands an experiment into its cells; `--dry-run` lists them.
struct ExperimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "experiment",
        abstract: "Expand an experiment into its cells; with --dry-run, list them and what changes between them.",
        discussion: """
            An experiment file declares a base topology, the factors to vary (configuration, placement, scheduler,
            NIC count, IOVM image, weights, or variants that set several together), the directions (Rx, Tx, both),
            the workload and the timing (see Examples/experiments/, or Experiment.paper.figures6and7 …). Each
            combination of the factors' values is planned like a topology; the cells of each repetition run in an
            order shuffled with a seed (derived from the experiment's name unless --seed says).

            --dry-run lists the cells, what changes on the host before each (live: pinning, weights, pools;
            recreate: configuration, NICs, image, memory) and an estimate of the time. Running the cells is not
            implemented yet: without --dry-run the command checks the experiment and exits with 69.
            """)

    @Argument(help: "Experiment file: a Swift DSL file declaring `let experiment = Experiment(…)`, or its JSON document.", completion: .file(extensions: ["swift", "json"]))
    var file: String

    @Option(help: "Directory for the run's results (for running cells, which is not implemented yet).", completion: .directory)
    var out: String?

    @Flag(help: "Go on with the run recorded in --out (for running cells, which is not implemented yet).")
    var resume = false

    @Flag(name: .customLong("dry-run"), help: "List the cells, their order and what changes between them; run nothing.")
    var dryRun = false

    @Option(help: "Seed of the cell order (default: derived from the experiment's name, so the same name gives the same order).")
    var seed: UInt64?

    @Option(
        name: .customLong("host-scheduler"),
        help: "Plan for a host whose Pool-0 runs this scheduler (default: the base's Host(scheduler:) when the scheduler varies).")
    var hostScheduler: String?

    @Flag(help: "Print the expanded experiment (every combination's topology and plan, the cells) as JSON on stdout.")
    var json = false

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        if resume && out == nil { throw ValidationError("--resume needs --out DIR: the run to go on with") }
        if let hostScheduler, !Planner.schedulers.contains(hostScheduler) {
            throw ValidationError("--host-scheduler must be one of \(Planner.schedulers.joined(separator: ", "))")
        }
    }

    func run() throws {
        try reportingErrors {
            let logger = global.logger("iovm.experiment")
            let document = try TopologyLoader(logger: logger).loadExperiment(file)
            let plan = try ExperimentPlanner(poolZeroScheduler: hostScheduler, seed: seed).plan(document)
            for warning in plan.warnings { printError(relativeToWorkingDirectory(warning.description)) }
            guard dryRun else {
                printError(
                    "iovm: error: running an experiment's cells is not implemented yet; the experiment is valid (\(plan.cells.count) cells): `iovm experiment \(file) --dry-run` lists them"
                )
                throw ExitCode(unavailableExitCode)
            }
            if json {
                print(try jsonText(plan))
            } else {
                print(relativeToWorkingDirectory(ExperimentTable(plan).text), terminator: "")
            }
        }
    }
}

/// The human-readable form of an expanded experiment: what `iovm experiment --dry-run` prints.
struct ExperimentTable {
    let plan: ExperimentPlan

    init(_ plan: ExperimentPlan) { self.plan = plan }

    var text: String {
        var out = ""
        let source = plan.source.map { " (\($0))" } ?? ""
        out += "Experiment \"\(plan.experiment)\"\(source)\n"
        out += "  base        \(plan.base)\(plan.baseSource.map { " (\($0))" } ?? "")\n"
        let varies = plan.factors.map { "\($0.kind.label): \($0.values.joined(separator: ", "))" }
        out += "  varies      \(varies.isEmpty ? "nothing" : varies.joined(separator: "; "))\n"
        out += "  directions  \(plan.directions.map(\.title).joined(separator: ", "))\n"
        out += "  workload    \(ExperimentWorkload.describe(plan.workload))\n"
        let timing = plan.timing
        out +=
            "  timing      \(ExperimentWorkload.seconds(timing.durationSeconds)) measured after \(ExperimentWorkload.seconds(timing.warmUpSeconds)) of warm-up, \(timing.repetitions) repetition\(timing.repetitions == 1 ? "" : "s")\n"
        out += "  order       shuffled within each repetition, seed \(plan.seed) (\(plan.seedFromName ? "from the name; --seed N for another" : "--seed"))\n"
        if let pool = plan.poolZeroScheduler { out += "  Pool-0      runs \(pool); a cell under another scheduler runs in a cpupool\n" }
        out +=
            "  cells       \(plan.cells.count): \(plan.combinations.count) combination\(plan.combinations.count == 1 ? "" : "s") x \(plan.directions.count) direction\(plan.directions.count == 1 ? "" : "s") x \(timing.repetitions) repetition\(timing.repetitions == 1 ? "" : "s")\n"
        out += "\n"

        let variants = plan.combinations.contains { $0.settings.variant != nil }
        let weights = plan.factors.contains { $0.kind == .weights } || plan.combinations.contains { $0.settings.weights != "default" }
        var header = ["CELL", "REP"]
        if variants { header.append("VARIANT") }
        header += ["CONFIGURATION", "PLACEMENT", "SCHEDULER", "NICS", "IMAGE"]
        if weights { header.append("WEIGHTS") }
        header += ["DIRECTION", "BEFORE IT"]
        var rows = [header]
        for cell in plan.cells {
            let settings = plan.combination(of: cell).settings
            var row = ["\(cell.index)", "\(cell.repetition)"]
            if variants { row.append(settings.variant ?? "-") }
            row += [settings.configuration, settings.placement, settings.scheduler, "\(settings.nics)", settings.image]
            if weights { row.append(settings.weights) }
            row += [cell.direction.title, cell.transition.kind.rawValue]
            rows.append(row)
        }
        out += TextTable.render(rows, rightAligned: [0, 1])

        out += "\nWhat changes before each cell:\n"
        for cell in plan.cells {
            out += "  \(cell.index): \(cell.transition.kind.rawValue): \(cell.transition.changes.joined(separator: "; "))\n"
        }

        let counts = CellTransition.Kind.allCases.map { kind in (kind, plan.cells.filter { $0.transition.kind == kind }.count) }
        out += "\nTransitions: " + counts.map { "\($1) \($0.rawValue)" }.joined(separator: ", ") + "\n"
        let estimate = plan.estimate
        let recreations = plan.cells.filter { $0.transition.kind == .create || $0.transition.kind == .recreate }.count
        let live = plan.cells.filter { $0.transition.kind == .live }.count
        out += "Estimated time: \(ExperimentWorkload.duration(estimate.totalSeconds))\n"
        out +=
            "  measuring   \(plan.cells.count) cells x (\(ExperimentWorkload.seconds(timing.warmUpSeconds)) warm-up + \(ExperimentWorkload.seconds(timing.durationSeconds))) = \(ExperimentWorkload.duration(estimate.measuringSeconds))\n"
        out +=
            "  recreating  \(recreations == 1 ? "1 create or recreate" : "\(recreations) creates and recreates") x \(ExperimentWorkload.seconds(ExperimentEstimate.assumedRecreateSeconds)), assumed (destroy and apply; Table 3's hybrid took 73 s to apply in the lab under TCG) = \(ExperimentWorkload.duration(estimate.recreatingSeconds))\n"
        out +=
            "  live        \(live) live change\(live == 1 ? "" : "s") x \(ExperimentWorkload.seconds(ExperimentEstimate.assumedLiveSeconds)), assumed (one iovm pin or weight call took 1.0-1.2 s in the lab) = \(ExperimentWorkload.duration(estimate.liveSeconds))\n"
        if !plan.warnings.isEmpty { out += "\n\(plan.warnings.count) warning\(plan.warnings.count == 1 ? "" : "s") (on stderr)\n" }
        out += "\nDry run: nothing was run. Running the cells is not implemented yet.\n"
        return out
    }
}
