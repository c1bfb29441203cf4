import CPUSets
import Foundation
import IOVMControl
import IOVMCore
import Logging
import Synchronization
import Testing

/// Events a test scripts: each step may change the fake host (kill an IOVM) before it is delivered.
/// When the script is over, the source ends (nil), or waits until cancelled when `endless`.
final class ScriptedEvents: DomainEvents, Sendable {
    private let steps: Mutex<[@Sendable () -> DomainEvent]>
    private let endless: Bool
    /// Set when `next()` waits past the end of the script (endless only).
    let idle = Atomic<Bool>(false)

    init(endless: Bool = false, _ steps: [@Sendable () -> DomainEvent]) {
        self.steps = Mutex(steps)
        self.endless = endless
    }

    func next() async throws -> DomainEvent? {
        if let step = steps.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) { return step() }
        guard endless else { return nil }
        idle.store(true, ordering: .relaxed)
        try await Task.sleep(for: .seconds(3600))
        return nil
    }
}

/// Time that moves only when told, or when the supervisor sleeps (its sleeps are recorded, not waited).
final class FakeClock: Sendable {
    private let time = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
    private let slept = Mutex<[Double]>([])
    private let onSleep = Mutex<(@Sendable (Int) -> Void)?>(nil)

    var now: Date { time.withLock { $0 } }
    var sleeps: [Double] { slept.withLock { $0 } }

    func advance(_ seconds: Double) { time.withLock { $0 += seconds } }
    /// Runs `body` with the number of sleeps so far at every sleep.
    func whenSleeping(_ body: @escaping @Sendable (Int) -> Void) { onSleep.withLock { $0 = body } }

    var clock: SupervisorClock {
        SupervisorClock(
            now: { self.now },
            sleep: { seconds in
                let count = self.slept.withLock { slept in
                    slept.append(seconds)
                    return slept.count
                }
                self.advance(seconds)
                self.onSleep.withLock { $0 }?(count)
            })
    }
}

/// The recoveries `onRecovery` reported.
final class Recorded: Sendable {
    let items = Mutex<[Recovery]>([])
}

/// Log lines a test reads back (what an operator would see).
final class CapturedLog: Sendable {
    let lines = Mutex<[String]>([])

    struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .debug
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            log.lines.withLock { $0.append("\(event.level): \(event.message)") }
        }
    }

    var logger: Logger { Logger(label: "test.watch") { _ in Handler(log: self) } }
    var text: String { lines.withLock { $0.joined(separator: "\n") } }
}

@Suite("iovm watch: the supervisor")
struct SupervisorTests {
    let table3 = ApplyEngineTests()

    /// Table 3's hybrid (credit placement) applied on a fake host.
    func applied(extraDomains: [ObservedDomain] = []) throws -> (FakeXenBackend, Plan, ApplyEngine, ApplyReport) {
        let fake = FakeXenBackend(nics: ApplyEngineTests.nics, extraDomains: extraDomains)
        let plan = try table3.plan(.credit)
        let engine = table3.engine(fake)
        let report = try engine.apply(plan, libxlJSON: table3.json(plan))
        return (fake, plan, engine, report)
    }

    func supervisor(
        _ plan: Plan, _ engine: ApplyEngine, _ events: any DomainEvents, clock: FakeClock, log: CapturedLog,
        crashLoop: CrashLoopPolicy = .standard, recorded: Recorded? = nil
    ) -> Supervisor {
        Supervisor(
            plan: plan, libxlJSON: table3.json(plan), engine: engine, events: events, crashLoop: crashLoop, clock: clock.clock, logger: log.logger,
            onRecovery: { recovery in recorded?.items.withLock { $0.append(recovery) } })
    }

    @Test("an IOVM killed behind iovm's back: one recovery, made again, its guests' vifs re-attached, guests keep their domids")
    func recoversAKilledIOVM() async throws {
        let (fake, plan, engine, first) = try applied()
        let dead = try #require(first.domids["iovm0"])
        let clock = FakeClock()
        let log = CapturedLog()
        let recorded = Recorded()
        let events = ScriptedEvents([
            iovm0Killed(fake),
            { .recheck },
        ])
        let before = fake.mutatingCalls.count
        let supervisor = supervisor(plan, engine, events, clock: clock, log: log, recorded: recorded)
        try await supervisor.run()

        let recoveries = await supervisor.recoveries
        #expect(recoveries.count == 1)
        #expect(recoveries.first?.iovms == ["iovm0"])
        #expect(recoveries.first?.outcome == .recovered)
        // Recovered after a glance at the host (session 25): its vifs are the apply's to find, and its steps name them.
        #expect(recoveries.first?.reasons == ["IOVM iovm0 died"])
        #expect(
            recoveries.first?.steps.filter { $0.hasPrefix("re-attach") }.sorted() == [
                "re-attach vif 0 of guest1 (\(first.domids["guest1"]!)) to iovm0: vif 0 is backed by domain \(dead), which no longer exists",
                "re-attach vif 0 of guest2 (\(first.domids["guest2"]!)) to iovm0: vif 0 is backed by domain \(dead), which no longer exists",
            ])
        #expect(recorded.items.withLock { $0 } == recoveries)
        #expect(await supervisor.failures == 0)

