import CPUSets
import Foundation
import IOVMControl
import IOVMCore
import IOVMWireFormat
import Logging
import Synchronization
import Testing

/// Apply, re-apply, live re-placement, rollback and destroy against the fake backend.
@Suite("Apply engine")
struct ApplyEngineTests {
    static let nics = ["0000:00:10.0", "0000:00:11.0", "0000:00:12.0", "0000:00:13.0"]

    /// Table 3's hybrid: 2 IOVMs x 2 NICs, 4 guests, with the given placement.
    func plan(
        _ placement: PlacementKind, memory: Int = 256, iovmWeight: Int = 512, dedicatedPool: Bool? = nil,
        configuration: ConfigurationKind = .hybrid, guests: Int = 4
    ) throws -> Plan {
        let document = TopologyDocument(
            name: "table3",
            host: HostDocument(cores: 4, memoryMiB: 8192, scheduler: "credit"),
            defaults: DefaultsDocument(kernel: "/lab/vmlinux", guestMemoryMiB: memory),
            configuration: ConfigurationDocument(kind: configuration, groups: configuration == .hybrid ? 2 : nil),
            nics: Self.nics.map { NICDocument(pci: $0) },
            guests: (1...guests).map { GuestDocument(name: "guest\($0)") },
            placement: PlacementDocument(kind: placement, dedicatedPool: dedicatedPool),
            scheduling: SchedulingDocument(iovmWeight: iovmWeight))
        return try Planner().plan(document)
    }

    func engine(_ fake: FakeXenBackend) -> ApplyEngine {
        ApplyEngine(backend: fake, lock: fake, logger: Logger(label: "test"))
    }

    func json(_ plan: Plan) -> [String: String] {
        Dictionary(uniqueKeysWithValues: plan.domains.map { ($0.name, "{}") })
    }

