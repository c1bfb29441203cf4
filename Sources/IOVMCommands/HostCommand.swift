import ArgumentParser
import FoundationEssentials
import IOVMControl
import IOVMCore
import IOVMWireFormat

/// `iovm host`: what Xen reports about this machine, from libxl and one libxenstat sample.
///
/// On a machine that is not a Xen dom0 it prints `iovm: not running on a Xen dom0 (…)` to
/// standard error and exits 1.
public struct HostCommand: ParsableCommand {
    /// The `host` subcommand's name and one-line help.
    public static let configuration = CommandConfiguration(
        commandName: "host",
        abstract: "Show what Xen reports about this host: version, cores, memory, domains, one libxenstat sample."
    )

    /// Print one JSON object (sorted keys) instead of tables.
    @Flag(name: .long, help: "Print one JSON object on standard output instead of tables.")
    public var json = false

    @OptionGroup var global: GlobalOptions

    /// Creates the command with default options (ArgumentParser requirement).
    public init() {}

    /// Collects the report and prints it; any error (a `XenError` off Xen) becomes one line on stderr and exit 1.
    public func run() throws {
        let report: HostReport
        do {
            report = try HostAccess.queries(logger: global.logger("iovm.host")).hostReport()
        } catch {
            FileBytes.writeStandardError("iovm: \(error)\n")
            throw ExitCode(1)
        }
        if json {
            try FileBytes.writeStandardOutput(try JSONText.line(report) + "\n")
        } else {
            printText(report.table(), terminator: "")
        }
    }
}

extension HostReport {
    /// The human-readable form: a summary block and two tables.
    func table() -> String {
        var out = ""
        out += "Xen \(xenVersion), scheduler \(scheduler)\n"
        out += "CPUs    \(cores) at \(Self.fixed(Double(cpuKHz) / 1000, 3)) MHz\n"
        out += "Memory  \(totalMemoryKiB / 1024) MiB total, \(freeMemoryKiB / 1024) MiB free\n"
        out += "IOMMU   \(iommu ? "yes (PCI passthrough possible)" : "no")\n"
        out += "\n"
        out += Self.columns(
            ["DOMID", "NAME", "MEM(MiB)", "VCPUS", "STATE"],
            domains.map { ["\($0.domid)", $0.name, "\($0.memoryKiB / 1024)", "\($0.vcpus)", $0.state] },
            rightAligned: [0, 2, 3])
        out += "\n"
        out += "libxenstat sample (cpu \(xenstat.cpuHz) Hz)\n"
        out += Self.columns(
            ["DOMID", "NAME", "CPU(s)", "VCPUS"],
            xenstat.domains.map {
                ["\($0.domid)", $0.name, Self.fixed(Double($0.cpuNanoseconds) / 1e9, 2), "\($0.vcpus)"]
            },
            rightAligned: [0, 2, 3])
        return out
    }

    private static func fixed(_ value: Double, _ places: Int) -> String {
        String(cFormat: "%.\(places)f", value)
    }

    private static func columns(_ header: [String], _ rows: [[String]], rightAligned: Set<Int>) -> String {
        TextTable.render([header] + rows, rightAligned: rightAligned, indent: "  ")
    }
}
