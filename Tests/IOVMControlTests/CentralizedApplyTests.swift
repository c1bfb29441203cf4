import Foundation
import IOVMControl
import IOVMCore
import IOVMWireFormat
import Logging
import Synchronization
import Testing

/// The centralized baseline (issue 12): apply makes dom0's bridges with the NICs dom0 drives, before the guests
/// whose vifs join them, tags them, and destroy and rollback remove exactly the bridges iovm made.
@Suite("Centralized apply: dom0's bridges")
struct CentralizedApplyTests {
    static let nics = ["0000:00:10.0", "0000:00:11.0", "0000:00:12.0"]

    /// `Examples/centralized.swift`: 3 NICs in dom0, 3 guests, one on each NIC's bridge `xenbr0…xenbr2`.
    func plan(name: String = "paper-centralized", guests: Int = 3) throws -> Plan {
        try Planner().plan(
            TopologyDocument(
                name: name, host: HostDocument(cores: 4, memoryMiB: 4096, scheduler: "credit"),
                defaults: DefaultsDocument(kernel: "/var/lib/xen/guest/vmlinux", ramdisk: "/var/lib/xen/guest/initrd.img"),
                configuration: ConfigurationDocument(kind: .centralized), nics: Self.nics.map { NICDocument(pci: $0) },
                guests: (1...guests).map { GuestDocument(name: "guest\($0)") }, placement: PlacementDocument(kind: .credit)))
    }

    func json(_ plan: Plan) -> [String: String] { Dictionary(uniqueKeysWithValues: plan.domains.map { ($0.name, "{}") }) }

    /// A host with the three NICs with their dom0 driver (interfaces `enp0s16`, `enp0s17`, `enp0s18`).
    func host(extraDomains: [ObservedDomain] = []) -> (FakeXenBackend, FakeDom0Network) {
        let backend = FakeXenBackend(nics: Self.nics, extraDomains: extraDomains)
        let names = Dictionary(uniqueKeysWithValues: Self.nics.enumerated().map { (PCIAddress($0.element)!, "enp0s\(16 + $0.offset)") })
        return (backend, FakeDom0Network(backend: backend, names: names))
    }

    func engine(_ backend: FakeXenBackend, _ network: FakeDom0Network, point: CrashPoint? = nil) -> ApplyEngine {
        var engine = ApplyEngine(backend: backend, network: network, lock: backend, logger: Logger(label: "test"))
        engine.crashPoint = point
        backend.crashPoint.withLock { $0 = point }
        return engine
    }

    @Test("the plan's bridges: xenbr<k> carries NIC k")
    func planBridges() throws {
        let plan = try plan()
        #expect(plan.iovms.isEmpty)
        #expect(plan.dom0Bridges.map(\.name) == ["xenbr0", "xenbr1", "xenbr2"])
        #expect(plan.dom0Bridges.map { $0.nics.map(\.description) } == Self.nics.map { [$0] })
        #expect(plan.dom0Bridges.map(\.guests) == [["guest1"], ["guest2"], ["guest3"]])
        #expect(plan.hostNICs.map(\.description) == Self.nics)
    }

    @Test("apply makes and tags the bridges before the guests; a second apply changes nothing")
    func applyMakesBridgesFirst() throws {
        let (backend, network) = host()
        let plan = try plan()
        let preview = try engine(backend, network).preview(plan)
        #expect(preview.conflicts.isEmpty)
        #expect(
            Array(preview.changes.prefix(3).map(\.description)) == [
                "bridge xenbr0 on 0000:00:10.0 (enp0s16)", "bridge xenbr1 on 0000:00:11.0 (enp0s17)", "bridge xenbr2 on 0000:00:12.0 (enp0s18)",
            ])

        let report = try engine(backend, network).apply(plan, libxlJSON: json(plan))
        #expect(report.done.prefix(3) == ["bridge xenbr0 on 0000:00:10.0 (enp0s16)", "bridge xenbr1 on 0000:00:11.0 (enp0s17)", "bridge xenbr2 on 0000:00:12.0 (enp0s18)"])
        let calls = backend.mutatingCalls
        let lastBridge = try #require(calls.lastIndex { $0.hasPrefix("createBridge") })
        let firstGuest = try #require(calls.firstIndex { $0.hasPrefix("createDomain") })
        #expect(lastBridge < firstGuest, "\(calls)")
        #expect(!calls.contains { $0.hasPrefix("makeAssignable") || $0.hasPrefix("releaseNIC") })

