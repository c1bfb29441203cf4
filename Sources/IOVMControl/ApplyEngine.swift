import CPUSets
import Dispatch
import FoundationEssentials
public import IOVMCore
public import Logging

/// What an apply or destroy did.
public struct ApplyReport: Sendable {
    /// Steps that ran, in order.
    public var done: [String]
    /// Domain ids of the plan's domains after the run.
    public var domids: [String: UInt32]
    /// Managed domains the plan no longer has (left running).
    public var orphans: [String]
    /// Seconds the run took.
    public var seconds: Double

    /// Whether nothing needed to change.
    public var nothingToDo: Bool { done.isEmpty }
}

/// Why an apply stopped; whatever it had made was undone first.
public enum ApplyError: Error, Sendable, CustomStringConvertible {
    /// The host conflicts with the plan; nothing was touched.
    case conflicts([Conflict])
    /// A step failed; `undone` lists the rollback steps that ran, `undoFailures` those that failed too.
    case stepFailed(step: String, reason: String, undone: [String], undoFailures: [String])
    /// Another apply holds the host lock.
    case busy(String)
    /// A recovery's plan is no longer the one applied for its topology: it was applied anew (`recorded`), destroyed
    /// (nil) or is being destroyed (``ObservedHost/destroyingMark``) meanwhile; nothing was touched.
    case superseded(topology: String, recorded: String?)

    /// Human-readable text.
    public var description: String {
        switch self {
        case .conflicts(let conflicts):
            return (conflicts.map { "error: \($0.message)" } + ["\(conflicts.count) conflict\(conflicts.count == 1 ? "" : "s") with the host; nothing was touched."]).joined(
                separator: "\n")
        case .stepFailed(let step, let reason, let undone, let undoFailures):
            var lines = ["error: \(step) failed: \(reason)"]
            lines += undone.map { "  rolled back: \($0)" }
            lines += undoFailures.map { "  ROLLBACK FAILED: \($0)" }
            lines.append(undoFailures.isEmpty ? "The host is as it was before this apply." : "The host may keep some of what this apply made: see above.")
            return lines.joined(separator: "\n")
        case .busy(let reason):
            return "error: another iovm apply is running: \(reason)"
        case .superseded(let topology, let recorded):
            switch recorded {
            case nil: return "error: \(topology) was destroyed meanwhile; nothing was touched"
            case ObservedHost.destroyingMark: return "error: \(topology) is being destroyed; nothing was touched"
            case let plan?: return "error: \(topology) was applied anew meanwhile (plan \(plan)); nothing was touched"
            }
        }
    }
}

/// What a recovery's apply expects the host to record as applied for its topology, checked under the host lock.
public enum AppliedExpectation: Sendable, Equatable {
    /// No plan recorded (a host applied by an older iovm): a plan recorded meanwhile is a newer apply.
    case unrecorded
    /// This plan (its ``IOVMCore/Plan/appliedFingerprint``).
    case plan(String)

    /// Whether the plan the host records as applied (`recorded`; nil: none) is the one expected.
    func holds(for recorded: String?) -> Bool {
        switch self {
        case .unrecorded: recorded == nil
        case .plan(let fingerprint): recorded == fingerprint
        }
    }
}

/// Makes a plan real through a ``XenBackend``, undoing everything it made when a step fails.
///
/// Order: cpupools, NICs made assignable, dom0's bridges (centralized), then the domains to create, all at once on their own
/// threads: each IOVM is created and waited for until it serves vifs; each guest is created as
/// soon as the IOVMs that back its vifs are ready (not when every IOVM is), and waited for until
/// its vifs are connected. Then live changes (cpupool moves, pins, weights) of running domains.
public struct ApplyEngine: Sendable {
    /// The privileged boundary.
    public var backend: any XenBackend
    /// dom0's bridges for guests' vifs backed by dom0 (the centralized configuration); nil: they are assumed to
    /// exist and never changed.
    public var network: (any Dom0Network)?
    /// Serializes applies on the host.
    public var lock: any HostLock
    /// Logs each step at info level.
    public var logger: Logger
    /// Seconds to wait for a driver domain's backend.
    public var driverDomainTimeout: Double = 120
    /// Seconds to wait for a guest's vifs to connect in their backends.
    public var guestNetworkTimeout: Double = 120
    /// Seconds to wait for the host lock.
    public var lockTimeout: Double = 0
    /// Called after each step that changed the host, with the step's name: `assignable:<BDF>`, `claim:<BDF>`, `pool:<name>`,
    /// `dom0:<BDF>` (a NIC given back to dom0's driver), `bridge:<name>`, `create:<domain>`, `devd:<IOVM>`, `vifs:<guest>`,
    /// `pin:<domain>`, `weight:<domain>`, `rtds:<domain>`, `move:<domain>`, `unpool:<name>` (a pool the plan dropped),
    /// `replace:<domain>`, and in destroy `destroy:<domain>`,
    /// `destroy-pool:<name>`, `remove-bridge:<name>`, `release:<BDF>`. Tests
    /// stop there as a `kill -9` would (the hidden `--crash-after STEP`), to prove a new apply converges.
    public var crashPoint: CrashPoint?
    /// Asked once the live verbs hold the host lock: true when whoever asked for the change has gone (a control
    /// socket client that hung up while it waited), and the change is not made.
    public var abandoned: (@Sendable () -> Bool)?
    /// Whether a guest that goes away (destroyed, shut down) during its vif's re-attach or the wait for its network is
    /// skipped rather than a failure: `iovm watch`'s recoveries, which must not undo the IOVMs they made for the other
    /// guests. `iovm apply` keeps its rule: a failed step undoes the whole apply.
    public var guestsMayVanish = false

    /// Creates an engine.
    public init(backend: any XenBackend, network: (any Dom0Network)? = nil, lock: any HostLock, logger: Logger) {
        self.backend = backend
        self.network = network
        self.lock = lock
        self.logger = logger
    }

    /// What `apply` would do, without doing it. Throws ``TopologyError`` for what the host refuses outright
    /// (``HostValidation``).
    public func preview(_ plan: Plan) throws -> Reconciliation {
        let host = try observe(plan)
        try HostValidation(plan: plan, host: host).check()
        return Reconciler.reconcile(plan, with: host)
    }