        let state = fake.snapshot
        let iovm0 = try #require(state.domains.first { $0.name == "iovm0" })
        #expect(iovm0.domid != dead)
        #expect(iovm0.pci.map(\.description) == ["0000:00:10.0", "0000:00:11.0"])
        for guest in plan.guests {
            let now = try #require(state.domains.first { $0.name == guest.name })
            #expect(now.domid == first.domids[guest.name], "\(guest.name) was recreated")
            let backend = try #require(state.domains.first { $0.name == guest.vifs.first?.backend })
            #expect(now.vifs?.map(\.backendDomid) == [backend.domid], "\(guest.name)'s vif is not in its IOVM")
        }
        let calls = Array(fake.mutatingCalls.dropFirst(before))
        let served = plan.guests.filter { $0.vifs.first?.backend == "iovm0" }.map(\.name)
        #expect(calls.filter { $0.hasPrefix("createDomain") } == ["createDomain iovm0"])
        #expect(calls.contains("waitForDriverDomain iovm0"))
        #expect(Set(calls.filter { $0.hasPrefix("reattachVif") }) == Set(served.map { "reattachVif \($0) 0 iovm0" }))
        let created = try #require(calls.firstIndex(of: "createDomain iovm0"))
        #expect(calls.indices.filter { calls[$0].hasPrefix("reattachVif") }.allSatisfy { $0 > created })

