public import CPUSets
public import IOVMCore

/// One step of an apply. An apply runs them as ``Reconciler`` orders them: replacements, pools, NICs and bridges, moves
/// between pools and the removal of pools the plan dropped, creations, pins and scheduler parameters, re-attaches, waits.
public enum Change: Sendable, Equatable, CustomStringConvertible {
    /// Create a cpupool.
    case createPool(CPUPoolSpec)
    /// Remove a cpupool this topology made that the plan no longer has, once its domains moved out: its cores go back
    /// to Pool-0, where the plan pins them.
    case removePool(CPUPoolSpec)
    /// Bind a NIC to pciback.
    case makeAssignable(PCIAddress)
    /// Make this topology the owner in the mark of an assignable NIC that another topology, not applied (a destroy
    /// that stopped, or an older iovm), made assignable: this topology's IOVM takes it (or, `held`, has it already),
    /// and its destroy gives it back.
    case claimNIC(PCIAddress, markedFor: String?, held: Bool)
    /// Give a NIC iovm made assignable (for an IOVM, since gone) back to its dom0 driver, for dom0's `bridge`.
    case giveNICToDom0(PCIAddress, bridge: String, markedFor: String?)
    /// Make bridge `name` in dom0 with NIC `nic`'s interface (`interface`, when known before the NIC is back
    /// with its driver) and tag it as the topology's; before the guests whose vifs join it.
    case createBridge(name: String, nic: PCIAddress, interface: String?)
    /// Create a domain; domains of one stage are created concurrently.
    case createDomain(name: String, stage: Int)
    /// Set hard affinity of a running domain (nil: unpin).
    /// `before` holds each vCPU's hard affinity before, vCPU 0 first: what a rollback gives back when they differ.
    case setAffinity(name: String, domid: UInt32, vcpus: Int, from: CPUSet?, to: CPUSet?, before: [CPUSet] = [])
    /// Set credit weight and cap of a running domain.
    case setSchedule(name: String, domid: UInt32, from: (weight: Int?, cap: Int?), to: (weight: Int, cap: Int))
    /// Set the rtds reservation of a running domain (its cpupool runs rtds); `from` holds each vCPU's before, vCPU 0
    /// first (empty when not read).
    case setRTDS(name: String, domid: UInt32, from: [RTDSParameters], to: RTDSParameters)
    /// Move a running domain to another pool. Xen gives a moved domain every core and its new scheduler's defaults:
    /// `before` is what it ran with, which a rollback sets again once it moved it back.
    case moveToPool(name: String, domid: UInt32, from: String, to: String, before: SchedulingState = SchedulingState())
    /// Destroy a domain an earlier apply stopped creating (killed between creating and tagging it);
    /// a ``createDomain`` of the same name follows.
    case replaceIncomplete(name: String, domid: UInt32)
    /// Destroy an IOVM iovm created that shut down or crashed (it serves nothing, and nothing restarts
    /// it); a ``createDomain`` of the same name follows, and its guests' vifs are re-attached.
    case replaceShutDown(name: String, domid: UInt32, reason: String)
    /// Destroy a guest iovm created that shut down (a `poweroff`, `reboot` or crash inside it: libxl leaves the domain
    /// listed, and nothing but xl's own daemon acts on `on_reboot`); a ``createDomain`` of the same name follows, so
    /// it runs again as planned, with a new domid.
    case replaceShutDownGuest(name: String, domid: UInt32, reason: String)
    /// Wait for a running guest's vifs that are still connecting in a running IOVM (an earlier apply
    /// stopped before it saw them connect).
    case waitForNetwork(name: String, domid: UInt32)
    /// Replace vif `devid` of a running guest, broken or missing (its IOVM died or was recreated under it,
    /// or an apply stopped between removing and adding it), by one in its planned `backend` with the same
    /// MAC and bridge; a ``waitForNetwork`` of the guest follows.
    case reattachVif(name: String, domid: UInt32, devid: Int, staleBackend: UInt32?, backend: String, reason: String)

    /// Equality that compares tuples field by field.
    public static func == (lhs: Change, rhs: Change) -> Bool { lhs.description == rhs.description }

