import ArgumentParser
import FoundationEssentials
import IOVMControl
import IOVMCore
import IOVMImage
import IOVMWireFormat
import Logging

/// How a command finds its topology and the host it plans for.
struct TopologyOptions: ParsableArguments {
    @Argument(help: "Topology file: a Swift DSL file, or the JSON document `iovm synth` prints ('-': that document from stdin).", completion: .file(extensions: ["swift", "json"]))
    var file: String?

    @Option(
        name: .customLong("topology-json"), help: "Read the topology as JSON from this file ('-' for stdin), e.g. on a dom0 without a Swift toolchain.",
        completion: .file(extensions: ["json"]))
    var topologyJSON: String?

    @Option(name: .customLong("host-cores"), help: "Plan for a host with this many cores (overrides Host(cores:)).")
    var hostCores: Int?

    @Option(name: .customLong("host-memory"), help: "Plan for a host with this much memory for domains, in MiB.")
    var hostMemory: Int?

    @Option(
        name: .customLong("host-scheduler"),
        help: "Plan for a host whose Pool-0 runs this scheduler (default: what Xen reports on a dom0, else the file's Host(scheduler:)).")
    var hostScheduler: String?

    @Option(name: .customLong("on-host"), help: "Of a topology that spans several hosts, take only this host's share.")
    var onHost: String?

    @Option(
        name: .customLong("images"), help: "The image store IOVMs boot their minimal image from (default $IOVM_IMAGES, else /var/lib/iovm/images).",
        completion: .directory)
    var images: String?

    /// The image store: --images, else $IOVM_IMAGES, else the default.
    var imageStore: ImageStore { ImageStore(root: Self.imageRoot(images)) }

    /// --images, else $IOVM_IMAGES, else /var/lib/iovm/images.
    static func imageRoot(_ option: String?) -> String {
        option ?? EnvironmentLookup.process["IOVM_IMAGES"].flatMap { $0.isEmpty ? nil : $0 } ?? ImageStore.defaultRoot
    }

    func validate() throws {
        if file == nil && topologyJSON == nil { throw ValidationError("give a topology file or --topology-json FILE") }
        if file != nil && topologyJSON != nil { throw ValidationError("give either a topology file or --topology-json, not both") }
        try requireNonEmptyPaths(["the topology file": file, "--topology-json": topologyJSON, "--images": images])
        if let hostCores, hostCores < 1 { throw ValidationError("--host-cores must be at least 1") }
        if let hostScheduler, !Planner.schedulers.contains(hostScheduler) {
            throw ValidationError("--host-scheduler must be one of \(Planner.schedulers.joined(separator: ", "))")
        }
    }

    /// Loads the document (compiling a Swift file if needed).
    func loadDocument(logger: Logger) throws(TopologyError) -> TopologyDocument {
        let loader = TopologyLoader(logger: logger)
        if let json = topologyJSON, json != TopologyLoader.standardInput { return try loader.loadJSON(URL(fileURLWithPath: json)) }
        return try loader.load(topologyJSON ?? file!)  // a file, or `-` (standard input) given either way
    }

    /// The host override from the command line.
    var hostOverride: HostOverride { HostOverride(cores: hostCores, memoryMiB: hostMemory) }

    /// What Xen reports, when this is a dom0: cores, free memory and Pool-0's scheduler.
    static func hostFromXen(logger: Logger, connect: String? = nil, dom0Facts: (() -> XenFacts?)? = nil) -> HostShape? {
        let facts = Self.facts(connect: connect, dom0Facts: dom0Facts, logger: logger)
        guard let shape = facts.hostShape else {
            logger.debug("no host shape from Xen: \(facts.notDom0 ?? "no core count")")
            return nil
        }
        logger.debug("planning for the Xen host", metadata: ["cores": "\(shape.cores)", "freeMiB": "\(shape.memoryMiB ?? 0)"])
        return shape
    }

    /// The scheduler Pool-0 runs: `--host-scheduler`, else what Xen reports when the topology asks for a
    /// scheduler (nil off Xen, or when it asks for none: then nothing depends on it).
    func poolZeroScheduler(for document: TopologyDocument, logger: Logger, connect: String? = nil, dom0Facts: (() -> XenFacts?)? = nil) -> String? {
        if let hostScheduler { return hostScheduler }
        guard document.host?.scheduler != nil else { return nil }
        let facts = Self.facts(connect: connect, dom0Facts: dom0Facts, logger: logger)
        if let scheduler = facts.scheduler { logger.debug("Pool-0 runs \(scheduler)") }
        return facts.notDom0 == nil ? facts.scheduler : nil
    }