    /// The host as `plan` needs it: Xen's side, dom0's bridges when the plan's vifs use some, and the interfaces
    /// of the IOVMs' NICs that dom0 drives now.
    /// `removingStaleRecords`: the backend's stale records are removed first (under the host lock, when no creation is
    /// in flight), in one call with the observation so that a no-op re-apply reads iovm's records once (issue 16).
    func observe(_ plan: Plan, removingStaleRecords: Bool = false) throws -> ObservedHost {
        var host =
            removingStaleRecords
            ? try backend.removeStaleRecordsThenObserve(nics: plan.hostNICs) { logger.warning("could not remove stale records: \($0)") }
            : try backend.observe(nics: plan.hostNICs)
        if let network {
            let nics = HostValidation.nicsToObserve(plan, on: host)
            if !plan.dom0Bridges.isEmpty || !nics.isEmpty { host.dom0Network = try network.observe(for: plan, nics: nics) }
        }
        return host
    }

    /// Reconciles the host with `plan`. `libxlJSON` maps domain names to their libxl domain config; it is rendered
    /// only when a domain is to be created (a no-op re-apply renders nothing: issue 16), before any change.
    ///
    /// Once the whole plan is applied, its ``IOVMCore/Plan/appliedFingerprint`` is recorded for the topology. With
    /// `expectingApplied` (a recovery's), the host must still record that once the lock is held: a plan applied anew
    /// or a destroy meanwhile refuses with ``ApplyError/superseded(topology:recorded:)``. `guests`: the guests it may
    /// create or replace (``Reconciler/reconcile(_:with:guests:)``); nil: all.
    public func apply(
        _ plan: Plan, libxlJSON: @autoclosure () throws -> [String: String], expectingApplied: AppliedExpectation? = nil, guests: Set<String>? = nil
    ) throws -> ApplyReport {
        var timer = PhaseTimer("apply", logger: logger)
        try backend.prepare(plan)
        timer.lap("prepared the backend")
        let hold = try lock.acquire(timeout: lockTimeout)
        defer { hold.release() }
        timer.lap("took the host lock")
        let start = Date()
        // Under the lock no creation is in flight: intents without their domain are what a killed apply left.
        let host = try observe(plan, removingStaleRecords: true)
        timer.lap("removed stale records and observed the host")
        if let expectingApplied, !expectingApplied.holds(for: host.applied[plan.topology]) {
            throw ApplyError.superseded(topology: plan.topology, recorded: host.applied[plan.topology])
        }
        try HostValidation(plan: plan, host: host).check()
        let reconciliation = Reconciler.reconcile(plan, with: host, guests: guests)
        guard reconciliation.conflicts.isEmpty else { throw ApplyError.conflicts(reconciliation.conflicts) }
        timer.lap("validated and reconciled (\(reconciliation.changes.count) changes)")
        let configs = try reconciliation.changes.contains { if case .createDomain = $0 { true } else { false } } ? libxlJSON() : [:]
        for case .createDomain(let name, _) in reconciliation.changes {
            guard let gone = host.parked?.first(where: { $0.topology == plan.topology && $0.name == name && $0.role == .guest }) else { continue }
            logger.notice(
                "\(name) (UUID \(gone.uuid)) went without iovm destroying it (xl destroy, or xl save): making it again; an xl restore of the old one would clash with it by name"
            )
        }

        var journal = Journal()
        var domids = Dictionary(host.domains.filter { $0.tag?.topology == plan.topology }.map { ($0.name, $0.domid) }, uniquingKeysWith: { a, _ in a })
        // A vif whose backend domain is gone is removed now, while that IOVM is made again, rather than once it
        // serves vifs: the re-attach then only adds (issue 13's order: remove, recreate, wait, re-add).
        let removing = DispatchGroup()
        removeDeadVifs(reconciliation.changes, host: host, into: removing)
        defer { removing.wait() }
        /// The re-attaches made while their IOVM was created (``createDomains``), not to be made again.
        var reattachedEarly: Set<String> = []
        /// A recovery's guests that still run but whose vifs did not connect (``waitForNetworks``).
        var stuck: [StepFailure] = []
        do {
            var index = 0
            let changes = reconciliation.changes
            while index < changes.count {
                let change = changes[index]
                if case .createDomain = change {
                    // Every creation in a row at once, each waiting only for the IOVMs it needs.
                    var names: [String] = []
                    while index < changes.count, case .createDomain(let name, _) = changes[index] {
                        names.append(name)
                        index += 1
                    }
                    // Re-attaches to an IOVM of this batch are made as soon as it takes vif backends.
                    let early = changes[index...].filter { change in
                        if case .reattachVif(_, _, _, _, let backend, _) = change { return names.contains(backend) }
                        return false
                    }
                    let (created, reattached) = try createDomains(
                        names, plan: plan, libxlJSON: configs, running: domids, reattaches: early, removing: removing, journal: &journal,
                        stuck: &stuck)
                    domids.merge(created) { _, new in new }
                    for (change, failure) in reattached {
                        if let failure {
                            guard vanished(change) else { throw failure }
                            recordVanished(change, failure: failure.reason, journal: &journal)
                        } else {
                            recordReattach(change, journal: &journal)
                        }
                        reattachedEarly.insert(change.description)
                    }
                    continue
                }
                if case .reattachVif = change {
                    // Every re-attach in a row: the IOVMs at once (libxl waits for each new backend, which one after
                    // the other would add up while the guests have no network), one IOVM's guests one after the other.
                    var batch: [Change] = []
                    while index < changes.count, case .reattachVif = changes[index] {
                        if !reattachedEarly.contains(changes[index].description) { batch.append(changes[index]) }
                        index += 1
                    }
                    guard !batch.isEmpty else { continue }
                    removing.wait()
                    try reattachVifs(batch, plan: plan, journal: &journal)
                    continue
                }
                if case .waitForNetwork = change {
                    // Every wait in a row at once: each guest's netfront reconnects on its own, and one after the
                    // other the waits would add up while the guests have no network (the re-attached ones).
                    var batch: [Change] = []
                    while index < changes.count, case .waitForNetwork = changes[index] {
                        batch.append(changes[index])
                        index += 1
                    }
                    try waitForNetworks(batch, journal: &journal, stuck: &stuck)
                    continue
                }
                try run(change, plan: plan, journal: &journal)
                index += 1
                // The vifs a shut-down IOVM backed are removed once it is destroyed, while it is made again.
                if case .replaceShutDown(_, let domid, _) = change { removeDeadVifs(changes, host: host, afterDestroying: domid, into: removing) }
            }
        } catch let failure as StepFailure {
            // The rollback starts once the early removals are done (their vifs carried nothing and are not put back:
            // the next apply re-attaches them as missing).
            removing.wait()
            let (undone, undoFailures) = journal.rollBack(backend: backend, network: network, logger: logger)
            throw ApplyError.stepFailed(step: failure.step, reason: failure.reason, undone: undone, undoFailures: undoFailures)
        }
        if let first = stuck.first {
            // Not applied: a planned vif is not connected. Nothing is undone (the other guests use what was made).
            let more = stuck.count > 1 ? " (and \(stuck.dropFirst().map(\.step).joined(separator: ", ")))" : ""
            throw ApplyError.stepFailed(
                step: first.step, reason: first.reason + more + "; the guest still runs, and what this recovery made stays", undone: [], undoFailures: [])
        }
        timer.lap("made the changes")
        let fingerprint = plan.appliedFingerprint
        if host.applied[plan.topology] != fingerprint {
            do { try backend.recordApplied(topology: plan.topology, fingerprint: fingerprint) } catch {
                // Better no record than the previous plan's: iovm watch then makes nothing again rather than undo this.
                logger.warning("could not record the plan applied for \(plan.topology) (iovm watch makes nothing of it again until an apply records one): \(error)")
                try? backend.recordApplied(topology: plan.topology, fingerprint: nil)
            }
        }
        return ApplyReport(done: journal.done, domids: domids, orphans: reconciliation.orphans, seconds: Date().timeIntervalSince(start))
    }

