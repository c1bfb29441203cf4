import FoundationEssentials
public import IOVMCore

/// One host's part in an apply that spans several.
public struct HostTarget: Sendable {
    /// The host's name in the topology.
    public var host: String
    /// Its share of the topology.
    public var plan: Plan
    /// An engine over its backend and its lock.
    public var engine: ApplyEngine
    /// Its domains' configs, in its backend's format.
    public var configs: [String: String]

    /// Creates a target.
    public init(host: String, plan: Plan, engine: ApplyEngine, configs: [String: String]) {
        self.host = host
        self.plan = plan
        self.engine = engine
        self.configs = configs
    }
}

/// Why an apply over several hosts failed, and what was rolled back where.
public struct MultiHostApplyError: Error, Sendable, CustomStringConvertible {
    /// The host whose apply failed first (in declaration order), and its error.
    public var host: String
    /// Its error (a step and what went wrong, or conflicts).
    public var error: String
    /// Every other host that failed too, with its error.
    public var others: [(host: String, error: String)]
    /// Per host: what the rollback undid there, or why it could not (the failed host too: after its own rollback,
    /// whatever it left).
    public var rolledBack: [(host: String, steps: [String], failures: [String])]
    /// The hosts where the rollback did not finish (a host that died cannot be reached to undo anything).
    public var notUndone: [String] { rolledBack.filter { !$0.failures.isEmpty }.map(\.host) }

    /// Human-readable text.
    public var description: String {
        var lines = ["error: on host \(host): " + error.replacing("\n", with: "\n  ")]
        for other in others { lines.append("error: on host \(other.host): " + other.error.replacing("\n", with: "\n  ")) }
        for entry in rolledBack {
            lines += entry.steps.map { "  rolled back on \(entry.host): \($0)" }
            lines += entry.failures.map { "  ROLLBACK FAILED on \(entry.host): \($0)" }
        }
        let unclean = notUndone
        let clean = rolledBack.map(\.host).filter { !unclean.contains($0) }
        if rolledBack.isEmpty {
            // Refused before anything was touched: the error says so.
        } else if unclean.isEmpty {
            lines.append("This apply's domains, NICs and cpupools are undone on every host (live changes to domains that were already there stay).")
        } else {
            let rest = clean.isEmpty ? "" : "; undone on \(clean.joined(separator: ", "))"
            lines.append("Not undone everywhere: \(unclean.joined(separator: ", ")) may keep what this apply made there (see above)\(rest).")
        }
        return lines.joined(separator: "\n")
    }
}

/// Applies a topology's shares to their hosts at once, each under its own host lock; if any host fails, what this
/// apply made on every other host is undone. No cluster manager: each host is reached as `iovm apply --connect` would.
public enum MultiHostApply {
    /// Checks every host first (conflicts refuse the whole apply before anything is touched), then applies all at
    /// once. Returns each host's report, by host name.
    public static func apply(_ targets: [HostTarget]) throws -> [String: ApplyReport] {
        // Nothing is touched anywhere while any host conflicts or cannot be observed. Every host is observed at once,
        // once: what it holds is both the preview's and the rollback's starting point.
        var failures: [(String, String)] = []
        var before: [String: ObservedHost] = [:]
        let observed = runConcurrently(targets) { target in
            try target.engine.backend.prepare(target.plan)  // what a backend refuses outright (a missing kernel, a cpupool on libvirt)
            return try target.engine.observe(target.plan)
        }
        var findings: [Diagnostic] = []
        var flagged: Set<String> = []
        for (target, result) in zip(targets, observed) {
            switch result {
            case .success(let host):
                // What the host refuses outright is bad input (exit 65), named with its host.
                let found = HostValidation(plan: target.plan, host: host).diagnostics
                findings += found.map { Diagnostic($0.severity, "on host \(target.host): \($0.message)", at: $0.location) }
                if !found.isEmpty { flagged.insert(target.host) }
                let conflicts = Reconciler.reconcile(target.plan, with: host).conflicts
                if !conflicts.isEmpty { failures.append((target.host, ApplyError.conflicts(conflicts).description)) }
                before[target.host] = host
            case .failure(let error):
                failures.append((target.host, "\(error)"))
            }
        }
        if !findings.isEmpty {
            // The bad input first; another host's trouble is told beside it (a flagged host's own conflicts repeat it).
            let others = failures.filter { !flagged.contains($0.0) }
            throw TopologyError.invalid(findings + others.map { Diagnostic(.error, "on host \($0.0): \($0.1)", at: nil) })
        }
        if let first = failures.first {
            throw MultiHostApplyError(
                host: first.0, error: first.1 + "\nnothing was touched on any host", others: failures.dropFirst().map { ($0.0, $0.1) }, rolledBack: [])
        }

        let results = runConcurrently(targets) { target in try target.engine.apply(target.plan, libxlJSON: target.configs) }
        let failed = targets.indices.compactMap { index -> (String, String)? in
            guard case .failure(let error) = results[index] else { return nil }
            return (targets[index].host, "\(error)")
        }
        guard let first = failed.first else {
            var reports: [String: ApplyReport] = [:]
            for (index, target) in targets.enumerated() { if case .success(let report) = results[index] { reports[target.host] = report } }
            return reports
        }
        // Every host, the failed ones too: a failed host's own rollback undoes what its journal recorded, this undoes
        // whatever is left (a domain whose cleanup failed before it was journaled) or says the host cannot be reached.
        var rolledBack: [(host: String, steps: [String], failures: [String])] = []
        for target in targets {
            guard let observed = before[target.host] else { continue }
            let undo = rollback(target, before: observed)
            rolledBack.append((target.host, undo.steps, undo.failures))
        }
        throw MultiHostApplyError(host: first.0, error: first.1, others: failed.dropFirst().map { ($0.0, $0.1) }, rolledBack: rolledBack)
    }