    /// One line for logs and `apply --dry-run`.
    public var description: String {
        switch self {
        case .createPool(let pool): "create cpupool \(pool.name) (\(pool.scheduler), cores \(pool.cpus))"
        case .removePool(let pool): "remove cpupool \(pool.name) (cores \(pool.cpus) back to Pool-0): the plan no longer has it"
        case .makeAssignable(let pci): "make NIC \(pci) assignable (pciback)"
        case .claimNIC(let pci, let owner, _):
            "record NIC \(pci) as this topology's (\(owner.map { "topology \($0), which is not applied," } ?? "an older iovm") made it assignable)"
        case .giveNICToDom0(let pci, let bridge, _): "give NIC \(pci) back to its dom0 driver, for bridge \(bridge)"
        case .createBridge(let name, let nic, let interface): "bridge \(name) on \(nic)\(interface.map { " (\($0))" } ?? "")"
        case .createDomain(let name, let stage): "create \(name) (stage \(stage + 1))"
        case .setAffinity(let name, _, _, let from, let to, let before) where from == to && Set(before).count <= 1:
            "pin \(name): cores \(to?.description ?? "all") again (a cpupool move resets it)"
        case .setAffinity(let name, _, _, let from, let to, _):
            "pin \(name): cores \(from?.description ?? "all") -> \(to?.description ?? "all")"
        case .setSchedule(let name, _, let from, let to) where from.weight == to.weight && from.cap == to.cap:
            "weigh \(name): weight \(to.weight), cap \(to.cap) again (a cpupool move resets them)"
        case .setSchedule(let name, _, let from, let to):
            "weigh \(name): weight \(from.weight.map(String.init) ?? "?") -> \(to.weight), cap \(from.cap.map(String.init) ?? "?") -> \(to.cap)"
        case .setRTDS(let name, _, let from, let to) where from.count > 0 && from.allSatisfy({ $0 == to }):
            "reserve \(name): rtds \(to) again (a cpupool move resets it)"
        case .setRTDS(let name, _, let from, let to): "reserve \(name): rtds \(Self.reservations(from)) -> \(to)"
        case .moveToPool(let name, _, let from, let to, _): "move \(name): cpupool \(from) -> \(to)"
        case .replaceIncomplete(let name, let domid): "destroy \(name) (\(domid)), left half-made by an apply that stopped, to create it again"
        case .replaceShutDown(let name, let domid, let reason): "destroy IOVM \(name) (\(domid)), which shut down (\(reason)), to create it again"
        case .replaceShutDownGuest(let name, let domid, let reason): "destroy guest \(name) (\(domid)), which shut down (\(reason)), to create it again"
        case .waitForNetwork(let name, let domid): "wait for the vifs of \(name) (\(domid)) to connect"
        case .reattachVif(let name, let domid, let devid, _, let backend, let reason):
            "re-attach vif \(devid) of \(name) (\(domid)) to \(backend): \(reason)"
        }
    }

    /// Whether this change leaves running domains running (pin, weigh, move).
    public var isLive: Bool {
        switch self {
        case .setAffinity, .setSchedule, .setRTDS, .moveToPool, .removePool: true
        default: false
        }
    }

    /// How a change's description writes reservations read per vCPU: the one they share, each vCPU's when they
    /// differ, `?` when none was read.
    static func reservations(_ perVCPU: [RTDSParameters]) -> String {
        guard let first = perVCPU.first else { return "?" }
        if perVCPU.allSatisfy({ $0 == first }) { return first.description }
        return perVCPU.enumerated().map { "vCPU \($0.offset): \($0.element)" }.joined(separator: "; ")
    }
}

/// What a running domain runs with that a cpupool move resets: each vCPU's hard affinity, credit's weight and cap, each
/// vCPU's rtds reservation (empty when not read or not under rtds).
public struct SchedulingState: Sendable, Equatable {
    /// Each vCPU's hard affinity, vCPU 0 first.
    public var hardAffinity: [CPUSet]
    /// Credit weight; nil when not read.
    public var weight: Int?
    /// Credit cap; nil when not read.
    public var cap: Int?
    /// Each vCPU's rtds reservation, vCPU 0 first.
    public var rtdsByVCPU: [RTDSParameters]