    /// Destroys the domains iovm made for `topology` (guests first), its pools, the bridges in dom0 it made for it,
    /// and gives its NICs back. `nics`: the topology's NICs (``IOVMCore/Plan/hostNICs``); the interfaces of those
    /// behind its bridges are the only ports a bridge may keep and still be removed.
    public func destroy(topology: String, nics: [PCIAddress]) throws -> ApplyReport {
        let hold = try lock.acquire(timeout: lockTimeout)
        defer { hold.release() }
        let start = Date()
        do { try backend.removeStaleRecords() } catch { logger.warning("could not remove stale records: \(error)") }
        // The NICs this topology made assignable, also those its file no longer names (an apply of a file without one
        // leaves it assignable): its destroy gives them back.
        var marked: [PCIAddress] = []
        do { marked = try backend.nicsMarked(for: topology).filter { !nics.contains($0) } } catch {
            logger.warning("could not list the NICs iovm made assignable for \(topology): \(error)")
        }
        let host = try backend.observe(nics: nics + marked)
        // First: an `iovm watch` (running, or started after this destroy was killed) then finds the topology being
        // destroyed, not dead. Removed once the destroy has ended well.
        try backend.recordApplied(topology: topology, fingerprint: ObservedHost.destroyingMark)
        var done: [String] = []
        var failures: [String] = []
        let managed = host.domains.filter { $0.tag?.topology == topology && $0.tag?.uuid == $0.uuid }
        var destroyed: Set<UInt32> = []
        for domain in managed.sorted(by: { ($0.tag?.role == .guest ? 0 : 1, $0.name) < ($1.tag?.role == .guest ? 0 : 1, $1.name) }) {
            do {
                try backend.destroyDomain(domid: domain.domid)
                destroyed.insert(domain.domid)
                done.append("destroyed \(domain.name) (\(domain.domid))")
                crashPoint?("destroy:\(domain.name)")
            } catch { failures.append("destroy \(domain.name): \(error)") }
        }
        for pool in host.pools where pool.managedBy == topology {
            do {
                try backend.destroyPool(named: pool.name)
                done.append("destroyed cpupool \(pool.name)")
                crashPoint?("destroy-pool:\(pool.name)")
            } catch { failures.append("destroy cpupool \(pool.name): \(error)") }
        }
        if let network { removeBridges(of: topology, nics: nics, network: network, done: &done, failures: &failures) }
        // A NIC still passed through to a domain (one iovm did not make, or one it failed to destroy)
        // stays with pciback: handing it to dom0's driver under a running domain would share the device.
        let holders = Dictionary(
            host.domains.filter { !destroyed.contains($0.domid) }.flatMap { domain in domain.pci.map { ($0, domain) } },
            uniquingKeysWith: { first, _ in first })
        for nic in host.nics where nic.madeAssignableByIOVM {
            // Another topology, applied, made it assignable for its IOVM (dead now, or about to be made again by its
            // watch): it stays, and that topology's destroy gives it back. A mark of an older iovm names none.
            if let owner = host.otherAppliedOwner(of: nic, than: topology) {
                done.append("left NIC \(nic.pci) assignable: topology \(owner), which is applied, made it so; its destroy gives it back")
                continue
            }
            if let holder = holders[nic.pci] {
                // One its file does not name (found by its mark) went to another topology's IOVM: that one has it now.
                if marked.contains(nic.pci) {
                    done.append("left NIC \(nic.pci) assignable: domain \(holder.name) (\(holder.domid)) holds it, and this topology's file no longer names it")
                    continue
                }
                // Another topology's apply took it over (``Change/claimNIC(_:markedFor:held:)``): that topology has it now
                // (on a libvirt host, or before that apply recorded itself, it is not known as applied).
                if let owner = nic.madeAssignableFor, owner != topology {
                    done.append(
                        "left NIC \(nic.pci) assignable: domain \(holder.name) (\(holder.domid)) holds it, and topology \(owner)'s mark is on it: that topology's destroy gives it back"
                    )
                    continue
                }
                failures.append("NIC \(nic.pci) is still passed through to domain \(holder.name) (\(holder.domid)); it stays assignable, not given back to dom0")
                continue
            }
            do {
                try backend.releaseNIC(nic.pci)
                done.append("gave NIC \(nic.pci) back to \(nic.previousDriver ?? "dom0")")
                crashPoint?("release:\(nic.pci)")
            } catch { failures.append("release NIC \(nic.pci): \(error)") }
        }
        for line in done { logger.info("\(line)") }
        if !failures.isEmpty {
            throw ApplyError.stepFailed(step: "destroy of \(topology)", reason: failures.joined(separator: "; "), undone: [], undoFailures: [])
        }
        try backend.removeParkedTags(of: topology)
        try backend.recordApplied(topology: topology, fingerprint: nil)
        return ApplyReport(done: done, domids: [:], orphans: [], seconds: Date().timeIntervalSince(start))
    }

