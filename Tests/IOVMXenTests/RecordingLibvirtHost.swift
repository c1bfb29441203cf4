import CPUSets
import Foundation
import IOVMCore
import Synchronization
import XenKit

@testable import IOVMXen

/// A libvirt host in memory, recording every call that changes it: what ``LibvirtBackend`` tests drive
/// instead of a libvirt daemon. Domains it creates take their vCPUs, pins, weight and iovm's metadata from
/// the XML, as libvirt's libxl driver does; `store` gets what a real host's xenstore would show (an IOVM's
/// `xl devd` ready, each guest vif connected).
final class RecordingLibvirtHost: LibvirtHost, @unchecked Sendable {
    struct Domain {
        var id: UInt32
        var uuid: String
        var xml: String
        var metadata: String?
        var vcpus: Int
        var pins: [CPUSet]
        var weight: Int
        var cap: Int
        var paused: Bool
        var cpuNanoseconds: UInt64 = 0
    }

    private struct State {
        var domains: [String: Domain] = [:]
        var drivers: [String: String] = [:]
        var nextID: UInt32 = 1
        var calls: [String] = []
        var reads: [String] = []
    }

    let uri = "xen+ssh://root@fake/system"
    let cores = 4
    let store: MemoryTagStore
    private let state = Mutex(State())

    init(nics: [String], store: MemoryTagStore) {
        self.store = store
        state.withLock { state in
            for nic in nics { state.drivers[LibvirtBackend.nodeDevice(PCIAddressForTests(nic))] = "e1000" }
            state.domains["Domain-0"] = Domain(id: 0, uuid: "00000000-0000-0000-0000-000000000000", xml: "", metadata: nil, vcpus: 2, pins: [], weight: 256, cap: 0, paused: false)
        }
    }

    /// Every call that changed the host, in order (`create iovm0`, `detach pci_0000_00_10_0 xen`, …).
    var calls: [String] { state.withLock { $0.calls } }
    /// The domain listings and credit reads, in order (`domains`, `credit iovm0`): the round trips a lookup costs.
    var reads: [String] { state.withLock { $0.reads } }
    /// A domain now.
    func domainState(_ name: String) -> Domain? { state.withLock { $0.domains[name] } }
    /// The driver a node device is bound to now.
    func driver(_ device: String) -> String? { state.withLock { $0.drivers[device] } }

    /// Adds a domain iovm did not make.
    func addForeign(_ name: String, xml: String = "<domain type='xen'></domain>") {
        state.withLock { state in
            state.domains[name] = Domain(
                id: state.nextID, uuid: UUID().uuidString.lowercased(), xml: xml, metadata: nil, vcpus: 1, pins: [CPUSet(0..<4)], weight: 256, cap: 0,
                paused: false)
            state.nextID += 1
        }
    }

    /// Sets the CPU time a domain has used.
    func setCPU(_ name: String, nanoseconds: UInt64) { state.withLock { $0.domains[name]?.cpuNanoseconds = nanoseconds } }

    func nodeCPUHz() throws(XenError) -> UInt64 { 2_400_000_000 }

    private func record(_ call: String) { state.withLock { $0.calls.append(call) } }

    private func missing(_ name: String) -> XenError {
        .libvirt(code: 42, name: "VIR_ERR_NO_DOMAIN", operation: "find domain \(name) on \(uri)", message: "Domain not found")
    }

    private func describe(_ name: String, _ domain: Domain) -> LibvirtDomain {
        LibvirtDomain(
            name: name, id: domain.id, uuid: domain.uuid, state: domain.paused ? 3 : 1, vcpus: domain.vcpus, maxMemoryKiB: 262_144,
            cpuNanoseconds: domain.cpuNanoseconds)
    }

    func hostCPUCount() throws(XenError) -> Int { cores }

    func domains() throws(XenError) -> [LibvirtDomain] {
        state.withLock { state in
            state.reads.append("domains")
            return state.domains.sorted { $0.value.id < $1.value.id }.map { describe($0.key, $0.value) }
        }
    }

    func domain(named name: String) throws(XenError) -> LibvirtDomain? {
        state.withLock { $0.domains[name] }.map { describe(name, $0) }
    }

    func metadata(of name: String, namespace: String) throws(XenError) -> String? {
        guard let domain = state.withLock({ $0.domains[name] }) else { throw missing(name) }
        return domain.metadata
    }

    func xml(of name: String) throws(XenError) -> String {
        guard let domain = state.withLock({ $0.domains[name] }) else { throw missing(name) }
        return domain.xml
    }