    /// Creates a state.
    public init(hardAffinity: [CPUSet] = [], weight: Int? = nil, cap: Int? = nil, rtdsByVCPU: [RTDSParameters] = []) {
        self.hardAffinity = hardAffinity
        self.weight = weight
        self.cap = cap
        self.rtdsByVCPU = rtdsByVCPU
    }
}

/// Why an apply refuses before touching anything.
public struct Conflict: Sendable, Equatable, CustomStringConvertible {
    /// What is wrong, naming the domain or NIC.
    public var message: String

    /// The message.
    public var description: String { message }

    /// `nic`, for `user` (`IOVM iovm0`, `bridge xenbr0`), was made assignable by `owner`, another topology, applied.
    static func nicOfAppliedTopology(_ nic: PCIAddress, for user: String, owner: String) -> Conflict {
        Conflict(
            message:
                "NIC \(nic) of \(user) was made assignable by topology \(owner), which is applied: `iovm destroy` of \(owner) gives it back first (or, if \(owner) no longer uses it, `xl pci-assignable-remove -r \(nic)`)"
        )
    }
}

/// The result of comparing a plan with the host.
public struct Reconciliation: Sendable {
    /// Steps to run, in order.
    public var changes: [Change]
    /// Reasons to refuse; when not empty, nothing may run.
    public var conflicts: [Conflict]
    /// Managed domains of this topology that the plan no longer has (left alone; `destroy` removes them).
    public var orphans: [String]
}

/// Compares a ``Plan`` with an ``ObservedHost`` and lists what must change.
///
/// Placement, weights and pools change live; anything else that differs on a running domain
/// (memory, vCPUs, kernel, NICs, vifs) would need a new domain and is reported as a conflict.
/// A domain that has a planned name but no iovm tag of this topology is never touched.
public enum Reconciler {
    /// Shut-down reasons of a guest that apply leaves alone (a conflict): `dying` (being destroyed), `suspend` (saved or
    /// migrated by libxl, which destroys or resumes it) and `shutdown` (libvirt's "being shut down": libvirtd acts on
    /// it).
    static let heldShutDownReasons: Set<String> = ["dying", "suspend", "shutdown"]

