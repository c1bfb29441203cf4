import ArgumentParser
import Foundation
import IOVMCore

/// `iovm kernel-config`: prints the minimal network IOVM kernel fragment (paper Table 1).
struct KernelConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernel-config",
        abstract: "Print the minimal network-IOVM kernel config fragment (paper Table 1) for a NIC driver.",
        discussion: "Expand it with `make ARCH=x86_64 allnoconfig KCONFIG_ALLCONFIG=FILE`; Kernels/check-kconfig checks it against real Kconfig.")

    @Option(
        name: .long, help: "NIC driver of the IOVM's physical NICs.",
        completion: .list(["e1000", "e1000e", "igb", "ixgbe", "virtio"]))
    var nicDriver: String = "e1000"

    @Option(name: .long, help: "Write the fragment to this file instead of stdout.", completion: .file())
    var out: String?

    @Flag(name: .long, help: "List the NIC drivers that have a fragment.")
    var list = false

    func run() throws {
        try reportingErrors {
            if list {
                print(KernelConfig.nicDrivers.joined(separator: "\n"))
                return
            }
            let fragment: String
            do { fragment = try KernelConfig.fragment(nicDriver: nicDriver) } catch {
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