    @Test("destroy leaves a NIC that another, applied topology made assignable; it gives back its own, and one whose topology is not applied or is being destroyed")
    func destroyLeavesAnotherTopologysNIC() throws {
        let nic = try #require(PCIAddress(Self.nics[0]))
        let cases: [(owner: String, record: String?, released: Bool)] = [
            ("other", "f00d", false), ("other", ObservedHost.destroyingMark, true), ("other", nil, true), ("table3", "f00d", true),
        ]
        for (owner, record, released) in cases {
            let fake = FakeXenBackend(nics: Self.nics)
            try fake.makeAssignable(nic, for: owner)
            if let record { try fake.recordApplied(topology: owner, fingerprint: record) }
            let report = try engine(fake).destroy(topology: "table3", nics: [nic])
            #expect(fake.mutatingCalls.contains("releaseNIC \(nic)") == released, "\(owner) \(record ?? "-"): \(fake.mutatingCalls)")
            #expect(
                report.done.contains("left NIC \(nic) assignable: topology other, which is applied, made it so; its destroy gives it back") == !released,
                "\(owner) \(record ?? "-"): \(report.done)")
            #expect(try fake.observe(nics: [nic]).nics.first?.assignable == !released)
        }
    }

    @Test("destroy gives back a NIC its topology made assignable that its file no longer names; an IOVM plan refuses a NIC another applied topology holds")
    func marksBeyondTheFile() throws {
        let fake = FakeXenBackend(nics: Self.nics)
        let dropped = try #require(PCIAddress(Self.nics[3]))
        try fake.makeAssignable(dropped, for: "table3")  // an apply of an older file of table3 made it assignable
        let report = try engine(fake).destroy(topology: "table3", nics: Self.nics.prefix(3).compactMap(PCIAddress.init))
        #expect(fake.mutatingCalls.contains("releaseNIC \(dropped)"), "\(fake.mutatingCalls)")
        #expect(report.done.contains("gave NIC \(dropped) back to e1000"), "\(report.done)")

        let held = FakeXenBackend(nics: Self.nics)
        let nic = try #require(PCIAddress(Self.nics[0]))
        try held.makeAssignable(nic, for: "other")
        try held.recordApplied(topology: "other", fingerprint: "f00d")
        let plan = try plan(.hybridPinned)
        #expect(
            try engine(held).preview(plan).conflicts.map(\.message) == [
                "NIC \(nic) of IOVM iovm0 was made assignable by topology other, which is applied: `iovm destroy` of other gives it back first (or, if other no longer uses it, `xl pci-assignable-remove -r 0000:00:10.0`)"
            ])
        try held.recordApplied(topology: "other", fingerprint: ObservedHost.destroyingMark)
        #expect(try engine(held).preview(plan).conflicts.isEmpty)

        // A mark left on a NIC someone gave back by hand (not assignable now) is no conflict: the apply takes it again.
        let unbound = FakeXenBackend(nics: Self.nics)
        try unbound.recordApplied(topology: "other", fingerprint: "f00d")
        let stale = FakeXenBackend(
            state: FakeXenBackend.State(
                domains: unbound.snapshot.domains, pools: unbound.snapshot.pools,
                nics: unbound.snapshot.nics.map { $0.pci == nic ? NICBinding(pci: nic, assignable: false, madeAssignableByIOVM: true, madeAssignableFor: "other") : $0 },
                applied: ["other": "f00d"]))
        let preview = try engine(stale).preview(plan)
        #expect(preview.conflicts.isEmpty, "\(preview.conflicts)")
        #expect(preview.changes.map(\.description).contains("make NIC \(nic) assignable (pciback)"))
    }

    @Test("a NIC its topology's mark names but its file does not, held by another topology's IOVM now, is left, not a failure")
    func markedNICHeldByAnother() throws {
        let nic = try #require(PCIAddress(Self.nics[3]))
        let holder = ObservedDomain.iovm("u-iovm", domid: 9, topology: "u", holding: [nic])
        let fake = FakeXenBackend(nics: Self.nics, extraDomains: [holder])
        try fake.makeAssignable(nic, for: "table3")
        let report = try engine(fake).destroy(topology: "table3", nics: Self.nics.prefix(3).compactMap(PCIAddress.init))
        #expect(report.done.contains("left NIC \(nic) assignable: domain u-iovm (9) holds it, and this topology's file no longer names it"), "\(report.done)")
        #expect(!fake.mutatingCalls.contains("releaseNIC \(nic)"))
    }

    @Test("an apply records as its own a NIC whose mark names a topology that is not applied; a rollback writes the mark back")
    func claimsANICWhoseOwnerIsNotApplied() throws {
        let nic = try #require(PCIAddress(Self.nics[0]))
        let claim = "record NIC \(nic) as this topology's (topology other, which is not applied, made it assignable)"
        let plan = try plan(.hybridPinned)

        // other's destroy stopped half-way: its record says so, and its mark is still on the NIC.
        let fake = FakeXenBackend(nics: Self.nics)
        try fake.makeAssignable(nic, for: "other")
        try fake.recordApplied(topology: "other", fingerprint: ObservedHost.destroyingMark)
        let preview = try engine(fake).preview(plan)
        #expect(preview.conflicts.isEmpty, "\(preview.conflicts)")
        #expect(preview.changes.map(\.description).filter { $0.contains(nic.description) } == [claim])
        _ = try engine(fake).apply(plan, libxlJSON: json(plan))
        #expect(fake.mutatingCalls.contains("markNIC \(nic) table3"), "\(fake.mutatingCalls)")
        #expect(try fake.nicsMarked(for: "table3").contains(nic))
        #expect(try engine(fake).preview(plan).changes.isEmpty)

        // other's destroy, resumed, leaves the NIC to table3's IOVM, whether its file names it or not.
        for named in [[nic], []] {
            let report = try engine(fake).destroy(topology: "other", nics: named)
            #expect(!fake.mutatingCalls.contains("releaseNIC \(nic)"), "\(fake.mutatingCalls)")
            #expect(!report.done.contains { $0.contains("gave NIC \(nic)") }, "\(report.done)")
        }

        // An older iovm's mark (no topology) is taken over the same way.
        let older = FakeXenBackend(nics: Self.nics)
        try older.makeAssignable(nic, for: nil)
        #expect(
            try engine(older).preview(plan).changes.map(\.description).contains(
                "record NIC \(nic) as this topology's (an older iovm made it assignable)"))

        // A failure later in the apply writes other's mark back.
        let failing = FakeXenBackend(nics: Self.nics)
        try failing.makeAssignable(nic, for: "other")
        failing.fail("createDomain guest3")
        #expect(throws: ApplyError.self) { try engine(failing).apply(plan, libxlJSON: json(plan)) }
        #expect(failing.mutatingCalls.contains("markNIC \(nic) other"), "\(failing.mutatingCalls)")
        #expect(try failing.nicsMarked(for: "other") == [nic])
    }

    @Test("a NIC the plan's running IOVM holds is recorded as its topology's for good; a NIC bound to pciback by hand is never claimed")
    func claimsOfAHeldNICStay() throws {
        let plan = try plan(.hybridPinned)
        let nic = try #require(PCIAddress(Self.nics[0]))
        let fake = FakeXenBackend(nics: Self.nics)
        _ = try engine(fake).apply(plan, libxlJSON: json(plan))
        // An older iovm's mark, on the NIC iovm0 holds; then a later step fails (guest3 shut down and cannot be made).
        try fake.markNIC(nic, for: nil)
        let guest3 = try #require(fake.snapshot.domains.first { $0.name == "guest3" })
        try fake.destroyDomain(domid: guest3.domid)
        fake.fail("createDomain guest3")
        #expect(throws: ApplyError.self) { try engine(fake).apply(plan, libxlJSON: json(plan)) }
        #expect(fake.mutatingCalls.filter { $0.hasPrefix("markNIC") } == ["markNIC \(nic) -", "markNIC \(nic) table3"], "\(fake.mutatingCalls)")
        #expect(try fake.nicsMarked(for: "table3").contains(nic))

        // Bound to pciback by hand (no mark): the apply takes it as it is, and a re-apply changes nothing.
        let hand = FakeXenBackend(
            state: FakeXenBackend.State(
                domains: fake.snapshot.domains.filter { $0.domid == 0 }, pools: FakeXenBackend(nics: Self.nics).snapshot.pools,
                nics: Self.nics.compactMap(PCIAddress.init).map { NICBinding(pci: $0, assignable: true) }, applied: [:]))
        #expect(try engine(hand).preview(plan).changes.allSatisfy { !$0.description.contains("NIC") })
        _ = try engine(hand).apply(plan, libxlJSON: json(plan))
        #expect(!hand.mutatingCalls.contains { $0.hasPrefix("markNIC") })
        #expect(try engine(hand).preview(plan).changes.isEmpty)
    }

    @Test("destroy leaves, without failing, a NIC a domain holds whose mark names another topology, applied or not")
    func destroyLeavesAClaimedNIC() throws {
        let nic = try #require(PCIAddress(Self.nics[0]))
        let holder = ObservedDomain.iovm("u-iovm", domid: 9, topology: "u", holding: [nic])
        let fake = FakeXenBackend(nics: Self.nics, extraDomains: [holder])
        try fake.makeAssignable(nic, for: "u")  // u's apply claimed it, and recorded nothing (a libvirt host)
        let report = try engine(fake).destroy(topology: "table3", nics: [nic])
        #expect(report.done == ["left NIC \(nic) assignable: domain u-iovm (9) holds it, and topology u's mark is on it: that topology's destroy gives it back"])
        #expect(!fake.mutatingCalls.contains("releaseNIC \(nic)"))
    }

    @Test func freshApplyCreatesIOVMsBeforeGuestsAndMatchesThePlan() throws {
        let fake = FakeXenBackend(nics: Self.nics)
        let plan = try plan(.hybridPinned)
        let report = try engine(fake).apply(plan, libxlJSON: json(plan))
        #expect(report.domids.count == 6)

        let calls = fake.mutatingCalls
        #expect(calls.prefix(4).allSatisfy { $0.hasPrefix("makeAssignable") })
        // Each guest is created once the IOVM that backs it takes vif backends (not necessarily after every IOVM),
        // and its vifs are waited for once that IOVM serves them.
        for guest in plan.guests {
            let backend = try #require(guest.vifs.first?.backend)
            let takes = try #require(calls.firstIndex(of: "waitForVifBackends \(backend)"))
            let serves = try #require(calls.firstIndex(of: "waitForDriverDomain \(backend)"))
            let created = try #require(calls.firstIndex(of: "createDomain \(guest.name)"))
            let waited = try #require(calls.firstIndex(of: "waitForGuestNetwork \(guest.name)"))
            #expect(takes < created, "\(guest.name) was created before \(backend) took vif backends: \(calls)")
            #expect(serves < waited, "\(guest.name)'s vifs were waited for before \(backend) served them: \(calls)")
        }
        #expect(calls.contains("waitForDriverDomain iovm0"))
        #expect(calls.contains("waitForDriverDomain iovm1"))
        #expect(!calls.contains { $0.hasPrefix("waitForDriverDomain guest") })

        let state = fake.snapshot
        let iovm0 = try #require(state.domains.first { $0.name == "iovm0" })
        #expect(iovm0.hardAffinity == [[3]])
        #expect(iovm0.weight == 512)
        #expect(iovm0.pci.map(\.description) == ["0000:00:10.0", "0000:00:11.0"])
        #expect(iovm0.tag?.topology == "table3")
        #expect(state.domains.first { $0.name == "guest4" }?.hardAffinity == [[0, 1]])
        #expect(state.nics.allSatisfy { $0.assignable })
    }

    @Test func reapplyChangesNothing() throws {
        let fake = FakeXenBackend(nics: Self.nics)
        let plan = try plan(.hybridPinned)
        _ = try engine(fake).apply(plan, libxlJSON: json(plan))
        let before = fake.mutatingCalls.count
        let report = try engine(fake).apply(plan, libxlJSON: json(plan))
        #expect(report.nothingToDo)
        #expect(fake.mutatingCalls.count == before)
    }

    @Test func switchingCreditToHybridPinningRepinsLiveKeepingDomids() throws {
        let fake = FakeXenBackend(nics: Self.nics)
        let credit = try plan(.credit)
        _ = try engine(fake).apply(credit, libxlJSON: json(credit))
        let domidsBefore = fake.snapshot.domains.map { "\($0.name)=\($0.domid)" }
        let callsBefore = fake.mutatingCalls.count

        let pinned = try plan(.hybridPinned, iovmWeight: 768)
        let reconciliation = try engine(fake).preview(pinned)
        #expect(reconciliation.changes.allSatisfy { $0.isLive }, "\(reconciliation.changes)")
        let report = try engine(fake).apply(pinned, libxlJSON: json(pinned))
        #expect(!report.nothingToDo)
        let newCalls = Array(fake.mutatingCalls.dropFirst(callsBefore))
        #expect(!newCalls.contains { $0.hasPrefix("createDomain") || $0.hasPrefix("destroyDomain") })
        #expect(newCalls.contains("setAffinity iovm0 3"))
        #expect(newCalls.contains("setAffinity iovm1 2"))
        #expect(newCalls.contains("setAffinity guest1 0-1"))
        #expect(newCalls.contains("setSchedule iovm0 768 0"))
        #expect(fake.snapshot.domains.map { "\($0.name)=\($0.domid)" } == domidsBefore)

        // and back: unpin
        _ = try engine(fake).apply(credit, libxlJSON: json(credit))
        #expect(fake.snapshot.domains.first { $0.name == "iovm0" }?.hardAffinity == [[0, 1, 2, 3]])
        #expect(try engine(fake).preview(credit).changes.isEmpty)
    }

    @Test func aFailureHalfwayLeavesTheHostAsItWas() throws {
        let fake = FakeXenBackend(nics: Self.nics)
        let initial = fake.snapshot
        fake.fail("createDomain guest3")
        let plan = try plan(.hybridPinned)
        do {
            _ = try engine(fake).apply(plan, libxlJSON: json(plan))
            Issue.record("apply succeeded despite the failure")
        } catch let error as ApplyError {
            let text = error.description
            #expect(text.contains("error: create guest3 failed: injected failure"), "\(text)")
            // guest3's own backend was created before guest3; iovm0's thread may not have started at
            // all before guest3 failed (then it is abandoned, not created), so only iovm1 is certain.
            #expect(text.contains("rolled back: created iovm1"), "\(text)")
            #expect(text.contains("rolled back: make NIC 0000:00:10.0 assignable"))
            #expect(text.hasSuffix("The host is as it was before this apply."))
        }
        var after = fake.snapshot
        after.nextDomid = initial.nextDomid
        #expect(after == initial)
    }

    /// Waits up to 5 s for `condition`; false on timeout.
    static func eventually(_ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(5)
        while !condition() {
            if Date() > deadline { return false }
            usleep(2_000)
        }
        return true
    }

    @Test func guestsOfAReadyIOVMDoNotWaitForTheOtherIOVM() throws {
        let fake = FakeXenBackend(nics: Self.nics)
        let plan = try plan(.credit)
        let early = try #require(plan.guests.first { $0.vifs.first?.backend == "iovm0" }?.name)
        let sawEarlyGuest = Mutex(false)
        // iovm1 stays "booting" until a guest of iovm0 has been created: a stage barrier would never get there.
        fake.onCall { [fake] line in
            guard line == "waitForDriverDomain iovm1" else { return }
            let seen = Self.eventually { fake.calls.contains("createDomain \(early)") }
            sawEarlyGuest.withLock { $0 = seen }
        }
        _ = try engine(fake).apply(plan, libxlJSON: json(plan))
        #expect(sawEarlyGuest.withLock { $0 }, "\(fake.calls)")
        #expect(fake.snapshot.domains.count == 7)
    }

    @Test func everyGuestWaitsForItsNetworkAtOnceWhateverTheCPUCount() throws {
        let fake = FakeXenBackend(nics: Self.nics)
        // More guests than this machine has CPUs: a pool as wide as the CPUs could not have them all waiting.
        let guests = min(24, max(8, ProcessInfo.processInfo.activeProcessorCount + 2))
        let plan = try plan(.credit, memory: 128, guests: guests)
        let allWaiting = Mutex(true)
        // Each guest's network wait returns only once every guest is waiting.
        fake.onCall { [fake] line in
            guard line.hasPrefix("waitForGuestNetwork ") else { return }
            let all = Self.eventually { fake.calls.filter { $0.hasPrefix("waitForGuestNetwork ") }.count == guests }
            if !all { allWaiting.withLock { $0 = false } }
        }
        _ = try engine(fake).apply(plan, libxlJSON: json(plan))
        #expect(allWaiting.withLock { $0 }, "\(fake.calls)")
    }

    /// An IOVM's `xl devd` takes seconds to start under emulation after its kernel took the backends: its guests are
    /// created meanwhile.
    @Test func guestsAreCreatedWhileTheirIOVMsDevdStarts() throws {
        let fake = FakeXenBackend(nics: Self.nics)
        let plan = try plan(.credit)
        let served = plan.guests.filter { $0.vifs.first?.backend == "iovm0" }.map(\.name)
        let created = Mutex(false)
        // iovm0's xl devd "starts" only once its guests exist: waiting for it before creating them would time out.
        fake.onCall { [fake] line in
            guard line == "waitForDriverDomain iovm0" else { return }
            let seen = Self.eventually { served.allSatisfy { fake.calls.contains("createDomain \($0)") } }
            created.withLock { $0 = seen }
        }
        _ = try engine(fake).apply(plan, libxlJSON: json(plan))
        #expect(created.withLock { $0 }, "\(fake.calls)")
        #expect(served.count == 2)
    }

    @Test func aDriverDomainThatNeverTakesVifsIsRolledBack() throws {
        let fake = FakeXenBackend(nics: Self.nics)
        let initial = fake.snapshot
        fake.fail("waitForVifBackends iovm1")
        let plan = try plan(.credit)
        #expect(throws: ApplyError.self) { try engine(fake).apply(plan, libxlJSON: json(plan)) }
        // iovm1's guests are never created; iovm0's may have been (they do not wait for iovm1), and are rolled back.
        let backedByIOVM1 = plan.guests.filter { $0.vifs.contains { $0.backend == "iovm1" } }.map(\.name)
        #expect(backedByIOVM1.count == 2)
        #expect(!fake.calls.contains { call in backedByIOVM1.contains { call == "createDomain \($0)" } }, "\(fake.calls)")
        #expect(fake.snapshot.domains == initial.domains)
        #expect(fake.snapshot.nics == initial.nics)
    }

    /// Its kernel took the backends, so its guests may exist, but its `xl devd` never serves: the error is the IOVM's,
    /// its guests are not waited for (120 s each), and everything is rolled back.
    @Test func aDriverDomainWhoseDevdNeverServesIsRolledBack() throws {
        let fake = FakeXenBackend(nics: Self.nics)
        let initial = fake.snapshot
        fake.fail("waitForDriverDomain iovm1")
        let plan = try plan(.credit)
        do {
            _ = try engine(fake).apply(plan, libxlJSON: json(plan))
            Issue.record("apply succeeded although iovm1 never served")
        } catch let error as ApplyError {
            #expect(error.description.contains("error: wait for driver domain iovm1"), "\(error)")
        }
        let backedByIOVM1 = plan.guests.filter { $0.vifs.contains { $0.backend == "iovm1" } }.map(\.name)
        #expect(!fake.calls.contains { call in backedByIOVM1.contains { call == "waitForGuestNetwork \($0)" } }, "\(fake.calls)")
        #expect(fake.snapshot.domains == initial.domains)
        #expect(fake.snapshot.nics == initial.nics)
    }

    @Test func aGuestWhoseVifNeverConnectsIsRolledBack() throws {
        let fake = FakeXenBackend(nics: Self.nics)
        let initial = fake.snapshot
        fake.fail("waitForGuestNetwork guest2")
        let plan = try plan(.credit)
        do {
            _ = try engine(fake).apply(plan, libxlJSON: json(plan))
            Issue.record("apply succeeded although guest2 has no network")
        } catch let error as ApplyError {
            #expect(error.description.contains("error: connect the vif of guest2"), "\(error)")
            #expect(error.description.contains("in iovm0 failed"), "\(error)")
        }
        // Guests not yet started when guest2 failed are not started; the others are rolled back.
        #expect(!fake.calls.contains { $0.hasPrefix("waitForGuestNetwork iovm") })
        #expect(fake.snapshot.domains == initial.domains)
        #expect(fake.snapshot.nics == initial.nics)
    }

    @Test func aFailedLiveChangeRestoresTheEarlierOnes() throws {
        let fake = FakeXenBackend(nics: Self.nics)
        let credit = try plan(.credit)
        _ = try engine(fake).apply(credit, libxlJSON: json(credit))
        let before = fake.snapshot
        fake.fail("setAffinity guest3")
        let pinned = try plan(.hybridPinned)
        #expect(throws: ApplyError.self) { try engine(fake).apply(pinned, libxlJSON: json(pinned)) }
        #expect(fake.snapshot.domains == before.domains)
    }

    @Test func aDomainIOVMDidNotCreateIsNeverTouched() throws {
        let stranger = ObservedDomain(
            domid: 7, name: "guest2", uuid: "someone-else", vcpus: 1, hardAffinity: [[0, 1, 2, 3]],
            weight: 256, cap: 0, cpupool: "Pool-0")
        let fake = FakeXenBackend(nics: Self.nics, extraDomains: [stranger])
        let plan = try plan(.credit)
        do {
            _ = try engine(fake).apply(plan, libxlJSON: json(plan))
            Issue.record("apply went ahead")
        } catch let error as ApplyError {
            #expect(error.description.contains("domain guest2 (7) exists and iovm did not create it; refusing to touch it"))
            #expect(error.description.hasSuffix("nothing was touched."))
        }
        #expect(fake.mutatingCalls.isEmpty)

        // destroy never touches it either
        _ = try engine(fake).destroy(topology: "table3", nics: [])
        #expect(fake.snapshot.domains.contains { $0.name == "guest2" && $0.domid == 7 })
    }

    /// A NIC the host lacks is bad input (``HostValidation``: exit 65, before the reconciler); one another domain holds
    /// is a conflict. Neither touches anything.
    @Test func missingNICsAreBadInputAndBusyOnesConflicts() throws {
        let owner = ObservedDomain(
            domid: 9, name: "other", uuid: "u9", vcpus: 1, hardAffinity: [[0]], weight: 256, cap: 0,
            cpupool: "Pool-0", pci: [PCIAddress("0000:00:12.0")!])
        let plan = try plan(.credit)
        let lacking = FakeXenBackend(nics: Array(Self.nics.prefix(3)), extraDomains: [owner])
        do {
            _ = try engine(lacking).apply(plan, libxlJSON: json(plan))
            Issue.record("apply went ahead")
        } catch let error as TopologyError {
            #expect(error.description.contains("NIC 0000:00:13.0 of IOVM iovm1 does not exist on this host"))
        }
        #expect(lacking.mutatingCalls.isEmpty)

        let busy = FakeXenBackend(nics: Self.nics, extraDomains: [owner])
        do {
            _ = try engine(busy).apply(plan, libxlJSON: json(plan))
            Issue.record("apply went ahead")
        } catch let error as ApplyError {
            #expect(error.description.contains("NIC 0000:00:12.0 of IOVM iovm1 is passed through to domain other (9)"))
        }
        #expect(busy.mutatingCalls.isEmpty)
    }

    @Test func changesThatNeedANewDomainAreRefused() throws {
        let fake = FakeXenBackend(nics: Self.nics)
        let small = try plan(.credit)
        _ = try engine(fake).apply(small, libxlJSON: json(small))
        let bigger = try plan(.credit, memory: 512)
        #expect(throws: ApplyError.self) { try engine(fake).apply(bigger, libxlJSON: json(bigger)) }
        let conflicts = try engine(fake).preview(bigger).conflicts.map(\.message)
        #expect(conflicts.count == 4)
        #expect(conflicts.allSatisfy { $0.contains("need a new domain") })
    }

    /// An apply keeps the parked tags (one of a name it makes again says so; one of a name its plan dropped stays, as
    /// a running domain of that name stays iovm's); a destroy that ended well drops all of its topology's, and one
    /// that failed none.
    @Test func parkedTagsGoWithTheirTopologysDestroy() throws {
        let fake = FakeXenBackend(nics: Self.nics)
        let plan = try plan(.credit)
        for name in ["guest1", "guest9"] { fake.park(ManagedTag(topology: "table3", name: name, role: .guest, uuid: "u-\(name)", specFingerprint: "f")) }
        fake.park(ManagedTag(topology: "other", name: "guest9", role: .guest, uuid: "u-other", specFingerprint: "f"))
        let log = CapturedLog()
        _ = try ApplyEngine(backend: fake, lock: fake, logger: log.logger).apply(plan, libxlJSON: json(plan))
        // Made again: an `xl restore` of the saved one would now clash by name, and the apply says so.
        #expect(log.text.contains("guest1 (UUID u-guest1) went without iovm destroying it (xl destroy, or xl save): making it again"))
        #expect(!log.text.contains("guest9 (UUID"))
        #expect(fake.snapshot.parked.map(\.uuid) == ["u-guest1", "u-guest9", "u-other"])
        #expect(!fake.calls.contains { $0.hasPrefix("removeParkedTags") })
        fake.fail("destroyDomain")
        #expect(throws: ApplyError.self) { try engine(fake).destroy(topology: "table3", nics: []) }
        #expect(fake.snapshot.parked.count == 3)
        let healthy = FakeXenBackend(nics: Self.nics)
        _ = try engine(healthy).apply(plan, libxlJSON: json(plan))
        healthy.park(ManagedTag(topology: "table3", name: "guest1", role: .guest, uuid: "u-old", specFingerprint: "f"))
        healthy.park(ManagedTag(topology: "other", name: "guest1", role: .guest, uuid: "u-other", specFingerprint: "f"))
        _ = try engine(healthy).destroy(topology: "table3", nics: [])
        #expect(healthy.snapshot.parked.map(\.uuid) == ["u-other"])
    }

    @Test func dedicatedPoolIsCreatedFirstAndRemovedOnDestroy() throws {
        let fake = FakeXenBackend(nics: Array(Self.nics.prefix(3)))
        let plan = try affinityPlan(dedicatedPool: true, iovmWeight: nil)
        _ = try engine(fake).apply(plan, libxlJSON: json(plan))
        #expect(fake.mutatingCalls.first == "createPool iovm-pool")
        #expect(fake.snapshot.pools.map(\.name) == ["Pool-0", "iovm-pool"])
        // Created concurrently: in any order.
        #expect(fake.snapshot.domains.filter { $0.cpupool == "iovm-pool" }.map(\.name).sorted() == ["iovm0", "iovm1", "iovm2"])

        let report = try engine(fake).destroy(topology: "affinity", nics: plan.iovms.flatMap(\.pci))
        #expect(report.done.first?.hasPrefix("destroyed guest1 (") == true, "guests go first: \(report.done)")
        #expect(fake.snapshot.pools.map(\.name) == ["Pool-0"])
        #expect(fake.snapshot.pools[0].cpus == [0, 1, 2, 3])
        #expect(fake.snapshot.domains.map(\.name) == ["Domain-0"])
        #expect(fake.snapshot.nics.allSatisfy { !$0.assignable })
    }

    /// iovm-affinity for three IOVMs, in Pool-0 or in a cpupool of their own, with that IOVM weight (nil: the default).
    func affinityPlan(dedicatedPool: Bool, iovmWeight: Int? = 512) throws -> Plan {
        let document = TopologyDocument(
            name: "affinity", host: HostDocument(cores: 4, memoryMiB: 8192),
            defaults: DefaultsDocument(kernel: "/lab/vmlinux"),
            configuration: ConfigurationDocument(kind: .multipleSmall),
            nics: Self.nics.prefix(3).map { NICDocument(pci: $0) },
            guests: (1...3).map { GuestDocument(name: "guest\($0)") },
            placement: PlacementDocument(kind: .iovmAffinity, dedicatedPool: dedicatedPool),
            scheduling: iovmWeight.map { SchedulingDocument(iovmWeight: $0) })
        return try Planner().plan(document)
    }

    @Test("a move to another cpupool, which resets a domain's pins and weight, is followed by the plan's; a rollback moves it back and sets again what it ran with")
    func cpupoolMovesKeepScheduling() throws {
        let fake = FakeXenBackend(nics: Array(Self.nics.prefix(3)))
        let shared = try affinityPlan(dedicatedPool: false)
        _ = try engine(fake).apply(shared, libxlJSON: json(shared))
        let before = try #require(fake.snapshot.domains.first { $0.name == "iovm0" })
        #expect(before.cpupool == "Pool-0" && before.weight == 512)

        // Forward: the moved IOVMs get the plan's weight (and pins) again, and a second apply has nothing to do.
        let dedicated = try affinityPlan(dedicatedPool: true)
        let planned = try #require(dedicated.domains.first { $0.name == "iovm0" })
        _ = try engine(fake).apply(dedicated, libxlJSON: json(dedicated))
        let moved = try #require(fake.snapshot.domains.first { $0.name == "iovm0" })
        #expect(moved.cpupool == "iovm-pool")
        #expect(moved.weight == planned.weight)
        #expect(moved.hardAffinity.allSatisfy { $0 == planned.hardAffinity ?? CPUSet(0..<4) })
        #expect(try engine(fake).apply(dedicated, libxlJSON: json(dedicated)).nothingToDo)

        // Back to Pool-0, failing after the moves: the rollback makes the pool again, moves the IOVMs back into it, then
        // sets their weights and pins.
        fake.fail("setSchedule iovm2")
        #expect(throws: (any Error).self) { try engine(fake).apply(shared, libxlJSON: json(shared)) }
        let rolledBack = try #require(fake.snapshot.domains.first { $0.name == "iovm0" })
        #expect(rolledBack.cpupool == "iovm-pool")
        #expect(rolledBack.weight == moved.weight && rolledBack.cap == moved.cap)
        #expect(rolledBack.hardAffinity == moved.hardAffinity)
        #expect(fake.snapshot.pools.map(\.name) == ["Pool-0", "iovm-pool"], "the pool the apply removed is made again")
        fake.heal("setSchedule iovm2")

        // And from iovm-pool back to Pool-0 for good: the pool goes once the IOVMs left it (its core is Pool-0's again,
        // where the plan pins them), and they are pinned and weighed as before the first move.
        let back = try engine(fake).preview(shared).changes.map(\.description)
        let removal = try #require(back.firstIndex { $0.hasPrefix("remove cpupool iovm-pool") })
        #expect(back.firstIndex { $0.hasPrefix("move iovm0") }! < removal && removal < back.firstIndex { $0.hasPrefix("pin iovm0") }!)
        _ = try engine(fake).apply(shared, libxlJSON: json(shared))
        #expect(fake.snapshot.pools.map(\.name) == ["Pool-0"])
        let home = try #require(fake.snapshot.domains.first { $0.name == "iovm0" })
        #expect(home.cpupool == "Pool-0" && home.weight == before.weight && home.hardAffinity == before.hardAffinity)

        // To the dedicated pool again, failing after the moves: the rollback moves the IOVMs back to Pool-0 and removes
        // the pool before it pins them to its core.
        fake.fail("setSchedule iovm2")
        #expect(throws: (any Error).self) { try engine(fake).apply(dedicated, libxlJSON: json(dedicated)) }
        fake.heal("setSchedule iovm2")
        let undone = try #require(fake.snapshot.domains.first { $0.name == "iovm0" })
        #expect(fake.snapshot.pools.map(\.name) == ["Pool-0"])
        #expect(undone.cpupool == "Pool-0" && undone.weight == before.weight && undone.hardAffinity == before.hardAffinity)
    }

    @Test("an IOVM made again in Pool-0, pinned to the core of the pool the plan dropped, is made after that pool is removed")
    func poolRemovalComesBeforeCreations() throws {
        let fake = FakeXenBackend(nics: Array(Self.nics.prefix(3)))
        let dedicated = try affinityPlan(dedicatedPool: true)
        _ = try engine(fake).apply(dedicated, libxlJSON: json(dedicated))
        fake.killBehindIOVMsBack("iovm0")
        let shared = try affinityPlan(dedicatedPool: false)
        let planned = try #require(shared.domains.first { $0.name == "iovm0" })
        let order = try engine(fake).preview(shared).changes.map(\.description)
        let removal = try #require(order.firstIndex { $0.hasPrefix("remove cpupool iovm-pool") })
        #expect(removal < order.firstIndex { $0.hasPrefix("create iovm0") }!)
        _ = try engine(fake).apply(shared, libxlJSON: json(shared))
        let made = try #require(fake.snapshot.domains.first { $0.name == "iovm0" })
        #expect(made.cpupool == "Pool-0" && made.hardAffinity.allSatisfy { $0 == planned.hardAffinity })
        #expect(fake.snapshot.pools.map(\.name) == ["Pool-0"])
    }

    @Test func orphansAreReportedNotDestroyed() throws {
        let fake = FakeXenBackend(nics: Self.nics)
        let four = try plan(.credit)
        _ = try engine(fake).apply(four, libxlJSON: json(four))
        let three = try plan(.credit, guests: 3)
        let report = try engine(fake).apply(three, libxlJSON: json(three))
        #expect(report.orphans == ["guest4"])
        #expect(fake.snapshot.domains.contains { $0.name == "guest4" })
    }

    @Test func twoAppliesNeverInterleave() throws {
        let fake = FakeXenBackend(nics: Self.nics)
        let hold = try fake.acquire(timeout: 0)
        let plan = try plan(.credit)
        #expect(throws: ApplyError.self) { try engine(fake).apply(plan, libxlJSON: json(plan)) }
        #expect(fake.mutatingCalls.isEmpty)
        hold.release()
        _ = try engine(fake).apply(plan, libxlJSON: json(plan))
    }
}