    /// Reconciles `plan` with `host`.
    ///
    /// - Parameter guests: the guests that may be created or replaced; nil: all. A guest outside it that is gone or
    ///   shut down is left as it is, without a conflict: `iovm watch`'s recoveries make IOVMs and the guests that
    ///   rebooted, never a guest that powered off or that someone destroyed.
    public static func reconcile(_ plan: Plan, with observed: ObservedHost, guests: Set<String>? = nil) -> Reconciliation {
        // An IOVM of this topology that shut down or crashed is destroyed first and made again: everything
        // below sees the host without it, so it is created, and the vifs it backed are re-attached.
        let iovmNames = Set(plan.iovms.map(\.name))
        let shutDown = observed.domains.filter {
            iovmNames.contains($0.name) && $0.shutdownReason != nil && $0.isManaged(by: plan.topology) && $0.tag?.incomplete != true
        }
        // A guest of this topology that shut down is made again too (a new domid), unless it is being destroyed, or
        // suspended: an `xl save` or migration holds it, and libxl destroys or resumes it.
        let guestNames = Set(plan.guests.map(\.name))
        let shutDownGuests = observed.domains.filter { domain in
            guestNames.contains(domain.name) && domain.shutdownReason != nil && domain.isManaged(by: plan.topology) && domain.tag?.incomplete != true
                && (guests?.contains(domain.name) ?? true)
        }
        /// Guests this reconciliation leaves as they are: outside `guests`, and gone, shut down or half made.
        let untouched = Set(
            plan.guests.map(\.name).filter { name in
                guard let guests, !guests.contains(name) else { return false }
                return observed.domain(name).map { ($0.shutdownReason != nil || $0.tag?.incomplete == true) && $0.isManaged(by: plan.topology) } ?? true
            })
        let heldGuests = shutDownGuests.filter { Self.heldShutDownReasons.contains($0.shutdownReason ?? "") }
        let replacedGuests = shutDownGuests.filter { !Self.heldShutDownReasons.contains($0.shutdownReason ?? "") }
        var host = observed
        host.domains.removeAll { domain in (shutDown + replacedGuests).contains { $0.domid == domain.domid } }
        var changes: [Change] = []
        var conflicts: [Conflict] = []
        let allCores = CPUSet(0..<host.cores)

        for dying in shutDown where dying.shutdownReason == "dying" {
            conflicts.append(
                Conflict(message: "IOVM \(dying.name) (\(dying.domid)) is being destroyed (dying): apply again once Xen has released it"))
        }
        for held in heldGuests {
            let what =
                switch held.shutdownReason {
                case "dying": "is being destroyed (dying)"
                case "suspend": "is suspended (an `xl save` or a migration holds it)"
                default: "is being shut down (libvirt)"
                }
            conflicts.append(Conflict(message: "guest \(held.name) (\(held.domid)) \(what): apply again once it is gone or runs again"))
        }
        if host.cores < plan.host.cores {
            conflicts.append(Conflict(message: "the plan is for \(plan.host.cores) cores, but this host has \(host.cores)"))
        }

        for pool in plan.cpupools {
            if let existing = host.pools.first(where: { $0.name == pool.name }) {
                if existing.managedBy != plan.topology {
                    conflicts.append(Conflict(message: "cpupool \(pool.name) exists and iovm did not create it for \(plan.topology); refusing to touch it"))
                } else if existing.cpus != pool.cpus || existing.scheduler != pool.scheduler {
                    conflicts.append(
                        Conflict(
                            message:
                                "cpupool \(pool.name) has cores \(existing.cpus) (\(existing.scheduler)); the plan wants \(pool.cpus) (\(pool.scheduler)): destroy and apply again")
                    )
                }
            } else {
                let busy = host.pools.filter { $0.name != "Pool-0" && !$0.cpus.cores.filter { pool.cpus.contains($0) }.isEmpty }
                for other in busy {
                    conflicts.append(Conflict(message: "cpupool \(pool.name) needs cores \(pool.cpus), but cpupool \(other.name) holds \(other.cpus)"))
                }
                changes.append(.createPool(pool))
            }
        }

        let bindings = Dictionary(host.nics.map { ($0.pci, $0) }, uniquingKeysWith: { first, _ in first })
        for iovm in plan.iovms {
            // A half-made IOVM is destroyed and made again: its NICs are handled as for a new one.
            let running = host.domain(iovm.name).flatMap { $0.tag?.incomplete == true ? nil : $0 }
            for pci in iovm.pci {
                guard let binding = bindings[pci] else {
                    conflicts.append(Conflict(message: "NIC \(pci) of IOVM \(iovm.name) does not exist on this host"))
                    continue
                }
                if let owner = host.domains.first(where: { $0.pci.contains(pci) }), owner.name != iovm.name {
                    conflicts.append(Conflict(message: "NIC \(pci) of IOVM \(iovm.name) is passed through to domain \(owner.name) (\(owner.domid))"))
                    continue
                }
                if running == nil, binding.assignable, let owner = host.otherAppliedOwner(of: binding, than: plan.topology) {
                    conflicts.append(.nicOfAppliedTopology(pci, for: "IOVM \(iovm.name)", owner: owner))
                    continue
                }
                if running == nil && !binding.assignable {
                    changes.append(.makeAssignable(pci))
                } else if binding.assignable, binding.madeAssignableByIOVM, binding.madeAssignableFor != plan.topology,
                    host.otherAppliedOwner(of: binding, than: plan.topology) == nil
                {
                    changes.append(.claimNIC(pci, markedFor: binding.madeAssignableFor, held: running != nil))
                }
            }
        }
        if let network = host.dom0Network {
            let (steps, problems) = bridgeChanges(plan, host: host, network: network)
            changes += steps
            conflicts += problems
        }

        let stages = Dictionary(plan.stages.enumerated().flatMap { stage, names in names.map { ($0, stage) } }, uniquingKeysWith: { a, _ in a })
        var creations: [Change] = []
        var live: [Change] = []
        var replacements: [Change] = shutDown.map { .replaceShutDown(name: $0.name, domid: $0.domid, reason: $0.shutdownReason ?? "shut down") }
        replacements += replacedGuests.map { .replaceShutDownGuest(name: $0.name, domid: $0.domid, reason: $0.shutdownReason ?? "shut down") }
        var waits: [Change] = []
        var reattachments: [Change] = []
        /// The domains this reconcile moves out of each pool.
        var movingOut: [String: Set<String>] = [:]
        for domain in plan.domains {
            // An rtds reservation needs an rtds pool: Pool-0 must run what the plan assumed.
            if domain.rtds != nil && domain.cpupool == Planner.defaultPool && host.scheduler != "rtds" {
                conflicts.append(
                    Conflict(
                        message:
                            "domain \(domain.name) has an rtds reservation in Pool-0, but Pool-0 runs \(host.scheduler), not rtds: plan on this host (or with --host-scheduler \(host.scheduler)) so its domains get an rtds cpupool"
                    ))
                continue
            }
            if heldGuests.contains(where: { $0.name == domain.name }) || untouched.contains(domain.name) { continue }
            guard let running = host.domain(domain.name) else {
                creations.append(.createDomain(name: domain.name, stage: stages[domain.name] ?? 0))
                continue
            }
            guard let tag = running.tag, tag.topology == plan.topology, tag.uuid == running.uuid else {
                let owner = running.tag.map { "iovm created it for topology \($0.topology)" } ?? "iovm did not create it"
                conflicts.append(Conflict(message: "domain \(domain.name) (\(running.domid)) exists and \(owner); refusing to touch it"))
                continue
            }
            if tag.incomplete == true {
                // An apply was killed between creating it and tagging it: it may be paused or half set up.
                // Its intent makes it iovm's, so it is made again from the plan.
                replacements.append(.replaceIncomplete(name: domain.name, domid: running.domid))
                movingOut[running.cpupool, default: []].insert(running.name)  // destroyed first: it leaves its pool too
                creations.append(.createDomain(name: domain.name, stage: stages[domain.name] ?? 0))
                continue
            }
            if tag.specFingerprint != domain.specFingerprint {
                conflicts.append(
                    Conflict(
                        message:
                            "domain \(domain.name) (\(running.domid)) runs with other memory, vCPUs, kernel, NICs or vifs than the plan; those need a new domain: `iovm destroy` it and apply again"
                    ))
                continue
            }
            // A guest whose vif lost its backend (the IOVM died, or was recreated under it) is not
            // connected, whatever the rest says: apply must not report success over it.
            // One still connecting in a live backend (an apply stopped before it saw it connect) is waited for.
            // A broken one, or one missing (an apply stopped between removing and adding it), is replaced by one
            // in its planned backend once that runs (this apply creates it first when it is gone).
            let vifs = running.vifs ?? []
            let connecting = vifs.filter { $0.problem(on: host) != nil && $0.isConnecting(on: host) }
            let broken = vifs.filter { $0.problem(on: host) != nil && !$0.isConnecting(on: host) }
            var missing: [Int] = []
            if running.vifs != nil { missing = domain.vifs.indices.filter { devid in !vifs.contains { $0.devid == devid } } }
            if domain.role == .guest {
                for vif in broken {
                    guard domain.vifs.indices.contains(vif.devid) else {
                        conflicts.append(
                            Conflict(
                                message: "guest \(domain.name) (\(running.domid)) has a vif \(vif.devid) the plan does not have: `iovm destroy` it and apply again"))
                        continue
                    }
                    reattachments.append(
                        .reattachVif(
                            name: domain.name, domid: running.domid, devid: vif.devid, staleBackend: vif.backendDomid,
                            backend: domain.vifs[vif.devid].backend ?? "Domain-0", reason: vif.problem(on: host) ?? "broken"))
                }
                for devid in missing {
                    reattachments.append(
                        .reattachVif(
                            name: domain.name, domid: running.domid, devid: devid, staleBackend: nil, backend: domain.vifs[devid].backend ?? "Domain-0",
                            reason: "vif \(devid) is missing"))
                }
                if !connecting.isEmpty || !broken.isEmpty || !missing.isEmpty {
                    waits.append(.waitForNetwork(name: domain.name, domid: running.domid))
                }
            }
            // "All cores" and "no affinity" are the same thing.
            func normalized(_ set: CPUSet?) -> CPUSet? { set == allCores ? nil : set }
            let now = normalized(running.hardAffinity.first)
            let uniform = Set(running.hardAffinity).count <= 1
            // A move to another cpupool resets the domain's affinity, weight, cap and reservations (Xen 4.17's
            // `sched_move_domain`): after one, the plan's are set again even where they were already the domain's.
            let moving = running.cpupool != domain.cpupool
            if normalized(domain.hardAffinity) != now || !uniform || (moving && domain.hardAffinity != nil) {
                live.append(.setAffinity(name: domain.name, domid: running.domid, vcpus: running.vcpus, from: now, to: domain.hardAffinity, before: running.hardAffinity))
            }
            if let rtds = domain.rtds {
                if running.rtds != rtds || moving {
                    let before = !running.rtdsByVCPU.isEmpty ? running.rtdsByVCPU : running.rtds.map { [$0] } ?? []
                    live.append(.setRTDS(name: domain.name, domid: running.domid, from: before, to: rtds))
                }
            } else if plan.scheduler(of: domain) != "rtds" && (running.weight != domain.weight || running.cap != domain.cap || moving) {
                live.append(.setSchedule(name: domain.name, domid: running.domid, from: (running.weight, running.cap), to: (domain.weight, domain.cap)))
            }
            if moving {
                movingOut[running.cpupool, default: []].insert(running.name)
                let before = SchedulingState(hardAffinity: running.hardAffinity, weight: running.weight, cap: running.cap, rtdsByVCPU: running.rtdsByVCPU)
                live.append(.moveToPool(name: domain.name, domid: running.domid, from: running.cpupool, to: domain.cpupool, before: before))
            }
        }
        // A pool of this topology's that the plan no longer has goes once every domain in it moved out (one this
        // reconcile does not move, an orphan of the topology or a domain iovm did not make, keeps it).
        for pool in host.pools where pool.managedBy == plan.topology && pool.name != Planner.defaultPool {
            guard !plan.cpupools.contains(where: { $0.name == pool.name }) else { continue }
            let leaving = movingOut[pool.name] ?? []
            guard host.domains.allSatisfy({ $0.cpupool != pool.name || leaving.contains($0.name) }) else { continue }
            live.append(.removePool(CPUPoolSpec(name: pool.name, scheduler: pool.scheduler, cpus: pool.cpus)))
        }
        // Moves before pins: a domain can only be pinned to cores of its pool; and a pool's cores are Pool-0's again
        // only once it is removed. The moves and removals come before the creations too: a new domain is built
        // pinned to the cores the plan gives it, which may be a removed pool's.
        live.sort { rank($0) < rank($1) }
        let relayout = live.filter { rank($0) <= 1 }
        let settings = live.filter { rank($0) > 1 }
        changes = replacements + changes + relayout + creations.sorted { stageOf($0) < stageOf($1) } + settings + reattachments + waits

        let planned = Set(plan.domains.map(\.name))
        let orphans = host.domains.filter { $0.tag?.topology == plan.topology && !planned.contains($0.name) }.map(\.name)
        return Reconciliation(changes: changes, conflicts: conflicts, orphans: orphans)
    }

