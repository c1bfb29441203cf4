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
    /// The values of the children of each of `roots` (root → child → value; a root without children is absent), in
    /// one round trip: iovm's NIC marks and applied plans, read one by one, cost a round trip each.
    func records(under roots: [String]) throws(XenError) -> [String: [String: String]]
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
    /// Domid → its agent's one-node sample (`data/iovm/sample`), when it publishes one: then its per-key nodes are not
    /// read, since the static agent leaves `agent/uptime` at the time of the last change while the IOVM is idle.
    var samples: [UInt32: String] = [:]

    /// Parses lines `L <dir> <child>...`, `V <path> <value>`, `N <domid> <name>` and `S <domid> <line>` (a line of that
    /// domain's sample each, in order).
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
            case "S": if let domid = UInt32(fields[1]) { data.samples[domid, default: ""] += rest + "\n" }
            default: continue
            }
        }
        return data
    }
}

/// What ``RemoteDom0/records(under:)`` reads: per child of a root, a line `<root>\t<child>\t<bytes>` and then that many
/// bytes of value and a newline, so a value may hold any byte.
enum RemoteRecords {
    /// The records of `output`. A line that is not a record's header (ssh's own warnings share the output) is skipped;
    /// a record cut short ends the parse, and what came before it stands.
    static func parse(_ output: [UInt8]) -> [String: [String: String]] {
        var records: [String: [String: String]] = [:]
        var index = 0
        while index < output.count {
            guard let newline = output[index...].firstIndex(of: UInt8(ascii: "\n")) else { break }
            let header = output[index..<newline].split(separator: UInt8(ascii: "\t"), omittingEmptySubsequences: false)
            guard header.count == 3, let count = Int(String(decoding: header[2], as: UTF8.self)), count >= 0 else {
                index = newline + 1
                continue
            }
            guard count < output.count - newline - 1, output[newline + 1 + count] == UInt8(ascii: "\n") else { break }
            let value = String(decoding: output[(newline + 1)..<(newline + 1 + count)], as: UTF8.self)
            records[String(decoding: header[0], as: UTF8.self), default: [:]][String(decoding: header[1], as: UTF8.self)] = value
            index = newline + 2 + count
        }
        return records
    }
}
