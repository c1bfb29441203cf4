import CPUSets
import Foundation
import IOVMControl
import IOVMCore
import Synchronization

/// An in-memory stand-in for Xen, for unit tests only: it keeps domains, pools and NIC bindings,
/// records every call, and fails the calls it is told to.
final class FakeXenBackend: XenBackend, HostLock, @unchecked Sendable {
    struct State: Equatable {
        var domains: [ObservedDomain]
        var pools: [ObservedPool]
        var nics: [NICBinding]
        var nextDomid: UInt32 = 1
        /// Creation intents by UUID, as LibXLBackend records them before libxl creates the domain.
        var intents: [String: ManagedTag] = [:]
    }

    private let state: Mutex<State>
    private let log = Mutex<[String]>([])
    private let failures = Mutex<Set<String>>([])
    private let locked = Mutex(false)
    let cores: Int

    init(cores: Int = 4, nics: [String], extraDomains: [ObservedDomain] = []) {
        self.cores = cores
        let dom0 = ObservedDomain(
            domid: 0, name: "Domain-0", uuid: "00000000-0000-0000-0000-000000000000", vcpus: 2,
            hardAffinity: [CPUSet(0..<cores), CPUSet(0..<cores)], weight: 256, cap: 0, cpupool: "Pool-0")
        state = Mutex(
            State(
                domains: [dom0] + extraDomains,
                pools: [ObservedPool(name: "Pool-0", scheduler: "credit", cpus: CPUSet(0..<cores))],
                nics: nics.map { NICBinding(pci: PCIAddress($0)!, assignable: false, previousDriver: nil) },
                nextDomid: 1 + UInt32(extraDomains.count)))
    }

    /// A host left exactly as `state` (what a killed process leaves behind: the lock is free again).
    init(cores: Int = 4, state: State) {
        self.cores = cores
        self.state = Mutex(state)
    }

    /// Called inside createDomain after the intent (`intent:<name>`) and before the tag (`untagged:<name>`).
    let crashPoint = Mutex<CrashPoint?>(nil)

    var snapshot: State { state.withLock { $0 } }
    var calls: [String] { log.withLock { $0 } }
    var mutatingCalls: [String] {
        calls.filter { !$0.hasPrefix("observe") && !$0.hasPrefix("lock") && !$0.hasPrefix("unlock") && !$0.hasPrefix("removeStaleIntents") }
    }

    /// What `xl destroy NAME` does behind iovm's back: the domain is gone, its tag with it, and the vifs it
    /// backed stay in their guests naming it.
    func killBehindIOVMsBack(_ name: String) {
        state.withLock { $0.domains.removeAll { $0.name == name } }
    }

    /// What a crash (or `poweroff`) inside domain `name` does: libxl still lists it, shut down, and nothing
    /// restarts it; the vifs it backed stay in their guests naming it.
    func shutDown(_ name: String, reason: String) {
        state.withLock { state in
            guard let index = state.domains.firstIndex(where: { $0.name == name }) else { return }
            state.domains[index].shutdownReason = reason
        }
    }

    /// Removes vif `devid` of domain `name` (an apply stopped between removing and re-adding it).
    func dropVif(_ devid: Int, of name: String) {
        state.withLock { state in
            guard let index = state.domains.firstIndex(where: { $0.name == name }) else { return }
            state.domains[index].vifs?.removeAll { $0.devid == devid }
        }
    }

    /// Makes every call whose log line starts with `prefix` fail.
    func fail(_ prefix: String) { failures.withLock { _ = $0.insert(prefix) } }

    /// Stops failing the calls `fail(prefix)` made fail.
    func heal(_ prefix: String) { failures.withLock { _ = $0.remove(prefix) } }

    /// Runs on every call after it is logged, outside the fake's locks (to block a call, for concurrency tests).
    private let hook = Mutex<(@Sendable (String) -> Void)?>(nil)
    func onCall(_ body: @escaping @Sendable (String) -> Void) { hook.withLock { $0 = body } }

    private func call(_ line: String) throws {
        log.withLock { $0.append(line) }
        if let body = hook.withLock({ $0 }) { body(line) }
        if failures.withLock({ $0.contains { line.hasPrefix($0) } }) {
            throw FakeError(message: "injected failure: \(line)")
        }
    }

