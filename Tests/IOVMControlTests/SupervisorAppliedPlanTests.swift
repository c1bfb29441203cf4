import CPUSets
import Foundation
import IOVMControl
import IOVMCore
import IOVMWireFormat
import Synchronization
import Testing

/// `iovm watch` makes again only the plan applied last: a recovery never undoes a newer apply or a destroy.
@Suite("iovm watch: the plan applied last")
struct SupervisorAppliedPlanTests {
    let table3 = ApplyEngineTests()
    let watch = SupervisorTests()

    func supervisor(_ plan: Plan, _ engine: ApplyEngine, _ events: any DomainEvents, log: CapturedLog, reload: Plan?) -> Supervisor {
        let json = table3.json(reload ?? plan)
        var again: (@Sendable () throws -> (plan: Plan, libxlJSON: [String: String]))?
        if let reload { again = { @Sendable in (reload, json) } }
        return Supervisor(
            plan: plan, libxlJSON: table3.json(plan), engine: engine, events: events, clock: FakeClock().clock, logger: log.logger, reload: again)
    }

    /// A file read by ``rereadingSupervisor(_:_:_:clock:log:failing:then:)`` that is half-saved at first.
    struct HalfSaved: Error, CustomStringConvertible { var description: String { "topology.json:3: error: not a JSON object" } }

    /// The reads of the watch's file so far.
    final class Reads: Sendable { let count = Atomic<Int>(0) }

    /// A watch of `plan` whose file fails to read (``HalfSaved``) the first `failures` times, then gives `fresh`.
    func rereadingSupervisor(
        _ plan: Plan, _ engine: ApplyEngine, _ events: any DomainEvents, clock: FakeClock, log: CapturedLog, failing failures: Int, then fresh: Plan
    ) -> (Supervisor, Reads) {
        let reads = Reads()
        let json = table3.json(fresh)
        let supervisor = Supervisor(
            plan: plan, libxlJSON: table3.json(plan), engine: engine, events: events, clock: clock.clock, logger: log.logger,
            reload: { @Sendable in
                if reads.count.add(1, ordering: .relaxed).newValue <= failures { throw HalfSaved() }
                return (fresh, json)
            })
        return (supervisor, reads)
    }

    /// One event: iovm0 killed; then, under the recovery's lock, the host records another plan ("0ther"): what an apply
    /// that held the lock while the recovery waited left.
    func killedWhileAnotherPlanIsApplied(_ fake: FakeXenBackend) -> ScriptedEvents {
        let armed = Atomic<Bool>(false)
        fake.onCall { line in
            if line == "removeStaleRecords", armed.exchange(false, ordering: .relaxed) { try? fake.recordApplied(topology: "table3", fingerprint: "0ther") }
        }
        return ScriptedEvents([
            {
                armed.store(true, ordering: .relaxed)
                fake.killBehindIOVMsBack("iovm0")
                return .fired(path: "@releaseDomain")
            }
        ])
    }

    func weight(_ fake: FakeXenBackend, _ name: String) -> Int? { fake.snapshot.domains.first { $0.name == name }?.weight }

    @Test("the fingerprint is the same for the same plan, differs with placement, weights or image, and ignores where things were declared")
    func fingerprint() throws {
        let credit = try table3.plan(.credit)
        #expect(try table3.plan(.credit).appliedFingerprint == credit.appliedFingerprint)
        #expect(try table3.plan(.hybridPinned).appliedFingerprint != credit.appliedFingerprint)
        #expect(try table3.plan(.credit, iovmWeight: 1024).appliedFingerprint != credit.appliedFingerprint)
        var moved = credit
        moved.source = SourceLocation(file: "/elsewhere.swift", line: 40)
        for index in moved.domains.indices {
            moved.domains[index].source = SourceLocation(file: "/elsewhere.swift", line: 41 + index)
            for nic in moved.domains[index].nics.indices { moved.domains[index].nics[nic].source = SourceLocation(file: "/link/to/it.swift", line: 7 + nic) }
        }
        moved.warnings = [Diagnostic(.warning, "a warning", at: SourceLocation(file: "/x.swift", line: 1))]
        #expect(moved.appliedFingerprint == credit.appliedFingerprint)
        // The image counts by its hash, not by where the store keeps it.
        var stored = credit
        stored.domains[0].image = ImageUse(kind: "minimal", nicDrivers: ["e1000"], hash: "723af89232308678", problem: nil)
        var elsewhere = stored
        elsewhere.domains[0].kernel = "/srv/images/723af89232308678/bzImage"
        #expect(stored.appliedFingerprint == elsewhere.appliedFingerprint)
        elsewhere.domains[0].image?.hash = "0123456789abcdef"
        #expect(stored.appliedFingerprint != elsewhere.appliedFingerprint)
    }

