import ArgumentParser
import CPUSets
import FoundationEssentials
import IOVMControl
import IOVMCore
import IOVMWireFormat
import Logging

/// Options of the commands that change the host.
struct HostChangeOptions: ParsableArguments {
    @Option(name: .long, help: "Seconds to wait for another iovm apply to finish (default: refuse at once).")
    var wait: Double = 0

    @Option(name: .customLong("driver-domain-timeout"), help: "Seconds to wait for each IOVM's `xl devd` to come up.")
    var driverDomainTimeout: Double = 120

    @Option(name: .customLong("guest-network-timeout"), help: "Seconds to wait for each guest's vifs to connect in their IOVM.")
    var guestNetworkTimeout: Double = 120

    @Flag(name: .customLong("allow-no-iommu"), help: "Pass NICs through even without an active IOMMU (no DMA isolation).")
    var allowNoIOMMU = false

    @Flag(name: .customLong("allow-unresettable-nics"), help: "Pass through NICs that cannot be reset (e.g. emulated e1000s), with a warning.")
    var allowUnresettableNICs = false

    @Option(name: .customLong("crash-after"), help: .hidden)
    var crashAfter: String?

    @Option(
        name: .long,
        help: "Manage the Xen host behind this libvirt URI (xen+ssh://root@host/system?keyfile=KEY) through libvirt's libxl driver, instead of this dom0.")
    var connect: String?

    /// An engine over the real libxl backend and the host lock, or over the libvirt host at `connect` (default `--connect`).
    func engine(logger: Logger, connect override: String?? = nil) throws -> ApplyEngine {
        let uri = override ?? connect
        var engine = try HostAccess.engine(logger: logger, strictReset: !allowUnresettableNICs, wait: wait, crashAfter: crashAfter, connect: uri)
        engine.driverDomainTimeout = driverDomainTimeout
        engine.guestNetworkTimeout = guestNetworkTimeout
        return engine
    }

    /// Refuses, before anything is touched, a plan this Xen cannot run: passthrough without an IOMMU (unless
    /// allowed), a cpupool under a scheduler Xen was built without.
    func checkHost(_ plan: Plan, engine: ApplyEngine? = nil, facts known: XenFacts? = nil) throws {
        // A libvirt host: its IOMMU and schedulers are Xen's facts libvirt does not report; the backend refuses
        // what its driver cannot do (cpupools, rtds) before anything is touched.
        if connect != nil { return }
        let facts = known ?? HostAccess.facts(of: engine)
        if !plan.iovms.allSatisfy({ $0.nics.isEmpty }), let refusal = facts.passthroughRefusal(plan, allowNoIOMMU: allowNoIOMMU) {
            printError("iovm: error: \(refusal)")
            throw ExitCode.failure
        }
        if let refusal = facts.schedulerRefusal(plan) {
            printError("iovm: error: \(refusal); nothing was changed")
            throw ExitCode(invalidTopologyExitCode)
        }
    }
}

/// This dom0's engine, and Xen's facts asked through its context, opened on a thread of their own while the command
/// reads and plans the topology (``start()``), or when first asked for; then kept.
///
/// Loading libxenlight and its libraries and opening a context cost 40-60 ms in the lab's dom0, the facts 12 ms more,
/// and reading and planning a topology 80-100 ms: on dom0's second vCPU they overlap (issue 16, the no-op re-apply).
/// Opening touches nothing on the host.
final class Dom0Engine: @unchecked Sendable {
    private let open: () throws -> ApplyEngine
    private let condition = PThreadCondition()
    /// The engine, or why it could not be opened, once opened (guarded by `condition`).
    private var engine: Result<ApplyEngine, any Error>?
    /// The facts, once asked (guarded by `condition`).
    private var asked: XenFacts?
    private var started = false

    /// An engine `open` makes when started or first asked for.
    init(_ open: @escaping () throws -> ApplyEngine) {
        self.open = open
    }

    /// Opens the engine and asks Xen's facts on a thread of their own; ``opened`` and ``facts`` wait for them.
    func start() {
        condition.lock()
        defer { condition.unlock() }
        guard !started else { return }
        started = true
        PThread.detach(name: "iovm-open") { [self] in
            let opened = Result(catching: open)
            let facts = (try? opened.get()).map { HostAccess.facts(of: $0) }
            condition.lock()
            engine = opened
            asked = facts
            condition.broadcast()
            condition.unlock()
        }
    }

