import ArgumentParser
import CPUSets
import Foundation
import IOVMControl
import IOVMCore
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

    /// An engine over the real libxl backend and the host lock.
    func engine(logger: Logger) throws -> ApplyEngine {
        var engine = try HostAccess.engine(logger: logger, strictReset: !allowUnresettableNICs, wait: wait, crashAfter: crashAfter)
        engine.driverDomainTimeout = driverDomainTimeout
        engine.guestNetworkTimeout = guestNetworkTimeout
        return engine
    }

    /// Refuses passthrough without an IOMMU unless allowed.
    func checkIOMMU(_ plan: Plan) throws {
        guard !plan.iovms.allSatisfy({ $0.nics.isEmpty }), !allowNoIOMMU else { return }
        if let refusal = HostAccess.queries().facts().passthroughRefusal(plan, allowNoIOMMU: allowNoIOMMU) {
            printError("iovm: error: \(refusal)")
            throw ExitCode.failure
        }
    }
}

/// `iovm apply FILE`: reconcile the host with the topology.
struct ApplyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
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
            let plan = try topology.plan(logger: logger)
            try TopologyOptions.requireImages(plan)
            let engine = try host.engine(logger: logger)
            if dryRun {
                let reconciliation = try engine.preview(plan)
                for conflict in reconciliation.conflicts { printError("conflict: \(conflict)") }
                print(reconciliation.changes.isEmpty ? "nothing to change: the host matches \(plan.topology)" : reconciliation.changes.map(\.description).joined(separator: "\n"))
                if !reconciliation.conflicts.isEmpty { throw ExitCode.failure }
                return
            }
            try host.checkIOMMU(plan)
            var json: [String: String] = [:]
            for domain in plan.domains { json[domain.name] = try PlanRenderer.libxlJSON(domain) }
            let report = try engine.apply(plan, libxlJSON: json)
            if report.nothingToDo {
                printError("nothing to change: the host matches \(plan.topology)")
            } else {
                for step in report.done { printError("done: \(step)") }
                printError(String(format: "applied %@ in %.1f s", plan.topology, report.seconds))
            }
            for orphan in report.orphans { printError("note: \(orphan) was made for \(plan.topology) but is no longer in it; `iovm destroy` removes it") }
            print(try jsonText(report.domids))
        }
    }
}

/// `iovm destroy FILE`: remove what iovm made for the topology.
struct DestroyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "destroy",
        abstract: "Destroy the domains and cpupools iovm created for the topology and give its NICs back to dom0.")

    @OptionGroup var topology: TopologyOptions
    @OptionGroup var host: HostChangeOptions
    @OptionGroup var global: GlobalOptions

    func run() throws {
        try reportingErrors {
            let logger = global.logger("iovm.destroy")
            let plan = try topology.plan(logger: logger)
            let report = try host.engine(logger: logger).destroy(topology: plan.topology, nics: plan.iovms.flatMap(\.pci))
            for step in report.done { printError("done: \(step)") }
            if report.done.isEmpty { printError("nothing to destroy: iovm made nothing for \(plan.topology) on this host") }
        }
    }
}