    func createDomain(xml: String, name: String, paused: Bool) throws(XenError) -> LibvirtDomain {
        record("create \(name)\(paused ? " paused" : "")")
        let vcpus = Int(LibvirtBackend.element("vcpu", in: xml) ?? "1") ?? 1
        let pin = LibvirtBackend.attribute("cpuset", of: "vcpupin", in: xml).flatMap { (try? CPUSet(xlList: $0)) ?? nil } ?? CPUSet(0..<cores)
        let metadata = xml.range(of: "<iovm:managed").flatMap { start in
            xml.range(of: "</iovm:managed>").map { String(xml[start.lowerBound..<$0.upperBound]) }
        }
        let domain = state.withLock { state -> Domain in
            let domain = Domain(
                id: state.nextID, uuid: UUID().uuidString.lowercased(), xml: xml, metadata: metadata, vcpus: vcpus, pins: Array(repeating: pin, count: vcpus),
                weight: Int(LibvirtBackend.element("shares", in: xml) ?? "256") ?? 256, cap: 0, paused: paused)
            state.domains[name] = domain
            state.nextID += 1
            return domain
        }
        // What the host's xenstore shows once it runs: an IOVM's devd up, a guest's vifs connected.
        if xml.contains("<hostdev") { try store.write("/local/domain/\(domain.id)/data/iovm/devd", "1") }
        var devid = 0
        for block in xml.components(separatedBy: "<backenddomain name='").dropFirst() {
            let backend = String(block.prefix { $0 != "'" })
            let backendID = state.withLock { $0.domains[backend]?.id } ?? 0
            let path = "/local/domain/\(backendID)/backend/vif/\(domain.id)/\(devid)"
            try store.write("/local/domain/\(domain.id)/device/vif/\(devid)/backend", path)
            try store.write("/local/domain/\(domain.id)/device/vif/\(devid)/backend-id", "\(backendID)")
            try store.write("\(path)/state", "4")
            devid += 1
        }
        return describe(name, domain)
    }

    func destroyDomain(_ name: String) throws(XenError) {
        record("destroy \(name)")
        guard state.withLock({ $0.domains.removeValue(forKey: name) }) != nil else { throw missing(name) }
    }

    func resumeDomain(_ name: String) throws(XenError) {
        record("resume \(name)")
        state.withLock { $0.domains[name]?.paused = false }
    }

    func attachDevice(_ name: String, xml: String) throws(XenError) { record("attach \(name)") }
    func detachDevice(_ name: String, xml: String) throws(XenError) { record("detach \(name)") }

    func vcpuAffinity(of name: String, vcpus: Int, cores: Int) throws(XenError) -> [CPUSet] {
        guard let domain = state.withLock({ $0.domains[name] }) else { throw missing(name) }
        return domain.pins
    }

    func pinVCPU(_ name: String, vcpu: Int, to cpus: CPUSet, cores: Int) throws(XenError) {
        record("pin \(name) \(vcpu) \(cpus)")
        state.withLock { $0.domains[name]?.pins[vcpu] = cpus }
    }

    func credit(of name: String) throws(XenError) -> (weight: Int?, cap: Int?) {
        state.withLock { $0.reads.append("credit \(name)") }
        guard let domain = state.withLock({ $0.domains[name] }) else { throw missing(name) }
        return (domain.weight, domain.cap)
    }

    func scheduler(of name: String) throws(XenError) -> String { "credit" }

    func setCredit(of name: String, weight: Int?, cap: Int?) throws(XenError) {
        record("credit \(name) \(weight.map(String.init) ?? "-") \(cap.map(String.init) ?? "-")")
        state.withLock { state in
            if let weight { state.domains[name]?.weight = weight }
            if let cap { state.domains[name]?.cap = cap }
        }
    }

    func nodeDeviceXML(_ name: String) throws(XenError) -> String? {
        guard let driver = state.withLock({ $0.drivers[name] }) else { return nil }
        return "<device><name>\(name)</name><driver><name>\(driver)</name></driver><capability type='pci'/></device>"
    }

    func detachNodeDevice(_ name: String, driver: String) throws(XenError) {
        record("detach \(name) \(driver)")
        state.withLock { $0.drivers[name] = "pciback" }
    }

    /// Whether reattach leaves the NIC on pciback, as libvirt 9.0 did in the lab (it stayed in pciback's slots).
    let reattachKeepsPciback = Mutex(false)

    func reattachNodeDevice(_ name: String) throws(XenError) {
        record("reattach \(name)")
        let keeps = reattachKeepsPciback.withLock { $0 }
        if !keeps { state.withLock { $0.drivers[name] = "e1000" } }
    }

    /// What giving a NIC back from pciback over ssh does.
    func releaseFromPciback(_ pci: PCIAddress) {
        record("pciback release \(pci)")
        state.withLock { $0.drivers[LibvirtBackend.nodeDevice(pci)] = "e1000" }
    }
}

/// A PCI address from text a test knows is valid.
func PCIAddressForTests(_ text: String) -> PCIAddress { PCIAddress(text)! }
