import CPUSets
import Foundation
import IOVMControl
import IOVMCore
import IOVMWireFormat
import Logging
import Testing

/// A topology asking for rtds on a host whose Pool-0 runs credit, applied to the fake backend.
@Suite("Schedulers: apply")
struct SchedulerApplyTests {
    let table3 = ApplyEngineTests()

    /// Table 3's hybrid with co-locate (cores 3 and 2), asking for rtds with the given IOVM budget.
    func rtdsPlan(iovmBudget: Int = 4_000, poolZero: String = "credit", iovmVCPUs: Int? = nil) throws -> Plan {
        let document = TopologyDocument(
            name: "rt",
            host: HostDocument(cores: 4, memoryMiB: 8192, scheduler: "rtds"),
            defaults: DefaultsDocument(kernel: "/lab/vmlinux", iovmVCPUs: iovmVCPUs),
            configuration: ConfigurationDocument(kind: .hybrid, groups: 2),
            nics: ApplyEngineTests.nics.map { NICDocument(pci: $0) },
            guests: (1...2).map { GuestDocument(name: "guest\($0)") },
            placement: PlacementDocument(kind: .coLocate),
            scheduling: SchedulingDocument(
                iovmRTDS: RTDSDocument(periodMicroseconds: 10_000, budgetMicroseconds: iovmBudget, extratime: true),
                guestRTDS: RTDSDocument(periodMicroseconds: 10_000, budgetMicroseconds: 2_000, extratime: false)))
        return try Planner(poolZeroScheduler: poolZero).plan(document)
    }

    func json(_ plan: Plan) throws -> [String: String] {
        Dictionary(uniqueKeysWithValues: try plan.domains.map { ($0.name, try PlanRenderer.libxlJSON($0)) })
    }

    @Test("rtds domains are made in an rtds cpupool with their period and budget; a new budget is set live")
    func appliesReservations() throws {
        let fake = FakeXenBackend(nics: ApplyEngineTests.nics)
        let plan = try rtdsPlan()
        #expect(plan.cpupools == [CPUPoolSpec(name: "iovm-rtds", scheduler: "rtds", cpus: [2, 3])])
        let json = try json(plan)
        #expect(json["iovm0"]?.contains("\"budget\" : 4000") == true)
        #expect(json["guest1"]?.contains("\"extratime\" : 0") == true)
        _ = try table3.engine(fake).apply(plan, libxlJSON: json)

        let calls = fake.mutatingCalls
        let pool = try #require(calls.firstIndex(of: "createPool iovm-rtds"))
        let created = try #require(calls.firstIndex(of: "createDomain iovm0"))
        #expect(pool < created)
        let state = fake.snapshot
        #expect(state.pools.first { $0.name == "iovm-rtds" }?.scheduler == "rtds")
        let iovm0 = try #require(state.domains.first { $0.name == "iovm0" })
        #expect(iovm0.cpupool == "iovm-rtds")
        #expect(iovm0.rtds == RTDSParameters(periodMicroseconds: 10_000, budgetMicroseconds: 4_000, extratime: true))
        #expect(state.domains.first { $0.name == "guest1" }?.rtds?.budgetMicroseconds == 2_000)

        // A second apply changes nothing (weights are not compared under rtds).
        #expect(try table3.engine(fake).apply(plan, libxlJSON: json).nothingToDo)

        // A new IOVM budget is set live, through the backend, not by recreating the domains.
        let before = fake.mutatingCalls.count
        let bigger = try rtdsPlan(iovmBudget: 6_000)
        let preview = try table3.engine(fake).preview(bigger)
        #expect(preview.changes.map(\.description).contains("reserve iovm0: rtds period 10000 us, budget 4000 us, extratime -> period 10000 us, budget 6000 us, extratime"))
        _ = try table3.engine(fake).apply(bigger, libxlJSON: try self.json(bigger))
        let live = Array(fake.mutatingCalls.dropFirst(before))
        #expect(live.contains("setRTDS iovm0 10000 6000 true") && live.contains("setRTDS iovm1 10000 6000 true"))
        #expect(!live.contains { $0.hasPrefix("createDomain") || $0.hasPrefix("setSchedule") })
        #expect(fake.snapshot.domains.first { $0.name == "iovm1" }?.rtds?.budgetMicroseconds == 6_000)
    }