    /// Removes the bridges in dom0 iovm made for `topology`, once the guests are gone; a bridge that still has a port
    /// other than the topology's NICs (a vif of a domain not destroyed, another interface) is left, with its tag.
    private func removeBridges(of topology: String, nics: [PCIAddress], network: any Dom0Network, done: inout [String], failures: inout [String]) {
        let tags: [String: String]
        do { tags = try network.managedBridges() } catch {
            failures.append("list the bridges iovm made in dom0: \(error)")
            return
        }
        let ours = tags.filter { $0.value == topology }.keys.sorted()
        guard !ours.isEmpty else { return }
        let own = Set(nics.compactMap { try? network.interface(of: $0)?.name })
        for name in ours {
            do {
                if let bridge = try network.bridge(named: name), bridge.isBridge {
                    let others = bridge.ports.filter { !own.contains($0) }
                    guard others.isEmpty else {
                        failures.append("bridge \(name) in dom0 still has \(others.joined(separator: ", ")) as ports; it stays, with its tag")
                        continue
                    }
                }
                try network.removeBridge(named: name)
                done.append("removed bridge \(name) from dom0")
                crashPoint?("remove-bridge:\(name)")
            } catch { failures.append("remove bridge \(name) from dom0: \(error)") }
        }
    }

    // MARK: Steps

    private func run(_ change: Change, plan: Plan, journal: inout Journal) throws {
        logger.info("\(change.description)")
        do {
            switch change {
            case .createPool(let pool):
                try backend.createPool(pool, topology: plan.topology)
                journal.record(change.description, undo: .destroyPool(pool.name))
                crashPoint?("pool:\(pool.name)")
            case .removePool(let pool):
                try backend.destroyPool(named: pool.name)
                journal.record(change.description, undo: .createPool(pool, topology: plan.topology))
                crashPoint?("unpool:\(pool.name)")
            case .makeAssignable(let pci):
                try backend.makeAssignable(pci, for: plan.topology)
                journal.record(change.description, undo: .releaseNIC(pci))
                crashPoint?("assignable:\(pci)")
            case .claimNIC(let pci, let owner, let held):
                try backend.markNIC(pci, for: plan.topology)
                // Held by the plan's running IOVM, the NIC is this topology's whatever else fails: no undo.
                journal.record(change.description, undo: held ? nil : .markNIC(pci, topology: owner))
                crashPoint?("claim:\(pci)")
            case .giveNICToDom0(let pci, _, let owner):
                // libxl gives it back to the driver it had before iovm made it assignable.
                try backend.releaseNIC(pci)
                journal.record(change.description, undo: .makeAssignable(pci, topology: owner))
                crashPoint?("dom0:\(pci)")
            case .createBridge(let name, let nic, _):
                guard let network else { throw StepFailure(step: change.description, reason: "no access to dom0's network") }
                let interface = try network.createBridge(name, on: nic, topology: plan.topology)
                journal.record(Change.createBridge(name: name, nic: nic, interface: interface).description, undo: .removeBridge(name))
                crashPoint?("bridge:\(name)")
            case .setAffinity(let name, let domid, let vcpus, let from, let to, let before):
                try backend.setAffinity(domid: domid, vcpus: vcpus, hard: to)
                // vCPUs pinned apart (`xl vcpu-pin` of one) get each its own back; a domain moved by this apply gets
                // its affinity back from the move's undo (it can only be pinned to cores of its pool).
                let apart = before.count == vcpus && Set(before).count > 1
                let undo: Journal.Undo = apart ? .setAffinityPerVCPU(domid: domid, hard: before) : .setAffinity(domid: domid, vcpus: vcpus, hard: from)
                journal.record(change.description, undo: journal.moved.contains(domid) ? nil : undo)
                crashPoint?("pin:\(name)")
            case .setSchedule(let name, let domid, let from, let to):
                try backend.setSchedule(domid: domid, weight: to.weight, cap: to.cap)
                if let weight = from.weight, !journal.moved.contains(domid) {
                    journal.record(change.description, undo: .setSchedule(domid: domid, weight: weight, cap: from.cap ?? 0))
                } else {
                    journal.record(change.description, undo: nil)
                }
                crashPoint?("weight:\(name)")
            case .setRTDS(let name, let domid, let from, let to):
                try backend.setRTDS(domid: domid, to: to)
                journal.record(change.description, undo: journal.moved.contains(domid) ? nil : Journal.Undo.rtds(domid: domid, before: from))
                crashPoint?("rtds:\(name)")
            case .moveToPool(let name, let domid, let from, let to, let before):
                try backend.moveToPool(domid: domid, pool: to)
                journal.moved.insert(domid)
                journal.record(change.description, undo: .moveToPool(domid: domid, pool: from, restore: before))
                crashPoint?("move:\(name)")
            case .replaceIncomplete(let name, let domid), .replaceShutDown(let name, let domid, _), .replaceShutDownGuest(let name, let domid, _):
                // Nothing to undo: it was never a working domain, or no longer is one.
                try backend.destroyDomain(domid: domid)
                journal.record(change.description, undo: nil)
                crashPoint?("replace:\(name)")
            case .waitForNetwork(let name, let domid):
                let started = Date()
                try backend.waitForGuestNetwork(domid: domid, timeout: guestNetworkTimeout)
                logger.info("\(name)'s vifs connected after \(Self.seconds(since: started)) s of the \(Int(guestNetworkTimeout)) s allowed")
            case .reattachVif:
                try Self.reattach(change, plan: plan, backend: backend)
                recordReattach(change, journal: &journal)
            case .createDomain:
                preconditionFailure("stages are created by createStage")
            }
        } catch let failure as StepFailure {
            throw failure
        } catch {
            throw StepFailure(step: change.description, reason: "\(error)")
        }
    }

