public import IOVMCore

/// The privileged boundary of dom0's own network: the bridges that guests' vifs backed by dom0 join
/// (the centralized configuration), and the NICs dom0's drivers drive.
///
/// A seam of its own next to ``XenBackend`` (which is Xen's: libxl and xenstore). `IPRouteDom0Network`
/// (in the `IOVMXen` target) is the real one, over sysfs and iproute2's `ip`, with its tags in dom0's
/// xenstore (`/local/domain/0/iovm/bridges/<name>` = the topology); unit tests use `FakeDom0Network`.
/// iovm changes or removes only bridges it made (its tag); any other bridge is used as it is.
public protocol Dom0Network: Sendable {
    /// The network interface of NIC `pci` in dom0, when a network driver of dom0 drives it (its
    /// `/sys/bus/pci/devices/<bdf>/net/` entry); nil when it is bound to pciback, to no driver, or absent.
    func interface(of pci: PCIAddress) throws -> Dom0Interface?
    /// The network device `name` in dom0 (a bridge, or something else of that name), with iovm's tag; nil when
    /// there is none.
    func bridge(named name: String) throws -> ObservedBridge?
    /// The bridges iovm made, by their tags: name → the topology it made each for (whether it exists or not).
    func managedBridges() throws -> [String: String]
    /// The interfaces dom0's default routes (IPv4 and IPv6) leave through.
    func defaultRouteInterfaces() throws -> Set<String>
    /// Tags bridge `name` as `topology`'s, then makes it (up, no STP) with NIC `pci`'s interface as its port (up).
    /// A NIC bound to no driver first gets the one its PCI ids name (it keeps it afterwards). A bridge of that name
    /// iovm made already is completed (an apply stopped halfway). Refuses an interface that is a port of another
    /// bridge or carries addresses. Returns the interface.
    func createBridge(_ name: String, on pci: PCIAddress, topology: String) throws -> String
    /// Removes bridge `name`, which iovm made (its ports leave it; the NIC stays with its driver), and its tag;
    /// a bridge already gone only loses its tag. Refuses one iovm did not make.
    func removeBridge(named name: String) throws
}

/// A NIC's network interface in dom0.
public struct Dom0Interface: Sendable, Codable, Equatable {
    /// Its name (`enp0s16`, `eth1`).
    public var name: String
    /// The bridge (or other master) it is a port of; nil when none.
    public var master: String?
    /// Its global IPv4/IPv6 addresses (`10.0.2.15/24`): dom0 uses an interface that has some.
    public var addresses: [String]

    /// Creates one.
    public init(name: String, master: String? = nil, addresses: [String] = []) {
        self.name = name
        self.master = master
        self.addresses = addresses
    }
}

/// A network device of dom0 that a plan names as a bridge.
public struct ObservedBridge: Sendable, Codable, Equatable {
    /// Its name.
    public var name: String
    /// Whether it is a bridge (a device of another kind with the bridge's name is a conflict).
    public var isBridge: Bool
    /// Its ports (the NIC's interface, `vif3.0`, …).
    public var ports: [String]
    /// The topology iovm made it for (its tag); nil when iovm did not make it.
    public var managedBy: String?

    /// Creates one.
    public init(name: String, isBridge: Bool = true, ports: [String] = [], managedBy: String? = nil) {
        self.name = name
        self.isBridge = isBridge
        self.ports = ports
        self.managedBy = managedBy
    }
}

/// dom0's network as a plan's bridges need it (see ``Dom0Network``).
public struct ObservedDom0Network: Sendable, Codable, Equatable {
    /// The devices named as the plan's bridges that exist; a bridge not here does not exist.
    public var bridges: [ObservedBridge]
    /// The NICs behind the plan's bridges that a dom0 network driver drives, by PCI address.
    public var interfaces: [String: Dom0Interface]
    /// The interfaces dom0's default routes leave through (read only when the IOVMs' NICs are looked at).
    public var defaultRouteInterfaces: Set<String>

    /// Creates one.
    public init(bridges: [ObservedBridge], interfaces: [String: Dom0Interface], defaultRouteInterfaces: Set<String> = []) {
        self.bridges = bridges
        self.interfaces = interfaces
        self.defaultRouteInterfaces = defaultRouteInterfaces
    }

    /// The device named `name`.
    public func bridge(_ name: String) -> ObservedBridge? { bridges.first { $0.name == name } }
    /// The interface of NIC `pci`.
    public func interface(of pci: PCIAddress) -> Dom0Interface? { interfaces[pci.description] }
}

extension Dom0Network {
    /// What `plan`'s bridges need to know of dom0's network now, and the interfaces of `nics` (the IOVMs' NICs
    /// dom0 drives, which ``HostValidation`` refuses to take from dom0 while it uses them).
    public func observe(for plan: Plan, nics: [PCIAddress] = []) throws -> ObservedDom0Network {
        let bridges = plan.dom0Bridges
        var observed: [ObservedBridge] = []
        var interfaces: [String: Dom0Interface] = [:]
        for bridge in bridges {
            if let found = try self.bridge(named: bridge.name) { observed.append(found) }
            for nic in bridge.nics where interfaces[nic.description] == nil {
                if let interface = try interface(of: nic) { interfaces[nic.description] = interface }
            }
        }
        var routed: Set<String> = []
        for nic in nics where interfaces[nic.description] == nil {
            if let interface = try interface(of: nic) { interfaces[nic.description] = interface }
        }
        if nics.contains(where: { interfaces[$0.description] != nil }) { routed = try defaultRouteInterfaces() }
        return ObservedDom0Network(bridges: observed, interfaces: interfaces, defaultRouteInterfaces: routed)
    }
}
