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

        /// Human-readable text.
        public var description: String {
            switch self {
            case .unknownDriver(let name, let known): "no kernel fragment for NIC driver \"\(name)\" (known: \(known.joined(separator: ", ")))"
            case .missingBase: "Kernels/iovm-base.config was not embedded in this build"
            }
        }
    }

    /// The base fragment followed by the NIC driver's fragment, ready for `make allnoconfig KCONFIG_ALLCONFIG=`.
    public static func fragment(nicDriver: String) throws(Error) -> String {
        guard let base = EmbeddedResources.files["Kernels/iovm-base.config"] else { throw .missingBase }
        guard let nic = EmbeddedResources.files["Kernels/nic/\(nicDriver).config"] else {
            throw .unknownDriver(nicDriver, known: nicDrivers)
        }
        return "# iovm \(IOVMVersion.current): network IOVM kernel fragment, NIC driver \(nicDriver)\n"
            + "# Expand with: make ARCH=x86_64 allnoconfig KCONFIG_ALLCONFIG=<this file>\n"
            + base.trimmingSuffixNewlines() + "\n\n" + nic.trimmingSuffixNewlines() + "\n"
    }
}
