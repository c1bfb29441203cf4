import IOVMControl
import IOVMCore
import XenKit

/// A remote dom0, for what libvirt cannot do: its xenstore, Xen's own list of domains, pciback, and files.
///
/// ``LibvirtBackend`` reaches it through ``SSHXenStore`` (the ssh access of a `xen+ssh://` URI); tests use a
/// recording fake. Every call is one round trip.
protocol RemoteDom0: TagStore, Sendable {
    /// `user@host:port`, for messages.
    var target: String { get }
    /// Makes a paused driver domain's xenstore `libxl/` and `device-model/` directories its own (what libxl does
    /// for driver_domain=1, which libvirt never sets).
    func makeDriverDomainNodes(_ domid: UInt32) throws(XenError)
    /// Every domain Xen runs (domid → name), libvirt's or not: libvirt lists only the domains it started.
    func domainNames() throws(XenError) -> [UInt32: String]
    /// The vifs of `domids` with their backends' states.
    func vifs(of domids: [UInt32]) throws(XenError) -> [UInt32: [ObservedVif]]
    /// Gives a NIC that pciback kept after libvirt's reattach back to dom0's drivers.
    func releaseFromPciback(_ pci: PCIAddress) throws(XenError)
    /// Of `paths`, those the host has no non-empty regular file at, or (for a path in `sizes`) none of that size.
    func missingFiles(_ paths: [String], sizes: [String: UInt64]) throws(XenError) -> [String]
    /// Copies this machine's file at `path` to the same path on the host; a copy cut short never stands as the file.
    func copy(_ path: String) throws(XenError)
    /// What the counters agents publish in the xenstore of `domids` (their `data/iovm` as ``CounterLayout`` reads it),
    /// and every domain's name.
    func iovmData(of domids: [UInt32]) throws(XenError) -> IOVMData
}

extension RemoteDom0 {
    /// Of `paths`, those the host has no non-empty regular file at.
    func missingFiles(_ paths: [String]) throws(XenError) -> [String] { try missingFiles(paths, sizes: [:]) }
}

/// A remote host's counters nodes as ``CounterLayout/interfaces(domid:list:read:guestName:)`` reads them.
struct IOVMData: Sendable, Equatable {
    /// Directory → its children.
    var lists: [String: [String]] = [:]
    /// Path → value.
    var values: [String: String] = [:]
    /// Every domain Xen runs: domid → name.
    var names: [UInt32: String] = [:]

    /// Parses lines `L <dir> <child>...`, `V <path> <value>` and `N <domid> <name>`.
    static func parse(_ text: String) -> IOVMData {
        var data = IOVMData()
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
            guard fields.count >= 2 else { continue }
            let rest = fields.count > 2 ? fields[2] : ""
            switch fields[0] {
            case "L": data.lists[fields[1]] = rest.split(separator: " ").map(String.init)
            case "V": data.values[fields[1]] = rest
            case "N": if let domid = UInt32(fields[1]) { data.names[domid] = rest }
            default: continue
            }
        }
        return data
    }
}
