import Foundation
import IOVMControl
import IOVMCore
import Synchronization
import Testing

/// Recoveries that do not go as planned: an IOVM that never comes up, a guest that goes away during its re-attach,
/// another IOVM that dies while a recovery waits, and the backoff across looks.
extension SupervisorTests {
    /// The event of iovm0 killed behind iovm's back: @releaseDomain fires.
    func iovm0Killed(_ fake: FakeXenBackend) -> @Sendable () -> DomainEvent {
        {
            fake.killBehindIOVMsBack("iovm0")
            return .fired(path: "@releaseDomain")
        }
    }

    /// The event of guest `name` rebooting (on_reboot=restart is iovm's to carry out): @releaseDomain fires.
    func rebooted(_ fake: FakeXenBackend, _ name: String) -> @Sendable () -> DomainEvent {
        {
            fake.shutDown(name, reason: "reboot")
            return .fired(path: "@releaseDomain")
        }
    }

    /// Runs `supervisor` until it ends, and returns the crash loop it stopped with; records an issue (and returns nil)
    /// when it ended without one. Any other error is thrown.
    func crashLoop(of supervisor: Supervisor) async throws -> CrashLoop? {
        do {
            try await supervisor.run()
        } catch let loop as CrashLoop {
            return loop
        }
        Issue.record("no crash loop")
        return nil
    }

    @Test("an IOVM the recovery makes that never serves (a kernel that panics at boot) counts as a death each time: a crash loop, not retries for ever")
    func anIOVMThatNeverComesUpIsACrashLoop() async throws {
        let (fake, plan, engine, _) = try applied()
        let clock = FakeClock()
        fake.fail("waitForDriverDomain iovm0")
        let log = CapturedLog()
        let events = ScriptedEvents([iovm0Killed(fake)])
        let supervisor = supervisor(plan, engine, events, clock: clock, log: log)
        if let loop = try await crashLoop(of: supervisor) {
            #expect(loop.iovm == "iovm0")
            #expect(loop.deaths.count == 3)  // the kill, then two recoveries whose iovm0 did not come up
        }
        #expect(await supervisor.failures == 2)
        #expect(clock.sleeps == [5])  // the crash loop ends it before a second backoff
        #expect(log.text.contains("iovm watch: IOVM iovm0, made again by the recovery, did not come up ("))
        #expect(!fake.snapshot.domains.contains { $0.name == "iovm0" })
    }

    @Test("an IOVM that never comes up is a crash loop even when each attempt takes longer than half the window (two timeouts each)")
    func slowAttemptsThatNeverComeUpAreACrashLoop() async throws {
        let (fake, plan, engine, _) = try applied()
        let clock = FakeClock()
        fake.fail("waitForDriverDomain iovm0")
        // Each attempt waits out its timeouts: 200 s, so no three deaths ever fall within 300 s.
        fake.onCall { line in if line.hasPrefix("waitForDriverDomain iovm0") { clock.advance(200) } }
        // Without the count of attempts in a row it would retry for ever: healed at the 6th backoff, it ends, and fails.
        clock.whenSleeping { count in if count == 6 { fake.heal("waitForDriverDomain iovm0") } }
        let log = CapturedLog()
        let events = ScriptedEvents([iovm0Killed(fake)])
        let supervisor = supervisor(plan, engine, events, clock: clock, log: log)
        if let loop = try await crashLoop(of: supervisor) {
            #expect(loop.iovm == "iovm0")
            #expect(loop.neverCameUp)
            #expect(loop.deaths.count == 3)
            #expect(loop.description.hasPrefix("crash loop: IOVM iovm0 was made again 3 times in a row and never came up (at "), "\(loop)")
            #expect(loop.lastFailure?.hasPrefix("wait for driver domain iovm0 (") == true, "\(loop)")
        }
        #expect(await supervisor.failures == 3)
        #expect(clock.sleeps == [5, 10])
        #expect(!fake.snapshot.domains.contains { $0.name == "iovm0" })
    }

