import Foundation
import IOVMControl
import IOVMCore
import IOVMWireFormat
import Logging
import Testing

/// A topology over two hosts: planned per host, applied to both at once, rolled back on both when one fails.
@Suite struct MultiHostApplyTests {
    /// Two hosts, two NICs each, an IOVM per NIC pair, two guests each.
    func document() -> TopologyDocument {
        let a = ["0000:00:10.0", "0000:00:11.0"]
        let b = ["0000:00:12.0", "0000:00:13.0"]
        return TopologyDocument(
            name: "fleet", defaults: DefaultsDocument(kernel: "/lab/vmlinux", guestMemoryMiB: 256),
            configuration: ConfigurationDocument(kind: .monolithic),
            nics: a.map { NICDocument(pci: $0, host: "xen-a") } + b.map { NICDocument(pci: $0, host: "xen-b") },
            guests: [
                GuestDocument(name: "a1", host: "xen-a"), GuestDocument(name: "a2", host: "xen-a"), GuestDocument(name: "b1", host: "xen-b"),
                GuestDocument(name: "b2", host: "xen-b"),
            ],
            placement: PlacementDocument(kind: .hybridPinned), scheduling: SchedulingDocument(iovmWeight: 512),
            hosts: [
                HostDocument(cores: 4, memoryMiB: 4096, name: "xen-a", connect: "xen+ssh://root@a/system", source: SourceLocation(file: "f.swift", line: 2)),
                HostDocument(cores: 4, memoryMiB: 4096, name: "xen-b", source: SourceLocation(file: "f.swift", line: 3)),
            ])
    }

    func targets(_ plans: [HostPlan], _ fakes: [FakeXenBackend]) -> [HostTarget] {
        zip(plans, fakes).map { plan, fake in
            HostTarget(
                host: plan.host, plan: plan.plan, engine: ApplyEngine(backend: fake, lock: fake, logger: Logger(label: "test")),
                configs: Dictionary(uniqueKeysWithValues: plan.plan.domains.map { ($0.name, "{}") }))
        }
    }

    @Test func eachHostGetsItsShareAndGeneratedIOVMsAreNumberedAcrossHosts() throws {
        let plans = try Planner().planHosts(document())
        #expect(plans.map(\.host) == ["xen-a", "xen-b"])
        #expect(plans.map(\.connect) == ["xen+ssh://root@a/system", nil])
        #expect(plans[0].plan.domains.map(\.name) == ["iovm0", "a1", "a2"])
        #expect(plans[1].plan.domains.map(\.name) == ["iovm1", "b1", "b2"])
        #expect(plans[1].plan.iovms[0].pci.map(\.description) == ["0000:00:12.0", "0000:00:13.0"])
        #expect(plans[1].plan.guests.allSatisfy { $0.vifs.first?.backend == "iovm1" })
        #expect(throws: TopologyError.self) { try Planner().plan(document()) }
    }

