import FoundationEssentials
import IOVMCore
import XenKit

/// iovm's mark on a NIC it made assignable, in dom0's xenstore at `/local/domain/0/iovm/nics/<dddd_bb_dd_f>`: the
/// driver the NIC had before, and the topology whose apply made it so (`iovm destroy` of another one leaves it).
///
/// The value is `{"driver":"e1000","topology":"lab-hybrid"}`. A mark written before iovm recorded the topology holds
/// the driver alone (`e1000`, or empty for none); it reads with no topology.
struct NICMark: Codable, Equatable, Sendable {
    /// The driver bound to the NIC before iovm; empty when none was.
    var driver: String
    /// The topology whose apply made the NIC assignable; nil in a mark of an older iovm.
    var topology: String?

    /// A mark of `driver` for `topology`.
    init(driver: String, topology: String?) {
        self.driver = driver
        self.topology = topology
    }

    /// The mark a xenstore value holds: this format, or an older iovm's driver alone.
    init(value: String) {
        if value.hasPrefix("{"), let mark = try? JSONDecoder().decode(NICMark.self, from: Data(value.utf8)) {
            self = mark
        } else {
            self.init(driver: value, topology: nil)
        }
    }

    /// The xenstore value.
    var value: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? driver
    }

    /// The NICs whose mark under `root` (`/local/domain/0/iovm/nics`) names `topology`, in key order.
    static func nics(markedFor topology: String, under root: String, in store: any TagStore) throws(XenError) -> [PCIAddress] {
        var values: [String: String] = [:]
        for key in try store.directory(root) ?? [] { values[key] = try store.read("\(root)/\(key)") }
        return nics(markedFor: topology, among: values)
    }

    /// ``nics(markedFor:under:in:)`` among the marks' values, read already (key → value).
    static func nics(markedFor topology: String, among values: [String: String]) -> [PCIAddress] {
        values.keys.sorted().compactMap { key in
            guard NICMark(value: values[key]!).topology == topology else { return nil }
            return LibXLBackend.pci(key: key)
        }
    }

    /// Rewrites the mark at `path` so that it names `topology`, keeping its driver; nothing when there is none.
    static func rewrite(_ path: String, for topology: String?, in store: any TagStore) throws(XenError) {
        guard let value = try store.read(path) else { return }
        var mark = NICMark(value: value)
        mark.topology = topology
        try store.write(path, mark.value)
    }

    /// The ``IOVMControl/NICBinding`` fields it gives: the previous driver (nil for none) and the topology.
    var previousDriver: String? { driver.isEmpty ? nil : driver }
}