        let text = log.text
        #expect(text.contains("warning: iovm watch: IOVM iovm0 (\(dead)) is gone"))
        #expect(text.contains("notice: iovm watch: @releaseDomain fired: recovering: IOVM iovm0 died\n"), "\(text)")
        #expect(text.contains("notice: iovm watch: done: created iovm0 (\(iovm0.domid))"))
        #expect(text.contains("notice: iovm watch: recovered iovm0 in "))
        // The re-check after the recovery found nothing to do: no second apply.
        #expect(text.contains("debug: iovm watch: periodic re-check: nothing to recover"))
    }

    @Test("a guest's planned vif that is missing (a recovery removed it and failed to add it back) is added back at the re-check")
    func addsBackAMissingVif() async throws {
        let (fake, plan, engine, first) = try applied()
        let guest1 = try #require(first.domids["guest1"])
        let clock = FakeClock()
        let log = CapturedLog()
        let events = ScriptedEvents([
            {
                fake.dropVif(0, of: "guest1")
                return .recheck
            },
            { .recheck },
        ])
        let before = fake.mutatingCalls.count
        let supervisor = supervisor(plan, engine, events, clock: clock, log: log)
        try await supervisor.run()

        let recoveries = await supervisor.recoveries
        #expect(recoveries.map(\.reasons) == [["guest1's vif 0 is missing"]])
        #expect(recoveries.first?.outcome == .recovered)
        let calls = Array(fake.mutatingCalls.dropFirst(before))
        #expect(calls.filter { $0.hasPrefix("reattachVif") || $0.hasPrefix("createDomain") } == ["reattachVif guest1 0 iovm0"])
        let now = try #require(fake.snapshot.domains.first { $0.name == "guest1" })
        #expect(now.domid == guest1)
        #expect(now.vifs?.map(\.devid) == [0])
        #expect(log.text.contains("debug: iovm watch: periodic re-check: nothing to recover"), "\(log.text)")
    }

    @Test("a guest the watch never saw with its vif (xl restore has yet to add it) is left alone: nothing to recover")
    func aVifNeverSeenIsNotMissing() async throws {
        let (fake, plan, engine, _) = try applied()
        fake.dropVif(0, of: "guest1")
        let clock = FakeClock()
        let log = CapturedLog()
        // Re-checks 30 s, 61 s and 100 s after the start: the vif is said missing once, at the first a minute on.
        let saidAt = Mutex<[Int]>([])
        func recheck(after seconds: Double) -> @Sendable () -> DomainEvent {
            {
                saidAt.withLock { $0.append(log.text.split(separator: "\n").count { $0.contains("this watch never saw it there") }) }
                clock.advance(seconds)
                return .recheck
            }
        }
        let events = ScriptedEvents([recheck(after: 30), recheck(after: 31), recheck(after: 39)])
        let before = fake.mutatingCalls.count
        let supervisor = supervisor(plan, engine, events, clock: clock, log: log)
        try await supervisor.run()
        #expect(await supervisor.recoveries.isEmpty)
        #expect(fake.mutatingCalls.count == before, "\(fake.mutatingCalls.dropFirst(before))")
        #expect(SupervisedView(plan: plan, host: try fake.observe(nics: [])).missingVifs.map(\.reason) == ["guest1's vif 0 is missing"])
        // Not at the start's look nor 30 s on (an `xl restore` adds vifs late); once at 61 s, with what to do.
        #expect(saidAt.withLock { $0 } == [0, 0, 1], "\(log.text)")
        let said = log.text.split(separator: "\n").filter { $0.contains("has no vif 0, and this watch never saw it there") }
        #expect(said.count == 1, "\(log.text)")
        #expect(said.first?.hasPrefix("warning: iovm watch: guest1 (") == true && said.first?.hasSuffix("`iovm apply` adds it") == true, "\(log.text)")
    }

    @Test("an IOVM gone at an event is recovered after one listing of Xen's domains: the apply's is the only whole look")
    func recoversAfterAQuickLook() async throws {
        let (fake, plan, engine, _) = try applied()
        let start = fake.calls.count
        let events = ScriptedEvents([iovm0Killed(fake)])
        let log = CapturedLog()
        let supervisor = supervisor(plan, engine, events, clock: FakeClock(), log: log)
        try await supervisor.run()
        let calls = Array(fake.calls.dropFirst(start))
        let created = try #require(calls.firstIndex(of: "createDomain iovm0"), "\(calls)")
        // The start's whole look, then at the event one listing and the apply's look under the lock.
        #expect(calls[..<created].filter { $0 == "observe" || $0 == "glance" } == ["observe", "glance", "observe"], "\(calls)")
        #expect(log.text.contains("notice: iovm watch: @releaseDomain fired: recovering: IOVM iovm0 died"), "\(log.text)")
        #expect(await supervisor.recoveries.map(\.iovms) == [["iovm0"]])
    }

    @Test("a glance that finds the topology being destroyed (iovm destroy's mark) counts no death and makes nothing")
    func glanceLeavesADestroyAlone() async throws {
        let (fake, plan, engine, _) = try applied()
        let events = ScriptedEvents([
            {
                try? fake.recordApplied(topology: plan.topology, fingerprint: ObservedHost.destroyingMark)
                fake.killBehindIOVMsBack("iovm0")
                return .fired(path: "@releaseDomain")
            }
        ])
        let log = CapturedLog()
        let before = fake.mutatingCalls
        let supervisor = supervisor(plan, engine, events, clock: FakeClock(), log: log)
        try await supervisor.run()
        #expect(fake.mutatingCalls == before)
        #expect(await supervisor.recoveries.isEmpty)
        #expect(!log.text.contains("is gone") && !log.text.contains("recovering"), "\(log.text)")
        #expect(log.text.contains("is being destroyed (or a destroy of it stopped): not making it again"), "\(log.text)")
    }

    @Test("an IOVM that crashed (still listed, shut down): destroyed, made again, its guests' vifs re-attached")
    func recoversACrashedIOVM() async throws {
        let (fake, plan, engine, first) = try applied()
        let crashed = try #require(first.domids["iovm1"])
        let events = ScriptedEvents([
            {
                fake.shutDown("iovm1", reason: "crash")
                return .fired(path: "@releaseDomain")
            }
        ])
        let supervisor = supervisor(plan, engine, events, clock: FakeClock(), log: CapturedLog())
        try await supervisor.run()
        let recoveries = await supervisor.recoveries
        #expect(recoveries.map { $0.iovms } == [["iovm1"]])
        #expect(recoveries.first?.steps.first == "destroy IOVM iovm1 (\(crashed)), which shut down (crash), to create it again")
        let state = fake.snapshot
        let iovm1 = try #require(state.domains.first { $0.name == "iovm1" })
        #expect(iovm1.domid != crashed && iovm1.shutdownReason == nil)
        #expect(!state.domains.contains { $0.domid == crashed })
        for guest in plan.guests where guest.vifs.first?.backend == "iovm1" {
            #expect(state.domains.first { $0.name == guest.name }?.vifs?.first?.backendDomid == iovm1.domid)
            #expect(state.domains.first { $0.name == guest.name }?.domid == first.domids[guest.name])
        }
    }

    @Test("a domain iovm did not create dying changes nothing")
    func ignoresUnmanagedDomains() async throws {
        let other = ObservedDomain(
            domid: 1, name: "mail", uuid: "mail-uuid", vcpus: 1, hardAffinity: [CPUSet(0..<4)], weight: 256, cap: 0, cpupool: "Pool-0",
            vifs: [ObservedVif(devid: 0, backendDomid: 0, backendState: "4", hotplugStatus: "connected")])
        let (fake, plan, engine, _) = try applied(extraDomains: [other])
        let before = fake.mutatingCalls
        let events = ScriptedEvents([
            {
                fake.killBehindIOVMsBack("mail")
                return .fired(path: "@releaseDomain")
            },
            { .recheck },
        ])
        let log = CapturedLog()
        let supervisor = supervisor(plan, engine, events, clock: FakeClock(), log: log)
        try await supervisor.run()
        #expect(await supervisor.recoveries.isEmpty)
        #expect(fake.mutatingCalls == before)
        #expect(!log.text.contains("recovering"))
    }

    @Test("an IOVM still dying (xl destroy in progress) is left to finish; once it is gone, it is recovered")
    func waitsForADyingIOVM() async throws {
        let (fake, plan, engine, _) = try applied()
        let events = ScriptedEvents([
            {
                fake.shutDown("iovm0", reason: "dying")
                return .fired(path: "@releaseDomain")
            },
            {
                fake.killBehindIOVMsBack("iovm0")
                return .fired(path: "@releaseDomain")
            },
        ])
        let log = CapturedLog()
        let before = fake.mutatingCalls.count
        let supervisor = supervisor(plan, engine, events, clock: FakeClock(), log: log)
        try await supervisor.run()
        #expect(log.text.contains("IOVM iovm0 ("), "\(log.text)")
        #expect(log.text.contains("is being destroyed; looking again once it is gone"), "\(log.text)")
        let calls = Array(fake.mutatingCalls.dropFirst(before))
        #expect(!calls.contains { $0.hasPrefix("destroyDomain") }, "\(calls)")
        #expect(calls.contains("createDomain iovm0"))
        #expect(await supervisor.recoveries.map(\.iovms) == [["iovm0"]])
    }

    @Test("an IOVM dying for a minute (a zombie) is reported once as an error, and nothing is made while it stays")
    func reportsAZombieOnce() async throws {
        let (fake, plan, engine, _) = try applied()
        let clock = FakeClock()
        let events = ScriptedEvents([
            {
                fake.shutDown("iovm0", reason: "dying")
                return .fired(path: "@releaseDomain")
            },
            {
                clock.advance(30)
                return .recheck
            },
            {
                clock.advance(31)
                return .recheck
            },
            {
                clock.advance(100)
                return .recheck
            },
        ])
        let log = CapturedLog()
        let before = fake.mutatingCalls.count
        let supervisor = supervisor(plan, engine, events, clock: clock, log: log)
        try await supervisor.run()
        let reports = log.text.components(separatedBy: "has been dying for")
        #expect(reports.count == 2, "\(log.text)")
        #expect(log.text.contains("iovm watch: IOVM iovm0 ("), "\(log.text)")
        #expect(log.text.contains("has been dying for 61 s: Xen cannot release a domain"), "\(log.text)")
        #expect(fake.mutatingCalls.count == before, "\(fake.mutatingCalls.dropFirst(before))")
    }

    @Test("a topology destroyed by iovm destroy is not made again")
    func leavesADestroyedTopologyAlone() async throws {
        let (fake, plan, engine, _) = try applied()
        let events = ScriptedEvents([
            {
                // What iovm destroy does: the record first, then every domain.
                try? fake.recordApplied(topology: plan.topology, fingerprint: ObservedHost.destroyingMark)
                for name in plan.domains.map(\.name) { fake.killBehindIOVMsBack(name) }
                try? fake.recordApplied(topology: plan.topology, fingerprint: nil)
                return .fired(path: "@releaseDomain")
            },
            { .recheck },
        ])
        let log = CapturedLog()
        let before = fake.mutatingCalls.count
        let supervisor = supervisor(plan, engine, events, clock: FakeClock(), log: log)
        try await supervisor.run()
        #expect(await supervisor.recoveries.isEmpty)
        #expect(fake.mutatingCalls.count == before)
        #expect(log.text.contains("table3 was destroyed"), "\(log.text)")
    }

    @Test("apply refuses while an IOVM of the topology is dying")
    func applyRefusesWhileDying() throws {
        let (fake, plan, engine, _) = try applied()
        fake.shutDown("iovm1", reason: "dying")
        #expect {
            try engine.apply(plan, libxlJSON: table3.json(plan))
        } throws: { error in
            "\(error)".contains("IOVM iovm1 (") && "\(error)".contains(") is being destroyed (dying): apply again once Xen has released it")
        }
    }

    @Test("the same IOVM dying 3 times within 300 s stops with a crash-loop error after 2 recoveries")
    func stopsOnACrashLoop() async throws {
        let (fake, plan, engine, _) = try applied()
        let clock = FakeClock()
        let kill: @Sendable () -> DomainEvent = {
            clock.advance(60)
            fake.killBehindIOVMsBack("iovm0")
            return .fired(path: "@releaseDomain")
        }
        let log = CapturedLog()
        let supervisor = supervisor(plan, engine, ScriptedEvents([kill, kill, kill, kill]), clock: clock, log: log)
        if let loop = try await crashLoop(of: supervisor) {
            #expect(loop.iovm == "iovm0")
            #expect(loop.deaths.count == 3)
            #expect(loop.policy == .standard)
            let text = loop.description
            #expect(text.hasPrefix("crash loop: IOVM iovm0 died 3 times in 120 s (at 2027-01-15T08:01:00Z, 2027-01-15T08:02:00Z, 2027-01-15T08:03:00Z)"), "\(text)")
            #expect(text.contains("the limit being 3 within 300 s (--crash-loop 3/300)"))
        }
        #expect(await supervisor.recoveries.count == 2)
        #expect(!fake.snapshot.domains.contains { $0.name == "iovm0" })  // the third death is left alone
        #expect(log.text.contains("critical: iovm watch: crash loop: IOVM iovm0 died 3 times"))
    }

    @Test("deaths further apart than the window are no crash loop")
    func spacedDeathsAreRecovered() async throws {
        let (fake, plan, engine, _) = try applied()
        let clock = FakeClock()
        let kill: @Sendable () -> DomainEvent = {
            clock.advance(200)
            fake.killBehindIOVMsBack("iovm0")
            return .fired(path: "@releaseDomain")
        }
        let supervisor = supervisor(plan, engine, ScriptedEvents([kill, kill, kill, kill]), clock: clock, log: CapturedLog())
        try await supervisor.run()
        #expect(await supervisor.recoveries.map { $0.outcome } == Array(repeating: .recovered, count: 4))
        #expect(fake.snapshot.domains.contains { $0.name == "iovm0" })
    }

    @Test("a failing recovery is counted and retried after 5, 10, 20 s: one apply per wait, no spin")
    func backsOffAfterAFailure() async throws {
        let (fake, plan, engine, _) = try applied()
        let clock = FakeClock()
        let before = fake.calls.count
        // A step after the creation (libxl refusing the creation itself is a crash loop at the third: FailedRecoveries).
        fake.fail("reattachVif guest1")
        clock.whenSleeping { count in if count == 3 { fake.heal("reattachVif guest1") } }
        let recorded = Recorded()
        let log = CapturedLog()
        let events = ScriptedEvents([iovm0Killed(fake)])
        let supervisor = supervisor(plan, engine, events, clock: clock, log: log, recorded: recorded)
        try await supervisor.run()
        #expect(await supervisor.failures == 3)
        #expect(clock.sleeps == [5, 10, 20])
        let outcomes = await supervisor.recoveries.map { $0.outcome }
        #expect(outcomes.count == 4)
        #expect(outcomes.prefix(3).allSatisfy { if case .failed(let reason) = $0 { reason.contains("injected failure: reattachVif guest1") } else { false } })
        #expect(outcomes.last == .recovered)
        #expect(recorded.items.withLock { $0.count } == 4)
        #expect(fake.calls.dropFirst(before).filter { $0 == "createDomain iovm0" }.count == 4)  // 3 undone, 1 kept
        #expect(fake.snapshot.domains.contains { $0.name == "iovm0" })
        #expect(log.text.contains("error: iovm watch: recovery failed (1 in a row): error: re-attach vif 0 of guest1 ("))
        #expect(
            log.text.contains(
                "failed: injected failure: reattachVif guest1 0 iovm0; rolled back: created iovm0 (7); The host is as it was before this apply.; trying again in 5 s"
            ))
        #expect(log.text.contains("trying again in 10 s"))
    }

    @Test("cancelling the task that runs it (what SIGTERM does through the service group) ends the loop")
    func endsWhenCancelled() async throws {
        let (_, plan, engine, _) = try applied()
        let events = ScriptedEvents(endless: true, [{ .recheck }])
        let supervisor = supervisor(plan, engine, events, clock: FakeClock(), log: CapturedLog())
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await supervisor.run() }
            while !events.idle.load(ordering: .relaxed) { try await Task.sleep(for: .milliseconds(10)) }
            group.cancelAll()
            let result = await group.nextResult()
            guard case .failure(let error) = result else {
                Issue.record("the loop ended without being cancelled: \(String(describing: result))")
                return
            }
            #expect(error is CancellationError)
        }
        #expect(ContinuousClock.now - started < .seconds(60))
        #expect(await supervisor.eventsHandled == 1)
    }

    @Test("the crash-loop policy: K/N parsing and the window")
    func crashLoopPolicy() {
        #expect(CrashLoopPolicy(parsing: "3/300") == .standard)
        #expect(CrashLoopPolicy(parsing: "5/60.5") == CrashLoopPolicy(deaths: 5, seconds: 60.5))
        for bad in ["3", "0/300", "3/0", "a/b", "3/300/1", "-1/5", ""] { #expect(CrashLoopPolicy(parsing: bad) == nil, "\(bad)") }
        #expect(CrashLoopPolicy.standard.description == "3/300")
        var tracker = CrashLoopTracker(policy: CrashLoopPolicy(deaths: 2, seconds: 10))
        let t0 = Date(timeIntervalSince1970: 0)
        #expect(tracker.record("iovm0", at: t0) == nil)
        #expect(tracker.record("iovm1", at: t0 + 1) == nil)  // another IOVM does not count
        #expect(tracker.record("iovm0", at: t0 + 10) == nil)  // 10 s later: outside the window
        #expect(tracker.record("iovm0", at: t0 + 19)?.deaths == [t0 + 10, t0 + 19])
        #expect(Backoff.standard.delay(afterFailures: 1) == 5)
        #expect(Backoff.standard.delay(afterFailures: 4) == 40)
        #expect(Backoff.standard.delay(afterFailures: 100) == 300)
    }
}