    /// The engine, or why it could not be opened: waited for when started, else opened now.
    var opened: Result<ApplyEngine, any Error> {
        condition.lock()
        defer { condition.unlock() }
        if !started {
            started = true
            engine = Result(catching: open)
        }
        while engine == nil { condition.wait() }
        return engine!
    }

    /// Xen's facts through the engine's libxl context, asked once; nil when the engine does not open.
    var facts: XenFacts? {
        guard let engine = try? opened.get() else { return nil }
        condition.lock()
        defer { condition.unlock() }
        if asked == nil { asked = HostAccess.facts(of: engine) }
        return asked
    }
}

/// `iovm apply FILE`: reconcile the host with the topology.
struct ApplyCommand: ParsableCommand {
    /// `_superCommandName` (ArgumentParser's, for a command run apart from its root) spares the parse of
    /// ``IOVMCommand/directCommands`` ArgumentParser's look for `--generate-completion-script`, which parses the
    /// arguments twice more (about 6% of a no-op re-apply's start natively; issue 16). Only the root's is shown in
    /// help, and help, completions and errors go through the root (``IOVMCommand/run(arguments:)``).
    static let configuration = CommandConfiguration(
        commandName: "apply",
        _superCommandName: "iovm",
        abstract: "Make the host match the topology: create IOVMs and guests, pass NICs through, pin, weigh; live where possible.",
        discussion: """
            Only domains iovm created for this topology are ever changed. Placement, weights and cpupools change live,
            without restarting domains. If a step fails, everything this apply made is undone.
            """)

    @OptionGroup var topology: TopologyOptions
    @OptionGroup var host: HostChangeOptions
    @OptionGroup var global: GlobalOptions

    @Flag(name: .customLong("dry-run"), help: "Show what would change and stop.")
    var dryRun = false

    func run() throws {
        try reportingErrors {
            let logger = global.logger("iovm.apply")
            var timer = PhaseTimer("apply", logger: logger)
            // One libxl context of this dom0 plans the topology (Xen's facts), checks it and applies it, opened when first
            // needed: a topology whose own errors end the command opens nothing (issue 16: each context, and each
            // asking of the facts, cost tens of ms under TCG). A libvirt host is connected to after planning.
            let dom0 = host.connect == nil ? Dom0Engine { try host.engine(logger: logger) } : nil
            dom0?.start()
            // A command that ends before it uses the engine (a topology's own error) lets the opening finish first.
            defer { _ = dom0?.opened }
            let plan: Plan
            switch try topology.plans(logger: logger, connect: host.connect, whole: true, dom0Facts: dom0.map { engine in { engine.facts } }) {
            case .single(let single): plan = single
            case .hosts(let shares): return try applyHosts(shares, logger: logger, dom0: dom0)
            }
            timer.lap("read and planned the topology")
            let engine = try dom0?.opened.get() ?? host.engine(logger: logger)
            timer.lap("opened the host (libxl and xenstore, or libvirt)")
            try TopologyOptions.requireHostNICs(plan, connect: host.connect)
            try TopologyOptions.requireImages(plan)
            timer.lap("found the NICs and images")
            if dryRun {
                let reconciliation = try engine.preview(plan)
                for conflict in reconciliation.conflicts { printError("conflict: \(conflict)") }
                printText(
                    reconciliation.changes.isEmpty ? "nothing to change: the host matches \(plan.topology)" : reconciliation.changes.map(\.description).joined(separator: "\n"))
                if !reconciliation.conflicts.isEmpty { throw ExitCode.failure }
                return
            }
            try host.checkHost(plan, engine: engine, facts: dom0?.facts)
            timer.lap("checked the host's facts")
            let report = try engine.apply(plan, libxlJSON: try PlanRenderer.libxlJSON(of: plan))
            if report.nothingToDo {
                printError("nothing to change: the host matches \(plan.topology)")
            } else {
                for step in report.done { printError("done: \(step)") }
                printError("applied \(plan.topology) in " + String(cFormat: "%.1f", report.seconds) + " s")
            }
            for orphan in report.orphans { printError("note: \(orphan) was made for \(plan.topology) but is no longer in it; `iovm destroy` removes it") }
            print(try jsonText(report.domids))
        }
    }

