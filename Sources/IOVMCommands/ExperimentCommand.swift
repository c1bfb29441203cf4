import ArgumentParser
import FoundationEssentials
import IOVMControl
import IOVMCore
import IOVMImage
import IOVMWireFormat
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Set by SIGINT/SIGTERM: the run cancels the running workload and stops; recorded cells stay.
private let experimentStopRequested = Atomic<Bool>(false)

/// `iovm experiment FILE`: expands an experiment into its cells; `--dry-run` lists them.
struct ExperimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "experiment",
        abstract: "Run an experiment's cells and record them; with --dry-run, list the cells and what changes between them.",
        discussion: """
            An experiment file declares a base topology, the factors to vary (configuration, placement, scheduler,
            NIC count, IOVM image, weights, or variants that set several together), the directions (Rx, Tx, both),
            the workload and the timing (see Examples/experiments/, or Experiment.paper.figures6and7 …). Each
            combination of the factors' values is planned like a topology; the cells of each repetition run in an
            order shuffled with a seed (derived from the experiment's name unless --seed says).

            --dry-run lists the cells, what changes on the host before each (live: pinning, weights, pools;
            recreate: configuration, NICs, image, memory) and an estimate of the time.

            Without --dry-run (on a dom0) each cell is run in order: the host is brought to the cell's combination
            (destroyed and applied again, or changed live), the guests' load agents (`iovm image load-agent`) and the
            IOVMs' counters agents are waited for, iperf3 runs in every guest against its server (--server, or
            Workload.iperf3(server:)), and the IOVMs' CPU time and NIC counters are read over iperf3's own interval,
            after its warm-up, and every --sample-interval seconds inside it. Each cell's result is written to DIR/cells/NNNN.json as soon as it is measured; `iovm
            report DIR` draws the figures. Ctrl-C or SIGTERM stops after cancelling the running workload; --resume
            goes on with the cells not yet recorded. The host is left as --on-exit says.
            """)

    @Argument(
        help: "Experiment file: a Swift DSL file declaring `let experiment = Experiment(…)`, or its JSON document ('-': that document from stdin).",
        completion: .file(extensions: ["swift", "json"]))
    var file: String

    @Option(help: "Directory for the run's results (default: ./<experiment>-<UTC date and time>).", completion: .directory)
    var out: String?

    @Flag(help: "Go on with the run recorded in --out: the cells not yet recorded run, in the recorded order.")
    var resume = false

    @Option(
        name: .customLong("server"),
        help: ArgumentHelp(
            "The iperf3 server of the guests' clients: HOST[:PORT] for every guest, or GUEST=HOST[:PORT] for one (repeatable).",
            valueName: "[GUEST=]HOST[:PORT]"))
    var servers: [String] = []

    @Option(name: .customLong("on-exit"), help: "What is left on the host when the run ends or is stopped: keep (the last cell's topology) or destroy.")
    var onExit: String = ExperimentRunner.OnExit.keep.rawValue

    @Option(name: .customLong("ready-timeout"), help: "Seconds to wait after each transition for the guests' load agents and the IOVMs' counters.")
    var readyTimeout: Double = 180

    @Option(
        name: .customLong("sample-interval"),
        help:
            "Seconds between the readings recorded inside each cell's window (cells/NNNN.json `samples`, `iovm report`'s samples.csv); 0 records none. Not for the centralized configuration: dom0's own readings would count in its CPU."
    )
    var sampleInterval: Double = 1

    @Flag(help: "Print the experiment's JSON document (for a dom0 without a Swift toolchain) and stop.")
    var document = false

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

    @OptionGroup var host: HostChangeOptions

    @Option(
        name: .customLong("images"), help: "The image store IOVMs boot their minimal image from (default $IOVM_IMAGES, else /var/lib/iovm/images).",
        completion: .directory)
    var images: String?

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        try requireNonEmptyPaths(["the experiment file": file, "--out": out, "--images": images])
        if resume && out == nil { throw ValidationError("--resume needs --out DIR: the run to go on with") }
        if ExperimentRunner.OnExit(rawValue: onExit) == nil { throw ValidationError("--on-exit must be keep or destroy") }
        if !(sampleInterval == 0 || (sampleInterval >= 0.1 && sampleInterval <= 3600)) {
            throw ValidationError("--sample-interval must be 0 (off) or 0.1 to 3600 seconds")
        }
        if let hostScheduler, !Planner.schedulers.contains(hostScheduler) {
            throw ValidationError("--host-scheduler must be one of \(Planner.schedulers.joined(separator: ", "))")
        }
        for entry in servers {
            let server = entry.firstIndex(of: "=").map { String(entry[entry.index(after: $0)...]) } ?? entry
            if let problem = ExperimentWorkload.serverProblem(server) {
                throw ValidationError("--server \(entry): \(server.debugDescription) is not HOST or HOST:PORT: \(problem)")
            }
        }
    }

    func run() throws {
        try reportingErrors {
            let logger = global.logger("iovm.experiment")
            let loaded = try TopologyLoader(logger: logger).loadExperiment(file)
            if document {
                print(try jsonText(loaded))
                return
            }
            let plan = try ExperimentPlanner(poolZeroScheduler: hostScheduler, seed: seed).plan(loaded)
            for warning in plan.warnings { printError(relativeToWorkingDirectory(warning.description)) }
            guard dryRun else {
                try runCells(plan, logger: logger)
                return
            }
            if json {
                print(try jsonText(plan))
            } else {
                printText(relativeToWorkingDirectory(ExperimentTable(plan).text), terminator: "")
            }
        }
    }
}

