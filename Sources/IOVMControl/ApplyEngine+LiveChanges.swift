public import CPUSets
import FoundationEssentials
import IOVMCore

/// A domain iovm manages, as the live verbs need it.
public struct ManagedDomain: Sendable, Equatable {
    /// Domain id.
    public var domid: UInt32
    /// Name.
    public var name: String
    /// vCPUs online.
    public var vcpus: Int
    /// Credit cap now, when the scheduler has one.
    public var cap: Int?

    /// Creates one.
    public init(domid: UInt32, name: String, vcpus: Int, cap: Int?) {
        self.domid = domid
        self.name = name
        self.vcpus = vcpus
        self.cap = cap
    }
}

/// What a live verb did.
public struct LiveChange: Sendable, CustomStringConvertible {
    /// The domain changed.
    public var domain: ManagedDomain
    /// What was changed, e.g. "pinned to cores 2-3".
    public var change: String
    /// Seconds the change itself took (lock and lookup not counted).
    public var seconds: Double

    /// `iovm0 (3): pinned to cores 2-3 in 4.1 ms`.
    public var description: String {
        "\(domain.name) (\(domain.domid)): \(change) in " + String(cFormat: "%.1f", seconds * 1000) + " ms"
    }
}

/// Why a live verb refused.
public enum LiveChangeError: Error, Sendable, CustomStringConvertible {
    /// No domain has that name or id.
    case noSuchDomain(String)
    /// One call names a domain twice (by name and id, or the same name again).
    case namedTwice(String)
    /// A change failed after others of the same call were made.
    case partlyDone([String], failed: String, why: String)
    /// The caller gave up (a control socket client that hung up) while the change waited for the host lock.
    case abandoned

    /// Human-readable text.
    public var description: String {
        switch self {
        case .noSuchDomain(let name): "no domain \(name)"
        case .namedTwice(let name): "\(name) is named twice: give each domain once"
        case .partlyDone(let done, let failed, let why): "\(failed): \(why) (already changed: \(done.joined(separator: "; ")))"
        case .abandoned: "the caller hung up while the change waited for the host lock; nothing was changed"
        }
    }
}

/// `iovm pin`, `unpin` and `weight`: like apply, under the host lock and through the backend, and
/// only on domains iovm created (the backend refuses any other).
extension ApplyEngine {
    /// Pins every vCPU of `nameOrID` to `cores` (nil: every core), live.
    public func pin(_ nameOrID: String, to cores: CPUSet?) throws -> LiveChange {
        try pin([(nameOrID, cores)])[0]
    }

    /// Pins every vCPU of each domain of `targets` to its cores (nil: every core), live, in one call
    /// under one hold of the lock. Every domain is looked up before any is changed: one unknown or
    /// foreign domain refuses them all.
    public func pin(_ targets: [(domain: String, cores: CPUSet?)]) throws -> [LiveChange] {
        try live(targets.map(\.domain), withCap: false) { index, domain in
            let cores = targets[index].cores
            try backend.setAffinity(domid: domain.domid, vcpus: domain.vcpus, hard: cores)
            return cores.map { "pinned to cores \($0)" } ?? "unpinned (every core)"
        }
    }

    /// Sets the credit weight of `nameOrID`, and its cap (nil keeps the current one), live.
    public func setWeight(_ nameOrID: String, weight: Int, cap: Int?) throws -> LiveChange {
        try setWeight([(nameOrID, weight)], cap: cap)[0]
    }

    /// Sets the credit weight of each domain of `targets`, and the cap of all (nil keeps each one's), live,
    /// in one call under one hold of the lock; every domain is looked up before any is changed.
    public func setWeight(_ targets: [(domain: String, weight: Int)], cap: Int?) throws -> [LiveChange] {
        try live(targets.map(\.domain), withCap: cap == nil) { index, domain in
            let weight = targets[index].weight
            let newCap = cap ?? domain.cap ?? 0
            try backend.setSchedule(domid: domain.domid, weight: weight, cap: newCap)
            return "weight \(weight), cap \(newCap)"
        }
    }

    /// Looks every domain of `names` up in one call (`withCap`: with its credit cap), then makes each `change`.
    private func live(_ names: [String], withCap: Bool, _ change: (Int, ManagedDomain) throws -> String) throws -> [LiveChange] {
        let hold = try lock.acquire(timeout: lockTimeout)
        defer { hold.release() }
        if let abandoned, abandoned() { throw LiveChangeError.abandoned }
        var domains: [ManagedDomain] = []
        let answers = try backend.managedDomains(names, withCap: withCap)
        precondition(answers.count == names.count, "managedDomains answered \(answers.count) of \(names.count) names")
        for (name, found) in zip(names, answers) {
            guard let domain = found else { throw LiveChangeError.noSuchDomain(name) }
            guard !domains.contains(where: { $0.domid == domain.domid }) else { throw LiveChangeError.namedTwice(name) }
            domains.append(domain)
        }
        var done: [LiveChange] = []
        for (index, domain) in domains.enumerated() {
            let start = Date()
            do {
                let what = try change(index, domain)
                done.append(LiveChange(domain: domain, change: what, seconds: Date().timeIntervalSince(start)))
            } catch {
                // The ones before stay changed (a live verb has nothing to lose; the next apply restores the
                // file's placement): the error says which they are.
                if done.isEmpty { throw error }
                throw LiveChangeError.partlyDone(done.map(\.description), failed: domain.name, why: "\(error)")
            }
        }
        return done
    }
}