    @Test func aGuestWhoseIOVMIsOnAnotherHostIsRefusedNamingItsLine() throws {
        var document = document()
        document.configuration = ConfigurationDocument(kind: .explicit)
        document.iovms = [
            IOVMDocument(name: "net-a", nics: [NICDocument(pci: "0000:00:10.0")], host: "xen-a"),
            IOVMDocument(name: "net-b", nics: [NICDocument(pci: "0000:00:12.0")], host: "xen-b"),
        ]
        document.nics = []
        document.guests = [
            GuestDocument(name: "web", backend: "net-b", host: "xen-a", source: SourceLocation(file: "f.swift", line: 9)),
            GuestDocument(name: "db", backend: "net-a", source: SourceLocation(file: "f.swift", line: 10)),
            GuestDocument(name: "net-a", backend: "net-b", host: "xen-b", source: SourceLocation(file: "f.swift", line: 11)),
            GuestDocument(name: "x", backend: "net-a", host: "xen-z", source: SourceLocation(file: "f.swift", line: 12)),
        ]
        #expect {
            try Planner().planHosts(document)
        } throws: { error in
            guard case .invalid(let diagnostics)? = error as? TopologyError else { return false }
            let lines = diagnostics.map { "\($0.location?.line ?? 0): \($0.message)" }
            return lines == [
                "9: guest web is on host xen-a, but its IOVM net-b is on host xen-b: a guest's IOVM must be on its own host",
                "10: guest db names no host, and the topology spans xen-a, xen-b: add host: \"xen-a\" (or another)",
                "11: guest net-a is declared on host xen-a and on host xen-b: domain names are the topology's, one host each",
                "12: guest x names host \"xen-z\", which is not declared (hosts: xen-a, xen-b)",
            ]
        }
    }

    /// Identical hosts have identical PCI addresses: each host gets its own NIC of that address (seen in the lab's
    /// two hosts, whose NICs are all at 0000:01:00.0 to 0000:04:00.0).
    @Test func identicalHostsEachGetTheirOwnNICOfOneAddress() throws {
        var document = document()
        let pci = "0000:01:00.0"
        document.nics = [NICDocument(pci: pci, host: "xen-a"), NICDocument(pci: pci, host: "xen-b")]
        document.guests = [
            GuestDocument(name: "a1", nic: pci, host: "xen-a"), GuestDocument(name: "b1", nic: pci, host: "xen-b"),
        ]
        let plans = try Planner().planHosts(document)
        #expect(plans.map { $0.plan.hostNICs.map(\.description) } == [[pci], [pci]])
        #expect(plans.map { $0.plan.domains.map(\.name) } == [["iovm0", "a1"], ["iovm1", "b1"]])
        #expect(plans.map { $0.plan.iovms.flatMap(\.pci).map(\.description) } == [[pci], [pci]])
        document.nics = [NICDocument(pci: pci, host: "xen-a")]
        document.guests[1].source = SourceLocation(file: "f.swift", line: 7)
        #expect {
            try Planner().planHosts(document)
        } throws: { error in
            guard case .invalid(let diagnostics)? = error as? TopologyError else { return false }
            return diagnostics.map { "\($0.location?.line ?? 0): \($0.message)" }.contains("7: guest b1 is on host xen-b, but NIC \(pci) is on host xen-a")
        }
    }

    @Test func bothHostsAreAppliedAndAReapplyChangesNothing() throws {
        let plans = try Planner().planHosts(document())
        let fakes = [FakeXenBackend(nics: plans[0].plan.hostNICs.map(\.description)), FakeXenBackend(nics: plans[1].plan.hostNICs.map(\.description))]
        let reports = try MultiHostApply.apply(targets(plans, fakes))
        #expect(reports["xen-a"]?.domids.keys.sorted() == ["a1", "a2", "iovm0"])
        #expect(reports["xen-b"]?.domids.keys.sorted() == ["b1", "b2", "iovm1"])
        let again = try MultiHostApply.apply(targets(plans, fakes))
        let unchanged = again.values.allSatisfy { $0.nothingToDo }
        #expect(unchanged)
    }

    @Test func aFailureOnOneHostRollsBackTheOther() throws {
        let plans = try Planner().planHosts(document())
        let fakes = [FakeXenBackend(nics: plans[0].plan.hostNICs.map(\.description)), FakeXenBackend(nics: plans[1].plan.hostNICs.map(\.description))]
        let before = fakes.map(\.snapshot)
        fakes[1].fail("createDomain b2")
        #expect {
            try MultiHostApply.apply(targets(plans, fakes))
        } throws: { error in
            guard let error = error as? MultiHostApplyError else { return false }
            let text = error.description
            return error.host == "xen-b" && text.contains("error: on host xen-b: error: create b2 failed")
                && text.contains("rolled back on xen-a: destroy a1") && text.contains("rolled back on xen-a: give NIC 0000:00:10.0 back to dom0")
                && text.hasSuffix("This apply's domains, NICs and cpupools are undone on every host (live changes to domains that were already there stay).")
        }
        #expect(fakes[0].snapshot.domains.map(\.name) == before[0].domains.map(\.name))
        #expect(fakes[0].snapshot.nics.allSatisfy { !$0.assignable })
        #expect(fakes[1].snapshot.domains.map(\.name) == before[1].domains.map(\.name))
    }

    /// A host that dies mid-apply cannot be rolled back: the error says so, naming it, and not that every host is as
    /// it was (the lab's killed host: its own rollback failed, the other host's succeeded).
    @Test func aHostThatCannotBeRolledBackIsNamedAsNotAsItWas() throws {
        let plans = try Planner().planHosts(document())
        let fakes = [FakeXenBackend(nics: plans[0].plan.hostNICs.map(\.description)), FakeXenBackend(nics: plans[1].plan.hostNICs.map(\.description))]
        fakes[1].fail("createDomain b2")
        fakes[1].fail("destroyDomain")
        fakes[1].fail("releaseNIC")
        #expect {
            try MultiHostApply.apply(targets(plans, fakes))
        } throws: { error in
            guard let error = error as? MultiHostApplyError else { return false }
            return error.notUndone == ["xen-b"] && error.description.contains("rolled back on xen-a: destroy a1")
                && error.description.hasSuffix("Not undone everywhere: xen-b may keep what this apply made there (see above); undone on xen-a.")
        }
        #expect(fakes[0].snapshot.domains.allSatisfy { $0.tag == nil })
    }

    @Test func aConflictOnOneHostTouchesNoHost() throws {
        let plans = try Planner().planHosts(document())
        let squatter = ObservedDomain(domid: 7, name: "iovm1", uuid: "u-7", vcpus: 1, hardAffinity: [], weight: 256, cap: 0, cpupool: "Pool-0")
        let fakes = [
            FakeXenBackend(nics: plans[0].plan.hostNICs.map(\.description)),
            FakeXenBackend(nics: plans[1].plan.hostNICs.map(\.description), extraDomains: [squatter]),
        ]
        #expect(throws: MultiHostApplyError.self) { try MultiHostApply.apply(targets(plans, fakes)) }
        #expect(fakes[0].mutatingCalls.isEmpty)
        #expect(fakes[1].mutatingCalls.isEmpty)
    }

    /// A NIC one host lacks is bad input (exit 65), named with its host; a conflict on the other host is told beside
    /// it; no host is touched.
    @Test func aNICOneHostLacksIsRefusedAsBadInputNamingTheHost() throws {
        let plans = try Planner().planHosts(document())
        let squatter = ObservedDomain(domid: 7, name: "iovm1", uuid: "u-7", vcpus: 1, hardAffinity: [], weight: 256, cap: 0, cpupool: "Pool-0")
        let fakes = [
            FakeXenBackend(nics: ["0000:00:10.0"]),
            FakeXenBackend(nics: plans[1].plan.hostNICs.map(\.description), extraDomains: [squatter]),
        ]
        #expect {
            try MultiHostApply.apply(targets(plans, fakes))
        } throws: { error in
            guard case .invalid(let diagnostics)? = error as? TopologyError else { return false }
            let messages = diagnostics.map(\.message)
            return messages.count == 2
                && messages[0] == "on host xen-a: NIC 0000:00:11.0 of IOVM iovm0 does not exist on this host (`lspci -D` lists its PCI devices)"
                && messages[1].hasPrefix("on host xen-b: ") && messages[1].contains("iovm1")
        }
        #expect(fakes[0].mutatingCalls.isEmpty)
        #expect(fakes[1].mutatingCalls.isEmpty)
    }
}
