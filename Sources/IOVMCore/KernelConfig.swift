public import IOVMWireFormat

/// The minimal kernel configuration of a network IOVM (paper Section 3, Table 1), from the fragments in `Kernels/`.
public enum KernelConfig {
    /// NIC drivers with a fragment in `Kernels/nic/`.
    public static var nicDrivers: [String] {
        EmbeddedResources.files.keys
            .filter { $0.hasPrefix("Kernels/nic/") && $0.hasSuffix(".config") }
            .map { String($0.dropFirst("Kernels/nic/".count).dropLast(".config".count)) }
            .sorted()
    }

    /// Errors.
    public enum Error: Swift.Error, CustomStringConvertible {
        /// No fragment for that driver.
        case unknownDriver(String, known: [String])
        /// The base fragment is missing from the build.
        case missingBase
        /// A NIC of the plan is not on this host and the topology names no driver for it.
        case nicNotFound(PCIAddress, source: SourceLocation?)
        /// A NIC's PCI ids match no driver that has a fragment.
        case nicWithoutFragment(PCIAddress, ids: String, known: [String], source: SourceLocation?)
        /// A NIC names no driver, and this host has no `modules.alias` to map its PCI ids to one.
        case noDriverTable(PCIAddress, ids: String, source: SourceLocation?)

        /// Where the NIC at fault was declared.
        public var location: SourceLocation? {
            switch self {
            case .nicNotFound(_, let source), .nicWithoutFragment(_, _, _, let source), .noDriverTable(_, _, let source): source
            default: nil
            }
        }

        /// Human-readable text.
        public var description: String {
            switch self {
            case .unknownDriver(let name, let known): "no kernel fragment for NIC driver \"\(name)\" (known: \(known.joined(separator: ", ")))"
            case .missingBase: "Kernels/iovm-base.config was not embedded in this build"
            case .nicNotFound(let pci, _):
                "NIC \(pci) is not on this host and the topology names no driver for it: say NIC(\"\(pci)\", driver: \"e1000\") (or e1000e, igb, ixgbe, virtio)"
            case .nicWithoutFragment(let pci, let ids, let known, _):
                "NIC \(pci) (\(ids)) is driven by none of the drivers with an IOVM kernel fragment (supported: \(known.joined(separator: ", ")))"
            case .noDriverTable(let pci, let ids, _):
                "NIC \(pci) (\(ids)) names no driver, and this host has no /lib/modules/*/modules.alias to find it by: say NIC(\"\(pci)\", driver: \"e1000\") (or e1000e, igb, ixgbe, virtio)"
            }
        }
    }

    /// The base fragment followed by the NIC driver's fragment, ready for `make allnoconfig KCONFIG_ALLCONFIG=`.
    public static func fragment(nicDriver: String) throws(Error) -> String {
        try fragment(nicDrivers: [nicDriver])
    }

    /// The base fragment followed by each NIC driver's fragment (one kernel for IOVMs with several kinds of NIC).
    public static func fragment(nicDrivers drivers: [String]) throws(Error) -> String {
        guard let base = EmbeddedResources.files["Kernels/iovm-base.config"] else { throw .missingBase }
        var nics: [String] = []
        for driver in drivers {
            guard let nic = EmbeddedResources.files["Kernels/nic/\(driver).config"] else { throw .unknownDriver(driver, known: nicDrivers) }
            nics.append(nic.trimmingSuffixNewlines())
        }
        return "# iovm \(IOVMVersion.current): network IOVM kernel fragment, NIC driver\(drivers.count == 1 ? "" : "s") \(drivers.joined(separator: ", "))\n"
            + "# Expand with: make ARCH=x86_64 allnoconfig KCONFIG_ALLCONFIG=<this file>\n"
            + ([base.trimmingSuffixNewlines()] + nics).joined(separator: "\n\n") + "\n"
    }

    /// The NIC drivers the IOVMs of `plan` need, sorted: a NIC's declared `driver:`, else the driver
    /// `table` gives for the PCI ids `ids` reads from this host (nil: the NIC is not here).
    /// `table` is nil on a host without `modules.alias`: only a NIC that names no driver needs it.
    public static func nicDrivers(for plan: Plan, table: NICDriverTable?, ids: (PCIAddress) -> String?) throws(Error) -> [String] {
        var drivers: Set<String> = []
        for nic in plan.iovms.flatMap(\.nics) {
            if let declared = nic.driver {
                drivers.insert(declared)
                continue
            }
            guard let found = ids(nic.pci) else { throw .nicNotFound(nic.pci, source: nic.source) }
            guard let table else { throw .noDriverTable(nic.pci, ids: found, source: nic.source) }
            guard let driver = table.driver(for: found) else {
                throw .nicWithoutFragment(nic.pci, ids: found, known: nicDrivers, source: nic.source)
            }
            drivers.insert(driver)
        }
        return drivers.sorted()
    }
}