    /// Undoes on a host what an apply made there since `before`: the topology's domains that were not there
    /// (guests first), its cpupools that were not there, then the NICs iovm made assignable that were not, and the marks
    /// it rewrote (``Change/claimNIC(_:markedFor:held:)``). Live changes to domains that were there stay (a re-apply of the
    /// old topology puts them back).
    static func rollback(_ target: HostTarget, before: ObservedHost) -> (steps: [String], failures: [String]) {
        var steps: [String] = []
        var failures: [String] = []
        do {
            let hold = try target.engine.lock.acquire(timeout: 60)
            defer { hold.release() }
            let now = try target.engine.backend.observe(nics: target.plan.hostNICs)
            let existed = Set(before.domains.map(\.uuid))
            let made = now.domains.filter { $0.isManaged(by: target.plan.topology) && !existed.contains($0.uuid) }
            for domain in made.sorted(by: { ($0.tag?.role == .guest ? 0 : 1, $0.name) < ($1.tag?.role == .guest ? 0 : 1, $1.name) }) {
                do {
                    try target.engine.backend.destroyDomain(domid: domain.domid)
                    steps.append("destroy \(domain.name)")
                } catch { failures.append("destroy \(domain.name): \(error)") }
            }
            let poolsBefore = Set(before.pools.map(\.name))
            for pool in now.pools where pool.managedBy == target.plan.topology && !poolsBefore.contains(pool.name) {
                do {
                    try target.engine.backend.destroyPool(named: pool.name)
                    steps.append("destroy cpupool \(pool.name)")
                } catch { failures.append("destroy cpupool \(pool.name): \(error)") }
            }
            let assignableBefore = Set(before.nics.filter(\.assignable).map(\.pci))
            // Only this topology's (or an older iovm's, which named none): another topology's apply may have marked one since.
            for nic in now.nics
            where nic.assignable && nic.madeAssignableByIOVM && !assignableBefore.contains(nic.pci)
                && (nic.madeAssignableFor == nil || nic.madeAssignableFor == target.plan.topology)
            {
                do {
                    try target.engine.backend.releaseNIC(nic.pci)
                    steps.append("give NIC \(nic.pci) back to dom0")
                } catch { failures.append("give NIC \(nic.pci) back: \(error)") }
            }
            // A NIC this apply recorded as its topology's, that another topology had made assignable: its mark again.
            let marksBefore = Dictionary(before.nics.filter { $0.assignable && $0.madeAssignableByIOVM }.map { ($0.pci, $0.madeAssignableFor) }, uniquingKeysWith: { a, _ in a })
            // Not one a domain that was there before holds (the plan's IOVM had it already: it stays this topology's).
            let heldBefore = Set(now.domains.filter { existed.contains($0.uuid) }.flatMap(\.pci))
            for nic in now.nics where nic.assignable && nic.madeAssignableFor == target.plan.topology && !heldBefore.contains(nic.pci) {
                guard let owner = marksBefore[nic.pci], owner != target.plan.topology else { continue }
                do {
                    try target.engine.backend.markNIC(nic.pci, for: owner)
                    steps.append("record NIC \(nic.pci) as \(owner.map { "topology \($0)'s" } ?? "an older iovm's") again")
                } catch { failures.append("record NIC \(nic.pci) as before: \(error)") }
            }
            // The plan recorded as applied, as before: this host's apply may have recorded its own whole.
            let topology = target.plan.topology
            if now.applied[topology] != before.applied[topology] {
                do {
                    try target.engine.backend.recordApplied(topology: topology, fingerprint: before.applied[topology])
                    steps.append(before.applied[topology] == nil ? "remove the record of this apply's plan" : "record the plan applied before again")
                } catch { failures.append("record the plan applied before: \(error)") }
            }
        } catch {
            failures.append("\(error)")
        }
        return (steps, failures)
    }

    /// Runs `body` for every target on a thread of its own; the results in target order.
    static func runConcurrently<T: Sendable>(_ targets: [HostTarget], _ body: @escaping @Sendable (HostTarget) throws -> T) -> [Result<T, any Error>] {
        onThreads(targets, name: "iovm-apply-host", body)
    }
}