    /// For this dom0 (`connect` nil), what `dom0Facts` gives (the command's own context's facts) when it gives any; else
    /// asked now.
    static func facts(connect: String?, dom0Facts: (() -> XenFacts?)?, logger: Logger) -> XenFacts {
        if connect == nil, let known = dom0Facts?() { return known }
        return HostAccess.facts(connect: connect, logger: logger)
    }

    /// Plans `file` when a command takes the topology as an optional argument (status, doctor).
    static func plan(optionalFile file: String?, logger: Logger, connect: String? = nil) throws -> Plan? {
        guard let file else { return nil }
        return try TopologyOptions.parse([file]).plan(logger: logger, connect: connect)
    }

    /// The resolver of minimal images against `store`, this host's NIC drivers and PCI ids; `buildCommand` says how to
    /// build a missing image.
    /// With `connect`, the PCI ids are the libvirt host's (the store's paths must be the same there: iovm copies no image).
    static func imageResolver(store: ImageStore, connect: String? = nil, buildCommand: @escaping @Sendable ([String]) -> String) -> ImageResolver {
        ImageResolver(store: store, table: NICDriverTable.installed(), ids: { HostAccess.pciIDs($0, connect: connect) }, buildCommand: buildCommand)
    }

    /// Loads and plans, printing warnings to stderr; for the Xen host behind libvirt URI `connect` when given
    /// (its cores and scheduler read through libvirt), else for this dom0. A topology over several hosts gives the
    /// share of `--on-host` (planned for that host's URI unless `connect` names another), and is refused without it.
    func plan(logger: Logger, connect: String? = nil) throws(TopologyError) -> Plan {
        switch try plans(logger: logger, connect: connect, whole: false) {
        case .single(let plan): return plan
        case .hosts(let plans): return plans[0].plan
        }
    }

    /// A topology as planned: one host's, or every host's share of one that spans several.
    enum Planned {
        /// A single-host topology (or one host's share, `--on-host`).
        case single(Plan)
        /// Every named host's share (or just `--on-host`'s), with the URI each is applied through.
        case hosts([HostPlan])
    }

    /// Loads and plans a topology; one that spans hosts is planned per host (`whole`: every host unless `--on-host`
    /// names one; otherwise `--on-host` is required). `dom0Facts`: this dom0's Xen facts, through the libxl context the
    /// command applies with, asked only when the planning needs them (one context and one asking per command: issue 16).
    func plans(logger: Logger, connect: String?, whole: Bool, dom0Facts: (() -> XenFacts?)? = nil) throws(TopologyError) -> Planned {
        var timer = PhaseTimer("plan", logger: logger)
        let document = try loadDocument(logger: logger)
        timer.lap("loaded the topology")
        guard document.spansHosts else { return .single(try planShare(document, logger: logger, connect: connect, dom0Facts: dom0Facts)) }
        let shares = try Planner.splitByHost(document)
        if let onHost {
            if !shares.contains(where: { $0.host.name == onHost }) {
                let names = (document.hosts ?? []).compactMap(\.name).joined(separator: ", ")
                throw .invalid([Diagnostic(.error, "--on-host \(onHost): the topology has no such host (hosts: \(names))", at: document.source)])
            }
        } else if !whole {
            throw .invalid([.spansHosts((document.hosts ?? []).compactMap(\.name), at: document.source)])
        }
        var plans: [HostPlan] = []
        var generated = 0  // generated IOVMs are numbered across hosts: iovm0 on the first, iovm1 on the next, ...
        for share in shares {
            let uri = connect ?? share.host.connect
            let plan = try planShare(share.document, logger: logger, connect: uri, dom0Facts: dom0Facts, firstGeneratedIOVM: generated)
            generated += plan.iovms.count
            plans.append(HostPlan(host: share.host.name ?? "", connect: uri, plan: plan))
        }
        if let onHost { plans = plans.filter { $0.host == onHost } }
        return .hosts(plans)
    }