    struct FakeError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    // MARK: XenBackend

    func observe(nics: [PCIAddress]) throws -> ObservedHost {
        try call("observe")
        return state.withLock { state in
            ObservedHost(
                cores: cores, scheduler: "credit", domains: state.domains, pools: state.pools,
                nics: state.nics.filter { nics.contains($0.pci) })
        }
    }

    func createPool(_ pool: CPUPoolSpec, topology: String) throws {
        try call("createPool \(pool.name)")
        state.withLock { state in
            state.pools[0].cpus = CPUSet(state.pools[0].cpus.cores.filter { !pool.cpus.contains($0) })
            state.pools.append(ObservedPool(name: pool.name, scheduler: pool.scheduler, cpus: pool.cpus, managedBy: topology))
        }
    }

    func destroyPool(named name: String) throws {
        try call("destroyPool \(name)")
        state.withLock { state in
            guard let index = state.pools.firstIndex(where: { $0.name == name }) else { return }
            state.pools[0].cpus = CPUSet(state.pools[0].cpus.cores + state.pools[index].cpus.cores)
            state.pools.remove(at: index)
        }
    }

    func makeAssignable(_ pci: PCIAddress) throws {
        try call("makeAssignable \(pci)")
        state.withLock { state in
            guard let index = state.nics.firstIndex(where: { $0.pci == pci }) else { return }
            state.nics[index] = NICBinding(pci: pci, assignable: true, previousDriver: "e1000", madeAssignableByIOVM: true)
        }
    }

    func releaseNIC(_ pci: PCIAddress) throws {
        try call("releaseNIC \(pci)")
        state.withLock { state in
            guard let index = state.nics.firstIndex(where: { $0.pci == pci }) else { return }
            state.nics[index] = NICBinding(pci: pci, assignable: false)
        }
    }

    func createDomain(_ spec: DomainSpec, libxlJSON: String, tag: ManagedTag) throws -> UInt32 {
        try call("createDomain \(spec.name)")
        // As LibXLBackend: the intent first, then the domain (as observe shows it before its tag: the intent,
        // marked incomplete), then the tag.
        let crash = crashPoint.withLock { $0 }
        let uuid = try state.withLock { state in
            for pci in spec.pci where !(state.nics.first { $0.pci == pci }?.assignable ?? false) {
                throw FakeError(message: "NIC \(pci) is not assignable")
            }
            let uuid = "uuid-\(state.nextDomid)"
            var intent = tag
            intent.uuid = uuid
            state.intents[uuid] = intent
            return uuid
        }
        crash?("intent:\(spec.name)")
        let domid = state.withLock { state in
            let domid = state.nextDomid
            state.nextDomid += 1
            var incomplete = tag
            incomplete.uuid = uuid
            incomplete.incomplete = true
            let affinity = spec.hardAffinity ?? CPUSet(0..<cores)
            // Each vif connected in its backend, as waitForGuestNetwork would have seen it.
            let vifs = spec.vifs.enumerated().map { devid, vif in
                ObservedVif(
                    devid: devid, backendDomid: state.domains.first { $0.name == (vif.backend ?? "Domain-0") }?.domid, backendState: "4",
                    hotplugStatus: "connected")
            }
            state.domains.append(
                ObservedDomain(
                    domid: domid, name: spec.name, uuid: uuid, vcpus: spec.vcpus,
                    hardAffinity: Array(repeating: affinity, count: spec.vcpus),
                    weight: spec.weight, cap: spec.cap, cpupool: spec.cpupool, pci: spec.pci, tag: incomplete, vifs: spec.vifs.isEmpty ? nil : vifs,
                    rtds: spec.rtds))
            return domid
        }
        crash?("untagged:\(spec.name)")
        state.withLock { state in
            guard let index = state.domains.firstIndex(where: { $0.domid == domid }) else { return }
            var complete = tag
            complete.uuid = uuid
            state.domains[index].tag = complete
            state.intents[uuid] = nil
        }
        return domid
    }

