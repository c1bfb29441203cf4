public import FoundationEssentials
public import IOVMCore
public import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// What wakes the ``Supervisor`` to look at the host again.
public enum DomainEvent: Sendable, Equatable, CustomStringConvertible {
    /// xenstore fired a watch: `@releaseDomain` (a domain shut down, crashed or was destroyed), or a
    /// change under iovm's tags. `path` is what fired.
    case fired(path: String)
    /// The periodic re-check, a safety net for an event that was missed.
    case recheck

    /// For log lines.
    public var description: String {
        switch self {
        case .fired(let path): "\(path) fired"
        case .recheck: "periodic re-check"
        }
    }
}

/// Where the ``Supervisor`` gets its events: the real one watches xenstore (`IOVMXen`), tests feed
/// their own.
public protocol DomainEvents: Sendable {
    /// The next event, waiting as long as needed; nil when the source has ended. Throws
    /// `CancellationError` when the calling task is cancelled.
    func next() async throws -> DomainEvent?
}

/// The time and the waits of the ``Supervisor``, injectable so tests need no real time.
public struct SupervisorClock: Sendable {
    /// The current time.
    public var now: @Sendable () -> Date
    /// Waits `seconds`; throws `CancellationError` when the task is cancelled.
    public var sleep: @Sendable (_ seconds: Double) async throws -> Void

    /// Creates a clock.
    public init(now: @escaping @Sendable () -> Date, sleep: @escaping @Sendable (_ seconds: Double) async throws -> Void) {
        self.now = now
        self.sleep = sleep
    }

    /// The wall clock and `Task.sleep`.
    public static let system = SupervisorClock(now: { Date() }, sleep: { seconds in try await Task.sleep(for: .seconds(seconds)) })
}

/// When the ``Supervisor`` gives up on an IOVM: `deaths` deaths of the same IOVM within `seconds`.
public struct CrashLoopPolicy: Sendable, Equatable, CustomStringConvertible {
    /// Deaths that make a crash loop (K).
    public var deaths: Int
    /// The window they must fall in (N seconds).
    public var seconds: Double

    /// 3 deaths within 300 s.
    public static let standard = CrashLoopPolicy(deaths: 3, seconds: 300)

    /// Creates a policy.
    public init(deaths: Int, seconds: Double) {
        self.deaths = deaths
        self.seconds = seconds
    }

    /// Parses `K/N` (`3/300`: 3 deaths within 300 s); nil when it is not two positive numbers.
    public init?(parsing text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let deaths = Int(parts[0]), let seconds = Double(parts[1]), deaths >= 1, seconds > 0, seconds.isFinite else { return nil }
        self.init(deaths: deaths, seconds: seconds)
    }

    /// `3/300`.
    public var description: String { "\(deaths)/\(seconds == seconds.rounded() && seconds < 1e15 ? String(Int(seconds)) : String(seconds))" }
}

/// The deaths of each IOVM, against a ``CrashLoopPolicy``.
public struct CrashLoopTracker: Sendable {
    /// The policy.
    public let policy: CrashLoopPolicy
    /// Deaths by IOVM, oldest first, only those still inside the window.
    public private(set) var deaths: [String: [Date]] = [:]

    /// Creates a tracker with no deaths.
    public init(policy: CrashLoopPolicy) { self.policy = policy }

    /// Records a death of `iovm` at `time`; returns the crash loop when this death completes one.
    public mutating func record(_ iovm: String, at time: Date) -> CrashLoop? {
        var times = (deaths[iovm] ?? []).filter { time.timeIntervalSince($0) < policy.seconds }
        times.append(time)
        deaths[iovm] = times
        guard times.count >= policy.deaths else { return nil }
        return CrashLoop(iovm: iovm, deaths: times, policy: policy)
    }
}

/// An IOVM that died too often: the ``Supervisor`` stops with this error.
public struct CrashLoop: Error, Sendable, Equatable, CustomStringConvertible {
    /// The IOVM.
    public var iovm: String
    /// When it died, oldest first.
    public var deaths: [Date]
    /// The policy it broke.
    public var policy: CrashLoopPolicy
    /// Whether it broke it by never coming up: `deaths` are the recoveries in a row whose new IOVM did not serve, or
    /// that libxl refused to make, however far apart.
    public var neverCameUp = false
    /// What went wrong in the last of them (the failed step and its reason), when ``neverCameUp``.
    public var lastFailure: String?
    /// Whether `deaths` are attempts libxl refused to make it in (its creation failed), in a row over at least the
    /// policy's window.
    public var refused = false

    /// The message, naming the IOVM, its deaths and what to do.
    public var description: String {
        let span = (deaths.last ?? .distantPast).timeIntervalSince(deaths.first ?? .distantPast)
        let when = deaths.map { $0.formatted(.iso8601) }.joined(separator: ", ")
        let last = lastFailure.map { "; the last: \($0)" } ?? ""
        if refused {
            return "crash loop: libxl refused to make IOVM \(iovm) again \(deaths.count) times in a row over \(Int(span.rounded())) s (at \(when)\(last)), "
                + "the limit being \(policy.deaths) over at least \(Int(policy.seconds)) s (--crash-loop \(policy)); iovm watch stops recovering it. "
                + "Find out why libxl refuses it (the last error, `xl dmesg`), then `iovm apply` and start iovm watch again."
        }
        let what =
            neverCameUp
            ? "crash loop: IOVM \(iovm) was made again \(deaths.count) times in a row and never came up (at \(when)\(last)), the limit being \(policy.deaths) (--crash-loop \(policy)); "
            : "crash loop: IOVM \(iovm) died \(deaths.count) times in \(Int(span.rounded())) s (at \(when)), the limit being \(policy.deaths) within \(Int(policy.seconds)) s (--crash-loop \(policy)); "
        return what + "iovm watch stops recovering it. Find out why it dies (`xl dmesg`, its console), then `iovm apply` and start iovm watch again."
    }
}

