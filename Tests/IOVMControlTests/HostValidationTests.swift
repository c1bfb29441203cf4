import Foundation
import IOVMControl
import IOVMCore
import IOVMWireFormat
import Logging
import Testing

/// What only the host can tell of a topology (issue 13's bad inputs): an IOVM's NIC that does not exist, or that
/// dom0 uses, is refused as bad input at the line that declared it, before anything is touched.
@Suite("Host validation: the IOVMs' NICs on this host")
struct HostValidationTests {
    static let nics = ["0000:00:10.0", "0000:00:11.0", "0000:00:12.0", "0000:00:13.0"]

    /// Table 3's hybrid, each NIC declared at line 10 + its index of `hybrid.swift`; `extra` is one more NIC
    /// (for iovm1), declared at line 20.
    func plan(extra: String? = nil) throws -> Plan {
        var nics = Self.nics.enumerated().map { NICDocument(pci: $0.element, source: SourceLocation(file: "hybrid.swift", line: 10 + $0.offset)) }
        if let extra { nics.append(NICDocument(pci: extra, source: SourceLocation(file: "hybrid.swift", line: 20))) }
        let document = TopologyDocument(
            name: "table3", host: HostDocument(cores: 4, memoryMiB: 8192, scheduler: "credit"),
            defaults: DefaultsDocument(kernel: "/lab/vmlinux", guestMemoryMiB: 256),
            configuration: ConfigurationDocument(kind: .hybrid, groups: 2), nics: nics,
            guests: (1...4).map { GuestDocument(name: "guest\($0)") }, placement: PlacementDocument(kind: .hybridPinned))
        return try Planner().plan(document)
    }

    func json(_ plan: Plan) -> [String: String] { Dictionary(uniqueKeysWithValues: plan.domains.map { ($0.name, "{}") }) }

    /// A host with the four NICs driven by dom0's e1000 (`enp0s16`…), and the engine with its dom0 network.
    func host() -> (FakeXenBackend, FakeDom0Network, ApplyEngine) {
        let backend = FakeXenBackend(nics: Self.nics)
        let names = Dictionary(uniqueKeysWithValues: Self.nics.enumerated().map { (PCIAddress($0.element)!, "enp0s\(16 + $0.offset)") })
        let network = FakeDom0Network(backend: backend, names: names)
        return (backend, network, ApplyEngine(backend: backend, network: network, lock: backend, logger: Logger(label: "test")))
    }

    /// The diagnostics of a refused apply, which must have touched nothing.
    func refusal(_ plan: Plan, _ backend: FakeXenBackend, _ engine: ApplyEngine) throws -> [Diagnostic] {
        let before = backend.snapshot
        do {
            _ = try engine.apply(plan, libxlJSON: json(plan))
        } catch TopologyError.invalid(let diagnostics) {
            #expect(backend.mutatingCalls.isEmpty, "touched: \(backend.mutatingCalls)")
            #expect(backend.snapshot == before)
            return diagnostics
        }
        Issue.record("apply was not refused")
        return []
    }

