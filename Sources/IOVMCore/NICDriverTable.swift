public import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// Which IOVM kernel fragment (`Kernels/nic/<driver>.config`) drives a NIC, by its PCI vendor:device
/// ids, as the kernel's own `modules.alias` says.
///
/// The Intel drivers match exact device ids (`alias pci:v00008086d0000100Esv*… e1000`). virtio-net has
/// no PCI alias of its own (virtio_pci binds any 1af4 device, then virtio_net the network type), so
/// its two PCI ids, legacy 1af4:1000 and modern 1af4:1041, are known here.
public struct NICDriverTable: Sendable, Equatable {
    /// `vvvv:dddd` (lowercase hex) → fragment name.
    public private(set) var drivers: [String: String]

    /// The kernel modules that have a fragment, and the fragment each maps to.
    static let modules = ["e1000": "e1000", "e1000e": "e1000e", "igb": "igb", "ixgbe": "ixgbe"]

    /// A table from `modules.alias` text; only drivers with a fragment are kept.
    ///
    /// Scans the UTF-8 bytes: a kernel's file has some 26,000 lines (1.3 MB), and splitting it into
    /// `Substring`s cost every `plan` and `apply` 0.1 s of CPU natively and over a second in dom0 under TCG.
    public init(modulesAlias: String) {
        var text = modulesAlias
        self = text.withUTF8 { NICDriverTable(aliasBytes: $0) }
    }

    init(aliasBytes bytes: UnsafeBufferPointer<UInt8>) {
        var drivers = ["1af4:1000": "virtio", "1af4:1041": "virtio"]
        var start = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count, bytes[end] != UInt8(ascii: "\n") { end += 1 }
            if let (ids, fragment) = Self.entry(UnsafeBufferPointer(rebasing: bytes[start..<end])) { drivers[ids] = fragment }
            start = end + 1
        }
        self.drivers = drivers
    }

    /// The start of an exact PCI alias line.
    private static let aliasPrefix = Array("alias pci:v".utf8)

    /// `alias pci:v00008086d0000100Esv*sd*bc*sc*i* e1000` → ("8086:100e", "e1000") when the module
    /// has a fragment and the vendor and device ids are exact (no `*`).
    private static func entry(_ line: UnsafeBufferPointer<UInt8>) -> (String, String)? {
        // "alias pci:v" + 8 vendor digits + "d" + 8 device digits + "sv" ... " " + module
        guard line.count > aliasPrefix.count + 19, line.starts(with: aliasPrefix) else { return nil }
        let vendor = line[11..<19]
        let device = line[20..<28]
        guard line[19] == UInt8(ascii: "d"), line[28] == UInt8(ascii: "s"), line[29] == UInt8(ascii: "v"),
            !vendor.contains(UInt8(ascii: "*")), !device.contains(UInt8(ascii: "*")),
            let space = line.firstIndex(of: UInt8(ascii: " ")), let last = line.lastIndex(of: UInt8(ascii: " ")),
            space == 5, last > 29, !line[(space + 1)..<last].contains(UInt8(ascii: " "))
        else { return nil }
        guard let fragment = modules[String(decoding: line[(last + 1)...], as: UTF8.self)] else { return nil }
        let hex = { (digits: Slice<UnsafeBufferPointer<UInt8>>) in String(decoding: digits.suffix(4), as: UTF8.self).lowercased() }
        return ("\(hex(vendor)):\(hex(device))", fragment)
    }

    /// The table of the running kernel (`/lib/modules/$(uname -r)/modules.alias`), or of the newest
    /// installed one; nil when none is readable.
    public static func installed(root: String = "/lib/modules") -> NICDriverTable? {
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let installed = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).sorted(by: >)
        for version in [release] + installed {
            if let data = FileManager.default.contents(atPath: "\(root)/\(version)/modules.alias") {
                return data.withUnsafeBytes { NICDriverTable(aliasBytes: $0.bindMemory(to: UInt8.self)) }
            }
        }
        return nil
    }

    /// The fragment for `ids` (`8086:100e`, any case), nil when no fragment's driver claims it.
    public func driver(for ids: String) -> String? { drivers[ids.lowercased()] }
}