extension ExperimentCommand {
    /// The servers from --server and the workload: `*` for every guest, else per guest.
    func serverMap(_ plan: ExperimentPlan) throws -> [String: String] {
        var map: [String: String] = [:]
        if let server = plan.workload.server { map["*"] = server }
        for entry in servers {  // checked in validate()
            let (guest, server) = entry.firstIndex(of: "=").map { (String(entry[..<$0]), String(entry[entry.index(after: $0)...])) } ?? ("*", entry)
            map[guest] = server
        }
        // A command workload needs a server only when its template passes one on ({server} or {iperf3}).
        let needsServer =
            plan.workload.kind == .iperf3
            || ExperimentWorkload.pieces(of: plan.workload.template ?? "").contains { $0 == .placeholder("server") || $0 == .placeholder("iperf3") }
        if needsServer, map["*"] == nil {
            let guests = Set(plan.combinations.flatMap { $0.plan.guests.map(\.name) })
            if let missing = guests.sorted().first(where: { map[$0] == nil }) { throw ExperimentRunError.noServer(guest: missing) }
        }
        return map
    }

    /// Resolves each combination's minimal images and refuses, before anything starts, a combination this host
    /// cannot run (an image not built, a NIC that is not here, more cores than Xen has), naming its first cell. `facts`:
    /// Xen's, asked once by the caller through a context whose messages go to its log.
    func resolvedForThisHost(_ plan: ExperimentPlan, facts: XenFacts) throws -> ExperimentPlan {
        var plan = plan
        let store = ImageStore(root: TopologyOptions.imageRoot(images))
        let resolver = TopologyOptions.imageResolver(
            store: store,
            buildCommand: { _ in "iovm image build \(file)" + (store.root == ImageStore.defaultRoot ? "" : " --out \(store.root)") })
        var problems: [String] = []
        for index in plan.combinations.indices {
            var combination = plan.combinations[index]
            let cell = plan.cells.first { $0.combination == index }?.index ?? 0
            let settings = combination.settings
            let what = [
                settings.variant, settings.configuration, "placement \(settings.placement)", "\(settings.scheduler) scheduler",
                "\(settings.nics) NIC\(settings.nics == 1 ? "" : "s")",
            ]
            let label = "cell \(cell) (\(what.compactMap { $0 }.joined(separator: ", ")))"
            if combination.plan.domains.contains(where: { $0.image != nil }) { combination.plan = resolver.resolve(combination.plan) }
            for (domain, problem) in combination.plan.unresolvedImages { problems.append("\(label): IOVM \(domain): \(problem)") }
            for nic in combination.plan.hostNICs where HostAccess.pciIDs(nic) == nil {
                problems.append("\(label): NIC \(nic) is not on this host")
            }
            if let refusal = facts.schedulerRefusal(combination.plan) { problems.append("\(label): \(refusal)") }
            if let cores = facts.cores {
                let used = combination.plan.domains.compactMap { $0.hardAffinity?.cores.max() }.max() ?? -1
                if used >= cores { problems.append("\(label): pins to core \(used), but Xen has \(cores) cores (0-\(cores - 1))") }
            }
            plan.combinations[index] = combination
        }
        if !problems.isEmpty {
            var seen: Set<String> = []
            for problem in problems where seen.insert(problem).inserted { printError("iovm: error: \(problem)") }
            printError("iovm: error: the experiment cannot run on this host; nothing was started")
            throw ExitCode(invalidTopologyExitCode)
        }
        return plan
    }

