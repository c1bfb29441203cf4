import Foundation
import IOVMCore
import IOVMDescription
import IOVMWireFormat
import Testing

/// `Host(scheduler:)` against the scheduler Pool-0 runs, and rtds reservations (issue 12).
@Suite("Schedulers")
struct SchedulerTests {
    /// `document` with the host asking for `scheduler` (nil: none) and, optionally, rtds reservations on line 40.
    static func asking(
        _ scheduler: String?, _ document: TopologyDocument, pool: String? = nil, iovm: RTDSDocument? = nil, guest: RTDSDocument? = nil
    ) -> TopologyDocument {
        var document = document
        document.host?.scheduler = scheduler
        document.host?.schedulerPool = pool
        if iovm != nil || guest != nil {
            document.scheduling = SchedulingDocument(iovmRTDS: iovm, guestRTDS: guest, source: Fixture.at(40))
        }
        return document
    }

    static func errors(_ document: TopologyDocument, poolZero: String) -> [Diagnostic] {
        do {
            _ = try Planner(poolZeroScheduler: poolZero).plan(document)
            return []
        } catch {
            if case .invalid(let diagnostics) = error { return diagnostics.filter { $0.severity == .error } }
            return []
        }
    }

    static let placements: [PlacementKind] = [.credit, .coLocate, .separate, .iovmAffinity, .hybridPinned]

    @Test("the scheduler Pool-0 already runs, or none asked for: the plan is today's, byte for byte", arguments: placements)
    func samePlan(placement: PlacementKind) throws {
        let base = Fixture.generated(.multipleSmall, nics: Fixture.paperNICs3, guests: 3, placement: placement)
        // Asked for credit (the fixture's), Pool-0 runs credit.
        let today = try Planner().plan(base)
        let known = try Planner(poolZeroScheduler: "credit").plan(base)
        #expect(known == today)
        #expect(try JSONText.pretty(known) == JSONText.pretty(today))
        // Asked for none: the domains run under whatever Pool-0 runs, unchanged.
        let none = Self.asking(nil, base)
        let noneToday = try Planner().plan(none)
        let noneOnCredit2 = try Planner(poolZeroScheduler: "credit2").plan(none)
        #expect(try JSONText.pretty(noneOnCredit2) == JSONText.pretty(noneToday))
        let noneOnCredit = try Planner(poolZeroScheduler: "credit").plan(none)
        #expect(noneOnCredit.domains == noneToday.domains)
        #expect(noneOnCredit.cpupools == noneToday.cpupools)
        #expect(noneOnCredit.domains.allSatisfy { $0.rtds == nil })
    }

    @Test("another scheduler than Pool-0's: every domain in a cpupool running it, on the cores the placement uses")
    func differentSchedulerMakesPool() throws {
        // Co-locate with 3 IOVMs uses cores 3, 2, 1: core 0 stays with dom0 in Pool-0.
        let coLocate = Self.asking("rtds", Fixture.generated(.multipleSmall, nics: Fixture.paperNICs3, guests: 3, placement: .coLocate))
        let plan = try Planner(poolZeroScheduler: "credit2").plan(coLocate)
        #expect(plan.host.scheduler == "credit2")
        #expect(plan.cpupools == [CPUPoolSpec(name: "iovm-rtds", scheduler: "rtds", cpus: [1, 2, 3])])
        #expect(plan.domains.allSatisfy { $0.cpupool == "iovm-rtds" })
        #expect(plan.cores("iovm0") == [3])
        #expect(plan.domains.allSatisfy { plan.scheduler(of: $0) == "rtds" })

        // Unpinned domains take every core not reserved for dom0; the DSL names the pool.
        let credit = Self.asking(
            "credit", Fixture.generated(.monolithic, nics: Fixture.paperNICs3, guests: 2, placement: .credit, reserved: [0]), pool: "paper")
        let creditPlan = try Planner(poolZeroScheduler: "credit2").plan(credit)
        #expect(creditPlan.cpupools == [CPUPoolSpec(name: "paper", scheduler: "credit", cpus: [1, 2, 3])])
        #expect(creditPlan.domains.allSatisfy { $0.cpupool == "paper" })
        #expect(creditPlan.domains.allSatisfy { $0.weight == Planner.defaultWeight && $0.rtds == nil })
    }

