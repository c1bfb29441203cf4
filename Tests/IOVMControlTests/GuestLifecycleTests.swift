import Foundation
import IOVMControl
import IOVMCore
import Testing

/// A guest of the topology that shut down: libxl leaves it listed, and nothing acts on its lifecycle but xl's own
/// daemon, which iovm does not run. `apply` makes it again; `iovm watch` restarts one that rebooted and destroys
/// one that powered off or crashed, as the `on_reboot`, `on_poweroff` and `on_crash` iovm renders say.
@Suite("guests that shut down")
struct GuestLifecycleTests {
    let table3 = ApplyEngineTests()
    let watch = SupervisorTests()

    /// Runs a watch of `plan` over two events: `change` happens and @releaseDomain fires, then a periodic re-check.
    func runWatch(_ plan: Plan, _ engine: ApplyEngine, after change: @escaping @Sendable () -> Void) async throws -> (Supervisor, CapturedLog) {
        let events = ScriptedEvents([
            {
                change()
                return .fired(path: "@releaseDomain")
            },
            { .recheck },
        ])
        let log = CapturedLog()
        let supervisor = watch.supervisor(plan, engine, events, clock: FakeClock(), log: log)
        try await supervisor.run()
        return (supervisor, log)
    }

    @Test("apply destroys a guest that powered off and makes it again; the other guests and the IOVMs are untouched")
    func applyMakesAPoweredOffGuestAgain() throws {
        let (fake, plan, engine, first) = try watch.applied()
        let old = try #require(first.domids["guest1"])
        fake.shutDown("guest1", reason: "poweroff")
        let preview = try engine.preview(plan)
        #expect(preview.conflicts.isEmpty)
        #expect(
            preview.changes.map(\.description).filter { !$0.hasPrefix("wait for") }
                == ["destroy guest guest1 (\(old)), which shut down (poweroff), to create it again", "create guest1 (stage 2)"],
            "\(preview.changes)")
        let before = fake.mutatingCalls.count
        let report = try engine.apply(plan, libxlJSON: table3.json(plan))
        let calls = Array(fake.mutatingCalls.dropFirst(before))
        #expect(calls.first == "destroyDomain guest1", "\(calls)")
        #expect(calls.contains("createDomain guest1"))
        #expect(!calls.contains { $0.hasPrefix("createDomain iovm") || $0.hasPrefix("reattachVif") }, "\(calls)")
        let guest1 = try #require(fake.snapshot.domains.first { $0.name == "guest1" })
        #expect(guest1.domid != old && guest1.shutdownReason == nil && report.domids["guest1"] == guest1.domid)
        #expect(!fake.snapshot.domains.contains { $0.domid == old })
        for name in ["iovm0", "iovm1", "guest2", "guest3", "guest4"] { #expect(report.domids[name] == first.domids[name]) }
        // Converged: a second apply has nothing to do.
        #expect(try engine.apply(plan, libxlJSON: table3.json(plan)).nothingToDo)
    }

