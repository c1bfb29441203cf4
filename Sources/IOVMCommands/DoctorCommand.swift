import ArgumentParser
import FoundationEssentials
import IOVMControl
import IOVMCore

/// `iovm doctor [FILE]`: can iovm drive this host, and can the topology's NICs be passed through?
struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check this host: Xen dom0, xenstored, scheduler, IOMMU, xen-pciback, and each NIC and IOVM image of the topology.")

    @Argument(help: "Topology file whose NICs to check (optional).", completion: .file(extensions: ["swift", "json"]))
    var file: String?

    func validate() throws {
        try requireNonEmptyPaths(["the topology file": file])
    }

    @Flag(name: .customLong("allow-no-iommu"), help: "Accept passthrough without an active IOMMU (no DMA isolation).")
    var allowNoIOMMU = false

    @Flag(help: "Print the checks as JSON.")
    var json = false

    @Option(name: .long, help: "Check the Xen host behind this libvirt URI (xen+ssh://root@host/system?keyfile=KEY) instead of this dom0.")
    var connect: String?

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try reportingErrors {
            let plan = try TopologyOptions.plan(optionalFile: file, logger: global.logger("iovm.doctor"), connect: connect)
            var checks = HostAccess.doctorChecks(plan: plan, allowNoIOMMU: allowNoIOMMU, connect: connect, logger: global.logger("iovm.doctor"))
            // The image each IOVM boots: built for its NICs' drivers, or what to run.
            for domain in plan?.domains ?? [] {
                guard let image = domain.image else { continue }
                if let problem = image.problem {
                    checks.append(DoctorCheck("image of \(domain.name)", .failed, problem))
                } else {
                    checks.append(DoctorCheck("image of \(domain.name)", .ok, "\(image.summary): \(domain.kernel)"))
                }
            }
            if json {
                print(try jsonText(checks))
            } else {
                let rows = [["CHECK", "STATUS", "DETAIL"]] + checks.map { [$0.name, $0.status.rawValue.uppercased(), $0.detail] }
                printText(TextTable.render(rows), terminator: "")
            }
            if checks.contains(where: { $0.status == .failed }) { throw ExitCode.failure }
        }
    }
}