    @Test("apply records its plan for the topology, destroy removes it, and a recovery's apply refuses once it changed")
    func engineRecords() throws {
        let fake = FakeXenBackend(nics: ApplyEngineTests.nics)
        let plan = try table3.plan(.credit)
        let engine = table3.engine(fake)
        _ = try engine.apply(plan, libxlJSON: table3.json(plan))
        #expect(fake.snapshot.applied == ["table3": plan.appliedFingerprint])
        // A no-op re-apply of the same plan does not write it again.
        let writes = fake.calls.filter { $0.hasPrefix("recordApplied") }.count
        _ = try engine.apply(plan, libxlJSON: table3.json(plan))
        #expect(fake.calls.filter { $0.hasPrefix("recordApplied") }.count == writes)
        // A recovery expecting another plan touches nothing.
        let before = fake.mutatingCalls.count
        #expect { try engine.apply(plan, libxlJSON: table3.json(plan), expectingApplied: .plan("0ther")) } throws: {
            "\($0)" == "error: table3 was applied anew meanwhile (plan \(plan.appliedFingerprint)); nothing was touched"
        }
        #expect { try engine.apply(plan, libxlJSON: table3.json(plan), expectingApplied: .unrecorded) } throws: { "\($0)".contains("applied anew") }
        #expect(fake.mutatingCalls.count == before)
        // A destroy that fails half-way leaves the topology marked as being destroyed; one that ends well, nothing.
        fake.fail("destroyDomain iovm1")
        #expect(throws: ApplyError.self) { try engine.destroy(topology: plan.topology, nics: plan.hostNICs) }
        #expect(fake.snapshot.applied == ["table3": ObservedHost.destroyingMark])
        #expect { try engine.apply(plan, libxlJSON: table3.json(plan), expectingApplied: .plan(plan.appliedFingerprint)) } throws: {
            "\($0)" == "error: table3 is being destroyed; nothing was touched"
        }
        fake.heal("destroyDomain iovm1")
        _ = try engine.destroy(topology: plan.topology, nics: plan.hostNICs)
        #expect(fake.snapshot.applied.isEmpty)
        #expect { try engine.apply(plan, libxlJSON: table3.json(plan), expectingApplied: .plan(plan.appliedFingerprint)) } throws: {
            "\($0)" == "error: table3 was destroyed meanwhile; nothing was touched"
        }
        #expect(fake.snapshot.domains.count == 1)
    }

    @Test("applied anew with the watch's file changed to match: the watch keeps the new plan and recovers with it")
    func followsTheFile() async throws {
        let (fake, credit, engine, _) = try watch.applied()
        let heavier = try table3.plan(.credit, iovmWeight: 1024)
        let log = CapturedLog()
        let json = table3.json(heavier)
        let events = ScriptedEvents([
            {
                _ = try? engine.apply(heavier, libxlJSON: json)
                fake.killBehindIOVMsBack("iovm0")
                return .fired(path: "@releaseDomain")
            },
            { .recheck },
        ])
        let supervisor = supervisor(credit, engine, events, log: log, reload: heavier)
        try await supervisor.run()
        #expect(await supervisor.recoveries.map(\.iovms) == [["iovm0"]])
        #expect(await supervisor.plan == heavier)
        #expect(weight(fake, "iovm0") == 1024 && weight(fake, "iovm1") == 1024, "the recovery undid the newer apply's weights")
        #expect(log.text.contains("notice: iovm watch: table3 was applied anew; keeping the plan its file gives now (plan \(heavier.appliedFingerprint))"))
    }

    @Test("applied anew, its file unreadable at first: the file is read again after 30 s, then 60 s; the plan it gives then is kept")
    func readsTheFileAgainLater() async throws {
        let (fake, credit, engine, _) = try watch.applied()
        let heavier = try table3.plan(.credit, iovmWeight: 1024)
        let log = CapturedLog()
        let json = table3.json(heavier)
        let clock = FakeClock()
        let events = ScriptedEvents([
            {
                _ = try? engine.apply(heavier, libxlJSON: json)
                fake.killBehindIOVMsBack("iovm0")
                return .fired(path: "@releaseDomain")
            },
            { .recheck },  // not due: no read
            {
                clock.advance(30)
                return .recheck  // due: the second read fails too; the next is due 60 s later
            },
            {
                clock.advance(59)
                return .recheck  // not due
            },
            {
                clock.advance(1)
                return .recheck  // due: the file gives the applied plan
            },
        ])
        let (supervisor, reads) = rereadingSupervisor(credit, engine, events, clock: clock, log: log, failing: 2, then: heavier)
        try await supervisor.run()
        #expect(reads.count.load(ordering: .relaxed) == 3)
        #expect(log.lines.withLock { $0 }.filter { $0.contains("not recovering") }.count == 1, "\(log.text)")
        #expect(log.text.contains("and its file cannot be read again: topology.json:3: error: not a JSON object: not recovering"), "\(log.text)")
        #expect(await supervisor.plan == heavier)
        #expect(await supervisor.recoveries.map(\.iovms) == [["iovm0"]])
        #expect(weight(fake, "iovm0") == 1024)
    }

    @Test("a re-read that finds something new says so once at notice (the file reads now, but gives another plan); the same again is debug")
    func newRereadFindingsAreNews() async throws {
        let (fake, credit, engine, _) = try watch.applied()
        let heavier = try table3.plan(.credit, iovmWeight: 1024)
        let log = CapturedLog()
        let clock = FakeClock()
        let events = ScriptedEvents([
            {
                _ = try? engine.apply(heavier, libxlJSON: table3.json(heavier))
                return .recheck
            },
            {
                clock.advance(30)
                return .recheck  // the file reads now, and gives this watch's own plan: news
            },
            {
                clock.advance(60)
                return .recheck  // the same again
            },
        ])
        let (supervisor, reads) = rereadingSupervisor(credit, engine, events, clock: clock, log: log, failing: 1, then: credit)
        try await supervisor.run()
        let lines = log.lines.withLock { $0 }
        #expect(reads.count.load(ordering: .relaxed) == 3)
        #expect(lines.filter { $0.contains("not recovering") }.count == 1, "\(log.text)")
        let news = lines.filter { $0.hasPrefix("notice: iovm watch: read the file of table3 again") }
        #expect(news.count == 1 && news[0].contains("its file now gives plan \(credit.appliedFingerprint)"), "\(log.text)")
        #expect(await supervisor.plan == credit)
        #expect(weight(fake, "iovm0") == 1024)
    }

    @Test("applied anew from another file: the watch recovers nothing (that would undo the apply) and says why")
    func refusesAStalePlan() async throws {
        let (fake, credit, engine, _) = try watch.applied()
        let heavier = try table3.plan(.credit, iovmWeight: 1024)
        let log = CapturedLog()
        let json = table3.json(heavier)
        let events = ScriptedEvents([
            {
                _ = try? engine.apply(heavier, libxlJSON: json)
                fake.killBehindIOVMsBack("iovm0")
                return .fired(path: "@releaseDomain")
            },
            { .recheck }, { .recheck }, { .recheck },
        ])
        let before = fake.mutatingCalls.count
        let supervisor = supervisor(credit, engine, events, log: log, reload: credit)
        try await supervisor.run()
        #expect(await supervisor.recoveries.isEmpty)
        #expect(!fake.mutatingCalls.dropFirst(before).contains { $0.hasPrefix("createDomain") })
        #expect(weight(fake, "iovm1") == 1024)
        #expect(
            log.text.contains(
                "error: iovm watch: table3 was applied with plan \(heavier.appliedFingerprint), not this watch's \(credit.appliedFingerprint), and its file now gives plan \(credit.appliedFingerprint): not recovering"
            ))
        // Once per recorded plan, not at every re-check; and the IOVM gone under a plan not this watch's is no death.
        #expect(log.lines.withLock { $0 }.filter { $0.contains("not recovering") }.count == 1)
        #expect(!log.text.contains("is gone"))
    }

    @Test("a topology being destroyed (its record gone, some domains still running): nothing is made again")
    func destroyed() async throws {
        let (fake, credit, engine, _) = try watch.applied()
        let log = CapturedLog()
        let events = ScriptedEvents([
            {
                try? fake.recordApplied(topology: "table3", fingerprint: nil)
                fake.killBehindIOVMsBack("iovm0")
                return .fired(path: "@releaseDomain")
            },
            { .recheck },
        ])
        let before = fake.mutatingCalls.count
        let supervisor = supervisor(credit, engine, events, log: log, reload: credit)
        try await supervisor.run()
        #expect(await supervisor.recoveries.isEmpty)
        #expect(fake.mutatingCalls.count == before)
        #expect(log.text.contains("notice: iovm watch: table3 was destroyed (its applied plan is no longer recorded): not making it again"))
    }

    @Test("a plan applied while the recovery waited for the host lock wins: the recovery touches nothing")
    func appliedWhileWaiting() async throws {
        let (fake, credit, engine, _) = try watch.applied()
        let log = CapturedLog()
        let events = killedWhileAnotherPlanIsApplied(fake)
        let before = fake.mutatingCalls.count
        let supervisor = supervisor(credit, engine, events, log: log, reload: nil)
        try await supervisor.run()
        #expect(await supervisor.recoveries.isEmpty)
        #expect(fake.mutatingCalls.count == before)
        #expect(log.text.contains("notice: iovm watch: not recovering: table3 was applied anew while the recovery waited for the host lock"))
    }

    @Test("a destroy that was stopped (the topology marked as being destroyed): a watch started then makes nothing again")
    func destroyStopped() async throws {
        let (fake, credit, engine, _) = try watch.applied()
        try fake.recordApplied(topology: "table3", fingerprint: ObservedHost.destroyingMark)
        fake.killBehindIOVMsBack("guest1")
        fake.killBehindIOVMsBack("iovm0")
        let log = CapturedLog()
        let before = fake.mutatingCalls.count
        let supervisor = supervisor(credit, engine, ScriptedEvents([{ .recheck }]), log: log, reload: credit)
        try await supervisor.run()
        #expect(await supervisor.recoveries.isEmpty)
        #expect(fake.mutatingCalls.count == before)
        #expect(log.lines.withLock { $0 }.filter { $0.contains("table3 is being destroyed (or a destroy of it stopped): not making it again") }.count == 1)
    }

    @Test("on a host with no plan recorded, an apply made while the recovery waited for the lock wins too")
    func unrecordedRace() async throws {
        let (fake, credit, engine, _) = try watch.applied()
        try fake.recordApplied(topology: "table3", fingerprint: nil)
        let log = CapturedLog()
        let events = killedWhileAnotherPlanIsApplied(fake)
        let before = fake.mutatingCalls.count
        let supervisor = supervisor(credit, engine, events, log: log, reload: nil)
        try await supervisor.run()
        #expect(await supervisor.recoveries.isEmpty)
        #expect(fake.mutatingCalls.count == before)
        #expect(fake.snapshot.applied == ["table3": "0ther"])
    }

    @Test("a host applied by an older iovm (no plan recorded): recoveries are made as before, and the watch says why")
    func noRecord() async throws {
        let (fake, credit, engine, _) = try watch.applied()
        try fake.recordApplied(topology: "table3", fingerprint: nil)
        let log = CapturedLog()
        let events = ScriptedEvents([
            {
                fake.killBehindIOVMsBack("iovm0")
                return .fired(path: "@releaseDomain")
            }
        ])
        let supervisor = supervisor(credit, engine, events, log: log, reload: nil)
        try await supervisor.run()
        #expect(await supervisor.recoveries.map(\.iovms) == [["iovm0"]])
        #expect(log.text.contains("notice: iovm watch: no plan is recorded as applied for table3"))
        #expect(fake.snapshot.applied == ["table3": credit.appliedFingerprint])
    }
}