    @Test("an IOVM that libxl refuses to make again (its creation fails outright) stops the watch after K attempts in a row over the window, naming why")
    func refusedCreationsAreACrashLoop() async throws {
        let (fake, plan, engine, _) = try applied()
        let clock = FakeClock()
        fake.fail("createDomain iovm0")
        // Without the count it would retry every backoff for ever: healed at the 8th, it ends, and fails.
        clock.whenSleeping { count in if count == 8 { fake.heal("createDomain iovm0") } }
        let events = ScriptedEvents([iovm0Killed(fake)])
        let supervisor = supervisor(plan, engine, events, clock: clock, log: CapturedLog())
        if let loop = try await crashLoop(of: supervisor) {
            #expect(loop.iovm == "iovm0")
            #expect(loop.refused && loop.neverCameUp)
            // 3 refusals in a row are not enough until they span the 300 s window: the 7th, at 315 s.
            #expect(loop.deaths.count == 7)
            #expect(loop.lastFailure?.hasPrefix("create iovm0: ") == true, "\(loop)")
            #expect(loop.description.hasPrefix("crash loop: libxl refused to make IOVM iovm0 again 7 times in a row over 315 s (at "), "\(loop)")
            #expect(loop.description.contains("; the last: create iovm0: "), "\(loop)")
        }
        #expect(await supervisor.failures == 7)
        #expect(clock.sleeps == [5, 10, 20, 40, 80, 160])
        #expect(!fake.snapshot.domains.contains { $0.name == "iovm0" })
    }

    @Test("an IOVM libxl refuses a few times (memory the dead one held, a NIC resetting) is made once it can be: no crash loop")
    func passingRefusalsAreNoCrashLoop() async throws {
        let (fake, plan, engine, _) = try applied()
        let clock = FakeClock()
        fake.fail("createDomain iovm0")
        clock.whenSleeping { count in if count == 3 { fake.heal("createDomain iovm0") } }
        let supervisor = supervisor(plan, engine, ScriptedEvents([iovm0Killed(fake)]), clock: clock, log: CapturedLog())
        try await supervisor.run()  // before: CrashLoop at the third refusal, 15 s after the first
        #expect(await supervisor.recoveries.map(\.outcome.isRecovered) == [false, false, false, true])
        #expect(fake.snapshot.domains.contains { $0.name == "iovm0" })
    }

    @Test("refusals are in a row only while no attempt made the IOVM: one that made it and undid it for a later step ends the count")
    func refusalsBetweenMadeAttemptsAreNotInARow() async throws {
        let (fake, plan, engine, _) = try applied()
        let clock = FakeClock()
        // Attempts: refused, made (a re-attach fails: undone), refused, made and undone, refused, recovered.
        fake.fail("createDomain iovm0")
        clock.whenSleeping { count in
            switch count {
            case 1, 3:
                fake.heal("createDomain iovm0")
                fake.fail("reattachVif guest1")
            case 2, 4:
                fake.fail("createDomain iovm0")
                fake.heal("reattachVif guest1")
            default:
                fake.heal("createDomain iovm0")
            }
        }
        // A window of 1 s: three refusals in a row would be a crash loop at once.
        let supervisor = supervisor(
            plan, engine, ScriptedEvents([iovm0Killed(fake)]), clock: clock, log: CapturedLog(), crashLoop: CrashLoopPolicy(deaths: 3, seconds: 1))
        try await supervisor.run()  // without the end of the count: CrashLoop at the third refusal
        #expect(await supervisor.recoveries.map(\.outcome.isRecovered) == [false, false, false, false, false, true])
        #expect(fake.snapshot.domains.contains { $0.name == "iovm0" })
    }