    /// Applies every host's share at once (one lock per host); a failure anywhere rolls back every host.
    private func applyHosts(_ shares: [HostPlan], logger: Logger, dom0: Dom0Engine?) throws {
        // Every host is connected to (and refused if unreachable) before anything is touched anywhere; this dom0's
        // first share goes through the engine opened while planning (the shares are applied on threads at once: a
        // second share of this dom0 gets an engine of its own, and meets the first at the host lock, as before).
        var engines: [ApplyEngine] = []
        var local = dom0
        for share in shares {
            if share.connect == nil, let engine = local {
                engines.append(try engine.opened.get())
                local = nil
            } else {
                engines.append(try host.engine(logger: logger, connect: share.connect))
            }
        }
        // The missing NICs of a share in this dom0, each named with its host (libvirt hosts' are the pre-check's).
        let absent = shares.filter { $0.connect == nil }.flatMap { share in
            HostValidation.missingNICs(share.plan) { HostAccess.pciIDs($0) != nil }
                .map { Diagnostic($0.severity, "on host \(share.host): \($0.message)", at: $0.location) }
        }
        if !absent.isEmpty { throw TopologyError.invalid(absent) }
        for share in shares { try TopologyOptions.requireImages(share.plan) }
        var targets: [HostTarget] = []
        for (share, engine) in zip(shares, engines) {
            targets.append(HostTarget(host: share.host, plan: share.plan, engine: engine, configs: try PlanRenderer.libxlJSON(of: share.plan)))
        }
        if dryRun {
            for target in targets {
                let reconciliation = try target.engine.preview(target.plan)
                for conflict in reconciliation.conflicts { printError("conflict on \(target.host): \(conflict)") }
                printText("host \(target.host):")
                printText(reconciliation.changes.isEmpty ? "  nothing to change" : reconciliation.changes.map { "  \($0.description)" }.joined(separator: "\n"))
            }
            return
        }
        let started = Date()
        let reports = try MultiHostApply.apply(targets)
        var domids: [String: [String: UInt32]] = [:]
        for target in targets {
            guard let report = reports[target.host] else { continue }
            domids[target.host] = report.domids
            if report.nothingToDo { printError("\(target.host): nothing to change") }
            for step in report.done { printError("done on \(target.host): \(step)") }
        }
        printError("applied \(shares[0].plan.topology) to \(shares.count) hosts in " + String(cFormat: "%.1f", Date().timeIntervalSince(started)) + " s")
        print(try jsonText(domids))
    }
}

/// `iovm destroy FILE`: remove what iovm made for the topology.
struct DestroyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "destroy",
        _superCommandName: "iovm",
        abstract: "Destroy the domains, cpupools and dom0 bridges iovm created for the topology and give its NICs back to dom0.")

    @OptionGroup var topology: TopologyOptions
    @OptionGroup var host: HostChangeOptions
    @OptionGroup var global: GlobalOptions

    func run() throws {
        try reportingErrors {
            let logger = global.logger("iovm.destroy")
            let plan: Plan
            switch try topology.plans(logger: logger, connect: host.connect, whole: true) {
            case .single(let single): plan = single
            case .hosts(let shares):
                let engines = try shares.map { try host.engine(logger: logger, connect: $0.connect) }
                var failed = false
                for (share, engine) in zip(shares, engines) {
                    do {
                        let report = try engine.destroy(topology: share.plan.topology, nics: share.plan.hostNICs)
                        for step in report.done { printError("done on \(share.host): \(step)") }
                        if report.done.isEmpty { printError("nothing to destroy on \(share.host)") }
                    } catch {
                        printError("iovm: error: on host \(share.host): \(error)")
                        failed = true
                    }
                }
                if failed { throw ExitCode.failure }
                return
            }
            let report = try host.engine(logger: logger).destroy(topology: plan.topology, nics: plan.hostNICs)
            for step in report.done { printError("done: \(step)") }
            if report.done.isEmpty { printError("nothing to destroy: iovm made nothing for \(plan.topology) on this host") }
        }
    }
}