    @Test("a placement's dedicated pool gets the topology's scheduler; the guests stay in Pool-0")
    func dedicatedPoolGetsScheduler() throws {
        let document = Self.asking(
            "rtds", Fixture.generated(.multipleSmall, nics: Fixture.paperNICs3, guests: 3, placement: .iovmAffinity, dedicatedPool: true))
        let plan = try Planner(poolZeroScheduler: "credit").plan(document)
        #expect(plan.cpupools == [CPUPoolSpec(name: "iovm-pool", scheduler: "rtds", cpus: [3])])
        #expect(plan.iovms.allSatisfy { $0.cpupool == "iovm-pool" })
        #expect(plan.guests.allSatisfy { $0.cpupool == "Pool-0" })
        #expect(plan.warnings.contains { $0.message.contains("the guests stay in Pool-0 under credit") && $0.location == Fixture.at(2) })
        // None asked for: credit, as before.
        let none = try Planner(poolZeroScheduler: "credit2").plan(Self.asking(nil, document))
        #expect(none.cpupools == [CPUPoolSpec(name: "iovm-pool", scheduler: "credit", cpus: [3])])
    }

    @Test("no core left for dom0: a located error, nothing planned")
    func impossiblePool() {
        // Hybrid pinning of 2 IOVMs on 4 cores uses them all (IOVMs on 3 and 2, guests on 1-0).
        let document = Self.asking("rtds", Fixture.generated(.hybrid, groups: 2, nics: Fixture.paperNICs4, guests: 4, placement: .hybridPinned))
        let errors = Self.errors(document, poolZero: "credit2")
        #expect(errors.count == 1)
        #expect(errors.first?.location == Fixture.at(2))
        #expect(errors.first?.message.contains("Pool-0 runs credit2, so the domains would run in cpupool iovm-rtds under rtds") == true)
        #expect(errors.first?.message.contains("Host(reservedCores: [0])") == true)
        // The same with a core reserved for dom0 plans.
        var reserved = document
        reserved.host?.reservedCores = [0]
        reserved.guests = Array(reserved.guests.prefix(2))
        #expect(Self.errors(reserved, poolZero: "credit2").isEmpty)
    }

    @Test("an unknown scheduler is a located error")
    func unknownScheduler() {
        let document = Self.asking("sedf", Fixture.generated(.monolithic, nics: Fixture.paperNICs3, guests: 1, placement: .credit))
        let errors = Self.errors(document, poolZero: "credit2")
        #expect(errors.map(\.message) == ["unknown scheduler \"sedf\" (Xen offers credit, credit2, rtds, null)"])
        #expect(errors.first?.location == Fixture.at(2))
    }

    @Test("rtds reservations go to the domains under rtds")
    func rtdsReservations() throws {
        let document = Self.asking(
            "rtds", Fixture.generated(.multipleSmall, nics: Fixture.paperNICs3, guests: 3, placement: .coLocate),
            iovm: RTDSDocument(periodMicroseconds: 10_000, budgetMicroseconds: 4_000, extratime: true),
            guest: RTDSDocument(periodMicroseconds: 20_000, budgetMicroseconds: 5_000, extratime: false))
        // Pool-0 runs rtds itself: no pool, the reservations apply there.
        let inPool0 = try Planner(poolZeroScheduler: "rtds").plan(document)
        #expect(inPool0.cpupools.isEmpty)
        #expect(inPool0.iovms.allSatisfy { $0.rtds == RTDSParameters(periodMicroseconds: 10_000, budgetMicroseconds: 4_000, extratime: true) })
        #expect(inPool0.guests.allSatisfy { $0.rtds == RTDSParameters(periodMicroseconds: 20_000, budgetMicroseconds: 5_000, extratime: false) })
        // In an rtds pool beside a credit Pool-0; the libxl config carries them.
        let pooled = try Planner(poolZeroScheduler: "credit").plan(document)
        let iovm = try #require(pooled.domain("iovm0"))
        #expect(iovm.cpupool == "iovm-rtds" && iovm.rtds?.budgetMicroseconds == 4_000)
        let json = try PlanRenderer.libxlJSON(iovm)
        #expect(json.contains("\"budget\" : 4000") && json.contains("\"period\" : 10000") && json.contains("\"extratime\" : 1"))
        // A credit domain's config has none of them.
        let credit = try Planner().plan(Fixture.generated(.multipleSmall, nics: Fixture.paperNICs3, guests: 3, placement: .coLocate))
        #expect(try !PlanRenderer.libxlJSON(#require(credit.domain("iovm0"))).contains("budget"))
    }