    /// Starts removing, on threads of their own, the vifs `changes` re-attach whose stale backend domain no longer
    /// exists or no longer has their backend directory (an `xl destroy` of it in progress), into `group`; wait on the
    /// group before re-attaching. A removal that fails is logged: the re-attach tries again.
    ///
    /// With `destroyed`, the vifs whose stale backend is that domain, which this apply has just destroyed (an IOVM
    /// that shut down or crashed: its backend directories were still there when the host was read). Removed before
    /// the destroy, libxl would wait for the dead backend to close each one. The re-attaches wait on the same group:
    /// the Reconciler orders every replacement before any creation, so none of them can start before these begin.
    private func removeDeadVifs(_ changes: [Change], host: ObservedHost, afterDestroying destroyed: UInt32? = nil, into group: DispatchGroup) {
        let dead = changes.compactMap { change -> (name: String, domid: UInt32, devid: Int, stale: UInt32)? in
            guard case .reattachVif(let name, let domid, let devid, let stale?, _, _) = change else { return nil }
            let gone = !host.domains.contains { $0.domid == stale }
            let observed = host.domains.first { $0.domid == domid }?.vifs?.first { $0.devid == devid }
            let directoryGone = observed.map { $0.backendDomid == stale && $0.backendState == nil } ?? false
            // Each vif once: those the host read already showed dead were started with the first call.
            if let destroyed { return stale == destroyed && !(gone || directoryGone) ? (name, domid, devid, stale) : nil }
            guard gone || directoryGone else { return nil }
            return (name, domid, devid, stale)
        }
        guard !dead.isEmpty else { return }
        let (backend, logger) = (self.backend, self.logger)
        group.enter()
        let thread = PThread {
            let results = onThreads(dead, name: "iovm-remove-dead-vif") { vif in
                try backend.removeDeadVif(domid: vif.domid, devid: vif.devid, staleBackend: vif.stale)
            }
            for (vif, result) in zip(dead, results) {
                if case .failure(let error) = result {
                    logger.warning("could not remove \(vif.name)'s vif \(vif.devid) of the dead domain \(vif.stale) ahead of its re-attach (which tries again): \(error)")
                }
            }
            group.leave()
        }
        thread.start()
    }

    /// Whether a failed re-attach ends its IOVM's turn: unless its guest vanished (``vanished(_:)``), the IOVM does not
    /// take vifs, and each next re-attach would wait out libxl's timeout in turn.
    private var stopsReattaches: @Sendable (Change, any Error) -> Bool {
        let engine = self
        return { change, _ in !engine.vanished(change) }
    }

    /// The IOVM a ``Change/reattachVif`` attaches to (nil for any other change).
    static func reattachBackend(_ change: Change) -> String? {
        if case .reattachVif(_, _, _, _, let backend, _) = change { return backend }
        return nil
    }

    /// Re-attaches the vif of `change` (a ``Change/reattachVif``) to the backend `plan` gives it.
    static func reattach(_ change: Change, plan: Plan, backend: any XenBackend) throws {
        guard case .reattachVif(let name, let domid, let devid, let staleBackend, _, _) = change else { return }
        guard let vifs = plan.domain(name)?.vifs, vifs.indices.contains(devid) else {
            throw StepFailure(step: change.description, reason: "the plan has no vif \(devid) for \(name)")
        }
        try backend.reattachVif(domid: domid, devid: devid, staleBackend: staleBackend, to: vifs[devid])
    }

    /// Records a re-attach that was made, and stops there when a test asks it to.
    private func recordReattach(_ change: Change, journal: inout Journal) {
        // Nothing to undo: the vif it replaced carried nothing.
        journal.record(change.description, undo: nil)
        if case .reattachVif(let name, _, _, _, _, _) = change { crashPoint?("reattach:\(name)") }
    }

    /// Runs `batch` (``Change/reattachVif`` steps), those to one IOVM one after the other in the plan's order and the
    /// IOVMs at once (``onThreads(_:name:groupedBy:stopsGroup:_:)``), then records them in order; the first failure, if any, is
    /// the step's.
    private func reattachVifs(_ batch: [Change], plan: Plan, journal: inout Journal) throws {
        for change in batch { logger.info("\(change.description)") }
        let backend = self.backend
        let stops = stopsReattaches
        let results = onThreads(batch, name: "iovm-reattach", groupedBy: Self.reattachBackend, stopsGroup: stops) {
            try Self.reattach($0, plan: plan, backend: backend)
        }
        var failed: [Int: String] = [:]
        for (index, result) in results.enumerated() {
            if case .failure(let error) = result { failed[index] = (error as? StepFailure)?.reason ?? "\(error)" }
        }
        for (index, change) in batch.enumerated() {
            if let reason = failed[index] {
                guard vanished(change) else { continue }
                recordVanished(change, failure: reason, journal: &journal)
                failed[index] = nil
            } else {
                recordReattach(change, journal: &journal)
            }
        }
        if let first = failed.keys.min(), let reason = failed[first] { throw StepFailure(step: batch[first].description, reason: reason) }
    }

    /// Whether the guest of `change` (a ``Change/reattachVif`` or ``Change/waitForNetwork`` that failed) runs no more,
    /// when ``guestsMayVanish``: gone from Xen's list of domains, or shut down.
    private func vanished(_ change: Change) -> Bool {
        guard guestsMayVanish else { return false }
        let domid: UInt32
        switch change {
        case .reattachVif(_, let id, _, _, _, _): domid = id
        case .waitForNetwork(_, let id): domid = id
        default: return false
        }
        guard let glance = try? backend.glance() else { return false }
        guard let life = glance.domains.first(where: { $0.domid == domid }) else { return true }
        return life.shutdownReason != nil
    }

    /// Records that the guest of `change` went away while it ran (``vanished(_:)``): nothing to undo, and the apply
    /// goes on.
    private func recordVanished(_ change: Change, failure: String, journal: inout Journal) {
        let step = "skipped: \(change.description): its guest runs no more (\(failure))"
        logger.warning("\(step)")
        journal.record(step, undo: nil)
    }