/// `iovm status [FILE]`: what iovm runs here, and how it differs from the file.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        _superCommandName: "iovm",
        abstract: "Show the domains iovm manages here (NICs, pinning, weights, pools), the bridges it made in dom0, and their drift from a topology file.")

    @Argument(help: "Topology file to compare with (optional).", completion: .file(extensions: ["swift", "json"]))
    var file: String?

    func validate() throws {
        try requireNonEmptyPaths(["the topology file": file])
    }

    @Flag(help: "Print JSON.")
    var json = false

    @Option(
        name: .long,
        help: "Manage the Xen host behind this libvirt URI (xen+ssh://root@host/system?keyfile=KEY) through libvirt's libxl driver, instead of this dom0.")
    var connect: String?

    @Option(name: .customLong("on-host"), help: "Of a topology that spans several hosts, show only this host's share.")
    var onHost: String?

    @OptionGroup var global: GlobalOptions

    struct Status: Encodable {
        var domains: [ObservedDomain]
        var pools: [ObservedPool]
        /// The bridges iovm made in dom0 (centralized configuration): name → topology.
        var bridges: [String: String]
        var drift: [String]?
        var conflicts: [String]?
        /// The scheduler each managed domain runs under, as Xen reports it.
        var schedulers: SchedulerReading
        /// The plan last applied whole, by topology (``IOVMCore/Plan/appliedFingerprint``): the one `iovm watch` makes again.
        var applied: [String: String]
        /// The file's plan, when a file was given.
        var filePlan: String?
        /// The domains iovm made that went without iovm destroying them (`xl save`, `xl destroy`): iovm's again if
        /// they come back with their UUID and name.
        var gone: [ManagedTag]
    }

    func run() throws {
        try reportingErrors {
            let logger = global.logger("iovm.status")
            guard let file else {
                if onHost != nil { throw ValidationError("--on-host names a host of a topology file: give the file") }
                return try show(plan: nil, connect: connect, logger: logger)
            }
            switch try TopologyOptions.parse([file] + (onHost.map { ["--on-host", $0] } ?? [])).plans(logger: logger, connect: connect, whole: true) {
            case .single(let plan): try show(plan: plan, connect: connect, logger: logger)
            case .hosts(let shares):
                // Each host of a topology over several, in declaration order.
                for (index, share) in shares.enumerated() {
                    if !json { printText((index > 0 ? "\n" : "") + "Host \(share.host) (\(share.connect.map { "libvirt: \($0)" } ?? "libxl in this dom0"))") }
                    try show(plan: share.plan, connect: share.connect, logger: logger)
                }
            }
        }
    }

    /// A domain's STATE: `running`; `paused` (someone paused it: neither apply nor watch unpauses it); `shut down
    /// (REASON)`, still listed (libxl restarts nothing it created; `iovm apply` or `iovm watch` acts on it); `dying`;
    /// `incomplete` (an apply stopped between creating and tagging it).
    static func state(of domain: ObservedDomain) -> String {
        switch domain.shutdownReason {
        case "dying": "dying"
        case let reason?: "shut down (\(reason))"
        case nil: domain.tag?.incomplete == true ? "incomplete" : domain.paused == true ? "paused" : "running"
        }
    }

    /// Prints the status of the host at `connect` (this dom0 when nil), against `plan` when given.
    private func show(plan: Plan?, connect: String?, logger: Logger) throws {
        do {
            let backend = try HostAccess.backend(logger: logger, connect: connect)
            var host = try backend.observe(nics: plan?.hostNICs ?? [])
            let network = HostAccess.dom0Network(logger: logger, connect: connect)
            if let plan, !plan.dom0Bridges.isEmpty { host.dom0Network = try network.observe(for: plan) }
            let bridges = try network.managedBridges()
            let managed = host.domains.filter { $0.tag != nil }
            let reconciliation = plan.map { Reconciler.reconcile($0, with: host) }
            let status = Status(
                domains: managed, pools: host.pools.filter { $0.managedBy != nil }, bridges: bridges,
                drift: reconciliation?.changes.map(\.description), conflicts: reconciliation?.conflicts.map(\.message),
                schedulers: host.schedulerReading(of: managed.map(\.name)), applied: host.applied, filePlan: plan?.appliedFingerprint,
                gone: (host.parked ?? []).filter { plan == nil || $0.topology == plan?.topology })
            if json {
                print(try jsonText(status))
                return
            }
            var rows = [["DOMAIN", "ID", "STATE", "TOPOLOGY", "ROLE", "CORES", "POOL", "WEIGHT", "CAP", "NICS", "VIFS"]]
            for domain in managed {
                let cores =
                    Set(domain.hardAffinity).count == 1
                    ? (domain.hardAffinity.first == CPUSet(0..<host.cores) ? "any" : domain.hardAffinity[0].description)
                    : domain.hardAffinity.map(\.description).joined(separator: "/")
                rows.append([
                    domain.name, "\(domain.domid)", Self.state(of: domain), domain.tag?.topology ?? "", domain.tag?.role.rawValue ?? "", cores, domain.cpupool,
                    domain.weight.map(String.init) ?? "-", domain.cap.map(String.init) ?? "-",
                    domain.pci.map(\.description).joined(separator: ", "),
                    (domain.vifs ?? []).map { $0.problem(on: host) == nil ? $0.summary(on: host) : "vif\($0.devid) BROKEN" }.joined(separator: ", "),
                ])
            }
            printText(managed.isEmpty ? "iovm manages no domain on this host" : TextTable.render(rows), terminator: managed.isEmpty ? "\n" : "")
            if !managed.isEmpty { printText("scheduler (read from Xen): \(status.schedulers.summary)") }
            if !bridges.isEmpty {
                printText("bridges iovm made in dom0: " + bridges.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value))" }.joined(separator: ", "))
            }
            for (topology, fingerprint) in host.applied.sorted(by: { $0.key < $1.key }) {
                var line = "applied: \(topology), plan \(fingerprint)"
                if let plan, plan.topology == topology {
                    if fingerprint == ObservedHost.destroyingMark {
                        line += " (a destroy of it began and did not end: iovm watch makes nothing of it again)"
                    } else {
                        line += fingerprint == plan.appliedFingerprint ? " (this file's)" : " (this file gives plan \(plan.appliedFingerprint): iovm watch of it recovers nothing)"
                    }
                }
                printText(line)
            }
            if let plan, host.applied[plan.topology] == nil {
                printText("applied: no plan recorded for \(plan.topology) (this file gives plan \(plan.appliedFingerprint))")
            }
            for tag in status.gone {
                let remedy =
                    plan.map { plan in
                        plan.domains.contains { $0.name == tag.name } ? "iovm apply makes it again" : "the file's plan has no \(tag.name) any more"
                    } ?? "iovm apply of its topology makes it again"
                printText(
                    "gone: \(tag.name) of \(tag.topology) (UUID \(tag.uuid)) went without iovm destroying it (xl save, xl destroy); it is iovm's again if it comes back with that UUID (xl restore). \(remedy); iovm destroy forgets it"
                )
            }
            // A vif whose backend died stays up in the guest and carries nothing: say so.
            for domain in managed {
                for problem in (domain.vifs ?? []).compactMap({ $0.problem(on: host) }) { printText("broken: \(domain.name)'s \(problem)") }
            }
            if let reconciliation, let plan {
                if reconciliation.changes.isEmpty && reconciliation.conflicts.isEmpty {
                    printText("no drift: the host matches \(plan.topology)")
                } else {
                    for change in reconciliation.changes { printText("drift: apply would \(change)") }
                    for conflict in reconciliation.conflicts { printText("conflict: \(conflict)") }
                }
            }
        }
    }
}