    @Test("rtds reservations outside rtds: a warning; bad ones: located errors")
    func rtdsValidation() throws {
        let base = Fixture.generated(.monolithic, nics: Fixture.paperNICs3, guests: 1, placement: .credit)
        let outside = try Planner(poolZeroScheduler: "credit").plan(
            Self.asking("credit", base, iovm: RTDSDocument(periodMicroseconds: 10_000, budgetMicroseconds: 4_000)))
        #expect(outside.domains.allSatisfy { $0.rtds == nil })
        #expect(outside.warnings.contains { $0.message.hasPrefix("Scheduling.rtds sets a reservation for IOVMs") && $0.location == Fixture.at(40) })

        let over = Self.errors(
            Self.asking("rtds", base, iovm: RTDSDocument(periodMicroseconds: 1_000, budgetMicroseconds: 2_000)), poolZero: "rtds")
        #expect(over.map(\.message) == ["rtds budget of IOVMs (2000 us) is longer than its period (1000 us)"])
        #expect(over.first?.location == Fixture.at(40))

        let zero = Self.errors(
            Self.asking("rtds", base, guest: RTDSDocument(periodMicroseconds: 0, budgetMicroseconds: -1)), poolZero: "rtds")
        #expect(
            zero.map(\.message) == [
                "rtds period of guests must be 10-2147483647 microseconds (rtds' minimum is 10), not 0",
                "rtds budget of guests must be 10-2147483647 microseconds (rtds' minimum is 10), not -1",
            ])
        // Xen's per-vCPU call refuses less than 10 us; the plan says so before anything is made.
        let short = Self.errors(
            Self.asking("rtds", base, iovm: RTDSDocument(periodMicroseconds: 100, budgetMicroseconds: 9)), poolZero: "rtds")
        #expect(short.map(\.message) == ["rtds budget of IOVMs must be 10-2147483647 microseconds (rtds' minimum is 10), not 9"])
        #expect(zero.allSatisfy { $0.location == Fixture.at(40) })
    }

    @Test("the DSL writes the scheduler, its pool and rtds reservations")
    func dsl() throws {
        let line = #line + 2
        let topology = Topology("rt") {
            Host(cores: 4, scheduler: "rtds", schedulerPool: "rt")
            Scheduling.rtds(
                iovm: .init(periodMicroseconds: 10_000, budgetMicroseconds: 4_000),
                guest: .init(periodMicroseconds: 10_000, budgetMicroseconds: 2_000, extratime: false))
        }
        let document = topology.document
        #expect(document.host?.scheduler == "rtds")
        #expect(document.host?.schedulerPool == "rt")
        #expect(document.scheduling?.iovmRTDS == RTDSDocument(periodMicroseconds: 10_000, budgetMicroseconds: 4_000, extratime: true))
        #expect(document.scheduling?.guestRTDS == RTDSDocument(periodMicroseconds: 10_000, budgetMicroseconds: 2_000, extratime: false))
        #expect(document.scheduling?.source?.line == line + 1)
        #expect(document.scheduling?.iovmWeight == nil)
    }

    @Test("wire format: the new fields round-trip; a document without them decodes and encodes as before")
    func wireFormat() throws {
        var document = Self.asking(
            "rtds", Fixture.generated(.monolithic, nics: Fixture.paperNICs3, guests: 1, placement: .credit), pool: "rt",
            iovm: RTDSDocument(periodMicroseconds: 10_000, budgetMicroseconds: 4_000, extratime: false))
        document.scheduling?.guestRTDS = RTDSDocument(periodMicroseconds: 5_000, budgetMicroseconds: 5_000)
        let text = try JSONText.pretty(document)
        #expect(try TopologyLoader.decode(Data(text.utf8), file: "rt.json") == document)
        #expect(text.contains("\"schedulerPool\" : \"rt\"") && text.contains("\"iovmRTDS\""))

        let old = Fixture.generated(.monolithic, nics: Fixture.paperNICs3, guests: 1, placement: .credit)
        var withWeights = old
        withWeights.scheduling = SchedulingDocument(iovmWeight: 512, source: Fixture.at(40))
        for document in [old, withWeights] {
            let text = try JSONText.pretty(document)
            #expect(!text.contains("RTDS") && !text.contains("schedulerPool"))
            let decoded = try TopologyLoader.decode(Data(text.utf8), file: "old.json")
            #expect(decoded == document)
            #expect(decoded.host?.schedulerPool == nil && decoded.scheduling?.iovmRTDS == nil)
            #expect(try JSONText.pretty(decoded) == text)
        }
    }
}