    /// Runs `batch` (``Change/waitForNetwork`` steps) at once, one thread each; the first failure in plan order,
    /// if any, is the step's. Waits have nothing to undo.
    ///
    /// With ``guestsMayVanish`` (a recovery) a guest that still runs but whose vifs did not connect (paused, hung) goes
    /// into `stuck` instead: the apply goes on and then fails without undoing, so the IOVM it made again stays for the
    /// other guests, and the next attempt waits for that guest again.
    private func waitForNetworks(_ batch: [Change], journal: inout Journal, stuck: inout [StepFailure]) throws {
        for change in batch { logger.info("\(change.description)") }
        let (backend, logger, timeout) = (self.backend, self.logger, guestNetworkTimeout)
        let results = onThreads(batch, name: "iovm-wait-network") { change in
            guard case .waitForNetwork(let name, let domid) = change else { return }
            let started = Date()
            try backend.waitForGuestNetwork(domid: domid, timeout: timeout)
            logger.info("\(name)'s vifs connected after \(Self.seconds(since: started)) s of the \(Int(timeout)) s allowed")
        }
        for (change, result) in zip(batch, results) {
            guard case .failure(let error) = result else { continue }
            let failure = StepFailure(step: change.description, reason: "\(error)")
            guard guestsMayVanish else { throw failure }
            keepStuck(change, failure: failure, journal: &journal, stuck: &stuck)
        }
    }

    /// A recovery's guest whose vifs did not connect (`change`, a ``Change/waitForNetwork``, failed with `failure`):
    /// recorded as gone when it runs no more (``vanished(_:)``), else collected into `stuck`; nothing is undone.
    private func keepStuck(_ change: Change, failure: StepFailure, journal: inout Journal, stuck: inout [StepFailure]) {
        if vanished(change) {
            recordVanished(change, failure: failure.reason, journal: &journal)
            return
        }
        logger.warning("\(failure.step) failed, and its guest still runs: \(failure.reason); what this recovery made stays")
        stuck.append(failure)
    }

    /// Seconds since `start`, with one decimal, for log lines.
    static func seconds(since start: Date) -> String { String(cFormat: "%.1f", Date().timeIntervalSince(start)) }

