import ArgumentParser
import Dispatch
import FoundationEssentials
import IOVMControl
import IOVMCore
import IOVMMonitor
import Logging
import ServiceLifecycle
import Synchronization

/// Exit code of `iovm watch` when an IOVM is in a crash loop (`EX_UNAVAILABLE`): the systemd unit does
/// not restart it (`RestartPreventExitStatus=69`).
let crashLoopExitCode: Int32 = 69

/// `iovm watch FILE`: a supervisor that makes a dead IOVM again under its running guests.
struct WatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Keep the topology's IOVMs alive: when one dies, make it again and re-attach its guests' vifs (guests keep running).",
        discussion: """
            Watches xenstore (@releaseDomain and iovm's tags), and looks again every --recheck seconds. When an IOVM of \
            the topology that iovm created is gone, shut down or crashed, or a guest's vif lost its backend, it runs \
            what `iovm apply` runs, under the same host lock: the dead IOVM is destroyed, made again with its NICs passed \
            through, waited for until its `xl devd` serves (data/iovm/devd), and each guest vif it backed is replaced by \
            one with the same MAC, bridge and devid. Guests keep their domids. Domains iovm did not create are never touched.

            A guest of the topology that shut down gets what its rendered lifecycle says: one that rebooted is made again \
            (a new domid), one that powered off or crashed is destroyed (`iovm apply` makes it again). A guest that is \
            gone is not made again by a recovery.

            A failed recovery is retried after 5 s, 10 s, 20 s, … (at most 300 s). When the same IOVM dies K times within \
            N seconds (--crash-loop K/N, default 3/300) it stops with an error and exit code 69. \
            SIGTERM or SIGINT stop it gracefully: a recovery in progress finishes first. \
            See contrib/iovm-watch.service.

            While it runs, `iovm pin`, `unpin` and `weight` are carried out by it, through --control-socket (default \
            $IOVM_CONTROL_SOCKET, else /run/iovm/control.sock, root only): the same checks, the same host lock, but no new libxl context per call. \
            When the socket cannot be served, the watch says so and goes on; the verbs then run in their own process.

            It makes again only the plan applied last: `iovm apply` records it in xenstore. When another one is applied, \
            the watch reads its file again and keeps it if the file gives that plan; otherwise it recovers nothing (that \
            would undo the apply) and says so. After `iovm destroy` it recovers nothing.
            """)

    @OptionGroup var topology: TopologyOptions

    @Option(name: .customLong("metrics-port"), help: "Serve Prometheus metrics on 127.0.0.1:PORT (iovm_watch_recoveries_total, …).")
    var metricsPort: UInt16?

    @Option(name: .customLong("crash-loop"), help: "K/N: stop when one IOVM dies K times within N seconds.")
    var crashLoop: String = CrashLoopPolicy.standard.description

    @Option(help: "Seconds without an event after which the host is looked at anyway.")
    var recheck: Double = 5

    @Option(
        name: .customLong("control-socket"),
        help: "Serve `iovm pin`, `unpin` and `weight` on this Unix socket (mode 0600), with a libxl context kept open; $IOVM_CONTROL_SOCKET sets the default.")
    var controlSocket: String = HostAccess.defaultControlSocket

    @Flag(name: .customLong("no-control-socket"), help: "Do not serve the live verbs; each runs in its own process.")
    var noControlSocket = false

    @OptionGroup var host: HostChangeOptions
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        guard CrashLoopPolicy(parsing: crashLoop) != nil else { throw ValidationError("--crash-loop wants K/N, e.g. 3/300: K deaths (1 or more) within N seconds") }
        guard recheck >= 0.5, recheck.isFinite else { throw ValidationError("--recheck must be at least 0.5 seconds") }
        try requireNonEmptyPaths(["--control-socket": controlSocket])
        if let connect = host.connect {
            // Its events, its NIC checks and its control socket are this dom0's: a watch of another host would see none
            // of that host's deaths but by its re-check, and answer the live verbs for the wrong host.
            throw ValidationError("iovm watch keeps this dom0's IOVMs alive and takes no --connect (\(connect)): run it on that host, in its dom0")
        }
        if topology.file == TopologyLoader.standardInput || topology.topologyJSON == TopologyLoader.standardInput {
            throw ValidationError("iovm watch reads its topology again when an apply records another plan: give a file, not standard input")
        }
    }

    func run() throws {
        try reportingErrors {
            let logger = global.logger("iovm.watch")
            let plan = try topology.plan(logger: logger)
            var engine = try host.engine(logger: logger)
            try TopologyOptions.requireHostNICs(plan, connect: nil)
            try TopologyOptions.requireImages(plan)
            try host.checkHost(plan, engine: engine)
            let json = try PlanRenderer.libxlJSON(of: plan)
            // A recovery waits for an `iovm apply` that holds the host lock rather than failing at once.
            if host.wait == 0 { engine.lockTimeout = 300 }
            let metrics = WatchMetrics()
            let listener = try metricsPort.map { try MetricsListener(address: "127.0.0.1:\($0)") }
            listener?.update(metrics.text())
            if let listener { logger.notice("iovm watch: serving metrics on http://127.0.0.1:\(listener.port)/metrics") }
            let events = try HostAccess.domainEvents(recheck: recheck)
            var stopServing: (@Sendable () -> Void)?
            if !noControlSocket {
                do {
                    stopServing = try HostAccess.serveLiveVerbs(socket: controlSocket, logger: logger)
                    logger.notice("iovm watch: serving pin, unpin and weight on \(controlSocket)")
                } catch {
                    logger.warning("iovm watch: not serving pin, unpin and weight (they run in their own process): \(error)")
                }
            }
            defer { stopServing?() }
            let supervisor = Supervisor(
                plan: plan, libxlJSON: json, engine: engine, events: events, crashLoop: CrashLoopPolicy(parsing: crashLoop)!, logger: logger,
                reload: { [topology] in
                    // The file again, when an apply recorded another plan: kept only if it is that plan.
                    let plan = try topology.plan(logger: logger)
                    try TopologyOptions.requireImages(plan)
                    return (plan, try PlanRenderer.libxlJSON(of: plan))
                },
                onRecovery: { recovery in
                    switch recovery.outcome {
                    case .recovered: metrics.recovered(seconds: recovery.seconds)
                    case .failed: metrics.failed()
                    }
                    listener?.update(metrics.text())
                })
            do {
                try SupervisorService.runUntilStopped(supervisor, logger: logger)
            } catch let loop as CrashLoop {
                printError("iovm watch: error: \(loop)")
                throw ExitCode(crashLoopExitCode)
            }
        }
    }
}

/// The supervisor as a ServiceLifecycle service: graceful shutdown cancels its loop, which ends once a
/// recovery in progress has finished.
struct SupervisorService: Service, CustomStringConvertible {
    let supervisor: Supervisor
    let logger: Logger

    var description: String { "iovm watch" }

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { try await supervisor.run() }
        } catch is CancellationError {
            logger.notice("iovm watch: stopped")
        }
    }

    /// A service group of this service alone, shut down gracefully by SIGTERM or SIGINT.
    static func group(_ supervisor: Supervisor, logger: Logger) -> ServiceGroup {
        ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [ServiceGroupConfiguration.ServiceConfiguration(service: SupervisorService(supervisor: supervisor, logger: logger))],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    }

    /// Runs the group from synchronous code (the command), returning when it ends.
    static func runUntilStopped(_ supervisor: Supervisor, logger: Logger) throws {
        let group = group(supervisor, logger: logger)
        let outcome = Mutex<Result<Void, any Error>>(.success(()))
        let done = DispatchSemaphore(value: 0)
        Task {
            do { try await group.run() } catch { outcome.withLock { $0 = .failure(error) } }
            done.signal()
        }
        done.wait()
        try outcome.withLock { $0 }.get()
    }
}
