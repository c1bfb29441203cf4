import ArgumentParser
import FoundationEssentials
import IOVMCore

/// `iovm kernel-config`: prints the minimal network IOVM kernel fragment (paper Table 1).
struct KernelConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernel-config",
        abstract: "Print the minimal network-IOVM kernel config fragment (paper Table 1) for NIC drivers, or for a topology's NICs.",
        discussion: """
            With FILE, the drivers are those of the IOVMs' NICs: a NIC's `driver:` in the topology, else the driver \
            the running kernel's modules.alias gives for the NIC's PCI ids in sysfs.
            Expand it with `make ARCH=x86_64 allnoconfig KCONFIG_ALLCONFIG=FILE`; Kernels/check-kconfig checks it against real Kconfig.
            """)

    @Argument(help: "Topology file whose IOVMs' NICs choose the drivers (instead of --nic-driver).", completion: .file(extensions: ["swift", "json"]))
    var file: String?

    @Option(
        name: .long, help: "NIC driver of the IOVM's physical NICs (repeat for several; default e1000).",
        completion: .list(["e1000", "e1000e", "igb", "ixgbe", "virtio"]))
    var nicDriver: [String] = []

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: "Write the fragment to this file instead of stdout.", completion: .file())
    var out: String?

    @Flag(name: .long, help: "List the NIC drivers that have a fragment.")
    var list = false

    func validate() throws {
        try requireNonEmptyPaths(["the topology file": file, "--out": out])
    }

    func run() throws {
        try reportingErrors {
            if list {
                print(KernelConfig.nicDrivers.joined(separator: "\n"))
                return
            }
            var drivers = nicDriver
            if let file {
                guard nicDriver.isEmpty else { throw ValidationError("give a topology FILE or --nic-driver, not both") }
                let logger = global.logger("iovm.kernel-config")
                guard let plan = try TopologyOptions.plan(optionalFile: file, logger: logger) else { return }
                do { drivers = try KernelConfig.nicDrivers(for: plan, table: NICDriverTable.installed(), ids: { HostAccess.pciIDs($0) }) } catch let error as KernelConfig.Error {
                    printError(relativeToWorkingDirectory("\(error.location.map { "\($0): " } ?? "")error: \(error)"))
                    throw ExitCode(invalidTopologyExitCode)
                }
                printError("NIC drivers of \(plan.topology): \(drivers.isEmpty ? "none (no IOVM owns a NIC)" : drivers.joined(separator: ", "))")
            }
            if drivers.isEmpty { drivers = ["e1000"] }
            let fragment: String
            do { fragment = try KernelConfig.fragment(nicDrivers: drivers) } catch {
                printError("iovm: error: \(error)")
                throw ExitCode.validationFailure
            }
            if let out {
                try Data(fragment.utf8).write(to: URL(fileURLWithPath: out), options: .atomic)
                printError("wrote \(out)")
            } else {
                print(fragment, terminator: "")
            }
        }
    }
}