/// `--wait` for the live verbs: they take the host lock like apply.
struct LiveChangeOptions: ParsableArguments {
    @Option(name: .long, help: "Seconds to wait for a running iovm apply to finish (default: refuse at once).")
    var wait: Double = 0

    @Option(
        name: .long,
        help: "Manage the Xen host behind this libvirt URI (xen+ssh://root@host/system?keyfile=KEY) through libvirt's libxl driver, instead of this dom0.")
    var connect: String?

    @Option(
        name: .customLong("control-socket"), help: "The control socket of a running iovm watch, which makes the change if it serves one; $IOVM_CONTROL_SOCKET sets the default.")
    var controlSocket: String = HostAccess.defaultControlSocket

    @Flag(name: .customLong("in-process"), help: "Make the change in this process even when an iovm watch serves the control socket.")
    var inProcess = false

    func validate() throws {
        if let refusal = LiveVerbRefusal.wait(wait) { throw ValidationError("\(refusal)") }
        try requireNonEmptyPaths(["--control-socket": controlSocket])
    }

    /// Has the `iovm watch` serving the control socket carry `request` out, printing what it says; false when
    /// none serves it (nothing was sent: make the change in this process).
    func throughWatch(_ request: LiveVerbRequest, logger: Logger) throws -> Bool {
        guard connect == nil, !inProcess else { return false }
        guard let reply = try HostAccess.liveVerbThroughWatch(request, socket: controlSocket) else { return false }
        logger.debug("made by iovm watch (pid \(reply.pid)) through \(controlSocket)")
        for change in reply.changes { printError(change.line) }
        if let error = reply.error {
            printError(error)
            throw ExitCode.failure
        }
        return true
    }
}

