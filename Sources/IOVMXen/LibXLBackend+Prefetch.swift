import IOVMCore
import XenKit

extension LibXLBackend {
    /// dom0's pci backend directory, one child per domain with devices passed through.
    static let pciBackendRoot = "/local/domain/0/backend/pci"

    /// Where a domain's name is (what `libxl_domid_to_name` reads).
    static func namePath(_ domid: UInt32) -> String { "/local/domain/\(domid)/name" }
    /// Where iovm's tags of the domains it made are, one per domain ID.
    static let managedRoot = "\(tagRoot)/managed"
    /// Where iovm's tag of a domain is.
    static func managedPath(_ domid: UInt32) -> String { "\(managedRoot)/\(domid)" }
    /// Where iovm records that it made a NIC assignable.
    static func nicMarkPath(_ pci: PCIAddress) -> String { "\(tagRoot)/nics/\(key(pci))" }
    /// Where iovm records the topology that made a cpupool.
    static func poolOwnerPath(_ name: String) -> String { "\(tagRoot)/pools/\(key(pool: name))" }
    /// A domain's vif frontends.
    static func vifDevicesPath(_ domid: UInt32) -> String { "/local/domain/\(domid)/device/vif" }

    /// Fetches, in three waves of one pipelined batch each, what ``observe(nics:store:)`` then reads domain by domain:
    /// 1. dom0's pci backend listing, the names, iovm's tags and records, the pools' owners, each domain's vif listing;
    /// 2. the records' entries, each PCI backend's device count, each vif's backend path (libxl's record of it);
    /// 3. each PCI device, each vif backend's state and hotplug status (or the frontend's own claim when libxl has
    ///    no record).
    /// Each wave's paths come from the previous wave's answers, through the same functions the reads use. A store
    /// that cannot batch fetches nothing, and the observation reads one by one as before.
    static func prefetch(for domains: [DomainInfo], pools: [CPUPoolInfo], nics: [PCIAddress], into store: PrefetchingStore) {
        let guests = domains.filter { $0.domid != 0 }
        var first: [XenStoreQuery] = [.directory(pciBackendRoot), .directory(intentRoot), .directory(parkedRoot), .directory(appliedRoot)]
        first += domains.filter { $0.name == nil }.map { .read(namePath($0.domid)) }
        first += domains.map { .read(managedPath($0.domid)) }
        first += pools.map { .read(poolOwnerPath($0.name)) }
        first += guests.map { .directory(vifDevicesPath($0.domid)) }
        first += nics.map { .read(nicMarkPath($0)) }
        store.prefetch(first)
        // The next waves' paths are read from this one's answers: without them, reading to find those paths would
        // only double the reads.
        guard store.batching else { return }

        func listing(_ path: String) -> [String] { ((try? store.directory(path)) ?? nil) ?? [] }
        let pciBackends = Set(listing(pciBackendRoot))
        let withPCI = guests.filter { pciBackends.contains("\($0.domid)") }
        let vifs = guests.map { domain in (domid: domain.domid, devids: listing(vifDevicesPath(domain.domid)).compactMap { Int($0) }) }
        var second: [XenStoreQuery] = []
        second += listing(intentRoot).map { .read("\(intentRoot)/\($0)") }
        second += listing(parkedRoot).map { .read("\(parkedRoot)/\($0)") }
        second += listing(appliedRoot).map { .read("\(appliedRoot)/\($0)") }
        second += withPCI.map { .read("\(pciBackendPath($0.domid))/0/num_devs") }
        second += vifs.flatMap { vif in vif.devids.map { .read(vifBackendKeys(of: vif.domid, devid: $0)[0]) } }
        store.prefetch(second)
        guard store.batching else { return }

        var third: [XenStoreQuery] = []
        for domain in withPCI {
            let path = "\(pciBackendPath(domain.domid))/0"
            let count = ((try? store.read("\(path)/num_devs")) ?? nil).flatMap { Int($0) } ?? 0
            third += (0..<min(max(count, 0), 256)).map { .read("\(path)/dev-\($0)") }
        }
        for vif in vifs {
            for devid in vif.devids {
                let keys = vifBackendKeys(of: vif.domid, devid: devid)
                let recorded = (try? store.read(keys[0])) ?? nil
                if let backend = recorded, backendDomid(ofVifBackend: backend, frontend: vif.domid, devid: devid) != nil {
                    third += [.read("\(backend)/state"), .read("\(backend)/hotplug-status")]
                } else {
                    third.append(.read(keys[1]))
                }
            }
        }
        store.prefetch(third)
    }
}
