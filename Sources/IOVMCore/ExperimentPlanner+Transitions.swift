import CPUSets
import IOVMWireFormat

// What changes on the host between two cells: the planned domains of their combinations, compared.
extension CellTransition {
    /// How the host gets from `previous` (nil: nothing iovm made yet) to `next`, and what changes.
    ///
    /// A domain is recreated when what it was created with differs: memory, vCPUs, kernel, ramdisk, command
    /// line (an image IOVM's carries its NICs), disks, NICs or vifs; a guest also when an IOVM backing its vif
    /// is destroyed or recreated. Otherwise pinning, weights, caps, rtds reservations and cpupools are changed
    /// on the running domains (live). Cells of one combination differ only in the workload (same).
    public static func between(
        _ previous: (combination: ExperimentCombination, direction: TrafficDirection)?,
        _ next: (combination: ExperimentCombination, direction: TrafficDirection)
    ) -> CellTransition {
        let plan = next.combination.plan
        guard let previous else {
            return CellTransition(kind: .create, changes: [plan.domains.map(\.name).joined(separator: ", ")])
        }
        let direction = previous.direction == next.direction ? [] : ["direction \(previous.direction.title) -> \(next.direction.title)"]
        if previous.combination.index == next.combination.index {
            return CellTransition(kind: .same, changes: direction.isEmpty ? ["nothing changes"] : direction)
        }
        let before = previous.combination.plan
        let (recreate, remade) = recreation(from: before, to: plan, settings: (previous.combination.settings, next.combination.settings))
        // The domains kept through a recreation take the live changes too.
        let live = liveChanges(from: before, to: plan, skipping: remade)
        if !recreate.isEmpty { return CellTransition(kind: .recreate, changes: recreate + live + direction) }
        if !live.isEmpty { return CellTransition(kind: .live, changes: live + direction) }
        return CellTransition(kind: .same, changes: ["same domains"] + direction)
    }

    /// What makes domains be destroyed and created again (empty when nothing does), and the domains recreated.
    static func recreation(from before: Plan, to after: Plan, settings: (CellSettings, CellSettings)) -> (changes: [String], remade: Set<String>) {
        let names = Set(after.domains.map(\.name))
        let removed = before.domains.map(\.name).filter { !names.contains($0) }
        let added = after.domains.map(\.name).filter { before.domain($0) == nil }
        var remade = after.domains.filter { domain in before.domain(domain.name).map { identity($0) != identity(domain) } ?? false }.map(\.name)
        // A guest whose vif's backend goes away goes with it.
        let goneBackends = Set(removed + remade)
        for guest in after.guests where !remade.contains(guest.name) && before.domain(guest.name) != nil {
            if guest.vifs.contains(where: { $0.backend.map(goneBackends.contains) ?? false }) { remade.append(guest.name) }
        }
        guard !removed.isEmpty || !added.isEmpty || !remade.isEmpty else { return ([], []) }

        var changes: [String] = []
        let (old, new) = settings
        if old.configuration != new.configuration { changes.append("configuration \(old.configuration) -> \(new.configuration)") }
        if old.nics != new.nics { changes.append("NICs \(old.nics) -> \(new.nics)") }
        // Without IOVMs ("-") the configuration says it already.
        if old.image != new.image && old.image != "-" && new.image != "-" { changes.append("image \(old.image) -> \(new.image)") }
        for domain in after.domains {
            guard let earlier = before.domain(domain.name), earlier.memoryMiB != domain.memoryMiB else { continue }
            changes.append("\(domain.name) memory \(earlier.memoryMiB) -> \(domain.memoryMiB) MiB")
        }
        if !removed.isEmpty { changes.append("destroy \(removed.joined(separator: ", "))") }
        if !remade.isEmpty { changes.append("recreate \(after.domains.map(\.name).filter(remade.contains).joined(separator: ", "))") }
        if !added.isEmpty { changes.append("create \(added.joined(separator: ", "))") }
        return (changes, Set(remade))
    }

    /// A domain as it is created: everything but what changes on a running domain.
    static func identity(_ domain: DomainSpec) -> DomainSpec {
        var spec = domain
        spec.hardAffinity = nil
        spec.softAffinity = nil
        spec.cpupool = ""
        spec.weight = 0
        spec.cap = 0
        spec.rtds = nil
        spec.backs = []
        spec.source = nil
        spec.nics = spec.nics.map { nic in
            var nic = nic
            nic.source = nil
            return nic
        }
        return spec
    }

    /// What changes on the running domains (but those in `skipping`): pinning, cpupools, weights, caps, rtds reservations.
    static func liveChanges(from before: Plan, to after: Plan, skipping: Set<String> = []) -> [String] {
        var changes: [String] = []
        func cores(_ set: CPUSet?) -> String { set?.description ?? "any" }
        for pool in after.cpupools {
            if let earlier = before.cpupools.first(where: { $0.name == pool.name }) {
                if earlier != pool {
                    changes.append("cpupool \(pool.name) \(earlier.scheduler) cores \(earlier.cpus) -> \(pool.scheduler) cores \(pool.cpus)")
                }
            } else {
                changes.append("cpupool \(pool.name) created (\(pool.scheduler), cores \(pool.cpus))")
            }
        }
        for domain in after.domains where !skipping.contains(domain.name) {
            guard let earlier = before.domain(domain.name) else { continue }
            let name = domain.name
            if earlier.cpupool != domain.cpupool { changes.append("\(name) pool \(earlier.cpupool) -> \(domain.cpupool)") }
            if earlier.hardAffinity != domain.hardAffinity { changes.append("\(name) pin \(cores(earlier.hardAffinity)) -> \(cores(domain.hardAffinity))") }
            if earlier.softAffinity != domain.softAffinity {
                changes.append("\(name) soft affinity \(cores(earlier.softAffinity)) -> \(cores(domain.softAffinity))")
            }
            if earlier.weight != domain.weight { changes.append("\(name) weight \(earlier.weight) -> \(domain.weight)") }
            if earlier.cap != domain.cap {
                changes.append("\(name) cap \(earlier.cap == 0 ? "none" : "\(earlier.cap)%") -> \(domain.cap == 0 ? "none" : "\(domain.cap)%")")
            }
            if earlier.rtds != domain.rtds {
                changes.append("\(name) rtds \(earlier.rtds.map { "\($0)" } ?? "none") -> \(domain.rtds.map { "\($0)" } ?? "none")")
            }
        }
        for pool in before.cpupools where !after.cpupools.contains(where: { $0.name == pool.name }) {
            changes.append("cpupool \(pool.name) removed")
        }
        return changes
    }
}
