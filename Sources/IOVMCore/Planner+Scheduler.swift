import CPUSets
import IOVMWireFormat

// The scheduler the topology asks for (`Host(scheduler:)`) against the one Pool-0 runs, and rtds reservations.
extension PlanningRun {
    // MARK: Scheduler

    /// Puts the domains in a cpupool running the topology's scheduler when Pool-0 runs another one, and
    /// gives each domain under rtds its reservation. A topology that asks for no scheduler, or for Pool-0's,
    /// is left exactly as placement made it.
    mutating func applyScheduler(_ domains: inout [DomainSpec], cpupools: inout [CPUPoolSpec], host: HostShape) {
        let location = document.host?.source ?? document.source
        let scheduling = document.scheduling
        let iovmRTDS = checkRTDS(scheduling?.iovmRTDS, of: "IOVMs", at: scheduling?.source ?? location)
        let guestRTDS = checkRTDS(scheduling?.guestRTDS, of: "guests", at: scheduling?.source ?? location)

        if let requested = document.host?.scheduler, Planner.schedulers.contains(requested), requested != host.scheduler {
            if document.placement.dedicatedPool == true {
                // The placement's pool already runs the requested scheduler (Planner+Placement); the guests stay in Pool-0.
                if let pool = cpupools.first, domains.contains(where: { $0.role == .guest }) {
                    diagnostics.emit(.guestsStayInPool0(pool: pool.name, scheduler: requested, poolZero: host.scheduler, at: location))
                }
            } else if !domains.isEmpty {
                let name = document.host?.schedulerPool ?? "iovm-\(requested)"
                checkName(name, what: "cpupool", at: location)
                if name == Planner.defaultPool { diagnostics.emit(.schedulerPoolIsPool0(at: location)) }
                let all = CPUSet(0..<host.cores)
                let available = all.cores.filter { !host.reservedCores.contains($0) }
                // The cores the placement uses; an unpinned domain may use every core not reserved for dom0.
                let used: [Int] =
                    domains.contains { $0.hardAffinity == nil }
                    ? available : Array(Set(domains.flatMap { $0.hardAffinity?.cores ?? [] })).filter { all.contains($0) }.sorted()
                if used.count >= host.cores {
                    diagnostics.emit(
                        .schedulerPoolTakesEveryCore(requested, poolZero: host.scheduler, pool: name, cores: host.cores, at: location))
                } else if !used.isEmpty {
                    for index in domains.indices { domains[index].cpupool = name }
                    cpupools.append(CPUPoolSpec(name: name, scheduler: requested, cpus: CPUSet(used)))
                }
            }
        }

        var outside: [String: String] = [:]
        for index in domains.indices {
            let role = domains[index].role
            guard let rtds = role == .iovm ? iovmRTDS : guestRTDS else { continue }
            let scheduler = cpupools.first { $0.name == domains[index].cpupool }?.scheduler ?? host.scheduler
            if scheduler == "rtds" {
                domains[index].rtds = rtds
            } else {
                outside[role == .iovm ? "IOVMs" : "guests"] = scheduler
            }
        }
        for (role, scheduler) in outside.sorted(by: { $0.key < $1.key }) {
            diagnostics.emit(.rtdsOutsideRTDS(role, scheduler: scheduler, at: scheduling?.source ?? location))
        }
    }

    /// The reservation `document` declares for `role`, checked: period and budget at least rtds' minimum of 10 us
    /// (Xen's `RTDS_MIN_PERIOD` and `RTDS_MIN_BUDGET`, which its per-vCPU call enforces) and within libxl's int, the
    /// budget at most the period.
    mutating func checkRTDS(_ document: RTDSDocument?, of role: String, at location: SourceLocation?) -> RTDSParameters? {
        guard let document else { return nil }
        let range = Self.rtdsMinimumMicroseconds...Int(Int32.max)
        var ok = true
        if !range.contains(document.periodMicroseconds) {
            diagnostics.emit(.rtdsOutOfRange("period", of: role, value: document.periodMicroseconds, at: location))
            ok = false
        }
        if !range.contains(document.budgetMicroseconds) {
            diagnostics.emit(.rtdsOutOfRange("budget", of: role, value: document.budgetMicroseconds, at: location))
            ok = false
        }
        if ok && document.budgetMicroseconds > document.periodMicroseconds {
            diagnostics.emit(.rtdsBudgetOverPeriod(of: role, budget: document.budgetMicroseconds, period: document.periodMicroseconds, at: location))
            ok = false
        }
        guard ok else { return nil }
        return RTDSParameters(
            periodMicroseconds: document.periodMicroseconds, budgetMicroseconds: document.budgetMicroseconds, extratime: document.extratime ?? true)
    }

    /// rtds' shortest period and budget, in microseconds (`xen/common/sched/rt.c`).
    static let rtdsMinimumMicroseconds = 10
}