    @Test("a guest that libxl refuses to make again is not a crash loop of its IOVM")
    func aRefusedGuestIsNoCrashLoop() async throws {
        let (fake, plan, engine, _) = try applied()
        let clock = FakeClock()
        fake.fail("createDomain guest1")
        // guest1 rebooted (on_reboot=restart): the watch makes it again, and libxl refuses three times, then makes it.
        clock.whenSleeping { count in if count == 3 { fake.heal("createDomain guest1") } }
        let events = ScriptedEvents([
            rebooted(fake, "guest1")
        ])
        let supervisor = supervisor(plan, engine, events, clock: clock, log: CapturedLog())
        try await supervisor.run()
        #expect(await supervisor.recoveries.map(\.outcome.isRecovered) == [false, false, false, true])
    }

    @Test("attempts that saw an IOVM not come up stop being in a row once a look sees it run (an operator's apply made it)")
    func anIOVMSeenRunningEndsTheAttemptsInARow() async throws {
        let (fake, plan, engine, _) = try applied()
        let clock = FakeClock()
        fake.fail("waitForDriverDomain iovm0")
        let json = table3.json(plan)
        // Two attempts fail; then the operator's `iovm apply` brings iovm0 back while the watch waits.
        clock.whenSleeping { count in
            if count == 2 {
                fake.heal("waitForDriverDomain iovm0")
                _ = try? engine.apply(plan, libxlJSON: json)
            }
            if count == 3 { fake.heal("waitForDriverDomain iovm0") }
        }
        let events = ScriptedEvents([
            iovm0Killed(fake),
            { .recheck },
            {
                // Much later iovm0 dies again, and its first attempt does not come up either.
                clock.advance(3600)
                fake.fail("waitForDriverDomain iovm0")
                fake.killBehindIOVMsBack("iovm0")
                return .fired(path: "@releaseDomain")
            },
        ])
        // A window of 1 s: only the attempts in a row can make a crash loop here.
        let supervisor = supervisor(plan, engine, events, clock: clock, log: CapturedLog(), crashLoop: CrashLoopPolicy(deaths: 3, seconds: 1))
        try await supervisor.run()  // before the mend: CrashLoop, 3 "in a row" counting the two before the apply
        #expect(await supervisor.recoveries.map(\.outcome.isRecovered) == [false, false, false, true])
        #expect(fake.snapshot.domains.contains { $0.name == "iovm0" })
    }

    @Test("a guest that goes away during its vif's re-attach is skipped: the IOVM made again stays, the other guests are re-attached")
    func aGuestGoneDuringTheReattachIsSkipped() async throws {
        let (fake, plan, engine, first) = try applied()
        let guest1 = try #require(first.domids["guest1"])
        let guest2 = try #require(first.domids["guest2"])
        let clock = FakeClock()
        // guest1 is destroyed just as its vif is re-attached (which then fails).
        fake.fail("reattachVif guest1")
        fake.onCall { line in if line.hasPrefix("reattachVif guest1") { fake.killBehindIOVMsBack("guest1") } }
        let log = CapturedLog()
        let events = ScriptedEvents([iovm0Killed(fake)])
        let supervisor = supervisor(plan, engine, events, clock: clock, log: log)
        try await supervisor.run()
        let recoveries = await supervisor.recoveries
        #expect(recoveries.map(\.outcome) == [.recovered])
        #expect(recoveries.first?.steps.contains { $0.hasPrefix("skipped: re-attach") && $0.contains("its guest runs no more") } == true, "\(recoveries)")
        #expect(fake.snapshot.domains.contains { $0.name == "iovm0" })
        #expect(!fake.mutatingCalls.contains { $0.hasPrefix("destroyDomain iovm0") })
        #expect(fake.snapshot.domains.first { $0.name == "guest2" }.map { $0.domid } == guest2)
        #expect(!fake.snapshot.domains.contains { $0.domid == guest1 })
        #expect(clock.sleeps.isEmpty)
    }

    @Test("iovm apply keeps its rule: a guest gone during its re-attach fails the apply, and it undoes what it made")
    func applyStillRollsBackWhenAGuestGoes() throws {
        let (fake, plan, engine, _) = try applied()
        fake.killBehindIOVMsBack("iovm0")
        fake.fail("reattachVif guest1")
        fake.onCall { line in if line.hasPrefix("reattachVif guest1") { fake.killBehindIOVMsBack("guest1") } }
        #expect(throws: ApplyError.self) { try engine.apply(plan, libxlJSON: table3.json(plan)) }
        #expect(!fake.snapshot.domains.contains { $0.name == "iovm0" })
    }