@Suite("apply and a crashed IOVM")
struct ShutDownIOVMTests {
    @Test("a crashed IOVM of the topology is destroyed and made again, and so is a guest that powered off; the other IOVM is left alone")
    func reconcile() throws {
        let tests = ApplyEngineTests()
        let fake = FakeXenBackend(nics: ApplyEngineTests.nics)
        let plan = try tests.plan(.credit)
        let engine = tests.engine(fake)
        let first = try engine.apply(plan, libxlJSON: tests.json(plan))
        fake.shutDown("iovm0", reason: "crash")
        fake.shutDown("guest4", reason: "poweroff")
        let lines = try engine.preview(plan).changes.map(\.description)
        let dead = try #require(first.domids["iovm0"])
        #expect(lines.first == "destroy IOVM iovm0 (\(dead)), which shut down (crash), to create it again")
        #expect(lines.contains("create iovm0 (stage 1)"))
        #expect(lines.filter { $0.hasPrefix("re-attach vif 0 of guest") }.count == 2)
        // Since session 25 a guest that shut down is made again too (before, apply left it listed and shut down).
        let guest4 = try #require(first.domids["guest4"])
        #expect(lines.filter { $0.contains("guest4") } == ["destroy guest guest4 (\(guest4)), which shut down (poweroff), to create it again", "create guest4 (stage 2)"])
        #expect(!lines.contains { $0.contains("iovm1") })
        let view = SupervisedView(plan: plan, host: try fake.observe(nics: []))
        #expect(view.shutDown["iovm0"] == SupervisedView.ShutDown(domid: dead, reason: "crash"))
        #expect(view.running.keys.sorted() == ["iovm1"])
        #expect(view.brokenVifs.count == 2 && view.brokenVifs.allSatisfy { $0.hasSuffix("is backed by domain \(dead), which shut down") })
    }
}