    /// Runs the cells not yet recorded in the output directory.
    func runCells(_ expanded: ExperimentPlan, logger: Logger) throws {
        let servers = try serverMap(expanded)
        let facts = HostAccess.queries(logger: logger).facts()
        let plan = try resolvedForThisHost(expanded, facts: facts)
        let directory = URL(fileURLWithPath: out ?? Self.defaultDirectory(plan.experiment))
        let onExit = ExperimentRunner.OnExit(rawValue: onExit)!
        let hostLine = [
            ProcessInfo.processInfo.hostName, facts.version.map { "Xen \($0)" }, facts.cores.map { "\($0) cores" }, facts.scheduler.map { "Pool-0 \($0)" },
        ].compactMap { $0 }.joined(separator: ", ")
        let fresh = ExperimentRun(
            plan: plan, fingerprint: ExperimentRunner.fingerprint(expanded), startedAt: Date().timeIntervalSince1970, host: hostLine,
            iovmVersion: IOVMVersion.current, servers: servers, onExit: onExit.rawValue)
        var (run, recorded) = try ExperimentRunner.prepare(directory: directory, run: fresh, resume: resume)
        // On --resume: the same experiment (the fingerprint says so), run with today's servers and today's images.
        run.servers = servers
        run.plan = plan
        let engine = try host.engine(logger: logger)
        let runner = ExperimentRunner(
            run: run, directory: directory, host: EngineExperimentHost(engine: engine), load: try HostAccess.loadDriver(plan.workload),
            meter: try HostAccess.cellMeter(), logger: logger)
        runner.timeouts.ready = readyTimeout
        runner.sampleInterval = sampleInterval
        // A command (ssh, say) takes longer than the load agent to get iperf3 going: the window starts later after the
        // warm-up, up to a quarter of the measured time.
        if plan.workload.kind == .command { runner.timeouts.startSlack = min(3, plan.timing.durationSeconds / 4) }
        runner.progress = { printError("iovm experiment: \($0)") }
        runner.shouldStop = { experimentStopRequested.load(ordering: .relaxed) }
        signal(SIGINT) { _ in experimentStopRequested.store(true, ordering: .relaxed) }
        signal(SIGTERM) { _ in experimentStopRequested.store(true, ordering: .relaxed) }
        printError(
            "iovm experiment: \(plan.experiment): \(plan.cells.count) cells into \(relativeToWorkingDirectory(directory.path)) (estimated \(ExperimentWorkload.duration(plan.estimate.totalSeconds)))"
        )
        do {
            let summary = try runner.runCells(skipping: recorded, onExit: onExit)
            printError(
                "iovm experiment: done: \(summary.measured.count) cells measured\(summary.skipped.isEmpty ? "" : ", \(summary.skipped.count) recorded before") in \(ExperimentWorkload.duration(summary.seconds)); `iovm report \(relativeToWorkingDirectory(directory.path))` draws the figures"
            )
            printText(directory.path)
        } catch let error as ExperimentRunError {
            printError("iovm experiment: error: \(error)")
            printError(
                "iovm experiment: the cells recorded so far are in \(relativeToWorkingDirectory(directory.path)); `--out \(relativeToWorkingDirectory(directory.path)) --resume` goes on"
            )
            if case .interrupted = error { throw ExitCode(130) }
            if case .unusableDirectory = error { throw ExitCode(invalidTopologyExitCode) }
            throw ExitCode.failure
        }
    }

    static func defaultDirectory(_ name: String) -> String {
        let safe = name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "-" }
        // `20251125-140307`, in UTC: ISO 8601's digits without its separators.
        let stamp = Date().formatted(.iso8601).filter { $0.isNumber || $0 == "T" }.replacing("T", with: "-")
        return String(safe) + "-" + stamp
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
        out += "\nDry run: nothing was run.\n"
        return out
    }
}