    @Test("a rollback gives each vCPU back its own rtds reservation and hard affinity, when they differed")
    func rollbackRestoresEachVCPU() throws {
        let fake = FakeXenBackend(nics: ApplyEngineTests.nics)
        let plan = try rtdsPlan(iovmVCPUs: 2)
        _ = try table3.engine(fake).apply(plan, libxlJSON: try json(plan))
        #expect(fake.snapshot.domains.first { $0.name == "iovm0" }?.vcpus == 2)
        // An operator set iovm0's vCPUs apart: `xl sched-rtds -d iovm0 -v 1 …`, `xl vcpu-pin iovm0 1 …`.
        let apart = [
            RTDSParameters(periodMicroseconds: 10_000, budgetMicroseconds: 4_000, extratime: true),
            RTDSParameters(periodMicroseconds: 20_000, budgetMicroseconds: 5_000, extratime: false),
        ]
        let pins = [CPUSet([2]), CPUSet([3])]  // iovm-rtds's cores: Xen pins no vCPU outside its pool
        fake.setPerVCPU(of: "iovm0", rtds: apart, affinity: pins)

        let bigger = try rtdsPlan(iovmBudget: 6_000, iovmVCPUs: 2)
        let preview = try table3.engine(fake).preview(bigger)
        #expect(
            preview.changes.map(\.description).contains(
                "reserve iovm0: rtds vCPU 0: period 10000 us, budget 4000 us, extratime; vCPU 1: period 20000 us, budget 5000 us -> period 10000 us, budget 6000 us, extratime"
            ))
        // iovm0 is pinned and reserved again, then iovm1's reservation fails: the apply rolls back.
        fake.fail("setRTDS iovm1")
        #expect(throws: (any Error).self) { try table3.engine(fake).apply(bigger, libxlJSON: try self.json(bigger)) }
        let iovm0 = try #require(fake.snapshot.domains.first { $0.name == "iovm0" })
        #expect(iovm0.rtdsByVCPU == apart)
        #expect(iovm0.hardAffinity == pins)
        let calls = fake.mutatingCalls
        #expect(calls.contains("setRTDS iovm0 per vCPU 10000/4000/true 20000/5000/false"))
        #expect(calls.contains("setAffinity iovm0 per vCPU 2 3"))
    }

    @Test("a plan that assumed an rtds Pool-0 is refused on a host whose Pool-0 runs credit")
    func refusesWrongPoolZero() throws {
        let fake = FakeXenBackend(nics: ApplyEngineTests.nics)
        let plan = try rtdsPlan(poolZero: "rtds")
        #expect(plan.cpupools.isEmpty)
        let reconciliation = try table3.engine(fake).preview(plan)
        #expect(reconciliation.conflicts.contains { $0.message.hasPrefix("domain iovm0 has an rtds reservation in Pool-0, but Pool-0 runs credit") })
        #expect(throws: (any Error).self) { try table3.engine(fake).apply(plan, libxlJSON: try json(plan)) }
        #expect(!fake.mutatingCalls.contains { $0.hasPrefix("createDomain") })
    }

    @Test("the schedulers read back from the host: Pool-0's and each domain's pool's")
    func schedulerReading() throws {
        let fake = FakeXenBackend(nics: ApplyEngineTests.nics)
        let plan = try rtdsPlan()
        _ = try table3.engine(fake).apply(plan, libxlJSON: try json(plan))
        let host = try fake.observe(nics: [])
        let reading = host.schedulerReading(of: ["iovm0", "guest1", "nosuch"])
        #expect(reading.poolZero == "credit")
        #expect(
            reading.domains == [
                .init(domain: "iovm0", pool: "iovm-rtds", scheduler: "rtds"), .init(domain: "guest1", pool: "iovm-rtds", scheduler: "rtds"),
            ])
        #expect(reading.summary == "iovm-rtds rtds: iovm0, guest1")
        // Every domain but dom0, in the order Xen lists them (creation is concurrent: the order varies).
        let all = host.schedulerReading()
        #expect(Set(all.domains.map(\.domain)) == ["iovm0", "iovm1", "guest1", "guest2"])
        #expect(all.domains.allSatisfy { $0.pool == "iovm-rtds" && $0.scheduler == "rtds" })
        #expect(SchedulerReading(poolZero: "credit2", domains: []).summary == "Pool-0 credit2")
    }
}
