public import Foundation

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
    public init(modulesAlias: String) {
        var drivers = ["1af4:1000": "virtio", "1af4:1041": "virtio"]
        for line in modulesAlias.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count == 3, fields[0] == "alias", let fragment = Self.modules[String(fields[2])] else { continue }
            // pci:v00008086d0000100Esv*sd*bc*sc*i*
            let alias = fields[1]
            guard alias.hasPrefix("pci:v"), let d = alias.firstIndex(of: "d"), let sv = alias.range(of: "sv") else { continue }
            let vendor = alias[alias.index(alias.startIndex, offsetBy: 5)..<d]
            let device = alias[alias.index(after: d)..<sv.lowerBound]
            guard vendor.count == 8, device.count == 8, !vendor.contains("*"), !device.contains("*") else { continue }
            drivers["\(vendor.suffix(4).lowercased()):\(device.suffix(4).lowercased())"] = fragment
        }
        self.drivers = drivers
    }

    /// The table of the running kernel (`/lib/modules/$(uname -r)/modules.alias`), or of the newest
    /// installed one; nil when none is readable.
    public static func installed(root: String = "/lib/modules") -> NICDriverTable? {
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let installed = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).sorted(by: >)
        for version in [release] + installed {
            if let text = try? String(contentsOfFile: "\(root)/\(version)/modules.alias", encoding: .utf8) {
                return NICDriverTable(modulesAlias: text)
            }
        }
        return nil
    }

    /// The fragment for `ids` (`8086:100e`, any case), nil when no fragment's driver claims it.
    public func driver(for ids: String) -> String? { drivers[ids.lowercased()] }
}