        let state = network.snapshot
        #expect(state.tags == ["xenbr0": "paper-centralized", "xenbr1": "paper-centralized", "xenbr2": "paper-centralized"])
        // Each bridge carries its NIC and its guest's vif (what dom0's vif-bridge script adds).
        for (index, guest) in plan.guests.enumerated() {
            let domid = try #require(report.domids[guest.name])
            #expect(state.bridges["xenbr\(index)"] == ["enp0s\(16 + index)", "vif\(domid).0"])
        }

        let before = backend.mutatingCalls.count
        let again = try engine(backend, network).apply(plan, libxlJSON: json(plan))
        #expect(again.nothingToDo, "\(again.done)")
        #expect(backend.mutatingCalls.count == before)
        #expect(try engine(backend, network).preview(plan).changes.isEmpty)
    }

    @Test("destroy removes the guests, then exactly the bridges iovm made for the topology")
    func destroyRemovesOnlyIOVMsBridges() throws {
        let (backend, network) = host()
        network.addBridge("xenbr1", ports: ["enp0s17"])  // dom0's own: used as it is
        network.addBridge("xenbr9", ports: ["eth9"], tag: "other")  // another topology's
        let plan = try plan()
        _ = try engine(backend, network).apply(plan, libxlJSON: json(plan))
        #expect(!backend.mutatingCalls.contains("createBridge xenbr1 0000:00:11.0"))
        #expect(network.snapshot.bridges["xenbr1"]?.count == 2)  // its NIC and guest2's vif

        let report = try engine(backend, network).destroy(topology: plan.topology, nics: plan.hostNICs)
        let calls = backend.mutatingCalls
        #expect(report.done.contains("removed bridge xenbr0 from dom0") && report.done.contains("removed bridge xenbr2 from dom0"))
        let lastGuest = try #require(calls.lastIndex { $0.hasPrefix("destroyDomain") })
        let firstRemoval = try #require(calls.firstIndex { $0.hasPrefix("removeBridge") })
        #expect(lastGuest < firstRemoval, "\(calls)")
        #expect(calls.filter { $0.hasPrefix("removeBridge") } == ["removeBridge xenbr0", "removeBridge xenbr2"])
        let state = network.snapshot
        #expect(state.bridges == ["xenbr1": ["enp0s17"], "xenbr9": ["eth9"]])
        #expect(state.tags == ["xenbr9": "other"])
        #expect(backend.snapshot.domains.map(\.name) == ["Domain-0"])
        // Nothing left to destroy.
        #expect(try engine(backend, network).destroy(topology: plan.topology, nics: plan.hostNICs).done.isEmpty)
    }

    @Test("a bridge that exists and is not iovm's is used as it is and never changed")
    func foreignBridgeIsUsedAsIs() throws {
        let (backend, network) = host()
        network.addBridge("xenbr0", ports: ["eth7"])
        let plan = try plan()
        let report = try engine(backend, network).apply(plan, libxlJSON: json(plan))
        #expect(!report.done.contains { $0.hasPrefix("bridge xenbr0") })
        #expect(!backend.mutatingCalls.contains { $0.hasPrefix("createBridge xenbr0") })
        #expect(network.snapshot.tags["xenbr0"] == nil)
        #expect(network.snapshot.bridges["xenbr0"] == ["eth7", "vif\(report.domids["guest1"]!).0"])
        _ = try engine(backend, network).destroy(topology: plan.topology, nics: plan.hostNICs)
        #expect(!backend.mutatingCalls.contains("removeBridge xenbr0"))
        #expect(network.snapshot.bridges["xenbr0"] == ["eth7"])
    }

    @Test("a failed guest creation removes the bridges the apply made, and nothing else")
    func rollbackRemovesMadeBridges() throws {
        let (backend, network) = host()
        network.addBridge("xenbr1", ports: ["enp0s17"])
        let initial = (backend.snapshot, network.snapshot)
        backend.fail("createDomain guest2")
        let plan = try plan()
        do {
            _ = try engine(backend, network).apply(plan, libxlJSON: json(plan))
            Issue.record("apply succeeded despite the failure")
        } catch let error as ApplyError {
            let text = error.description
            #expect(text.contains("rolled back: bridge xenbr0 on 0000:00:10.0 (enp0s16)"), "\(text)")
            #expect(text.contains("rolled back: bridge xenbr2 on 0000:00:12.0 (enp0s18)"), "\(text)")
            #expect(!text.contains("xenbr1"), "\(text)")
            #expect(text.hasSuffix("The host is as it was before this apply."), "\(text)")
        }
        var after = backend.snapshot
        after.nextDomid = initial.0.nextDomid
        #expect(after == initial.0)
        #expect(network.snapshot == initial.1)
    }

    @Test("a bridge iovm made for another topology is a conflict; nothing is touched")
    func anotherTopologysBridgeIsAConflict() throws {
        let (backend, network) = host()
        network.addBridge("xenbr0", ports: ["enp0s16"], tag: "paper-monolithic")
        let plan = try plan()
        let error = #expect(throws: ApplyError.self) { try engine(backend, network).apply(plan, libxlJSON: json(plan)) }
        #expect("\(error.map { "\($0)" } ?? "")".contains("bridge xenbr0 in dom0 was made by iovm for topology paper-monolithic; refusing to touch it"))
        #expect(backend.mutatingCalls.isEmpty)
        #expect(network.snapshot.bridges == ["xenbr0": ["enp0s16"]])
    }

    @Test("a NIC iovm made assignable is given back to its dom0 driver first; rollback makes it assignable again")
    func assignableNICIsGivenBack() throws {
        let (backend, network) = host()
        try backend.makeAssignable(PCIAddress("0000:00:10.0")!, for: "earlier")  // an IOVM of an earlier topology had it
        let initial = (backend.snapshot, network.snapshot)
        let plan = try plan()
        let preview = try engine(backend, network).preview(plan)
        #expect(
            Array(preview.changes.prefix(2).map(\.description)) == [
                "give NIC 0000:00:10.0 back to its dom0 driver, for bridge xenbr0", "bridge xenbr0 on 0000:00:10.0",
            ])

        backend.fail("createDomain guest3")
        #expect(throws: ApplyError.self) { try engine(backend, network).apply(plan, libxlJSON: json(plan)) }
        var after = backend.snapshot
        after.nextDomid = initial.0.nextDomid
        #expect(after == initial.0)
        #expect(network.snapshot == initial.1)

        backend.heal("createDomain guest3")
        let report = try engine(backend, network).apply(plan, libxlJSON: json(plan))
        let calls = backend.mutatingCalls
        let release = try #require(calls.lastIndex(of: "releaseNIC 0000:00:10.0"))
        let bridge = try #require(calls.lastIndex(of: "createBridge xenbr0 0000:00:10.0"))
        #expect(release < bridge)
        #expect(report.done.contains("bridge xenbr0 on 0000:00:10.0 (enp0s16)"))
        #expect(backend.snapshot.nics.allSatisfy { !$0.assignable })
    }

    @Test("a NIC that another topology, still applied, made assignable is a conflict: its destroy gives it back first")
    func anotherAppliedTopologysNIC() throws {
        let (backend, network) = host()
        try backend.makeAssignable(PCIAddress("0000:00:10.0")!, for: "earlier")
        try backend.recordApplied(topology: "earlier", fingerprint: "f00d")
        let plan = try plan()
        #expect(
            try engine(backend, network).preview(plan).conflicts.map(\.message) == [
                "NIC 0000:00:10.0 of bridge xenbr0 was made assignable by topology earlier, which is applied: `iovm destroy` of earlier gives it back first (or, if earlier no longer uses it, `xl pci-assignable-remove -r 0000:00:10.0`)"
            ])
        #expect(throws: ApplyError.self) { try engine(backend, network).apply(plan, libxlJSON: json(plan)) }
        #expect(!backend.mutatingCalls.contains { $0.hasPrefix("releaseNIC") || $0.hasPrefix("createDomain") }, "\(backend.mutatingCalls)")
        #expect(network.snapshot.bridges.isEmpty)
        #expect(backend.snapshot.nics.first { $0.pci.description == "0000:00:10.0" }?.assignable == true)
    }

    @Test("a NIC bound to no driver gets its driver when its bridge is made; one bound to a driver without interface is a conflict")
    func unboundNIC() throws {
        let (backend, network) = host()
        network.unbind("0000:00:10.0")
        let plan = try plan()
        #expect(try engine(backend, network).preview(plan).changes.first?.description == "bridge xenbr0 on 0000:00:10.0")
        let report = try engine(backend, network).apply(plan, libxlJSON: json(plan))
        #expect(report.done.first == "bridge xenbr0 on 0000:00:10.0 (enp0s16)")
        #expect(network.snapshot.unbound.isEmpty)

        let (other, otherNetwork) = host()
        let vfio = FakeXenBackend(
            state: FakeXenBackend.State(
                domains: other.snapshot.domains, pools: other.snapshot.pools,
                nics: other.snapshot.nics.map { $0.pci.description == "0000:00:10.0" ? NICBinding(pci: $0.pci, assignable: false, driver: "vfio-pci") : $0 }))
        let vfioNetwork = FakeDom0Network(backend: vfio, names: otherNetwork.names)
        vfioNetwork.unbind("0000:00:10.0")
        #expect(
            try engine(vfio, vfioNetwork).preview(plan).conflicts.map(\.message) == [
                "NIC 0000:00:10.0 of bridge xenbr0 is bound to vfio-pci, which gives it no network interface in dom0; refusing to touch it"
            ])
    }

    @Test("NICs iovm must not take are conflicts: held by a domain, hidden by someone else, used by dom0, in another bridge")
    func nicConflicts() throws {
        let holder = ObservedDomain(
            domid: 1, name: "driver-vm", uuid: "u1", vcpus: 1, hardAffinity: [[0, 1, 2, 3]], weight: 256, cap: 0, cpupool: "Pool-0",
            pci: [PCIAddress("0000:00:10.0")!])
        let (backend, network) = host(extraDomains: [holder])
        try backend.makeAssignable(PCIAddress("0000:00:10.0")!, for: "earlier")
        network.setAddresses(["10.0.2.15/24"], of: "enp0s17")
        network.addBridge("br-lan", ports: ["enp0s18"])
        let plan = try plan()
        let conflicts = try engine(backend, network).preview(plan).conflicts.map(\.message)
        #expect(conflicts.contains("NIC 0000:00:10.0 of bridge xenbr0 is passed through to domain driver-vm (1); refusing to touch it"), "\(conflicts)")
        #expect(conflicts.contains { $0.hasPrefix("interface enp0s17 of NIC 0000:00:11.0 has addresses in dom0 (10.0.2.15/24)") }, "\(conflicts)")
        #expect(conflicts.contains("interface enp0s18 of NIC 0000:00:12.0 is a port of br-lan in dom0; refusing to move it into bridge xenbr2"), "\(conflicts)")
        #expect(throws: ApplyError.self) { try engine(backend, network).apply(plan, libxlJSON: json(plan)) }
        #expect(backend.mutatingCalls == ["makeAssignable 0000:00:10.0"])

        // A NIC bound to pciback by someone else is never released.
        let (other, otherNetwork) = host()
        let hidden = FakeXenBackend(
            state: FakeXenBackend.State(
                domains: other.snapshot.domains, pools: other.snapshot.pools,
                nics: other.snapshot.nics.map { $0.pci.description == "0000:00:10.0" ? NICBinding(pci: $0.pci, assignable: true) : $0 }))
        let hiddenNetwork = FakeDom0Network(backend: hidden, state: otherNetwork.snapshot, names: otherNetwork.names)
        let refused = try engine(hidden, hiddenNetwork).preview(plan).conflicts.map(\.message)
        #expect(refused.contains { $0.hasPrefix("NIC 0000:00:10.0 of bridge xenbr0 is bound to pciback and iovm did not put it there") }, "\(refused)")
    }

    @Test("a missing bridge with no NIC to make it with, or a device of that name that is not a bridge, is a conflict")
    func bridgesIOVMCannotMake() throws {
        let (backend, network) = host()
        network.addDevice("xenbr1")
        let plan = try plan()
        let conflicts = try engine(backend, network).preview(plan).conflicts.map(\.message)
        #expect(conflicts == ["xenbr1, the bridge of guest2 in dom0, exists and is not a bridge; refusing to touch it"])

        // An explicit topology whose guest dom0 backs without a NIC: its bridge must exist.
        let explicit = try Planner().plan(
            TopologyDocument(
                name: "explicit", host: HostDocument(cores: 4, memoryMiB: 4096, scheduler: "credit"),
                defaults: DefaultsDocument(kernel: "/k"), configuration: ConfigurationDocument(kind: .explicit),
                iovms: [IOVMDocument(name: "net", nics: [NICDocument(pci: "0000:00:11.0")])],
                guests: [GuestDocument(name: "web", backend: "Domain-0"), GuestDocument(name: "db", backend: "net")], placement: PlacementDocument(kind: .credit)))
        #expect(explicit.dom0Bridges.map(\.name) == ["xenbr0"])
        let missing = try engine(backend, network).preview(explicit).conflicts.map(\.message)
        #expect(missing.contains { $0.hasPrefix("bridge xenbr0 (of web) does not exist in dom0, and no NIC of the topology leads to it") }, "\(missing)")
        network.addBridge("xenbr0")
        #expect(try engine(backend, network).preview(explicit).conflicts.isEmpty)
    }

    @Test("destroy leaves a bridge that still carries another domain's vif, with its tag, and says so")
    func destroyKeepsABridgeInUse() throws {
        let (backend, network) = host()
        let plan = try plan()
        _ = try engine(backend, network).apply(plan, libxlJSON: json(plan))
        network.plug("vif42.0", into: "xenbr0")  // a domain iovm did not make joined iovm's bridge
        let error = #expect(throws: ApplyError.self) { try engine(backend, network).destroy(topology: plan.topology, nics: plan.hostNICs) }
        #expect("\(error.map { "\($0)" } ?? "")".contains("bridge xenbr0 in dom0 still has vif42.0 as ports; it stays, with its tag"))
        #expect(network.snapshot.bridges == ["xenbr0": ["enp0s16", "vif42.0"]])
        #expect(network.snapshot.tags == ["xenbr0": "paper-centralized"])
    }

    @Test("an apply killed after any step converges on the next one, and destroy leaves the host as it was")
    func killTable() throws {
        let plan = try plan()
        let seen = Mutex<[String]>([])
        let (probe, probeNetwork) = host()
        _ = try engine(probe, probeNetwork, point: { step in seen.withLock { $0.append(step) } }).apply(plan, libxlJSON: json(plan))
        let points = seen.withLock { $0 }
        #expect(points.prefix(3) == ["bridge:xenbr0", "bridge:xenbr1", "bridge:xenbr2"])
        let (pristine, pristineNetwork) = host()
        for step in points {
            let (backend, network) = host()
            let frozen = Mutex<(FakeXenBackend.State, FakeDom0Network.State)?>(nil)
            try? engine(
                backend, network,
                point: { name in
                    guard name == step else { return }
                    frozen.withLock { if $0 == nil { $0 = (backend.snapshot, network.snapshot) } }
                }
            ).apply(plan, libxlJSON: json(plan))
            let killed = try #require(frozen.withLock { $0 }, "\(step)")
            let next = FakeXenBackend(state: killed.0)
            let nextNetwork = FakeDom0Network(backend: next, state: killed.1, names: network.names)
            _ = try engine(next, nextNetwork).apply(plan, libxlJSON: json(plan))
            let after = try engine(next, nextNetwork).preview(plan)
            #expect(after.changes.isEmpty && after.conflicts.isEmpty, "after a kill at \(step): \(after.changes) \(after.conflicts)")
            _ = try engine(next, nextNetwork).destroy(topology: plan.topology, nics: plan.hostNICs)
            var left = next.snapshot
            left.nextDomid = pristine.snapshot.nextDomid
            #expect(left == pristine.snapshot, "after a kill at \(step) and destroy")
            #expect(nextNetwork.snapshot == pristineNetwork.snapshot, "after a kill at \(step) and destroy")
        }
    }
}