    /// Plans one host's document (hosts merged from the command line, Xen or libvirt; images resolved).
    private func planShare(
        _ loaded: TopologyDocument, logger: Logger, connect: String?, dom0Facts: (() -> XenFacts?)?, firstGeneratedIOVM: Int = 0
    ) throws(TopologyError) -> Plan {
        var timer = PhaseTimer("plan", logger: logger)
        var document = loaded
        let host = hostOverride.merge(into: &document) { Self.hostFromXen(logger: logger, connect: connect, dom0Facts: dom0Facts) }
        let scheduler = poolZeroScheduler(for: document, logger: logger, connect: connect, dom0Facts: dom0Facts)
        timer.lap("asked the host's shape and scheduler")
        var plan = try Planner(hostOverride: host, poolZeroScheduler: scheduler, firstGeneratedIOVM: firstGeneratedIOVM).plan(document)
        timer.lap("planned")
        for warning in plan.warnings { printError(warning.description) }
        if plan.domains.contains(where: { $0.image != nil }) {
            let store = imageStore
            let where_ = store.root == ImageStore.defaultRoot ? "" : " --out \(store.root)"
            let file = self.file == TopologyLoader.standardInput ? nil : self.file
            let resolver = Self.imageResolver(
                store: store, connect: connect,
                buildCommand: { drivers in
                    // A JSON topology is not a file `image build` reads: name its drivers instead.
                    let what = file ?? drivers.map { "--nic-driver \($0)" }.joined(separator: " ")
                    return "iovm image build \(what)\(where_)"
                })
            plan = resolver.resolve(plan)
            timer.lap("resolved the IOVM images")
        }
        return plan
    }

    /// Refuses the IOVMs' NICs this dom0 lacks, as bad input at the lines that declared them (exit 65), before the
    /// minimal image is chosen by their PCI ids. A libvirt host's (`connect`) are checked by the apply itself
    /// (``HostValidation``, over what its backend observes): asking libvirt here would open a connection per NIC, and
    /// an unreachable host would read as NICs it lacks.
    static func requireHostNICs(_ plan: Plan, connect: String?) throws(TopologyError) {
        guard connect == nil else { return }
        try HostValidation.requireNICs(plan) { HostAccess.pciIDs($0) != nil }
    }

    /// Refuses, before anything is touched, a plan whose IOVM images are not there.
    static func requireImages(_ plan: Plan) throws {
        let missing = plan.unresolvedImages
        guard !missing.isEmpty else { return }
        for (domain, problem) in missing { printError("iovm: error: IOVM \(domain) boots the minimal image: \(problem)") }
        throw ExitCode.failure
    }
}

/// Refuses a path given as '' (`--out ''`, an empty FILE): it would name the working directory, or no file, instead
/// of the one meant. `paths` pairs each option's name with its value.
func requireNonEmptyPaths(_ paths: KeyValuePairs<String, String?>) throws {
    for (name, value) in paths where value?.isEmpty == true {
        throw ValidationError("\(name) is empty: give a path")
    }
}

/// Shortens absolute paths below the working directory, so messages name files as the user typed them.
func relativeToWorkingDirectory(_ text: String) -> String {
    let directory = FileManager.default.currentDirectoryPath
    guard directory != "/" else { return text }
    return text.replacing(directory + "/", with: "")
}

/// Prints human-readable text to stdout as ``TerminalText/visible(_:keepingLineBreaks:cuttingLongLines:)`` shows it
/// (not cut): names and paths in it may come from the topology or the host. JSON is printed as it is.
func printText(_ text: String, terminator: String = "\n") {
    print(TerminalText.visible(text, cuttingLongLines: false), terminator: terminator)
}

/// Prints a line to stderr.
func printError(_ text: String) {
    FileBytes.writeStandardError(text + "\n")
}

/// Runs `body`, turning topology and experiment errors into their report and exit code 65, other failures into exit code 1.
func reportingErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as TopologyError {
        printError(relativeToWorkingDirectory(error.description))
        throw ExitCode(invalidTopologyExitCode)
    } catch let error as ExperimentError {
        printError(relativeToWorkingDirectory(error.description))
        throw ExitCode(invalidTopologyExitCode)
    } catch let error as LibvirtRenderError {
        printError("iovm: error: \(error); nothing was changed")
        throw ExitCode(invalidTopologyExitCode)
    } catch let error as MultiHostApplyError {
        printError(error.description)
        throw ExitCode.failure
    } catch let error as ApplyError {
        printError(error.description)  // its lines carry their own "error:" prefixes
        throw ExitCode.failure
    } catch let error as ExitCode {
        throw error
    } catch let error as ValidationError {
        throw error
    } catch {
        printError("iovm: error: \(error)")
        throw ExitCode.failure
    }
}

/// Encodes a value as pretty, sorted JSON for stdout.
func jsonText<T: Encodable>(_ value: T) throws -> String {
    try JSONText.pretty(value)
}
