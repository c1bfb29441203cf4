public import IOVMMonitor
import XenKit

/// The counters of the IOVMs of a Xen host behind a libvirt URI (`iovm monitor --connect`).
///
/// Each IOVM's CPU time and the host's nominal Hz come through libvirt (`virDomainGetInfo`, `virNodeGetInfo`: the
/// figures libxenstat reads, Hz to the MHz). The traffic counters stay where the agent inside each IOVM publishes them,
/// in the host's xenstore: libvirt cannot read them (its interface statistics are dom0's `/proc/net/dev`), so they are
/// read over the URI's ssh, in one round trip per sample (``RemoteDom0/iovmData(of:)``).
///
/// Not `Sendable`: it keeps the host's Hz once read; use it from one task or thread.
public final class LibvirtCounterSource: CounterSource {
    let host: any LibvirtHost
    let dom0: any RemoteDom0
    /// The domains watched.
    public let selection: IOVMSelection
    private var cpuHz: UInt64?

    /// Connects read-only to `uri`; refuses a connection that is not Xen's, or a transport without ssh.
    public convenience init(uri: String, selection: IOVMSelection) throws {
        let connection = try LibvirtConnection(uri: uri, readOnly: true)
        let driver = try connection.driverName()
        guard driver.lowercased() == "xen" else {
            throw XenError.failed(operation: "connect to \(uri)", detail: "its libvirt driver is \(driver), not Xen's libxl driver: iovm manages Xen hosts only")
        }
        guard let dom0 = SSHXenStore(uri: uri) else {
            throw XenError.failed(
                operation: "monitor \(uri)", detail: "the IOVMs' counters are in the host's xenstore, which iovm reaches over ssh only: use a xen+ssh:// URI")
        }
        self.init(host: connection, dom0: dom0, selection: selection)
    }

    init(host: any LibvirtHost, dom0: any RemoteDom0, selection: IOVMSelection) {
        self.host = host
        self.dom0 = dom0
        self.selection = selection
    }

    /// Reads CPU time through libvirt and the counters over ssh, for every watched IOVM that runs.
    public func read() throws -> CounterReading {
        let hz = try cpuHz ?? host.nodeCPUHz()
        cpuHz = hz
        let running = try host.domains().filter { $0.id != nil && !$0.stopped }
        let watched: [LibvirtDomain]
        switch selection {
        case .named(let names): watched = names.compactMap { name in running.first { $0.name == name } }
        case .publishing: watched = running  // Domain-0 too: it is the IOVM of the centralized configuration
        }
        let data = try dom0.iovmData(of: watched.compactMap(\.id))
        var samples: [IOVMSample] = []
        for domain in watched {
            guard let domid = domain.id else { continue }
            let counters: CounterLayout.Published
            if let text = data.samples[domid], let sample = CounterLayout.published(sample: text, guestName: { data.names[$0] }) {
                counters = sample
            } else {
                counters = CounterLayout.interfaces(domid: domid, list: { data.lists[$0] }, read: { data.values[$0] }, guestName: { data.names[$0] })
            }
            if case .publishing = selection, !counters.published { continue }
            samples.append(
                IOVMSample(
                    iovm: domain.name, domid: domid, cpuNanoseconds: domain.cpuNanoseconds, vcpus: max(1, domain.vcpus), nics: counters.nics,
                    vifs: counters.vifs, counterWidth: counters.width, countersPublished: counters.published, counterTime: counters.time))
        }
        return CounterReading(cpuHz: hz, iovms: samples)
    }
}