/// How long to wait before trying a failed recovery again: `initial`, doubling each time, at most `maximum`.
public struct Backoff: Sendable, Equatable {
    /// Seconds after the first failure.
    public var initial: Double
    /// The longest wait.
    public var maximum: Double

    /// 5 s, 10 s, 20 s, … at most 300 s.
    public static let standard = Backoff(initial: 5, maximum: 300)

    /// Creates a backoff.
    public init(initial: Double, maximum: Double) {
        self.initial = initial
        self.maximum = maximum
    }

    /// Seconds to wait after `failures` failures in a row (1 or more).
    public func delay(afterFailures failures: Int) -> Double {
        min(maximum, initial * pow(2, Double(max(0, min(failures - 1, 30)))))
    }
}

/// One recovery attempt of the ``Supervisor``: what was wrong, when it started, how long it took, how it ended.
public struct Recovery: Sendable, Equatable, Codable {
    /// Whether it worked.
    public enum Outcome: Sendable, Equatable, Codable {
        /// The host matches the plan again.
        case recovered
        /// The apply failed (and undid what it made); it is tried again after a backoff.
        case failed(String)
    }

    /// The IOVMs that died or shut down and were made again (empty when only vifs were broken, or only guests that
    /// rebooted were made again: those are in ``reasons``, and the recovery's time includes their boot).
    public var iovms: [String]
    /// What was wrong, one line each.
    public var reasons: [String]
    /// When it started.
    public var start: Date
    /// Seconds it took.
    public var seconds: Double
    /// How it ended.
    public var outcome: Outcome
    /// The steps the apply ran (when it worked).
    public var steps: [String]

    /// Creates a record.
    public init(iovms: [String], reasons: [String], start: Date, seconds: Double, outcome: Outcome, steps: [String] = []) {
        self.iovms = iovms
        self.reasons = reasons
        self.start = start
        self.seconds = seconds
        self.outcome = outcome
        self.steps = steps
    }
}

/// What the host looks like to the ``Supervisor``: which of the plan's IOVMs run, which are dead, which
/// guest vifs are broken. Pure: tests check it on observed hosts directly.
public struct SupervisedView: Sendable, Equatable {
    /// IOVMs of the plan that iovm created for its topology and that run: name → domid.
    public var running: [String: UInt32]
    /// IOVMs of the plan that iovm created and that shut down, crashed or are dying: name → (domid, reason).
    public var shutDown: [String: ShutDown]
    /// Broken vifs of the topology's guests, one line each (`guest1's vif 0 is backed by domain 5, which no longer exists`).
    public var brokenVifs: [String]
    /// Planned vifs of running guests of the topology that are not there.
    public var missingVifs: [MissingVif]
    /// The devids of the vifs each such guest has (domid → devids).
    public var vifsPresent: [UInt32: Set<Int>]

    /// A planned vif a guest does not have.
    public struct MissingVif: Sendable, Hashable {
        /// The guest's name.
        public var guest: String
        /// Its domid.
        public var domid: UInt32
        /// The vif's devid.
        public var devid: Int

        /// Why a recovery runs for it.
        public var reason: String { "\(guest)'s vif \(devid) is missing" }
    }
    /// Planned IOVM names held by a domain iovm did not create for this topology (never touched).
    public var foreign: [String]
    /// Guests of the plan that iovm created for its topology and that shut down (a `reboot`, `poweroff` or crash
    /// inside them), are dying or suspended: name → (domid, reason).
    public var shutDownGuests: [String: ShutDown]

    /// A dead IOVM still listed by libxl.
    public struct ShutDown: Sendable, Equatable {
        /// Its domid.
        public var domid: UInt32
        /// Why (`crash`, `poweroff`, `dying`, …).
        public var reason: String

        /// Creates one.
        public init(domid: UInt32, reason: String) {
            self.domid = domid
            self.reason = reason
        }
    }

    /// A view of IOVMs alone (``Supervisor``'s quick look): no broken vif, no foreign name, no guest.
    init(running: [String: UInt32], shutDown: [String: ShutDown]) {
        self.running = running
        self.shutDown = shutDown
        brokenVifs = []
        missingVifs = []
        vifsPresent = [:]
        foreign = []
        shutDownGuests = [:]
    }

    /// Looks at `host` for `plan`: only domains iovm created for the plan's topology count.
    public init(plan: Plan, host: ObservedHost) {
        running = [:]
        shutDown = [:]
        foreign = []
        shutDownGuests = [:]
        for iovm in plan.iovms {
            guard let domain = host.domain(iovm.name) else { continue }
            guard domain.isManaged(by: plan.topology) else {
                foreign.append(iovm.name)
                continue
            }
            if domain.tag?.incomplete == true { continue }  // an apply is making it (or stopped while it did)
            if let reason = domain.shutdownReason {
                shutDown[iovm.name] = ShutDown(domid: domain.domid, reason: reason)
            } else {
                running[iovm.name] = domain.domid
            }
        }
        let dead = Set(shutDown.values.map(\.domid))
        var broken: [String] = []
        var missing: [MissingVif] = []
        var present: [UInt32: Set<Int>] = [:]
        for guest in plan.guests {
            if let domain = host.domain(guest.name), domain.isManaged(by: plan.topology), domain.tag?.incomplete != true, let reason = domain.shutdownReason {
                shutDownGuests[guest.name] = ShutDown(domid: domain.domid, reason: reason)
            }
            guard let domain = host.domain(guest.name), domain.isManaged(by: plan.topology), domain.tag?.incomplete != true, domain.shutdownReason == nil else { continue }
            for vif in domain.vifs ?? [] {
                if let backend = vif.backendDomid, dead.contains(backend) {
                    broken.append("\(guest.name)'s vif \(vif.devid) is backed by domain \(backend), which shut down")
                } else if let problem = vif.problem(on: host), !vif.isConnecting(on: host) {
                    broken.append("\(guest.name)'s \(problem)")
                }
            }
            // A planned vif that is not there at all: the ``Supervisor`` counts it broken once it saw it on this domain
            // (a recovery removed it and failed to add it again), not while `xl restore` has yet to add it.
            if let vifs = domain.vifs {
                present[domain.domid] = Set(vifs.map(\.devid))
                for devid in guest.vifs.indices where !vifs.contains(where: { $0.devid == devid }) {
                    missing.append(MissingVif(guest: guest.name, domid: domain.domid, devid: devid))
                }
            }
        }
        brokenVifs = broken
        missingVifs = missing
        vifsPresent = present
    }
}