    func removeStaleIntents() throws {
        try call("removeStaleIntents")
        state.withLock { state in
            let uuids = Set(state.domains.map(\.uuid))
            state.intents = state.intents.filter { uuids.contains($0.key) }
        }
    }

    func waitForDriverDomain(domid: UInt32, timeout: Double) throws {
        try call("waitForDriverDomain \(name(domid))")
    }

    func waitForGuestNetwork(domid: UInt32, timeout: Double) throws {
        try call("waitForGuestNetwork \(name(domid))")
    }

    func destroyDomain(domid: UInt32) throws {
        try call("destroyDomain \(name(domid))")
        state.withLock { state in
            if let uuid = state.domains.first(where: { $0.domid == domid })?.uuid { state.intents[uuid] = nil }
            state.domains.removeAll { $0.domid == domid }
        }
    }

    func reattachVif(domid: UInt32, devid: Int, staleBackend: UInt32?, to vif: VifSpec) throws {
        let backend = vif.backend ?? "Domain-0"
        try call("reattachVif \(name(domid)) \(devid) \(backend)")
        state.withLock { state in
            guard let index = state.domains.firstIndex(where: { $0.domid == domid }) else { return }
            let vif = ObservedVif(
                devid: devid, backendDomid: state.domains.first { $0.name == backend }?.domid, backendState: "4", hotplugStatus: "connected")
            var vifs = (state.domains[index].vifs ?? []).filter { $0.devid != devid }
            vifs.append(vif)
            state.domains[index].vifs = vifs.sorted { $0.devid < $1.devid }
        }
    }

    func setAffinity(domid: UInt32, vcpus: Int, hard: CPUSet?) throws {
        try call("setAffinity \(name(domid)) \(hard?.description ?? "all")")
        state.withLock { state in
            guard let index = state.domains.firstIndex(where: { $0.domid == domid }) else { return }
            state.domains[index].hardAffinity = Array(repeating: hard ?? CPUSet(0..<cores), count: vcpus)
        }
    }

    func setSchedule(domid: UInt32, weight: Int, cap: Int) throws {
        try call("setSchedule \(name(domid)) \(weight) \(cap)")
        state.withLock { state in
            guard let index = state.domains.firstIndex(where: { $0.domid == domid }) else { return }
            state.domains[index].weight = weight
            state.domains[index].cap = cap
        }
    }

    func setRTDS(domid: UInt32, to parameters: RTDSParameters) throws {
        try call("setRTDS \(name(domid)) \(parameters.periodMicroseconds) \(parameters.budgetMicroseconds) \(parameters.extratime)")
        state.withLock { state in
            guard let index = state.domains.firstIndex(where: { $0.domid == domid }) else { return }
            state.domains[index].rtds = parameters
        }
    }

    func moveToPool(domid: UInt32, pool: String) throws {
        try call("moveToPool \(name(domid)) \(pool)")
        state.withLock { state in
            guard let index = state.domains.firstIndex(where: { $0.domid == domid }) else { return }
            state.domains[index].cpupool = pool
        }
    }

    func managedDomain(_ nameOrID: String) throws -> ManagedDomain? {
        try call("managedDomain \(nameOrID)")
        guard let domain = state.withLock({ $0.domains.first { $0.name == nameOrID || "\($0.domid)" == nameOrID } }) else { return nil }
        guard let tag = domain.tag, tag.uuid == domain.uuid else { throw FakeError(message: "iovm did not create \(domain.name); iovm never changes it") }
        return ManagedDomain(domid: domain.domid, name: domain.name, vcpus: domain.vcpus, cap: domain.cap)
    }

    private func name(_ domid: UInt32) -> String {
        state.withLock { $0.domains.first { $0.domid == domid }?.name ?? "domid\(domid)" }
    }

    // MARK: HostLock

    struct Hold: HostLockHold {
        let backend: FakeXenBackend
        func release() { backend.locked.withLock { $0 = false } }
    }

    func acquire(timeout: Double) throws -> any HostLockHold {
        let taken = locked.withLock { locked in
            if locked { return false }
            locked = true
            return true
        }
        guard taken else { throw ApplyError.busy("the fake host is locked") }
        return Hold(backend: self)
    }
}