/// `iovm pin DOMAIN... --cpus 2,3` or `iovm pin iovm0=2 iovm1=3`: live hard affinity, several domains in one call.
struct PinCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pin",
        _superCommandName: "iovm",
        abstract: "Pin every vCPU of domains iovm manages to cores, live. The next apply restores the file's placement.",
        discussion: "iovm pin iovm0 iovm1 --cpus 2-3 pins both to cores 2-3; iovm pin iovm0=2 iovm1=3 gives each its own.")

    @Argument(help: "Domains, by name or id; DOMAIN=CORES gives that one its own cores.") var domains: [String]
    @Option(help: "Cores for the domains named without =CORES, xl style: 3, 2-3, 0,2.") var cpus: String?
    @OptionGroup var live: LiveChangeOptions
    @OptionGroup var global: GlobalOptions

    /// Each domain with its cores, from `DOMAIN=CORES` or `--cpus`.
    func targets() throws -> [(domain: String, cores: CPUSet?)] { try Self.targets(domains, cpus: cpus) }

    /// Each of `domains` with its cores, from `DOMAIN=CORES` or `cpus` (`--cpus`).
    static func targets(_ domains: [String], cpus: String?) throws -> [(domain: String, cores: CPUSet?)] {
        guard !domains.isEmpty else { throw ValidationError("name at least one domain") }
        return try domains.map { argument in
            let parts = argument.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard let list = parts.count == 2 ? parts[1] : cpus else {
                throw ValidationError("\(argument): give its cores as \(argument)=CORES or with --cpus")
            }
            let parsed: CPUSet?
            do { parsed = try CPUSet(xlList: list) } catch { throw ValidationError("\(argument): \(error)") }
            guard let explicit = parsed else { throw ValidationError("\(LiveVerbRefusal.coresNotListed(argument))") }
            guard !explicit.isEmpty else { throw ValidationError("\(argument): \(list.debugDescription) names no core") }
            return (parts[0], explicit)
        }
    }

    func validate() throws { _ = try targets() }

    /// The request `iovm watch` gets for `targets`.
    static func request(_ targets: [(domain: String, cores: CPUSet?)], wait: Double = 0) -> LiveVerbRequest {
        LiveVerbRequest(verb: .pin, targets: targets.map { .init(domain: $0.domain, cores: $0.cores.map { "\($0)" }) }, wait: wait)
    }

    func run() throws {
        try reportingErrors {
            let targets = try targets()
            let logger = global.logger("iovm.pin")
            if try live.throughWatch(Self.request(targets, wait: live.wait), logger: logger) { return }
            let engine = try HostAccess.engine(logger: logger, wait: live.wait, connect: live.connect)
            for change in try engine.pin(targets) { printError("\(change)") }
        }
    }
}