/// `iovm watch`: keeps a topology's IOVMs alive under running guests.
///
/// At every ``DomainEvent`` it glances at the host (``XenBackend/glance()``) and, unless an IOVM it saw running
/// died, observes it through the engine's backend. When an IOVM it saw running is gone, or shut down, or a guest's
/// vif lost its backend, it runs ``ApplyEngine/apply(_:libxlJSON:expectingApplied:guests:)``, which (under the host
/// lock) destroys a shut-down IOVM, makes it again with its NICs, waits for its `xl devd`, and re-attaches the
/// guests' vifs with the same MAC, bridge and devid: the guests keep running with their domids. A guest that
/// rebooted is made again by the same apply (a new domid); one that powered off or crashed is destroyed after it;
/// one that is gone is not made again. Only domains iovm created for the plan's topology are considered.
///
/// It does not spin: events that arrive during a recovery are read as one afterwards; a failed recovery
/// is tried again after a ``Backoff``; the same IOVM dying ``CrashLoopPolicy/deaths`` times within
/// ``CrashLoopPolicy/seconds`` stops ``run()`` with a ``CrashLoop``. Cancelling the task that runs it
/// ends it (a recovery in progress finishes first: it runs on its own thread).
public actor Supervisor {
    /// The plan it keeps: the one given, or the one `reload` gave once the host recorded that plan as applied.
    public private(set) var plan: Plan
    private var libxlJSON: [String: String]
    /// Reads the topology's file again: called when the host records another plan as applied for the topology.
    private let reload: (@Sendable () throws -> (plan: Plan, libxlJSON: [String: String]))?
    /// Whether the host has recorded a plan as applied for the topology: from then on a recovery needs it to be this
    /// watch's plan (an older iovm's apply records none, and then every recovery is made).
    private var sawApplied = false
    /// The recorded plan whose difference was last reported and its file last read for (nil: destroyed), so that
    /// each is done once.
    private var followed: String??
    /// When the file is read again for the followed plan it did not give (nil: not due). A read that failed (a file
    /// half-saved, a compiler not there) or a file edited since may give it later; each try doubles the wait, from
    /// ``rereadFirstSeconds`` to ``rereadMostSeconds``, and only the first is reported.
    private var rereadAt: Date?
    private var rereadSeconds = Supervisor.rereadFirstSeconds
    /// Why the last read of the file did not give the followed plan: a retry that finds the same is logged at debug.
    private var lastRereadFinding = ""
    static let rereadFirstSeconds: Double = 30
    static let rereadMostSeconds: Double = 600
    private let engine: ApplyEngine
    private let events: any DomainEvents
    private let clock: SupervisorClock
    private let logger: Logger
    private let backoff: Backoff
    private let onRecovery: @Sendable (Recovery) -> Void

    /// Every recovery attempt so far, oldest first.
    public private(set) var recoveries: [Recovery] = []
    /// Failed recovery attempts so far.
    public private(set) var failures = 0
    /// Events handled so far.
    public private(set) var eventsHandled = 0
    /// The IOVMs seen running, with their domid: one that is gone or has another domid next time died.
    private var lastSeen: [String: UInt32] = [:]
    /// IOVMs that died and are not running again yet.
    private var awaiting: Set<String> = []
    /// Dead domids already counted as deaths (a shut-down IOVM is seen at every look until destroyed).
    private var counted: Set<UInt32> = []
    /// Planned IOVM names already reported as held by a domain iovm did not create.
    private var reportedForeign: Set<String> = []
    private var tracker: CrashLoopTracker
    /// By IOVM, the recoveries since it last came up that did not bring it up (``countAttempt(of:refused:_:)``).
    /// Cleared when a recovery comes through, a look sees the IOVM run, or an attempt made it and undid it for another
    /// step's failure.
    private var attemptsInARow: [String: AttemptsInARow] = [:]
    /// The devids of the vifs each running guest of the topology had at the whole looks so far (domid → devids): a
    /// planned one missing now was removed (a re-attach that failed half-way), not yet added (`xl restore` at work).
    private var seenVifs: [UInt32: Set<Int>] = [:]
    /// The planned vifs missing at a look whose guest this watch never saw with them, each said once,
    /// and since when each has been missing at the looks in a row.
    private var reportedMissing: Set<SupervisedView.MissingVif> = []
    private var missingSince: [SupervisedView.MissingVif: Date] = [:]
    /// Seconds a planned vif never seen may stay missing before the watch says so: an `xl restore` adds a guest's vifs
    /// within seconds of its domain.
    static let missingVifGrace = 60.0
    /// The reboots of each guest, against the same policy: a guest that reboots too often is destroyed, not restarted.
    private var guestReboots: CrashLoopTracker
    /// Shut-down guests (domids) already counted or reported, each once; those in `abandoned` rebooted too often.
    private var seenGuestShutdowns: Set<UInt32> = []
    private var abandoned: Set<UInt32> = []
    /// The domains of the topology that ran at the last whole look: the quick look recovers only while one of them
    /// (other than the dead IOVMs) still runs.
    private var runningManaged: Set<UInt32> = []
    /// Guests that rebooted and are not made again yet: a failed recovery may have destroyed the old domain without
    /// making the new one, and the next look makes it again. Done once the guest runs, or on a new plan.
    private var restartPending: Set<String> = []
    /// Recovery attempts that failed since the last one that ended (recovered, nothing to do, superseded): the
    /// backoff's count, kept across looks (a look that cannot observe the host does not start it again at 5 s).
    private var failuresInARow = 0
    /// When the watch first set out to recover what the current attempts recover: a recovery's time counts from
    /// there, over failed attempts and waits for the host lock.
    private var recoveringSince: Date?
    /// IOVMs seen dying (domid → when first seen so): one dying longer than ``zombieSeconds`` is reported once.
    private var dyingSince: [UInt32: Date] = [:]
    /// How long an IOVM may be dying before the watch says it is stuck: `xl destroy` takes 3-8 s in the lab under TCG.
    static let zombieSeconds: Double = 60

    /// Creates a supervisor; `onRecovery` is called after every attempt (metrics).
    public init(
        plan: Plan, libxlJSON: [String: String], engine: ApplyEngine, events: any DomainEvents, crashLoop: CrashLoopPolicy = .standard,
        backoff: Backoff = .standard, clock: SupervisorClock = .system, logger: Logger,
        reload: (@Sendable () throws -> (plan: Plan, libxlJSON: [String: String]))? = nil, onRecovery: @escaping @Sendable (Recovery) -> Void = { _ in }
    ) {
        self.plan = plan
        self.libxlJSON = libxlJSON
        self.reload = reload
        self.engine = engine
        self.events = events
        self.tracker = CrashLoopTracker(policy: crashLoop)
        self.guestReboots = CrashLoopTracker(policy: crashLoop)
        self.backoff = backoff
        self.clock = clock
        self.logger = logger
        self.onRecovery = onRecovery
    }

    /// Looks at the host now, then at every event, until the events end or the task is cancelled.
    ///
    /// - Throws: ``CrashLoop`` when an IOVM dies too often; `CancellationError` when cancelled.
    public func run() async throws {
        logger.notice(
            "iovm watch: keeping \(plan.iovms.map(\.name).joined(separator: ", ")) of \(plan.topology) alive (plan \(plan.appliedFingerprint)); crash loop at \(tracker.policy.deaths) deaths within \(Int(tracker.policy.seconds)) s"
        )
        try await examine(because: "start")
        while let event = try await events.next() {
            try Task.checkCancellation()
            eventsHandled += 1
            try await examine(because: event.description)
        }
        logger.notice("iovm watch: the event source ended")
    }

    /// Says once, as an error, of each IOVM in `dying` (name → its domain) that it has been dying for
    /// ``zombieSeconds``: Xen keeps a domain whose memory another domain still maps (a "zombie"), and while it stays,
    /// the watch recovers nothing (making it again would race its teardown). An operator must see why.
    private func reportZombies(_ dying: [String: SupervisedView.ShutDown]) {
        let now = clock.now()
        for (name, domain) in dying.sorted(by: { $0.key < $1.key }) {
            guard let since = dyingSince[domain.domid] else {
                dyingSince[domain.domid] = now
                continue
            }
            let seconds = now.timeIntervalSince(since)
            guard seconds >= Self.zombieSeconds else { continue }
            dyingSince[domain.domid] = .distantFuture  // reported: never again for this domid
            logger.error(
                "iovm watch: IOVM \(name) (\(domain.domid)) has been dying for \(Int(seconds)) s: Xen cannot release a domain whose memory another domain still maps (`xl list` shows it; `xl debug-keys q` and `xl dmesg` tell which). Nothing of \(plan.topology) is recovered until it is gone"
            )
        }
    }

    /// Whether `step` is the apply's journal line for creating `name` (`created iovm0 (9)`).
    private static func isCreation(of name: String, _ step: String) -> Bool { step.hasPrefix("created \(name) (") }

    /// Ends what ``failuresInARow`` and ``recoveringSince`` count: the look found nothing left to recover, or a
    /// recovery was made, or superseded.
    private func recoveryEnded() { (failuresInARow, recoveringSince) = (0, nil) }

    /// Observes the host and recovers when needed, retrying failed recoveries after a backoff.
    ///
    /// An event is first checked against a glance at the host (``quickLook()``): when an IOVM seen running is
    /// gone or shut down, the recovery starts at once, its apply observing the host under the lock. Only otherwise is
    /// the whole host observed first: that look cost 0.3-0.8 s of issue 13's gap under the lab's traffic.
    func examine(because trigger: String) async throws {
        var quick = trigger != "start"
        while true {
            try Task.checkCancellation()
            if quick {
                quick = false
                if let view = await quickLook() {
                    try noteDeaths(view)
                    let (reasons, iovms) = deaths(view)
                    if !reasons.isEmpty {
                        // The IOVMs only: the guests that shut down are the whole look's.
                        switch try await recover(reasons: reasons, iovms: iovms, restarts: [], guests: [], trigger: trigger) {
                        case .done: return
                        case .lookAgain: continue
                        case .superseded:
                            restartPending.removeAll()
                            continue  // the whole look follows what superseded it
                        }
                    }
                }
            }
            let engine = self.engine
            let nics = plan.iovms.flatMap(\.pci)
            let host: ObservedHost
            do {
                host = try await Self.onThread { try engine.backend.observe(nics: nics) }
            } catch {
                // Not a recovery: the next event or re-check looks again.
                logger.warning("iovm watch: cannot observe the host (\(trigger)): \(error)")
                return
            }
            // Only the plan applied last is made again: a recovery with another would undo that apply. This comes
            // before any death is counted: IOVMs that an apply replaced or a destroy removed did not crash.
            let recorded = host.applied[plan.topology]
            if recorded != nil { sawApplied = true }
            if !sawApplied, trigger == "start" {
                logger.notice(
                    "iovm watch: no plan is recorded as applied for \(plan.topology) (an older iovm applied it): recoveries use this file's until an `iovm apply` records one")
            }
            if recorded == ObservedHost.destroyingMark || (sawApplied && recorded != plan.appliedFingerprint) {
                recoveryEnded()
                if await follow(recorded, host: host) { continue }  // the file gives it now: look again with it
                return
            }
            followed = nil
            let view = SupervisedView(plan: plan, host: host)
            runningManaged = Set(host.domains.filter { $0.isManaged(by: plan.topology) && $0.shutdownReason == nil }.map(\.domid))
            try noteDeaths(view)
            // A domain being destroyed (`xl destroy` in progress) is left to finish: its release fires
            // @releaseDomain again, and recreating it now would race libxl's own teardown.
            let dyingNow = view.shutDown.filter { $0.value.reason == "dying" }
            dyingSince = dyingSince.filter { domid, _ in dyingNow.values.contains { $0.domid == domid } }
            if let dying = dyingNow.min(by: { $0.key < $1.key }) {
                logger.info("iovm watch: \(trigger): IOVM \(dying.key) (\(dying.value.domid)) is being destroyed; looking again once it is gone")
                reportZombies(dyingNow)
                return
            }
            // Nothing of the topology runs any more: it was destroyed (`iovm destroy`), not crashed; making it
            // all again would undo what a human asked for. Unless the host still records this plan as applied (an
            // `iovm destroy` removes the record first): then the IOVMs died with nothing else of the topology running
            // (a topology of IOVMs only, or its guests all off), and they are made again.
            if runningManaged.isEmpty && !(recorded != nil && recorded == plan.appliedFingerprint && !awaiting.isEmpty) {
                if !awaiting.isEmpty {
                    logger.notice("iovm watch: nothing of \(self.plan.topology) runs any more (destroyed?): not making it again; `iovm apply` brings it back")
                }
                awaiting.removeAll()
                recoveryEnded()
                return
            }
            let (restarts, destroys) = guestLifecycle(view, host: host)
            var (reasons, iovms) = deaths(view)
            reasons += view.brokenVifs
            // A vif seen on the same domain before and gone since; what a domain has now is remembered for the next look.
            reasons += view.missingVifs.filter { seenVifs[$0.domid]?.contains($0.devid) == true }.map(\.reason)
            // One never seen is not added (an `xl restore` may be about to add it). Still missing a minute on (longer
            // than a restore takes to add it), it is said once, so that an operator whose watch started after the vif
            // went (or whose guest came back without it) knows to apply.
            let now = clock.now()
            missingSince = missingSince.filter { view.missingVifs.contains($0.key) }
            for missing in view.missingVifs where seenVifs[missing.domid]?.contains(missing.devid) != true {
                let since = missingSince[missing] ?? now
                missingSince[missing] = since
                guard now.timeIntervalSince(since) >= Self.missingVifGrace, reportedMissing.insert(missing).inserted else { continue }
                logger.warning(
                    "iovm watch: \(missing.guest) (\(missing.domid)) has no vif \(missing.devid), and this watch never saw it there: not adding it (an `xl restore` may be about to); `iovm apply` adds it"
                )
            }
            seenVifs = view.vifsPresent.merging(seenVifs.filter { view.vifsPresent[$0.key] != nil }) { now, before in now.union(before) }
            reasons += restarts.map { name, domid in
                domid.map { "guest \(name) (\($0)) rebooted (on_reboot=restart)" } ?? "guest \(name) rebooted and is not made again yet (on_reboot=restart)"
            }
            guard !reasons.isEmpty else {
                recoveryEnded()
                await destroyGuests(destroys)
                logger.debug("iovm watch: \(trigger): nothing to recover")
                return
            }
            // The recovery makes the IOVMs and the guests that rebooted, not the guests to be destroyed (after it).
            switch try await recover(reasons: reasons, iovms: iovms, restarts: restarts, guests: Set(restarts.map(\.name)), trigger: trigger) {
            case .lookAgain: continue
            case .done: await destroyGuests(destroys)
            case .superseded: restartPending.removeAll()
            }
            return
        }
    }

    /// The IOVMs to make again after ``noteDeaths(_:)`` read `view`: one line each for why, and their names.
    private func deaths(_ view: SupervisedView) -> (reasons: [String], iovms: [String]) {
        let reasons =
            awaiting.sorted().map { "IOVM \($0) died" }
            + view.shutDown.sorted { $0.key < $1.key }.filter { !awaiting.contains($0.key) }.map {
                "IOVM \($0.key) (\($0.value.domid)) shut down (\($0.value.reason))"
            }
        return (reasons, Array(awaiting.union(view.shutDown.keys)).sorted())
    }

    /// What ``recover(reasons:iovms:restarts:guests:trigger:)`` asks of ``examine(because:)``.
    private enum RecoveryEnd {
        /// Recovered, or nothing was to change: wait for the next event.
        case done
        /// Failed; the backoff was waited: look again.
        case lookAgain
        /// Applied anew or destroyed while the recovery waited for the lock.
        case superseded
    }

    /// The IOVMs seen running (``lastSeen``) that a glance at the host (``XenBackend/glance()``: one listing of Xen's
    /// domains) shows gone or shut down, as a view to recover from at once. Nil, so that the whole host is observed:
    /// - before a plan is recorded as applied, or before any IOVM was seen running;
    /// - when none is gone or shut down, or one is dying (left to finish);
    /// - when the host no longer records this watch's plan as applied (a destroy or another apply: no death to count);
    /// - when no other domain of the topology seen running at the last whole look still runs (destroyed? that look
    ///   tells);
    /// - when the glance fails.
    private func quickLook() async -> SupervisedView? {
        guard sawApplied, !lastSeen.isEmpty else { return nil }
        let engine = self.engine
        guard let glance = try? await Self.onThread({ try engine.backend.glance() }), glance.applied[plan.topology] == plan.appliedFingerprint else {
            return nil
        }
        let byDomid = Dictionary(glance.domains.map { ($0.domid, $0) }, uniquingKeysWith: { a, _ in a })
        var view = SupervisedView(running: [:], shutDown: [:])
        var gone = false
        for (name, domid) in lastSeen {
            guard let life = byDomid[domid] else {
                gone = true
                continue
            }
            if let reason = life.shutdownReason {
                view.shutDown[name] = SupervisedView.ShutDown(domid: domid, reason: reason)
            } else {
                view.running[name] = domid
            }
        }
        guard gone || !view.shutDown.isEmpty, !view.shutDown.values.contains(where: { $0.reason == "dying" }) else { return nil }
        let dead = Set(lastSeen.values).subtracting(view.running.values)
        let othersRun = runningManaged.subtracting(dead).contains { byDomid[$0] != nil && byDomid[$0]?.shutdownReason == nil }
        return othersRun ? view : nil
    }

    /// Runs the recovery's apply for `reasons`, records it, and logs how it ended. The apply may create or replace only
    /// the guests of `guests` (``Reconciler/reconcile(_:with:guests:)``).
    ///
    /// A guest that goes away during its vif's re-attach is skipped, not a failure (``ApplyEngine/guestsMayVanish``):
    /// the IOVMs made for the other guests stay. An IOVM this attempt made and then undid (it did not come up: a
    /// kernel that panics at boot, an `xl devd` that never serves) counts as a death of it, as does one that died
    /// while the attempt waited for the host lock: an IOVM that cannot be brought back ends in a ``CrashLoop``.
    private func recover(
        reasons: [String], iovms: [String], restarts: [(name: String, domid: UInt32?)], guests: Set<String>, trigger: String
    ) async throws -> RecoveryEnd {
        let engine = {
            var engine = self.engine
            engine.guestsMayVanish = true
            return engine
        }()
        let start = recoveringSince ?? clock.now()
        recoveringSince = start
        logger.notice("iovm watch: \(trigger): recovering: \(reasons.joined(separator: "; "))")
        let plan = self.plan
        let json = libxlJSON
        let expected: AppliedExpectation = sawApplied ? .plan(plan.appliedFingerprint) : .unrecorded
        do {
            let report = try await Self.onThread { try engine.apply(plan, libxlJSON: json, expectingApplied: expected, guests: guests) }
            let seconds = clock.now().timeIntervalSince(start)
            recoveryEnded()
            if report.nothingToDo {
                // What looked broken was not (or someone else fixed it meanwhile): no recovery to count.
                logger.warning("iovm watch: apply found nothing to change; the next event or re-check looks again")
                awaiting.removeAll()
                restartPending.subtract(guests)
                return .done
            }
            for step in report.done { logger.notice("iovm watch: done: \(step)") }
            // The IOVMs this apply made, also those that died before watch first saw them.
            let made = plan.iovms.map(\.name).filter { name in report.done.contains { Self.isCreation(of: name, $0) } }
            // An IOVM seen running that this apply made again, though this recovery was not for it, died meanwhile.
            for name in made where !iovms.contains(name) {
                guard let seen = lastSeen[name], !counted.contains(seen) else { continue }
                counted.insert(seen)
                try countDeath(of: name, "IOVM \(name) (\(seen)) died while the recovery waited; made again as \(report.domids[name].map(String.init) ?? "?")")
            }
            for iovm in plan.iovms { if let domid = report.domids[iovm.name] { lastSeen[iovm.name] = domid } }
            awaiting.removeAll()
            attemptsInARow.removeAll()
            // Only the restarts this apply could make are done (a quick look's makes none).
            restartPending.subtract(guests)
            // The apply recorded its plan as applied (a host an older iovm applied had none).
            sawApplied = true
            let iovms = Array(Set(iovms).union(made)).sorted()
            let recovery = Recovery(iovms: iovms, reasons: reasons, start: start, seconds: seconds, outcome: .recovered, steps: report.done)
            recoveries.append(recovery)
            onRecovery(recovery)
            var what = iovms.isEmpty ? [] : [iovms.joined(separator: ", ")]
            if !restarts.isEmpty { what.append("restarted \(restarts.map(\.name).joined(separator: ", "))") }
            logger.notice(
                "iovm watch: recovered \(what.isEmpty ? "the guests' vifs" : what.joined(separator: "; ")) in \(String(cFormat: "%.1f", seconds)) s; \(restarts.isEmpty ? "guests" : "the other guests") kept their domids"
            )
            return .done
        } catch ApplyError.superseded(_, let recorded) {
            // Applied anew or destroyed while the recovery waited for the lock: the next event or re-check follows that.
            recoveryEnded()
            let what = recorded == nil ? "destroyed" : recorded == ObservedHost.destroyingMark ? "being destroyed" : "applied anew"
            logger.notice("iovm watch: not recovering: \(plan.topology) was \(what) while the recovery waited for the host lock")
            return .superseded
        } catch {
            failures += 1
            failuresInARow += 1
            let recovery = Recovery(iovms: iovms, reasons: reasons, start: start, seconds: clock.now().timeIntervalSince(start), outcome: .failed("\(error)"))
            recoveries.append(recovery)
            onRecovery(recovery)
            let delay = backoff.delay(afterFailures: failuresInARow)
            let reason = "\(error)".split(separator: "\n").map { $0.trimmingWhitespace() }.joined(separator: "; ")
            logger.error("iovm watch: recovery failed (\(failuresInARow) in a row): \(reason); trying again in \(Int(delay)) s")
            // The IOVMs it made and undid did not come up: each is a death (a crash loop, not a retry for ever).
            // Only its own step counts (its wait for vif backends or `xl devd`), and only once it is destroyed (undone):
            // a guest's wait that failed says nothing of the IOVM, and one whose undo failed is still there to be seen.
            // An IOVM libxl refused to make (its own creation failed, not "not created" because another did) died
            // not, but did not come up either: K such attempts in a row, over at least the window (a refusal can pass:
            // memory the dead IOVM held, a NIC still resetting), stop too, rather than retry every 300 s for ever.
            // An IOVM this attempt made and undid for another step's failure (a re-attach) was made: its counts end.
            if case ApplyError.stepFailed(let step, let why, let undone, _) = error {
                for name in plan.iovms.map(\.name) {
                    let ownStep = step == "create \(name)" || step.hasPrefix("wait for driver domain \(name) (")
                    if !ownStep, undone.contains(where: { Self.isCreation(of: name, $0) }) { attemptsInARow[name] = nil }
                }
                for name in plan.iovms.map(\.name) where step.hasPrefix("wait for driver domain \(name) (") {
                    guard let made = undone.first(where: { Self.isCreation(of: name, $0) }) else { continue }
                    if let domid = UInt32(made.dropFirst("created \(name) (".count).prefix { $0.isNumber }) { counted.insert(domid) }
                    try countDeath(of: name, "IOVM \(name), made again by the recovery, did not come up (\(step) failed)")
                    try countAttempt(of: name, refused: false, "\(step): \(why)")
                }
                for name in plan.iovms.map(\.name) where step == "create \(name)" && !why.hasPrefix("not created: ") {
                    try countAttempt(of: name, refused: true, "\(step): \(why)")
                }
            }
            try await clock.sleep(delay)
            return .lookAgain
        }
    }

    /// Whether the plan the host records as applied (`recorded`; nil: the topology was destroyed; ``ObservedHost/destroyingMark``:
    /// a destroy began) is now this watch's. The file is read again (``reload``) once per recorded plan, and its plan
    /// kept when it is the recorded one; otherwise the watch says once why it recovers nothing.
    private func follow(_ recorded: String?, host: ObservedHost) async -> Bool {
        let topology = plan.topology
        guard let recorded, recorded != ObservedHost.destroyingMark else {
            // Destroyed, or being destroyed: nothing is made again, and what went is not a death.
            lastSeen.removeAll()
            awaiting.removeAll()
            restartPending.removeAll()
            if followed != .some(recorded) {
                followed = .some(recorded)
                logger.notice(
                    "iovm watch: \(topology) \(recorded == nil ? "was destroyed (its applied plan is no longer recorded)" : "is being destroyed (or a destroy of it stopped)"): not making it again; `iovm apply` brings it back"
                )
            }
            return false
        }
        let again = followed == .some(recorded)
        if again {
            guard reload != nil, let at = rereadAt, clock.now() >= at else { return false }
        } else {
            followed = .some(recorded)
            rereadSeconds = Self.rereadFirstSeconds
        }
        rereadAt = nil
        var why = "its file was not read again"
        if let reload {
            do {
                let (fresh, json) = try await Self.onThread(reload)
                if fresh.topology == topology, fresh.appliedFingerprint == recorded {
                    // The IOVMs the apply made again are not deaths: only the ones that are gone stay looked for.
                    let iovms = Set(fresh.iovms.map(\.name))
                    let running = Dictionary(
                        host.domains.filter { $0.isManaged(by: topology) && $0.shutdownReason == nil }.map { ($0.name, $0.domid) }, uniquingKeysWith: { a, _ in a })
                    lastSeen = lastSeen.filter { iovms.contains($0.key) && (running[$0.key] == nil || running[$0.key] == $0.value) }
                    awaiting = awaiting.filter { iovms.contains($0) }
                    plan = fresh
                    libxlJSON = json
                    followed = nil
                    rereadSeconds = Self.rereadFirstSeconds
                    restartPending.removeAll()
                    logger.notice(
                        "iovm watch: \(topology) was applied anew; keeping the plan its file gives now (plan \(recorded)): \(fresh.iovms.map(\.name).joined(separator: ", "))")
                    return true
                }
                why = fresh.topology == topology ? "its file now gives plan \(fresh.appliedFingerprint)" : "its file now declares topology \(fresh.topology)"
            } catch {
                why = "its file cannot be read again: \("\(error)".split(separator: "\n").first ?? "")"
            }
            rereadAt = clock.now().addingTimeInterval(rereadSeconds)
            rereadSeconds = min(rereadSeconds * 2, Self.rereadMostSeconds)
        }
        if again {
            // The same finding again is debug; a new one (the file now reads, but gives another plan) is news.
            let level: Logger.Level = why == lastRereadFinding ? .debug : .notice
            lastRereadFinding = why
            logger.log(
                level: level,
                "iovm watch: read the file of \(topology) again for plan \(recorded): \(why); next try in \(Int(rereadAt.map { $0.timeIntervalSince(clock.now()) } ?? 0)) s")
            return false
        }
        lastRereadFinding = why
        logger.error(
            "iovm watch: \(topology) was applied with plan \(recorded), not this watch's \(plan.appliedFingerprint), and \(why): not recovering, which would undo that apply; `iovm status FILE` shows which plan a file gives; the watch reads its file again after \(Int(Self.rereadFirstSeconds)) s, then less often, or restart it with the file that was applied"
        )
        return false
    }

    /// A guest of the topology that shut down and is to be destroyed (``destroyGuests(_:)``): why, and which rule says so.
    struct GuestDestroy: Sendable {
        var name: String
        var domid: UInt32
        var reason: String
        var rule: String
    }

    /// Sorts the topology's guests that shut down by what the lifecycle iovm renders for them says, since nothing else
    /// acts on it for a domain libxl created (xl's own daemon would):
    /// - `on_reboot` = `restart`: a guest that rebooted (or asked for a `soft_reset`) is returned, to be made again by
    ///   the recovery's apply (a new domid), as are those whose restart a failed recovery left undone (gone from
    ///   `host`: no domid). A guest that reboots as often as ``CrashLoopPolicy`` allows an IOVM to die is destroyed
    ///   instead;
    /// - `on_poweroff` and `on_crash` = `destroy`: a guest that powered off or crashed is to be destroyed, after the
    ///   recovery if there is one (``destroyGuests(_:)``); `iovm apply` makes it again;
    /// - one being destroyed (`dying`) or suspended (an `xl save` or a migration holds it) is left to libxl.
    private func guestLifecycle(_ view: SupervisedView, host: ObservedHost) -> (restarts: [(name: String, domid: UInt32?)], destroys: [GuestDestroy]) {
        var restarts: [(name: String, domid: UInt32?)] = []
        var destroys: [GuestDestroy] = []
        // A pending restart made meanwhile (by an apply, or the guest runs again) is done.
        restartPending = restartPending.filter { name in host.domain(name).map { $0.shutdownReason != nil } ?? true }
        for (name, dead) in view.shutDownGuests.sorted(by: { $0.key < $1.key }) {
            let first = seenGuestShutdowns.insert(dead.domid).inserted
            if Reconciler.heldShutDownReasons.contains(dead.reason) {
                if first {
                    let what =
                        switch dead.reason {
                        case "dying": "being destroyed"
                        case "suspend": "suspended (an xl save or a migration holds it)"
                        default: "being shut down"
                        }
                    logger.info("iovm watch: guest \(name) (\(dead.domid)) is \(what): left to libxl")
                }
                continue
            }
            let restart = dead.reason == "reboot" || dead.reason == "soft_reset"
            if restart && first {
                logger.notice("iovm watch: guest \(name) (\(dead.domid)) rebooted")
                if let loop = guestReboots.record(name, at: clock.now()) {
                    abandoned.insert(dead.domid)
                    logger.error(
                        "iovm watch: guest \(name) rebooted \(loop.deaths.count) times within \(Int(loop.policy.seconds)) s (--crash-loop \(loop.policy)): destroying it instead of restarting it; `iovm apply` makes it again"
                    )
                }
            }
            if restart && !abandoned.contains(dead.domid) {
                restarts.append((name, dead.domid))
                restartPending.insert(name)
                continue
            }
            restartPending.remove(name)
            let rule =
                switch dead.reason {
                case "reboot", "soft_reset": "too many reboots"
                case "poweroff", "crash", "watchdog": "on_\(dead.reason)=destroy"
                default: "it serves nothing"
                }
            destroys.append(GuestDestroy(name: name, domid: dead.domid, reason: dead.reason, rule: rule))
        }
        for name in restartPending.sorted() where host.domain(name) == nil { restarts.append((name, nil)) }
        return (restarts, destroys)
    }

    /// Destroys each of `destroys` under the host lock (``ApplyEngine/destroyShutDownGuest(_:name:domid:expectingApplied:)``
    /// checks it again there); a failure is logged, and the next look tries again.
    private func destroyGuests(_ destroys: [GuestDestroy]) async {
        let engine = self.engine
        let plan = self.plan
        let expected: AppliedExpectation = sawApplied ? .plan(plan.appliedFingerprint) : .unrecorded
        for guest in destroys {
            do {
                if try await Self.onThread({ try engine.destroyShutDownGuest(plan, name: guest.name, domid: guest.domid, expectingApplied: expected) }) {
                    logger.notice(
                        "iovm watch: guest \(guest.name) (\(guest.domid)) shut down (\(guest.reason)): destroyed it (\(guest.rule)); `iovm apply` makes it again")
                }
            } catch {
                logger.warning(
                    "iovm watch: guest \(guest.name) (\(guest.domid)) shut down (\(guest.reason)), and destroying it failed (the next look tries again): \(error)")
            }
        }
    }

    /// Records the deaths `view` shows against what was seen before, and stops on a crash loop.
    private func noteDeaths(_ view: SupervisedView) throws {
        for name in view.foreign where !reportedForeign.contains(name) {
            reportedForeign.insert(name)
            logger.warning("iovm watch: a domain named \(name) runs that iovm did not create for \(plan.topology); it is never touched")
        }
        let now = clock.now()
        for iovm in plan.iovms.map(\.name) {
            var died: String?
            if let domid = view.running[iovm] {
                if let seen = lastSeen[iovm], seen != domid { died = "IOVM \(iovm) (\(seen)) died; it runs again as \(domid), made by someone else" }
                lastSeen[iovm] = domid
                awaiting.remove(iovm)
                // It came up (made by an `iovm apply`, say): the attempts that saw it not come up are no longer in a row.
                attemptsInARow[iovm] = nil
            } else if let dead = view.shutDown[iovm] {
                if !counted.contains(dead.domid) {
                    counted.insert(dead.domid)
                    died = "IOVM \(iovm) (\(dead.domid)) shut down: \(dead.reason)"
                }
                lastSeen[iovm] = nil
                awaiting.insert(iovm)
            } else if let seen = lastSeen[iovm] {
                if !counted.contains(seen) {
                    counted.insert(seen)
                    died = "IOVM \(iovm) (\(seen)) is gone"
                }
                lastSeen[iovm] = nil
                awaiting.insert(iovm)
            }
            guard let died else { continue }
            try countDeath(of: iovm, died, at: now)
        }
    }

    /// Logs `why` and counts a death of `iovm`; stops on a crash loop.
    private func countDeath(of iovm: String, _ why: String, at now: Date? = nil) throws {
        logger.warning("iovm watch: \(why)")
        if let loop = tracker.record(iovm, at: now ?? clock.now()) { throw stopping(loop) }
    }

    /// The recoveries in a row that did not bring one IOVM up, by how: made and undone because it did not serve, or
    /// refused by libxl (memory not yet given back, a NIC still resetting, or for good).
    struct AttemptsInARow {
        var notComingUp: [Date] = []
        var refused: [Date] = []
    }

    /// Counts a recovery in a row that did not bring `iovm` up (`failure`: its step and reason). The policy's deaths
    /// in a row of those that made it are a crash loop however far apart (each attempt can wait two timeouts); of
    /// those libxl refused, once they span at least the policy's window (a refusal can pass).
    private func countAttempt(of iovm: String, refused: Bool, _ failure: String) throws {
        let now = clock.now()
        var attempts = attemptsInARow[iovm, default: AttemptsInARow()]
        if refused { attempts.refused.append(now) } else { attempts.notComingUp.append(now) }
        attemptsInARow[iovm] = attempts
        let times = refused ? attempts.refused : attempts.notComingUp
        guard times.count >= tracker.policy.deaths, let first = times.first, !refused || now.timeIntervalSince(first) >= tracker.policy.seconds else {
            return
        }
        throw stopping(CrashLoop(iovm: iovm, deaths: times, policy: tracker.policy, neverCameUp: true, lastFailure: failure, refused: refused))
    }

    /// `loop`, logged as the critical error that stops the watch.
    private func stopping(_ loop: CrashLoop) -> CrashLoop {
        logger.critical("iovm watch: \(loop)")
        return loop
    }

    /// Runs blocking work (libxl calls, waits of minutes) on a thread of its own, off the cooperative pool.
    static func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            PThread { continuation.resume(with: Result { try body() }) }.start()
        }
    }
}