    @Test("a recovery's time counts from when the death was seen, over failed attempts; the backoff is not started again by a look that returns early")
    func aRecoverysTimeSpansItsAttempts() async throws {
        let (fake, plan, engine, _) = try applied()
        let clock = FakeClock()
        fake.fail("createDomain iovm0")
        clock.whenSleeping { count in if count == 2 { fake.heal("createDomain iovm0") } }
        let recorded = Recorded()
        let events = ScriptedEvents([iovm0Killed(fake)])
        let supervisor = supervisor(plan, engine, events, clock: clock, log: CapturedLog(), recorded: recorded)
        try await supervisor.run()
        let recoveries = await supervisor.recoveries
        #expect(recoveries.map(\.outcome.isRecovered) == [false, false, true])
        #expect(clock.sleeps == [5, 10])
        // All three attempts share the start; the last one's time spans the two backoffs.
        #expect(Set(recoveries.map(\.start)).count == 1)
        #expect((recoveries.last?.seconds ?? 0) >= 15)
    }
}

extension Recovery.Outcome {
    fileprivate var isRecovered: Bool { self == .recovered }
}

extension SupervisorTests {
    @Test("IOVMs that die while nothing else of the topology runs are made again when the host still records the plan as applied")
    func iovmsAloneAreMadeAgainWhileTheRecordSaysApplied() async throws {
        let (fake, plan, engine, _) = try applied()
        let clock = FakeClock()
        let log = CapturedLog()
        let events = ScriptedEvents([
            {
                for guest in ["guest1", "guest2", "guest3", "guest4"] { fake.killBehindIOVMsBack(guest) }
                return .fired(path: "@releaseDomain")
            },
            {
                fake.killBehindIOVMsBack("iovm0")
                fake.killBehindIOVMsBack("iovm1")
                return .fired(path: "@releaseDomain")
            },
        ])
        let supervisor = supervisor(plan, engine, events, clock: clock, log: log)
        try await supervisor.run()
        #expect(await supervisor.recoveries.map(\.outcome) == [.recovered], "\(log.text)")
        #expect(Set(fake.snapshot.domains.map(\.name)).isSuperset(of: ["iovm0", "iovm1"]))
        #expect(!fake.snapshot.domains.contains { $0.name.hasPrefix("guest") })  // gone guests stay gone
    }
}

extension SupervisorTests {
    @Test(
        "a recovery that fails on a guest's wait (a paused guest) counts no death and undoes nothing: the IOVM it made stays for the other guests, and the re-attached vif is left to connect"
    )
    func aGuestsFailedWaitIsNoDeathOfTheIOVM() async throws {
        let (fake, plan, engine, _) = try applied()
        let clock = FakeClock()
        fake.fail("waitForGuestNetwork guest1")
        // Only the old behaviour sleeps 3 times (each attempt undid its IOVM and failed again): it then ends, and fails.
        clock.whenSleeping { count in if count == 3 { fake.heal("waitForGuestNetwork guest1") } }
        let log = CapturedLog()
        let events = ScriptedEvents([iovm0Killed(fake)])
        let supervisor = supervisor(plan, engine, events, clock: clock, log: log)
        try await supervisor.run()  // no CrashLoop: one death (the kill), one failed attempt
        // Until session 37 each attempt destroyed the IOVM it had made (guest2 lost its vif again) and the next made
        // it anew, for as long as guest1 stayed paused. Now the vif re-attached to guest1 waits for its guest: the look
        // after the backoff finds nothing broken.
        let recoveries = await supervisor.recoveries
        #expect(recoveries.map(\.outcome.isRecovered) == [false], "\(recoveries)")
        #expect(clock.sleeps == [5])
        #expect(log.text.contains("debug: iovm watch: periodic re-check: nothing to recover") || log.text.contains("nothing to recover"), "\(log.text)")
        #expect(!log.text.contains("did not come up"), "\(log.text)")
        // The IOVM made by the first attempt served guest2 all along: no attempt undid it or made another.
        #expect(fake.mutatingCalls.filter { $0.hasPrefix("createDomain iovm0") }.count == 2, "\(fake.mutatingCalls)")  // the apply's, the recovery's
        #expect(fake.mutatingCalls.filter { $0.hasPrefix("destroyDomain") }.isEmpty, "\(fake.mutatingCalls)")
        #expect(fake.mutatingCalls.filter { $0.hasPrefix("reattachVif guest2") }.count == 1, "\(fake.mutatingCalls)")
        #expect(log.text.contains("the guest still runs, and what this recovery made stays"), "\(log.text)")
    }

