import ArgumentParser
import IOVMCore

/// `iovm plan FILE`: checks a topology and shows what apply would create.
struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Check a topology and show the domains, cores, NICs, weights and creation order it plans.")

    @OptionGroup var topology: TopologyOptions
    @OptionGroup var global: GlobalOptions

    @Flag(help: "Print the plan as JSON on stdout.")
    var json = false

    func run() throws {
        try reportingErrors {
            switch try topology.plans(logger: global.logger("iovm.plan"), connect: nil, whole: true) {
            case .single(let plan):
                if json {
                    print(try jsonText(plan))
                } else {
                    printText(PlanTable(plan).text, terminator: "")
                }
            case .hosts(let plans):
                if json {
                    print(try jsonText(plans))
                } else {
                    // Grouped by host, in declaration order: each share is planned as a topology of its own.
                    for (index, share) in plans.enumerated() {
                        if index > 0 { printText("") }
                        printText("Host \(share.host) (\(share.connect.map { "libvirt: \($0)" } ?? "libxl in this dom0"))")
                        printText(
                            PlanTable(share.plan).text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.isEmpty ? "" : "  " + $0 }.joined(separator: "\n"),
                            terminator: "")
                    }
                }
            }
        }
    }
}

/// The human-readable form of a plan.
struct PlanTable {
    let plan: Plan

    init(_ plan: Plan) { self.plan = plan }

    var text: String {
        var out = ""
        let source = plan.source.map { " (\($0))" } ?? ""
        out += "Topology \"\(plan.topology)\"\(source)\n"
        let declared = plan.declaredConfiguration == .explicit ? " (IOVMs declared one by one)" : ""
        let iovmCount = plan.iovms.count
        let nicCount = plan.iovms.reduce(0) { $0 + $1.nics.count }
        out +=
            "  configuration  \(plan.configuration.title)\(declared): \(iovmCount) IOVM\(iovmCount == 1 ? "" : "s"), \(nicCount) NIC\(nicCount == 1 ? "" : "s") passed through, \(plan.guests.count) guest\(plan.guests.count == 1 ? "" : "s")\n"
        out += "  placement      \(plan.placement.title)\n"
        let memory = plan.host.memoryMiB.map { ", \($0) MiB" } ?? ""
        let reserved = plan.host.reservedCores.cores.isEmpty ? "" : ", cores \(plan.host.reservedCores) reserved for dom0"
        out += "  host           \(plan.host.cores) cores\(memory), Pool-0 scheduler \(plan.host.scheduler)\(reserved)\n"
        // Only when some domain runs under another scheduler than Pool-0's: other plans print as they always did.
        let elsewhere = plan.domains.filter { plan.scheduler(of: $0) != plan.host.scheduler }
        if !elsewhere.isEmpty {
            let pools = plan.cpupools.filter { pool in elsewhere.contains { $0.cpupool == pool.name } }
            out +=
                "  scheduler      "
                + pools.map { pool in "\(pool.scheduler) in cpupool \(pool.name) (\(elsewhere.filter { $0.cpupool == pool.name }.count) domains)" }.joined(separator: "; ") + "\n"
        }
        out += "\n"

        var rows: [[String]] = [["DOMAIN", "ROLE", "VCPUS", "MEMORY", "CORES", "POOL", "WEIGHT", "CAP", "NETWORK"]]
        for domain in plan.domains {
            let network: String
            switch domain.role {
            case .iovm:
                network = domain.nics.isEmpty ? "no NIC" : domain.nics.map { "\($0.pci) (\($0.bridge))" }.joined(separator: ", ")
            case .guest:
                network = domain.vifs.map { vif in
                    let nic = vif.nic.map { " → \($0)" } ?? ""
                    return "vif \(vif.mac) on \(vif.backend ?? "Domain-0"):\(vif.bridge)\(nic)"
                }.joined(separator: "; ")
            }
            rows.append([
                domain.name, domain.role == .iovm ? "IOVM" : "guest", "\(domain.vcpus)", "\(domain.memoryMiB) MiB",
                domain.hardAffinity?.description ?? "any", domain.cpupool, "\(domain.weight)",
                domain.cap == 0 ? "none" : "\(domain.cap)%", network,
            ])
        }
        out += TextTable.render(rows)
        let images = plan.domains.filter { $0.image != nil }
        if !images.isEmpty {
            out += "\nImages:\n"
            for domain in images {
                guard let image = domain.image else { continue }
                out += "  \(domain.name): \(image.summary)\n"
                if image.hash != nil { out += "    kernel \(domain.kernel)\n" + (domain.ramdisk.map { "    ramdisk \($0)\n" } ?? "") }
            }
        }

        let reservations = plan.domains.filter { $0.rtds != nil }
        if !reservations.isEmpty {
            out += "\nrtds reservations:\n"
            for domain in reservations { out += "  \(domain.name): \(domain.rtds!)\n" }
        }
        if !plan.cpupools.isEmpty {
            out += "\ncpupools: " + plan.cpupools.map { "\($0.name) (\($0.scheduler), cores \($0.cpus))" }.joined(separator: "; ") + "\n"
        }
        let bridges = plan.dom0Bridges
        if !bridges.isEmpty {
            // apply makes a missing one with its NIC (and removes it on destroy); one that exists is used as it is.
            out +=
                "\ndom0 bridges (apply makes those missing): "
                + bridges.map { bridge in "\(bridge.name)" + (bridge.nics.isEmpty ? " (must exist)" : " on " + bridge.nics.map(\.description).joined(separator: ", ")) }
                .joined(separator: "; ") + "\n"
        }
        out += "\nCores:\n"
        let unpinned = plan.domains.filter { $0.hardAffinity == nil }.map(\.name)
        for core in (0..<plan.host.cores).reversed() {
            var names: [String] = []
            let pinned = plan.domains.filter { $0.hardAffinity?.contains(core) ?? false }.map(\.name)
            if !pinned.isEmpty { names.append(pinned.joined(separator: ", ")) }
            if !unpinned.isEmpty { names.append("unpinned: \(unpinned.joined(separator: ", "))") }
            let reserved = plan.host.reservedCores.contains(core) ? " [dom0]" : ""
            out += "  core \(core)\(reserved): \(names.isEmpty ? "-" : names.joined(separator: "; "))\n"
        }
        out += "\nCreation (all at once; a domain waits only for what it needs):\n"
        let needs = plan.creationDependencies
        for domain in plan.domains {
            let waits = needs[domain.name] ?? []
            out += "  \(domain.name): " + (waits.isEmpty ? "at once" : "when \(waits.joined(separator: " and ")) serve\(waits.count == 1 ? "s" : "") vifs") + "\n"
        }
        if !plan.warnings.isEmpty { out += "\n\(plan.warnings.count) warning\(plan.warnings.count == 1 ? "" : "s") (on stderr)\n" }
        return out
    }
}
