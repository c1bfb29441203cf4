public import IOVMCore
public import IOVMWireFormat

/// Checks a plan against the host it is applied to: what only the host can tell of a topology, reported as
/// the planner reports its own findings, at the line that declared the thing, before anything is touched.
///
/// Today that is the IOVMs' NICs: each must exist, and one that a dom0 network driver drives must not be in use
/// there (an IPv4 address, dom0's default route, or a port of a bridge): passing it through would take dom0's own
/// network away.
public struct HostValidation: Sendable {
    /// The plan to check.
    public let plan: Plan
    /// The host as observed for it (``ApplyEngine`` observes the interfaces of the IOVMs' NICs dom0 drives).
    public let host: ObservedHost

    /// A validation of `plan` on `host`.
    public init(plan: Plan, host: ObservedHost) {
        self.plan = plan
        self.host = host
    }

    /// Every finding, in the plan's order of IOVMs and NICs.
    public var diagnostics: [Diagnostic] {
        let bindings = Self.bindings(host)
        var found: [Diagnostic] = []
        for iovm in plan.iovms {
            for nic in iovm.nics {
                let location = nic.source ?? iovm.source
                guard let binding = bindings[nic.pci] else {
                    found.append(.nicNotOnHost(nic.pci, of: iovm.name, at: location))
                    continue
                }
                // Passed through already (to this IOVM, or to another domain: the reconciler names that one).
                guard Self.dom0Drives(binding, on: host) else { continue }
                guard let network = host.dom0Network, let interface = network.interface(of: nic.pci) else { continue }
                // IPv6 addresses alone do not count: SLAAC gives one to any interface that is up on a network with
                // router advertisements. A default route does (an IPv6-only dom0's own NIC has one).
                let routed = network.defaultRouteInterfaces.contains(interface.name)
                if routed || interface.addresses.contains(where: { !$0.contains(":") }) {
                    found.append(.nicInUseInDom0(nic.pci, of: iovm.name, interface: interface, driver: binding.driver, defaultRoute: routed, at: location))
                } else if let master = interface.master {
                    found.append(.nicPortInDom0(nic.pci, of: iovm.name, interface: interface.name, master: master, at: location))
                }
            }
        }
        return found
    }

    /// Throws ``TopologyError/invalid(_:)`` when there is any finding.
    public func check() throws(TopologyError) {
        let found = diagnostics
        if !found.isEmpty { throw .invalid(found) }
    }

    /// Throws, as bad input at their lines, the IOVMs' NICs for which `exists` is false: for commands that must
    /// refuse them before anything else looks at the NICs (the minimal image is chosen by their PCI ids).
    public static func requireNICs(_ plan: Plan, exists: (PCIAddress) -> Bool) throws(TopologyError) {
        let found = missingNICs(plan, exists: exists)
        if !found.isEmpty { throw .invalid(found) }
    }

    /// The findings of ``requireNICs(_:exists:)``, one per NIC for which `exists` is false.
    public static func missingNICs(_ plan: Plan, exists: (PCIAddress) -> Bool) -> [Diagnostic] {
        plan.iovms.flatMap { iovm in
            iovm.nics.filter { !exists($0.pci) }.map { Diagnostic.nicNotOnHost($0.pci, of: iovm.name, at: $0.source ?? iovm.source) }
        }
    }

    /// The NICs whose interfaces in dom0 the validation needs: the IOVMs' NICs that exist, are not assignable, and no
    /// domain holds.
    public static func nicsToObserve(_ plan: Plan, on host: ObservedHost) -> [PCIAddress] {
        let bindings = Self.bindings(host)
        return plan.iovms.flatMap(\.pci).filter { pci in bindings[pci].map { dom0Drives($0, on: host) } ?? false }
    }

    /// The host's NICs by address.
    private static func bindings(_ host: ObservedHost) -> [PCIAddress: NICBinding] {
        Dictionary(host.nics.map { ($0.pci, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// Whether a driver of dom0 may drive the NIC: it is not assignable, and no domain holds it.
    private static func dom0Drives(_ binding: NICBinding, on host: ObservedHost) -> Bool {
        !binding.assignable && !host.domains.contains { $0.pci.contains(binding.pci) }
    }
}

extension Diagnostic {
    public static func nicNotOnHost(_ pci: PCIAddress, of iovm: String, at location: SourceLocation?) -> Diagnostic {
        Diagnostic(.error, "NIC \(pci) of IOVM \(iovm) does not exist on this host (`lspci -D` lists its PCI devices)", at: location)
    }
    static func nicInUseInDom0(
        _ pci: PCIAddress, of iovm: String, interface: Dom0Interface, driver: String?, defaultRoute: Bool, at location: SourceLocation?
    ) -> Diagnostic {
        let by = driver.map { " (driven by \($0))" } ?? ""
        var uses: [String] = []
        if !interface.addresses.isEmpty { uses.append("has addresses \(interface.addresses.joined(separator: ", "))") }
        if defaultRoute { uses.append("carries dom0's default route") }
        return Diagnostic(
            .error,
            "NIC \(pci) of IOVM \(iovm) is in use in dom0: its interface \(interface.name)\(by) \(uses.joined(separator: " and ")); passing it through would cut dom0 off that network. Name another NIC, or stop using it in dom0 first",
            at: location)
    }
    static func nicPortInDom0(_ pci: PCIAddress, of iovm: String, interface: String, master: String, at location: SourceLocation?) -> Diagnostic {
        Diagnostic(
            .error,
            "NIC \(pci) of IOVM \(iovm) is in use in dom0: its interface \(interface) is a port of \(master); passing it through would take it away. Name another NIC, or take it out of \(master) first",
            at: location)
    }
}