    /// Creates `names` concurrently, one thread each (the work is blocking libxl calls and waits, so
    /// a pool as wide as dom0's CPUs would create only that many at a time).
    ///
    /// An IOVM is ready in two steps: it takes vif backends (``XenBackend/waitForVifBackends(domid:timeout:)``: its
    /// kernel's netback probes them), then it serves them (`xl devd`, ``XenBackend/waitForDriverDomain(domid:timeout:)``).
    /// A domain whose vifs it backs is created at the first step, and its vifs are waited for after the second; so
    /// the guest's creation overlaps `xl devd`'s start in the IOVM. If one of its IOVMs failed, it is not created, or
    /// not waited for. `reattaches` (``Change/reattachVif`` of running guests to IOVMs of this batch) are made at the
    /// first step too, once `removing` (the dead vifs' removals) is done. Returns the domids made and the re-attaches
    /// that were made, each with its failure if it had one.
    ///
    /// With ``guestsMayVanish`` (a recovery) a guest made here (one that rebooted) whose vifs did not connect though
    /// their IOVMs serve goes into `stuck`, as in ``waitForNetworks(_:journal:stuck:)``: it is kept (a guest that boots
    /// slowly would never get through if each attempt made it anew), and an IOVM made in the same batch stays for the
    /// other guests.
    private func createDomains(
        _ names: [String], plan: Plan, libxlJSON: [String: String], running: [String: UInt32], reattaches: [Change],
        removing: DispatchGroup, journal: inout Journal, stuck: inout [StepFailure]
    ) throws -> (created: [String: UInt32], reattached: [(change: Change, failure: StepFailure?)]) {
        /// What one creation left behind: a domain (even if a later wait failed) and/or a failure, or (a recovery's
        /// guest whose vifs did not connect) a stuck wait, which abandons nothing.
        struct Outcome: Sendable {
            var domid: UInt32?
            var failure: StepFailure?
            var stuck: StepFailure?
        }
        let specs = names.compactMap { plan.domain($0) }
        let batch = Set(specs.map(\.name))
        logger.info("create \(names.joined(separator: ", "))\(names.count > 1 ? " concurrently" : "")")
        /// The outcome of each finished creation, the IOVMs that take vif backends already and the early re-attaches'
        /// results (by index in `reattaches`), guarded by `finished` (signalled at every change). Once any creation
        /// failed, creations not started yet are not started (everything will be rolled back).
        let finished = PThreadCondition()
        nonisolated(unsafe) var outcomes: [String: Outcome] = [:]
        nonisolated(unsafe) var accepting: Set<String> = []
        nonisolated(unsafe) var reattachResults: [Int: StepFailure?] = [:]
        let reattaching = DispatchGroup()
        let backend = self.backend
        let logger = self.logger
        let timeout = driverDomainTimeout
        let networkTimeout = guestNetworkTimeout
        let dependencies = plan.creationDependencies
        let crashPoint = self.crashPoint
        let stops = stopsReattaches
        let mayVanish = guestsMayVanish
        /// Re-attaches the vifs of `reattaches` backed by `iovm`, one after the other on a thread of its own (it takes
        /// backends now).
        @Sendable func startReattaches(to iovm: String) {
            let mine = reattaches.enumerated().filter { _, change in
                if case .reattachVif(_, _, _, _, let backend, _) = change { return backend == iovm }
                return false
            }
            guard !mine.isEmpty else { return }
            reattaching.enter()
            let thread = PThread {
                removing.wait()
                for (_, change) in mine { logger.info("\(change.description)") }
                // One after the other, in the plan's order (``onThreads(_:name:groupedBy:stopsGroup:_:)`` says why).
                let results = onThreads(mine.map(\.element), name: "iovm-reattach", groupedBy: Self.reattachBackend, stopsGroup: stops) {
                    try Self.reattach($0, plan: plan, backend: backend)
                }
                finished.lock()
                for ((index, change), result) in zip(mine, results) {
                    if case .failure(let error) = result {
                        reattachResults[index] = StepFailure(step: change.description, reason: (error as? StepFailure)?.reason ?? "\(error)")
                    } else {
                        reattachResults[index] = .some(nil)
                    }
                }
                finished.unlock()
                reattaching.leave()
            }
            thread.name = "iovm-reattach-\(iovm)"
            thread.start()
        }
        for spec in specs {
            // The backends this apply creates are waited for as they come up; a running one is asked once
            // (it serves already, unless an apply that created it stopped before it did).
            let needs = (dependencies[spec.name] ?? []).filter { batch.contains($0) }
            let runningNeeds = (dependencies[spec.name] ?? []).filter { !batch.contains($0) }.compactMap { name in running[name].map { (name, $0) } }
            let thread = PThread {
                var outcome = Outcome()
                do {
                    finished.lock()
                    func abandoned() -> Bool { outcomes.values.contains { $0.failure != nil } }
                    while !abandoned() && needs.contains(where: { !accepting.contains($0) && outcomes[$0] == nil }) { finished.wait() }
                    let failed = needs.filter { outcomes[$0]?.failure != nil }
                    let stop = abandoned()
                    finished.unlock()
                    guard failed.isEmpty else {
                        throw StepFailure(step: "create \(spec.name)", reason: "not created: its backend \(failed.joined(separator: ", ")) failed")
                    }
                    guard !stop else { throw StepFailure(step: "create \(spec.name)", reason: "not created: another creation of this apply failed") }
                    if !needs.isEmpty { logger.debug("\(needs.joined(separator: ", ")) take vif backends: creating \(spec.name)") }
                    for (name, domid) in runningNeeds {
                        do { try backend.waitForDriverDomain(domid: domid, timeout: timeout) } catch {
                            throw StepFailure(step: "wait for driver domain \(name) (\(domid))", reason: "\(error)")
                        }
                    }
                    guard let json = libxlJSON[spec.name] else {
                        throw StepFailure(step: "create \(spec.name)", reason: "no libxl config was rendered for it")
                    }
                    let tag = ManagedTag(topology: plan.topology, name: spec.name, role: spec.role, uuid: "", specFingerprint: spec.specFingerprint)
                    do { outcome.domid = try backend.createDomain(spec, libxlJSON: json, tag: tag) } catch {
                        throw StepFailure(step: "create \(spec.name)", reason: "\(error)")
                    }
                    crashPoint?("create:\(spec.name)")
                    // Each wait says how much of its limit it used: a step that races a timeout shows it.
                    if spec.driverDomain, let domid = outcome.domid {
                        let started = Date()
                        do { try backend.waitForVifBackends(domid: domid, timeout: timeout) } catch {
                            throw StepFailure(step: "wait for driver domain \(spec.name) (\(domid))", reason: "\(error)")
                        }
                        logger.info("\(spec.name) takes vif backends after \(Self.seconds(since: started)) s of the \(Int(timeout)) s allowed")
                        finished.lock()
                        accepting.insert(spec.name)
                        finished.broadcast()
                        finished.unlock()
                        startReattaches(to: spec.name)
                        do { try backend.waitForDriverDomain(domid: domid, timeout: timeout) } catch {
                            throw StepFailure(step: "wait for driver domain \(spec.name) (\(domid))", reason: "\(error)")
                        }
                        logger.info("\(spec.name) serves vifs (xl devd up) after \(Self.seconds(since: started)) s of the \(Int(timeout)) s allowed")
                        crashPoint?("devd:\(spec.name)")
                    }
                    if !spec.vifs.isEmpty, let domid = outcome.domid {
                        // Its vifs connect once the IOVMs of this batch that back them serve.
                        finished.lock()
                        while needs.contains(where: { outcomes[$0] == nil }) { finished.wait() }
                        let failedLater = needs.filter { outcomes[$0]?.failure != nil }
                        finished.unlock()
                        let backends = spec.vifs.map { $0.backend ?? "Domain-0" }.joined(separator: ", ")
                        guard failedLater.isEmpty else {
                            throw StepFailure(
                                step: "connect the vif of \(spec.name) (\(domid)) in \(backends)", reason: "its backend \(failedLater.joined(separator: ", ")) failed")
                        }
                        let started = Date()
                        do {
                            try backend.waitForGuestNetwork(domid: domid, timeout: networkTimeout)
                            logger.info("\(spec.name)'s vifs connected after \(Self.seconds(since: started)) s of the \(Int(networkTimeout)) s allowed")
                            crashPoint?("vifs:\(spec.name)")
                        } catch {
                            let failure = StepFailure(step: "connect the vif of \(spec.name) (\(domid)) in \(backends)", reason: "\(error)")
                            guard mayVanish else { throw failure }
                            outcome.stuck = failure
                        }
                    }
                } catch {
                    outcome.failure = error as? StepFailure ?? StepFailure(step: "create \(spec.name)", reason: "\(error)")
                }
                finished.lock()
                outcomes[spec.name] = outcome
                finished.broadcast()
                finished.unlock()
            }
            thread.name = "iovm-create-\(spec.name)"
            thread.stackSize = 1 << 20
            thread.start()
        }
        finished.lock()
        while outcomes.count < specs.count { finished.wait() }
        finished.unlock()
        reattaching.wait()
        finished.lock()
        let collected = outcomes
        let reattached = reattachResults.keys.sorted().map { (change: reattaches[$0], failure: reattachResults[$0] ?? nil) }
        finished.unlock()
        var created: [String: UInt32] = [:]
        var failures: [StepFailure] = []
        for spec in specs {
            guard let outcome = collected[spec.name] else { continue }
            if let domid = outcome.domid {
                created[spec.name] = domid
                journal.record("created \(spec.name) (\(domid))", undo: .destroyDomain(domid: domid, name: spec.name))
            }
            if let failure = outcome.failure { failures.append(failure) }
        }
        if failures.isEmpty {
            for spec in specs {
                guard let failure = collected[spec.name]?.stuck, let domid = collected[spec.name]?.domid else { continue }
                keepStuck(.waitForNetwork(name: spec.name, domid: domid), failure: failure, journal: &journal, stuck: &stuck)
            }
        }
        // The root cause first: a domain not created because another failed is only a consequence.
        if let failure = failures.first(where: { !$0.reason.hasPrefix("not created: ") && !$0.reason.hasPrefix("its backend ") }) ?? failures.first {
            throw failure
        }
        return (created, reattached)
    }
}

