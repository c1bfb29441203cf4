import IOVMCore
import Logging
import Testing

@testable import IOVMControl

extension MultiHostApplyTests {
    @Test("a host's rollback gives back the NICs its topology made assignable since, not one another topology marked meanwhile")
    func rollbackLeavesAnotherTopologysNIC() throws {
        let plans = try Planner().planHosts(document())
        let fake = FakeXenBackend(nics: ["0000:00:10.0", "0000:00:11.0"])
        let target = targets([plans[0]], [fake])[0]
        let before = try fake.observe(nics: plans[0].plan.hostNICs)
        let own = try #require(PCIAddress("0000:00:10.0"))
        let other = try #require(PCIAddress("0000:00:11.0"))
        try fake.makeAssignable(own, for: plans[0].plan.topology)
        try fake.makeAssignable(other, for: "another")
        let (steps, failures) = MultiHostApply.rollback(target, before: before)
        #expect(failures.isEmpty)
        #expect(steps == ["give NIC \(own) back to dom0"])
        #expect(fake.mutatingCalls.filter { $0.hasPrefix("releaseNIC") } == ["releaseNIC \(own)"])
    }
}

extension MultiHostApplyTests {
    @Test("a host's rollback writes back the mark of a NIC its apply recorded as its topology's")
    func rollbackRestoresAClaimedMark() throws {
        let plans = try Planner().planHosts(document())
        let fake = FakeXenBackend(nics: ["0000:00:10.0", "0000:00:11.0"])
        let target = targets([plans[0]], [fake])[0]
        let claimed = try #require(PCIAddress("0000:00:10.0"))
        try fake.makeAssignable(claimed, for: "stopped")
        let before = try fake.observe(nics: plans[0].plan.hostNICs)
        try fake.markNIC(claimed, for: plans[0].plan.topology)
        let (steps, failures) = MultiHostApply.rollback(target, before: before)
        #expect(failures.isEmpty)
        #expect(steps == ["record NIC \(claimed) as topology stopped's again"])
        #expect(try fake.nicsMarked(for: "stopped") == [claimed])
        #expect(!fake.mutatingCalls.contains("releaseNIC \(claimed)"))
    }

    @Test("a host's rollback leaves the mark of a NIC a domain that was there before holds")
    func rollbackKeepsTheMarkOfAHeldNIC() throws {
        let plans = try Planner().planHosts(document())
        let held = try #require(PCIAddress("0000:00:10.0"))
        let iovm = ObservedDomain.iovm("iovm0", domid: 9, topology: plans[0].plan.topology, holding: [held])
        let fake = FakeXenBackend(nics: ["0000:00:10.0", "0000:00:11.0"], extraDomains: [iovm])
        let target = targets([plans[0]], [fake])[0]
        try fake.makeAssignable(held, for: "stopped")
        let before = try fake.observe(nics: plans[0].plan.hostNICs)
        try fake.markNIC(held, for: plans[0].plan.topology)
        let (steps, failures) = MultiHostApply.rollback(target, before: before)
        #expect(failures.isEmpty && steps.isEmpty, "\(steps) \(failures)")
        #expect(try fake.nicsMarked(for: plans[0].plan.topology) == [held])
    }
}

extension MultiHostApplyTests {
    @Test("a host's rollback puts back the record of the plan applied before, or removes this apply's")
    func rollbackRestoresTheAppliedRecord() throws {
        let plans = try Planner().planHosts(document())
        let topology = plans[0].plan.topology
        for earlier in [nil, "0ld"] as [String?] {
            let fake = FakeXenBackend(nics: ["0000:00:10.0", "0000:00:11.0"])
            let target = targets([plans[0]], [fake])[0]
            if let earlier { try fake.recordApplied(topology: topology, fingerprint: earlier) }
            let before = try fake.observe(nics: plans[0].plan.hostNICs)
            try fake.recordApplied(topology: topology, fingerprint: plans[0].plan.appliedFingerprint)
            let (steps, failures) = MultiHostApply.rollback(target, before: before)
            #expect(failures.isEmpty)
            #expect(steps == [earlier == nil ? "remove the record of this apply's plan" : "record the plan applied before again"])
            #expect(try fake.observe(nics: []).applied[topology] == earlier)
        }
    }
}