    @Test(
        "a guest the recovery makes again (its restart pending when its IOVM died) whose vifs do not connect undoes nothing: the IOVM made in the same batch stays for the other guests"
    )
    func aRestartedGuestsFailedWaitKeepsItsIOVM() async throws {
        let (fake, plan, engine, _) = try applied()
        let clock = FakeClock()
        // guest1 rebooted, and its restart failed (the old domain destroyed): it is pending when iovm0 dies, so the
        // next attempt makes iovm0 and guest1 in one batch. guest1's vifs then do not connect (it hangs at boot).
        fake.fail("createDomain guest1")
        clock.whenSleeping { count in
            if count == 1 {
                fake.heal("createDomain guest1")
                fake.fail("waitForGuestNetwork guest1")
                fake.killBehindIOVMsBack("iovm0")
            }
            // Only the old behaviour gets here again (each attempt undid iovm0 and guest1): it then ends.
            if count == 3 { fake.heal("waitForGuestNetwork guest1") }
        }
        let log = CapturedLog()
        let events = ScriptedEvents([
            rebooted(fake, "guest1")
        ])
        let supervisor = supervisor(plan, engine, events, clock: clock, log: log)
        let before = fake.mutatingCalls.count
        try await supervisor.run()
        let recoveries = await supervisor.recoveries
        let calls = Array(fake.mutatingCalls.dropFirst(before))
        #expect(recoveries.map(\.outcome.isRecovered) == [false, false], "\(recoveries)")
        #expect(clock.sleeps == [5, 10], "\(recoveries)")
        #expect(!log.text.contains("did not come up"), "\(log.text)")
        // One iovm0 and one new guest1, made together and never undone; guest2 re-attached once.
        #expect(calls.filter { $0.hasPrefix("createDomain iovm0") }.count == 1, "\(calls)")
        #expect(calls.filter { $0.hasPrefix("createDomain guest1") }.count == 2, "\(calls)")  // refused, then made
        #expect(calls.filter { $0.hasPrefix("destroyDomain") } == ["destroyDomain guest1"], "\(calls)")  // the rebooted one
        #expect(calls.filter { $0.hasPrefix("reattachVif guest2") }.count == 1, "\(calls)")
        #expect(log.text.contains("the guest still runs, and what this recovery made stays"), "\(log.text)")
        #expect(fake.snapshot.domains.contains { $0.name == "iovm0" && $0.shutdownReason == nil })
        #expect(fake.snapshot.domains.contains { $0.name == "guest1" && $0.shutdownReason == nil })
    }

    @Test("iovm apply keeps its rule: a guest whose vifs do not connect fails the apply, and it undoes what it made")
    func applyStillRollsBackWhenAGuestDoesNotConnect() throws {
        let (fake, plan, engine, _) = try applied()
        fake.killBehindIOVMsBack("iovm0")
        fake.fail("waitForGuestNetwork guest1")
        #expect(throws: ApplyError.self) { try engine.apply(plan, libxlJSON: table3.json(plan)) }
        #expect(!fake.snapshot.domains.contains { $0.name == "iovm0" })
    }
}