    /// The bridges in dom0 the plan's vifs use: one that exists and iovm did not make is used as it is; one iovm
    /// made for this topology is left alone when its NIC is its port; any other is made with its NIC, which is
    /// first given back to its dom0 driver when iovm made it assignable (never one a domain holds).
    static func bridgeChanges(_ plan: Plan, host: ObservedHost, network: ObservedDom0Network) -> (changes: [Change], conflicts: [Conflict]) {
        var changes: [Change] = []
        var conflicts: [Conflict] = []
        let bindings = Dictionary(host.nics.map { ($0.pci, $0) }, uniquingKeysWith: { first, _ in first })
        var carrying: [PCIAddress: String] = [:]  // NIC -> the bridge this apply makes on it
        for bridge in plan.dom0Bridges {
            let users = bridge.guests.joined(separator: ", ")
            let existing = network.bridge(bridge.name)
            if let existing {
                guard existing.isBridge else {
                    conflicts.append(Conflict(message: "\(bridge.name), the bridge of \(users) in dom0, exists and is not a bridge; refusing to touch it"))
                    continue
                }
                guard let owner = existing.managedBy else { continue }  // not iovm's: used as it is, never changed
                guard owner == plan.topology else {
                    conflicts.append(Conflict(message: "bridge \(bridge.name) in dom0 was made by iovm for topology \(owner); refusing to touch it"))
                    continue
                }
            }
            guard bridge.nics.count == 1, let nic = bridge.nics.first else {
                if bridge.nics.isEmpty {
                    conflicts.append(
                        Conflict(
                            message:
                                "bridge \(bridge.name) (of \(users)) does not exist in dom0, and no NIC of the topology leads to it: create it, or give the guests a NIC"
                        ))
                } else {
                    let nics = bridge.nics.map(\.description).joined(separator: " and ")
                    conflicts.append(Conflict(message: "bridge \(bridge.name) in dom0 would carry NICs \(nics): a bridge iovm makes carries one NIC"))
                }
                continue
            }
            let interface = network.interface(of: nic)
            // iovm's own bridge, its NIC a port of it: nothing to do.
            if existing != nil, let interface, existing?.ports.contains(interface.name) == true { continue }
            if let other = carrying[nic] {
                conflicts.append(Conflict(message: "NIC \(nic) would carry both bridge \(other) and bridge \(bridge.name) in dom0"))
                continue
            }
            carrying[nic] = bridge.name
            guard let binding = bindings[nic] else {
                conflicts.append(Conflict(message: "NIC \(nic) of bridge \(bridge.name) does not exist on this host"))
                continue
            }
            if let owner = host.domains.first(where: { $0.pci.contains(nic) }) {
                conflicts.append(
                    Conflict(message: "NIC \(nic) of bridge \(bridge.name) is passed through to domain \(owner.name) (\(owner.domid)); refusing to touch it"))
                continue
            }
            if binding.assignable {
                guard binding.madeAssignableByIOVM else {
                    conflicts.append(
                        Conflict(
                            message:
                                "NIC \(nic) of bridge \(bridge.name) is bound to pciback and iovm did not put it there: give it to its dom0 driver (`xl pci-assignable-remove -r \(nic)`) and apply again"
                        ))
                    continue
                }
                if let owner = host.otherAppliedOwner(of: binding, than: plan.topology) {
                    conflicts.append(.nicOfAppliedTopology(nic, for: "bridge \(bridge.name)", owner: owner))
                    continue
                }
                changes.append(.giveNICToDom0(nic, bridge: bridge.name, markedFor: binding.madeAssignableFor))
                changes.append(.createBridge(name: bridge.name, nic: nic, interface: nil))
                continue
            }
            guard let interface else {
                if let driver = binding.driver {
                    conflicts.append(
                        Conflict(message: "NIC \(nic) of bridge \(bridge.name) is bound to \(driver), which gives it no network interface in dom0; refusing to touch it"))
                    continue
                }
                // Bound to no driver (as at boot when dom0 loads none): the bridge is made once its driver is loaded.
                changes.append(.createBridge(name: bridge.name, nic: nic, interface: nil))
                continue
            }
            if let master = interface.master, master != bridge.name {
                conflicts.append(
                    Conflict(message: "interface \(interface.name) of NIC \(nic) is a port of \(master) in dom0; refusing to move it into bridge \(bridge.name)"))
                continue
            }
            if !interface.addresses.isEmpty {
                conflicts.append(
                    Conflict(
                        message:
                            "interface \(interface.name) of NIC \(nic) has addresses in dom0 (\(interface.addresses.joined(separator: ", "))): dom0 uses it; refusing to put it in bridge \(bridge.name)"
                    ))
                continue
            }
            changes.append(.createBridge(name: bridge.name, nic: nic, interface: interface.name))
        }
        return (changes, conflicts)
    }

    private static func rank(_ change: Change) -> Int {
        switch change {
        case .moveToPool: 0
        case .removePool: 1
        case .setAffinity: 2
        default: 3
        }
    }

    private static func stageOf(_ change: Change) -> Int {
        if case .createDomain(_, let stage) = change { return stage }
        return -1
    }
}