    @Test("apply refuses while a guest is suspended (xl save) or dying, and touches nothing", arguments: ["suspend", "dying"])
    func applyLeavesAHeldGuestAlone(reason: String) throws {
        let (fake, plan, engine, first) = try watch.applied()
        let old = try #require(first.domids["guest2"])
        fake.shutDown("guest2", reason: reason)
        let before = fake.mutatingCalls
        #expect {
            try engine.apply(plan, libxlJSON: table3.json(plan))
        } throws: { error in
            "\(error)".contains("guest guest2 (\(old)) is \(reason == "dying" ? "being destroyed (dying)" : "suspended (an `xl save` or a migration holds it)")")
        }
        #expect(fake.mutatingCalls == before)
    }

    @Test("iovm watch: a guest that rebooted is made again (new domid, vifs connected), the others keep their domids")
    func watchRestartsARebootedGuest() async throws {
        let (fake, plan, engine, first) = try watch.applied()
        let old = try #require(first.domids["guest3"])
        let before = fake.mutatingCalls.count
        let (supervisor, log) = try await runWatch(plan, engine) { fake.shutDown("guest3", reason: "reboot") }
        let calls = Array(fake.mutatingCalls.dropFirst(before))
        #expect(calls.filter { !$0.hasPrefix("wait") } == ["destroyDomain guest3", "createDomain guest3"], "\(calls)")
        let guest3 = try #require(fake.snapshot.domains.first { $0.name == "guest3" })
        #expect(guest3.domid != old && guest3.shutdownReason == nil)
        #expect(guest3.vifs?.first?.backendState == "4")
        for name in ["iovm0", "iovm1", "guest1", "guest2", "guest4"] {
            #expect(fake.snapshot.domains.first { $0.name == name }?.domid == first.domids[name])
        }
        let recoveries = await supervisor.recoveries
        #expect(recoveries.count == 1)
        #expect(recoveries.first?.iovms == [])
        #expect(recoveries.first?.reasons == ["guest guest3 (\(old)) rebooted (on_reboot=restart)"])
        let text = log.text
        #expect(text.contains("notice: iovm watch: guest guest3 (\(old)) rebooted"), "\(text)")
        #expect(text.contains("notice: iovm watch: recovered restarted guest3 in "), "\(text)")
        #expect(text.contains("s; the other guests kept their domids"), "\(text)")
        #expect(text.contains("debug: iovm watch: periodic re-check: nothing to recover"), "\(text)")
    }

    @Test("iovm watch: a restart whose creation failed (the old domain destroyed) is tried again after the backoff")
    func watchRetriesAFailedRestart() async throws {
        let (fake, plan, engine, first) = try watch.applied()
        let old = try #require(first.domids["guest3"])
        let clock = FakeClock()
        fake.fail("createDomain guest3")
        clock.whenSleeping { count in if count == 1 { fake.heal("createDomain guest3") } }
        let events = ScriptedEvents([
            watch.rebooted(fake, "guest3")
        ])
        let log = CapturedLog()
        let supervisor = watch.supervisor(plan, engine, events, clock: clock, log: log)
        try await supervisor.run()
        let recoveries = await supervisor.recoveries
        #expect(recoveries.count == 2)
        #expect(recoveries.last?.outcome == .recovered)
        #expect(recoveries.last?.reasons == ["guest guest3 rebooted and is not made again yet (on_reboot=restart)"], "\(recoveries)")
        let guest3 = try #require(fake.snapshot.domains.first { $0.name == "guest3" })
        #expect(guest3.domid != old && guest3.shutdownReason == nil)
    }

    @Test("iovm watch: a guest that powered off or crashed is destroyed, not made again, and no recovery runs", arguments: ["poweroff", "crash"])
    func watchDestroysAGuestThatShutDown(reason: String) async throws {
        let (fake, plan, engine, first) = try watch.applied()
        let old = try #require(first.domids["guest2"])
        let before = fake.mutatingCalls.count
        let (supervisor, log) = try await runWatch(plan, engine) { fake.shutDown("guest2", reason: reason) }
        #expect(Array(fake.mutatingCalls.dropFirst(before)) == ["destroyDomain guest2"])
        #expect(!fake.snapshot.domains.contains { $0.name == "guest2" })
        #expect(await supervisor.recoveries.isEmpty)
        let rule = reason == "poweroff" ? "on_poweroff=destroy" : "on_crash=destroy"
        #expect(
            log.text.contains("notice: iovm watch: guest guest2 (\(old)) shut down (\(reason)): destroyed it (\(rule)); `iovm apply` makes it again"),
            "\(log.text)")
    }

    @Test("iovm watch: a guest that powers off as its IOVM dies stays off: the recovery makes the IOVM only, then destroys the guest")
    func watchRecoveryLeavesAPoweredOffGuestOff() async throws {
        let (fake, plan, engine, first) = try watch.applied()
        let off = try #require(first.domids["guest2"])
        let before = fake.mutatingCalls.count
        let (supervisor, log) = try await runWatch(plan, engine) {
            fake.shutDown("guest2", reason: "poweroff")
            fake.killBehindIOVMsBack("iovm0")
        }
        let calls = Array(fake.mutatingCalls.dropFirst(before))
        #expect(calls.contains("createDomain iovm0"), "\(calls)")
        #expect(!calls.contains("createDomain guest2"), "\(calls)")
        #expect(calls.last == "destroyDomain guest2", "\(calls)")
        #expect(!fake.snapshot.domains.contains { $0.name == "guest2" })
        #expect(fake.snapshot.domains.first { $0.name == "guest1" }?.vifs?.first?.backendState == "4")
        #expect(log.text.contains("guest guest2 (\(off)) shut down (poweroff): destroyed it (on_poweroff=destroy)"), "\(log.text)")
        #expect(await supervisor.recoveries.map(\.iovms) == [["iovm0"]])
    }

    @Test("iovm watch: a guest someone destroyed is not made again by an IOVM's recovery; iovm apply makes it")
    func watchRecoveryLeavesADestroyedGuestGone() async throws {
        let (fake, plan, engine, _) = try watch.applied()
        let events = ScriptedEvents([
            {
                fake.killBehindIOVMsBack("guest4")
                return .fired(path: "@releaseDomain")
            },
            {
                fake.killBehindIOVMsBack("iovm1")
                return .fired(path: "@releaseDomain")
            },
        ])
        let before = fake.mutatingCalls.count
        let supervisor = watch.supervisor(plan, engine, events, clock: FakeClock(), log: CapturedLog())
        try await supervisor.run()
        let calls = Array(fake.mutatingCalls.dropFirst(before))
        #expect(calls.contains("createDomain iovm1") && !calls.contains("createDomain guest4"), "\(calls)")
        #expect(try engine.preview(plan).changes.map(\.description).filter { $0.hasPrefix("create") } == ["create guest4 (stage 2)"])
    }

    @Test("a recovery's scope leaves a half-made guest outside it alone; apply's nil scope replaces it")
    func scopeLeavesAHalfMadeGuestAlone() throws {
        let (fake, plan, _, _) = try watch.applied()
        var host = try fake.observe(nics: plan.hostNICs)
        let index = try #require(host.domains.firstIndex { $0.name == "guest1" })
        host.domains[index].tag?.incomplete = true
        let scoped = Reconciler.reconcile(plan, with: host, guests: [])
        #expect(!scoped.changes.contains { $0.description.contains("guest1") }, "\(scoped.changes)")
        #expect(scoped.conflicts.isEmpty)
        let whole = Reconciler.reconcile(plan, with: host)
        #expect(whole.changes.map(\.description).filter { $0.contains("guest1") }.first?.hasPrefix("destroy guest1 (") == true, "\(whole.changes)")
    }

    @Test("iovm watch: a guest suspended by xl save is left to libxl")
    func watchLeavesASuspendedGuestAlone() async throws {
        let (fake, plan, engine, first) = try watch.applied()
        let old = try #require(first.domids["guest4"])
        let before = fake.mutatingCalls
        let (supervisor, log) = try await runWatch(plan, engine) { fake.shutDown("guest4", reason: "suspend") }
        #expect(fake.mutatingCalls == before)
        #expect(await supervisor.recoveries.isEmpty)
        let reported = log.text.components(separatedBy: "guest guest4 (\(old)) is suspended (an xl save or a migration holds it): left to libxl")
        #expect(reported.count == 2, "once, not at every look: \(log.text)")
    }

    @Test("iovm watch: a guest that reboots 3 times within 300 s is destroyed the third time, and the watch goes on")
    func watchStopsRestartingARebootLoop() async throws {
        let (fake, plan, engine, _) = try watch.applied()
        let clock = FakeClock()
        let reboot: @Sendable () -> DomainEvent = {
            clock.advance(30)
            fake.shutDown("guest1", reason: "reboot")
            return .fired(path: "@releaseDomain")
        }
        let log = CapturedLog()
        let supervisor = watch.supervisor(plan, engine, ScriptedEvents([reboot, reboot, reboot, { .recheck }]), clock: clock, log: log)
        try await supervisor.run()
        #expect(await supervisor.recoveries.count == 2)
        #expect(!fake.snapshot.domains.contains { $0.name == "guest1" })
        #expect(fake.snapshot.domains.contains { $0.name == "iovm0" && $0.shutdownReason == nil })
        #expect(log.text.contains("error: iovm watch: guest guest1 rebooted 3 times within 300 s (--crash-loop 3/300): destroying it instead of restarting it"), "\(log.text)")
        #expect(log.text.contains("shut down (reboot): destroyed it (too many reboots)"), "\(log.text)")
    }
}