/// A failed step, with what was being done.
struct StepFailure: Error, Sendable {
    var step: String
    var reason: String
}

/// What a rollback could not set again on a domain it moved back to its cpupool.
struct RestoreRefused: Error, CustomStringConvertible {
    var parts: [String]
    var description: String { parts.joined(separator: "; ") }
}

/// What an apply did, with how to undo each step.
struct Journal {
    enum Undo {
        case destroyPool(String)
        case createPool(CPUPoolSpec, topology: String)
        case releaseNIC(PCIAddress)
        case makeAssignable(PCIAddress, topology: String?)
        case markNIC(PCIAddress, topology: String?)
        case removeBridge(String)
        case destroyDomain(domid: UInt32, name: String)
        case setAffinity(domid: UInt32, vcpus: Int, hard: CPUSet?)
        case setAffinityPerVCPU(domid: UInt32, hard: [CPUSet])
        case setSchedule(domid: UInt32, weight: Int, cap: Int)
        case setRTDS(domid: UInt32, parameters: RTDSParameters)
        case setRTDSPerVCPU(domid: UInt32, parameters: [RTDSParameters])
        /// Moves the domain back, then sets again what the move reset.
        case moveToPool(domid: UInt32, pool: String, restore: SchedulingState)

        /// Sets again on domain `domid` what a cpupool move reset: each vCPU's affinity, then its rtds reservations or
        /// its weight and cap, as far as they were read. A refused part does not keep the others from being set; the
        /// error names what was refused.
        static func restore(_ state: SchedulingState, of domid: UInt32, backend: any XenBackend) throws {
            var refused: [String] = []
            if let first = state.hardAffinity.first {
                do {
                    if Set(state.hardAffinity).count > 1 {
                        try backend.setAffinity(domid: domid, perVCPU: state.hardAffinity)
                    } else {
                        try backend.setAffinity(domid: domid, vcpus: state.hardAffinity.count, hard: first)
                    }
                } catch { refused.append("pins: \(error)") }
            }
            do {
                if let first = state.rtdsByVCPU.first {
                    if state.rtdsByVCPU.allSatisfy({ $0 == first }) {
                        try backend.setRTDS(domid: domid, to: first)
                    } else {
                        try backend.setRTDS(domid: domid, perVCPU: state.rtdsByVCPU)
                    }
                } else if let weight = state.weight, weight > 0 {
                    try backend.setSchedule(domid: domid, weight: weight, cap: state.cap ?? 0)
                }
            } catch { refused.append("scheduler parameters: \(error)") }
            if !refused.isEmpty { throw RestoreRefused(parts: refused) }
        }

        /// What gives domain `domid` back the rtds reservations `before` (each vCPU's, vCPU 0 first): the one they
        /// shared, or each vCPU's when they differed; nothing when they were not read.
        static func rtds(domid: UInt32, before: [RTDSParameters]) -> Undo? {
            guard let first = before.first else { return nil }
            return before.allSatisfy { $0 == first } ? .setRTDS(domid: domid, parameters: first) : .setRTDSPerVCPU(domid: domid, parameters: before)
        }
    }

    private(set) var done: [String] = []
    private var undos: [(String, Undo)] = []
    /// Domains this apply moved to another cpupool: the move's undo restores their affinity, weight, cap and
    /// reservations, so the changes made to them after it record none of their own.
    var moved: Set<UInt32> = []

    mutating func record(_ step: String, undo: Undo?) {
        done.append(step)
        if let undo { undos.append((step, undo)) }
    }

    /// Undoes everything in reverse order; returns what was undone and what could not be.
    func rollBack(backend: any XenBackend, network: (any Dom0Network)?, logger: Logger) -> (undone: [String], failed: [String]) {
        var undone: [String] = []
        var failed: [String] = []
        // Pins, weights and reservations go back last, once the pools and the domains' places in them are as before:
        // a pin to cores of a pool this apply made or removed is refused until that pool is gone or back.
        var later: [(step: String, set: () throws -> Void)] = []
        /// Runs one undo, logging and counting it as undone or failed; whether it was undone.
        func attempt(_ step: String, _ body: () throws -> Void) -> Bool {
            do {
                try body()
                logger.notice("rolled back: \(step)")
                undone.append(step)
                return true
            } catch {
                logger.error("rollback of \(step) failed: \(error)")
                failed.append("\(step): \(error)")
                return false
            }
        }
        for (step, undo) in undos.reversed() {
            switch undo {
            case .destroyPool(let name): _ = attempt(step) { try backend.destroyPool(named: name) }
            case .createPool(let pool, let topology): _ = attempt(step) { try backend.createPool(pool, topology: topology) }
            case .releaseNIC(let pci): _ = attempt(step) { try backend.releaseNIC(pci) }
            case .makeAssignable(let pci, let topology): _ = attempt(step) { try backend.makeAssignable(pci, for: topology) }
            case .markNIC(let pci, let topology): _ = attempt(step) { try backend.markNIC(pci, for: topology) }
            case .removeBridge(let name): _ = attempt(step) { try network?.removeBridge(named: name) }
            case .destroyDomain(let domid, _): _ = attempt(step) { try backend.destroyDomain(domid: domid) }
            case .setAffinity(let domid, let vcpus, let hard): later.append((step, { try backend.setAffinity(domid: domid, vcpus: vcpus, hard: hard) }))
            case .setAffinityPerVCPU(let domid, let hard): later.append((step, { try backend.setAffinity(domid: domid, perVCPU: hard) }))
            case .setSchedule(let domid, let weight, let cap): later.append((step, { try backend.setSchedule(domid: domid, weight: weight, cap: cap) }))
            case .setRTDS(let domid, let parameters): later.append((step, { try backend.setRTDS(domid: domid, to: parameters) }))
            case .setRTDSPerVCPU(let domid, let parameters): later.append((step, { try backend.setRTDS(domid: domid, perVCPU: parameters) }))
            case .moveToPool(let domid, let pool, let restore):
                if attempt(step, { try backend.moveToPool(domid: domid, pool: pool) }) {
                    later.append(("\(step) (what the move reset)", { try Undo.restore(restore, of: domid, backend: backend) }))
                }
            }
        }
        for (step, set) in later { _ = attempt(step, set) }
        return (undone, failed)
    }
}