/// `iovm status [FILE]`: what iovm runs here, and how it differs from the file.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the domains iovm manages here (NICs, pinning, weights, pools) and their drift from a topology file.")

    @Argument(help: "Topology file to compare with (optional).", completion: .file(extensions: ["swift", "json"]))
    var file: String?

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var global: GlobalOptions

    struct Status: Encodable {
        var domains: [ObservedDomain]
        var pools: [ObservedPool]
        var drift: [String]?
        var conflicts: [String]?
    }

    func run() throws {
        try reportingErrors {
            let logger = global.logger("iovm.status")
            let plan = try TopologyOptions.plan(optionalFile: file, logger: logger)
            let backend = try HostAccess.backend(logger: logger)
            let host = try backend.observe(nics: plan?.iovms.flatMap(\.pci) ?? [])
            let managed = host.domains.filter { $0.tag != nil }
            let reconciliation = plan.map { Reconciler.reconcile($0, with: host) }
            let status = Status(
                domains: managed, pools: host.pools.filter { $0.managedBy != nil },
                drift: reconciliation?.changes.map(\.description), conflicts: reconciliation?.conflicts.map(\.message))
            if json {
                print(try jsonText(status))
                return
            }
            var rows = [["DOMAIN", "ID", "TOPOLOGY", "ROLE", "CORES", "POOL", "WEIGHT", "CAP", "NICS", "VIFS"]]
            for domain in managed {
                let cores =
                    Set(domain.hardAffinity).count == 1
                    ? (domain.hardAffinity.first == CPUSet(0..<host.cores) ? "any" : domain.hardAffinity[0].description)
                    : domain.hardAffinity.map(\.description).joined(separator: "/")
                rows.append([
                    domain.name, "\(domain.domid)", domain.tag?.topology ?? "", domain.tag?.role.rawValue ?? "", cores, domain.cpupool,
                    domain.weight.map(String.init) ?? "-", domain.cap.map(String.init) ?? "-",
                    domain.pci.map(\.description).joined(separator: ", "),
                    (domain.vifs ?? []).map { $0.problem(on: host) == nil ? $0.summary(on: host) : "vif\($0.devid) BROKEN" }.joined(separator: ", "),
                ])
            }
            print(managed.isEmpty ? "iovm manages no domain on this host" : TextTable.render(rows), terminator: managed.isEmpty ? "\n" : "")
            // A vif whose backend died stays up in the guest and carries nothing: say so.
            for domain in managed {
                for problem in (domain.vifs ?? []).compactMap({ $0.problem(on: host) }) { print("broken: \(domain.name)'s \(problem)") }
            }
            if let reconciliation, let plan {
                if reconciliation.changes.isEmpty && reconciliation.conflicts.isEmpty {
                    print("no drift: the host matches \(plan.topology)")
                } else {
                    for change in reconciliation.changes { print("drift: apply would \(change)") }
                    for conflict in reconciliation.conflicts { print("conflict: \(conflict)") }
                }
            }
        }
    }
}

/// `--wait` for the live verbs: they take the host lock like apply.
struct LiveChangeOptions: ParsableArguments {
    @Option(name: .long, help: "Seconds to wait for a running iovm apply to finish (default: refuse at once).")
    var wait: Double = 0
}

/// `iovm pin DOMAIN --cpus 2,3`: live hard affinity.
struct PinCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pin", abstract: "Pin every vCPU of a domain iovm manages to cores, live. The next apply restores the file's placement.")

    @Argument(help: "Domain name or id.") var domain: String
    @Option(help: "Cores, xl style: 3, 2-3, 0,2.") var cpus: String
    @OptionGroup var live: LiveChangeOptions
    @OptionGroup var global: GlobalOptions

    func run() throws {
        try reportingErrors {
            guard let cores = try CPUSet(xlList: cpus) else { throw ValidationError("--cpus must list cores; use `iovm unpin` for all") }
            let engine = try HostAccess.engine(logger: global.logger("iovm.pin"), wait: live.wait)
            printError("\(try engine.pin(domain, to: cores))")
        }
    }
}

/// `iovm unpin DOMAIN`: live, all cores.
struct UnpinCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unpin", abstract: "Let a domain iovm manages run on every core, live.")

    @Argument(help: "Domain name or id.") var domain: String
    @OptionGroup var live: LiveChangeOptions
    @OptionGroup var global: GlobalOptions

    func run() throws {
        try reportingErrors {
            let engine = try HostAccess.engine(logger: global.logger("iovm.unpin"), wait: live.wait)
            printError("\(try engine.pin(domain, to: nil))")
        }
    }
}

/// `iovm weight DOMAIN N [--cap C]`: live credit weight and cap.
struct WeightCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "weight", abstract: "Set the credit weight (and cap) of a domain iovm manages, live.")

    @Argument(help: "Domain name or id.") var domain: String
    @Argument(help: "Weight, 1-65535 (credit default 256).") var weight: Int
    @Option(help: "Cap in percent of one pCPU (0 = none).") var cap: Int?
    @OptionGroup var live: LiveChangeOptions
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        guard Planner.weightRange.contains(weight) else {
            throw ValidationError("weight must be \(Planner.weightRange.lowerBound)-\(Planner.weightRange.upperBound)")
        }
        if let cap, cap < 0 { throw ValidationError("cap must be 0 or more") }
    }

    func run() throws {
        try reportingErrors {
            let engine = try HostAccess.engine(logger: global.logger("iovm.weight"), wait: live.wait)
            printError("\(try engine.setWeight(domain, weight: weight, cap: cap))")
        }
    }
}