/// `iovm unpin DOMAIN...`: live, all cores.
struct UnpinCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unpin", _superCommandName: "iovm", abstract: "Let domains iovm manages run on every core, live.")

    @Argument(help: "Domains, by name or id.") var domains: [String]
    @OptionGroup var live: LiveChangeOptions
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        guard !domains.isEmpty else { throw ValidationError("name at least one domain") }
    }

    /// The request `iovm watch` gets for `domains`: a pin to every core.
    static func request(_ domains: [String], wait: Double = 0) -> LiveVerbRequest {
        LiveVerbRequest(verb: .pin, targets: domains.map { .init(domain: $0) }, wait: wait)
    }

    func run() throws {
        try reportingErrors {
            let logger = global.logger("iovm.unpin")
            if try live.throughWatch(Self.request(domains, wait: live.wait), logger: logger) { return }
            let engine = try HostAccess.engine(logger: logger, wait: live.wait, connect: live.connect)
            for change in try engine.pin(domains.map { ($0, nil) }) { printError("\(change)") }
        }
    }
}

/// `iovm weight DOMAIN... N [--cap C]` or `iovm weight iovm0=512 iovm1=256`: live credit weight and cap.
struct WeightCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weight", _superCommandName: "iovm", abstract: "Set the credit weight (and cap) of domains iovm manages, live.",
        discussion: "iovm weight iovm0 iovm1 512 gives both 512; iovm weight iovm0=512 iovm1=256 gives each its own.")

    @Argument(help: "DOMAIN... WEIGHT (1-65535, credit default 256), or DOMAIN=WEIGHT pairs; domains by name or id.")
    var arguments: [String]
    @Option(help: "Cap in percent of one pCPU (0 = none).") var cap: Int?
    @OptionGroup var live: LiveChangeOptions
    @OptionGroup var global: GlobalOptions

    /// Each domain with its weight: `DOMAIN=N` pairs, and plain domains taking the last argument.
    func targets() throws -> [(domain: String, weight: Int)] { try Self.targets(arguments) }

    /// Each domain of `arguments` (`DOMAIN... WEIGHT`, or `DOMAIN=WEIGHT` pairs) with its weight.
    static func targets(_ arguments: [String]) throws -> [(domain: String, weight: Int)] {
        var rest = arguments
        var shared: Int?
        if let last = rest.last, !last.contains("=") {
            guard let value = Int(last) else { throw ValidationError("the last argument must be the weight (a number), not \(last)") }
            shared = value
            rest.removeLast()
        }
        guard !rest.isEmpty else { throw ValidationError("name a domain and a weight: DOMAIN... WEIGHT, or DOMAIN=WEIGHT") }
        let targets: [(domain: String, weight: Int)] = try rest.map { argument in
            let parts = argument.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 {
                guard let weight = Int(parts[1]) else { throw ValidationError("\(argument): the weight must be a number") }
                return (parts[0], weight)
            }
            guard let shared else { throw ValidationError("\(argument): give its weight as \(argument)=WEIGHT or after the domains") }
            return (argument, shared)
        }
        if let shared, !rest.contains(where: { !$0.contains("=") }) { throw ValidationError("weight \(shared) is for no domain: every one has its own") }
        for target in targets {
            if let refusal = LiveVerbRefusal.weight(target.weight, of: target.domain) { throw ValidationError("\(refusal)") }
        }
        return targets
    }

    func validate() throws {
        _ = try targets()
        if let refusal = cap.flatMap(LiveVerbRefusal.cap) { throw ValidationError("\(refusal)") }
    }

    /// The request `iovm watch` gets for `targets` and `cap`.
    static func request(_ targets: [(domain: String, weight: Int)], cap: Int? = nil, wait: Double = 0) -> LiveVerbRequest {
        LiveVerbRequest(verb: .weight, targets: targets.map { .init(domain: $0.domain, weight: $0.weight) }, cap: cap, wait: wait)
    }

    func run() throws {
        try reportingErrors {
            let targets = try targets()
            let logger = global.logger("iovm.weight")
            if try live.throughWatch(Self.request(targets, cap: cap, wait: live.wait), logger: logger) { return }
            let engine = try HostAccess.engine(logger: logger, wait: live.wait, connect: live.connect)
            for change in try engine.setWeight(targets, cap: cap) { printError("\(change)") }
        }
    }
}
