import IOVMCore

/// Why an IOVM image could not be built or used.
public enum ImageError: Error, CustomStringConvertible, Equatable {
    /// A file that should be an ELF64 program or library is not.
    case notELF(String, why: String)
    /// A file could not be read.
    case unreadable(String)
    /// A program or library the runtime needs is not in the sysroot.
    case missingInSysroot(String, sysroot: String)
    /// A library no search directory holds.
    case libraryNotFound(String, neededBy: String, searched: [String])
    /// Debian's kernel source is not installed.
    case kernelSourceMissing(String)
    /// A step of the build failed.
    case stepFailed(String, status: Int32, logTail: String, log: String)
    /// Symbols the fragment asks for that the expanded configuration does not have.
    case symbolsMissing([String], config: String)
    /// A file could not be written.
    case cannotWrite(String, why: String)
    /// A NIC driver without a kernel fragment.
    case unknownDriver(String, known: [String])
    /// No image for these drivers in the store.
    case notBuilt(drivers: [String], store: String, command: String)

    /// Human-readable text.
    public var description: String {
        switch self {
        case .notELF(let path, let why): "\(path) is not a program iovm can put in an image: \(why)"
        case .unreadable(let path): "cannot read \(path)"
        case .missingInSysroot(let path, let sysroot):
            "\(path) is not in \(sysroot.isEmpty ? "/" : sysroot): install Debian's xen-utils-4.17, busybox-static and iproute2 there"
        case .libraryNotFound(let name, let program, let searched):
            "\(name), needed by \(program), is in none of \(searched.joined(separator: ", "))"
        case .kernelSourceMissing(let tarball):
            "no kernel source at \(tarball): run scripts/setup (it installs Debian's linux-source-6.1), or give --kernel-source"
        case .stepFailed(let step, let status, let tail, let log):
            "\(step) failed with status \(status); the end of its log (\(log)):\n\(tail)"
        case .symbolsMissing(let symbols, let config):
            "the kernel configuration lost \(symbols.count == 1 ? "a symbol" : "symbols") the fragment asks for: "
                + symbols.joined(separator: ", ") + " (in \(config)); Kernels/check-kconfig names the unmet dependency"
        case .cannotWrite(let path, let why): "cannot write \(path): \(why)"
        case .unknownDriver(let name, let known): "no kernel fragment for NIC driver \"\(name)\" (supported: \(known.joined(separator: ", ")))"
        case .notBuilt(let drivers, let store, let command):
            "the minimal IOVM image for \(drivers.joined(separator: "+")) is not built in \(store): run `\(command)`"
        }
    }
}