    @Test("a NIC that does not exist on this host is refused at its line, nothing touched")
    func missingNICIsRefusedAtItsLine() throws {
        let (backend, _, engine) = host()
        let plan = try plan(extra: "0000:00:1e.0")
        let owner = try #require(plan.iovms.first { $0.pci.contains(PCIAddress("0000:00:1e.0")!) }).name
        let diagnostics = try refusal(plan, backend, engine)
        #expect(
            diagnostics.map(\.description) == [
                "hybrid.swift:20: error: NIC 0000:00:1e.0 of IOVM \(owner) does not exist on this host (`lspci -D` lists its PCI devices)"
            ])
        #expect(TopologyError.invalid(diagnostics).description.hasSuffix("1 error in the topology; nothing was touched."))
        // The preview (`apply --dry-run`) refuses the same way.
        #expect(throws: TopologyError.self) { try engine.preview(plan) }
    }

    @Test("a NIC dom0 uses (it has an IPv4 address) is refused, naming its interface and addresses")
    func nicWithAddressesIsRefused() throws {
        let (backend, network, engine) = host()
        network.setAddresses(["10.0.2.15/24", "fec0::5054:ff:fe12:3456/64"], of: "enp0s17")
        let diagnostics = try refusal(try plan(), backend, engine)
        #expect(diagnostics.count == 1)
        let text = try #require(diagnostics.first?.description)
        #expect(text.hasPrefix("hybrid.swift:11: error: NIC 0000:00:11.0 of IOVM iovm0 is in use in dom0: its interface enp0s17"))
        #expect(text.contains("has addresses 10.0.2.15/24, fec0::5054:ff:fe12:3456/64;"))
    }

    @Test("a NIC that carries dom0's default route is refused even without an IPv4 address")
    func nicWithTheDefaultRouteIsRefused() throws {
        let (backend, network, engine) = host()
        network.setAddresses(["2001:db8::2/64"], of: "enp0s16")
        network.route(through: "enp0s16")
        let diagnostics = try refusal(try plan(), backend, engine)
        #expect(diagnostics.map { $0.location?.line } == [10])
        #expect(diagnostics.first?.message.contains("has addresses 2001:db8::2/64 and carries dom0's default route") == true)
    }

    /// SLAAC gives an IPv6 address to any interface that is up on a network with router advertisements: alone it
    /// does not say dom0 uses the NIC.
    @Test("an IPv6 address alone (SLAAC) does not make a NIC dom0's")
    func anIPv6AddressAloneIsNoUse() throws {
        let (backend, network, engine) = host()
        network.setAddresses(["fec0::5054:ff:fe12:3456/64"], of: "enp0s18")
        let plan = try plan()
        _ = try engine.apply(plan, libxlJSON: json(plan))
        #expect(backend.snapshot.nics.allSatisfy { $0.assignable })
    }

    @Test("a NIC whose interface is a port of a dom0 bridge is refused, naming the bridge")
    func nicInABridgeIsRefused() throws {
        let (backend, network, engine) = host()
        network.addBridge("br-lan", ports: ["enp0s18"])
        let diagnostics = try refusal(try plan(), backend, engine)
        #expect(
            diagnostics.map(\.description) == [
                "hybrid.swift:12: error: NIC 0000:00:12.0 of IOVM iovm1 is in use in dom0: its interface enp0s18 is a port of br-lan; passing it through would take it away. Name another NIC, or take it out of br-lan first"
            ])
    }

    @Test("idle NICs of dom0's driver are taken; once passed through they are not looked at again")
    func idleNICsAreTakenAndNotObservedOnceAssigned() throws {
        let (backend, _, engine) = host()
        let plan = try plan()
        _ = try engine.apply(plan, libxlJSON: json(plan))
        #expect(backend.snapshot.nics.allSatisfy { $0.assignable })
        #expect(backend.calls.filter { $0.hasPrefix("observeInterface") }.count == 4)
        // A re-apply: the NICs are their IOVMs' now, and dom0 has no interface of theirs to ask about.
        let asked = backend.calls.count
        let report = try engine.apply(plan, libxlJSON: json(plan))
        #expect(report.nothingToDo)
        #expect(!backend.calls.dropFirst(asked).contains { $0.hasPrefix("observeInterface") })
    }

    @Test("every finding at once, in declaration order")
    func everyFindingAtOnce() throws {
        let (backend, network, engine) = host()
        network.setAddresses(["192.168.1.2/24"], of: "enp0s16")
        network.addBridge("br0", ports: ["enp0s19"])
        let diagnostics = try refusal(try plan(extra: "0000:00:1f.0"), backend, engine)
        #expect(diagnostics.map { $0.location?.line } == [10, 13, 20])
    }
}
