/// A bridge in dom0 that guests' vifs backed by dom0 join (the centralized configuration's `xenbr0…`).
public struct Dom0Bridge: Sendable, Codable, Equatable {
    /// The bridge's name, as the vifs name it.
    public var name: String
    /// The NICs the plan puts behind it (the vifs' `nic`), in order of first use; empty when no vif names one
    /// (a guest backed by dom0 without a NIC: the bridge must exist already). More than one is a conflict.
    public var nics: [PCIAddress]
    /// The guests whose vifs join it, in plan order.
    public var guests: [String]

    /// Creates one.
    public init(name: String, nics: [PCIAddress], guests: [String]) {
        self.name = name
        self.nics = nics
        self.guests = guests
    }
}

extension Plan {
    /// The bridges in dom0 the plan's vifs use (vifs backed by dom0), in order of first use. In the centralized
    /// configuration each one carries one of the topology's NICs (`xenbr<k>` for NIC *k*, or `NIC(…, bridge:)`).
    public var dom0Bridges: [Dom0Bridge] {
        var bridges: [Dom0Bridge] = []
        for domain in domains {
            for vif in domain.vifs where vif.backend == nil {
                if let index = bridges.firstIndex(where: { $0.name == vif.bridge }) {
                    if let nic = vif.nic, !bridges[index].nics.contains(nic) { bridges[index].nics.append(nic) }
                    if !bridges[index].guests.contains(domain.name) { bridges[index].guests.append(domain.name) }
                } else {
                    bridges.append(Dom0Bridge(name: vif.bridge, nics: vif.nic.map { [$0] } ?? [], guests: [domain.name]))
                }
            }
        }
        return bridges
    }

    /// Every NIC of the host the plan uses: the IOVMs' (passed through), then those behind dom0's bridges.
    public var hostNICs: [PCIAddress] {
        var nics = iovms.flatMap(\.pci)
        for nic in dom0Bridges.flatMap(\.nics) where !nics.contains(nic) { nics.append(nic) }
        return nics
    }
}
