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
        /// The plan recorded as applied, by topology.
        var applied: [String: String] = [:]
        /// The tags of domains gone without iovm destroying them (LibXLBackend parks them).
        var parked: [ManagedTag] = []
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
        calls.filter {
            !$0.hasPrefix("observe") && !$0.hasPrefix("glance") && !$0.hasPrefix("lock") && !$0.hasPrefix("unlock") && !$0.hasPrefix("removeStaleRecords")
                && !$0.hasPrefix("recordApplied") && !$0.hasPrefix("removeParkedTags")
        }
    }

    /// What `xl destroy NAME` does behind iovm's back: the domain is gone, its tag with it, and the vifs it
    /// backed stay in their guests naming it.
    func killBehindIOVMsBack(_ name: String) {
        state.withLock { $0.domains.removeAll { $0.name == name } }
    }

    /// What `xl destroy NAME` looks like half-way: the domain is still listed, without its name, tag and devices,
    /// and the backend directories of the vifs it backed are gone (the guests' frontends stay).
    func destroyInProgress(_ name: String) {
        state.withLock { state in
            guard let index = state.domains.firstIndex(where: { $0.name == name }) else { return }
            let domid = state.domains[index].domid
            state.domains[index].name = "domid\(domid)"
            state.domains[index].tag = nil
            state.domains[index].pci = []
            for guest in state.domains.indices {
                state.domains[guest].vifs = state.domains[guest].vifs?.map { vif in
                    guard vif.backendDomid == domid else { return vif }
                    return ObservedVif(devid: vif.devid, backendDomid: domid, backendState: nil, hotplugStatus: nil)
                }
            }
        }
    }

    /// What a crash (or `poweroff`) inside domain `name` does: libxl still lists it, shut down, and nothing
    /// restarts it; the vifs it backed stay in their guests naming it.
    func shutDown(_ name: String, reason: String) {
        state.withLock { state in
            guard let index = state.domains.firstIndex(where: { $0.name == name }) else { return }
            state.domains[index].shutdownReason = reason
        }
    }

    /// What a backend directory removed ahead of its domain looks like: vif `devid` of domain `name` still names
    /// its backend domain, whose directory for it is gone.
    func dropBackendDirectory(ofVif devid: Int, of name: String) {
        state.withLock { state in
            guard let index = state.domains.firstIndex(where: { $0.name == name }) else { return }
            state.domains[index].vifs = state.domains[index].vifs?.map { vif in
                vif.devid == devid ? ObservedVif(devid: vif.devid, backendDomid: vif.backendDomid, backendState: nil, hotplugStatus: nil) : vif
            }
        }
    }

    /// Removes vif `devid` of domain `name` (an apply stopped between removing and re-adding it).
    func dropVif(_ devid: Int, of name: String) {
        state.withLock { state in
            guard let index = state.domains.firstIndex(where: { $0.name == name }) else { return }
            state.domains[index].vifs?.removeAll { $0.devid == devid }
        }
    }

    /// What `xl sched-rtds -v N` and `xl vcpu-pin NAME N` do behind iovm's back: domain `name`'s vCPUs get each
    /// their own rtds reservation and hard affinity.
    func setPerVCPU(of name: String, rtds: [RTDSParameters], affinity: [CPUSet]) {
        state.withLock { state in
            guard let index = state.domains.firstIndex(where: { $0.name == name }) else { return }
            state.domains[index].rtdsByVCPU = rtds
            state.domains[index].rtds = rtds.first.flatMap { first in rtds.allSatisfy { $0 == first } ? first : nil }
            state.domains[index].hardAffinity = affinity
        }
    }

    /// Makes every call whose log line starts with `prefix` fail.
    func fail(_ prefix: String) { failures.withLock { _ = $0.insert(prefix) } }

    /// Stops failing the calls `fail(prefix)` made fail.
    func heal(_ prefix: String) { failures.withLock { _ = $0.remove(prefix) } }

    /// Runs on every call after it is logged, outside the fake's locks (to block a call, for concurrency tests).
    private let hook = Mutex<(@Sendable (String) -> Void)?>(nil)
    func onCall(_ body: @escaping @Sendable (String) -> Void) { hook.withLock { $0 = body } }

    /// dom0's network, when a test gives it one: dom0-backed vifs join its bridges (as Debian's `vif-bridge` does),
    /// and a guest whose bridge is missing is not created.
    private struct NetworkLink { weak var network: FakeDom0Network? }
    private let networkLink = Mutex(NetworkLink())
    func attach(_ network: FakeDom0Network) { networkLink.withLock { $0.network = network } }
    private var network: FakeDom0Network? { networkLink.withLock { $0.network } }

    /// Logs `line` in this fake's call log and fails it when told to (for ``FakeDom0Network``'s calls).
    func record(_ line: String) throws { try call(line) }

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
                nics: state.nics.filter { nics.contains($0.pci) }, applied: state.applied, parked: state.parked)
        }
    }

    func glance() throws -> HostGlance {
        try call("glance")
        return state.withLock { state in
            HostGlance(domains: state.domains.map { DomainLife(domid: $0.domid, shutdownReason: $0.shutdownReason) }, applied: state.applied)
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
        // As libxl: a pool that still holds a domain is not destroyed.
        if let held = state.withLock({ state in state.domains.first { $0.cpupool == name } }) {
            throw FakeError(message: "cpupool \(name) still holds \(held.name)")
        }
        state.withLock { state in
            guard let index = state.pools.firstIndex(where: { $0.name == name }) else { return }
            state.pools[0].cpus = CPUSet(state.pools[0].cpus.cores + state.pools[index].cpus.cores)
            state.pools.remove(at: index)
        }
    }

    func makeAssignable(_ pci: PCIAddress, for topology: String?) throws {
        try call("makeAssignable \(pci)")
        state.withLock { state in
            guard let index = state.nics.firstIndex(where: { $0.pci == pci }) else { return }
            state.nics[index] = NICBinding(pci: pci, assignable: true, previousDriver: "e1000", madeAssignableByIOVM: true, madeAssignableFor: topology)
        }
    }

    func markNIC(_ pci: PCIAddress, for topology: String?) throws {
        try call("markNIC \(pci) \(topology ?? "-")")
        state.withLock { state in
            guard let index = state.nics.firstIndex(where: { $0.pci == pci && $0.madeAssignableByIOVM }) else { return }
            state.nics[index].madeAssignableFor = topology
        }
    }

    func nicsMarked(for topology: String) throws -> [PCIAddress] {
        state.withLock { $0.nics.filter { $0.madeAssignableFor == topology }.map(\.pci) }
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
        if let network {
            for vif in spec.vifs where vif.backend == nil && !network.hasBridge(vif.bridge) {
                throw FakeError(message: "vif-bridge: bridge \(vif.bridge) does not exist in dom0")
            }
        }
        // As LibXLBackend: the intent first, then the domain (as observe shows it before its tag: the intent,
        // marked incomplete), then the tag.
        let crash = crashPoint.withLock { $0 }
        let uuid = try state.withLock { state in
            for pci in spec.pci where !(state.nics.first { $0.pci == pci }?.assignable ?? false) {
                throw FakeError(message: "NIC \(pci) is not assignable")
            }
            // As libxl's build: the spec's pins must share a core with its cpupool.
            if let hard = spec.hardAffinity, let pool = state.pools.first(where: { $0.name == spec.cpupool }), !hard.cores.contains(where: { pool.cpus.contains($0) }) {
                throw FakeError(message: "\(spec.name): affinity \(hard) shares no core with cpupool \(spec.cpupool)")
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
        for (devid, vif) in spec.vifs.enumerated() where vif.backend == nil { network?.plug("vif\(domid).\(devid)", into: vif.bridge) }
        return domid
    }

    func recordApplied(topology: String, fingerprint: String?) throws {
        try call("recordApplied \(topology) \(fingerprint ?? "none")")
        state.withLock { $0.applied[topology] = fingerprint }
    }

    func removeParkedTags(of topology: String) throws {
        try call("removeParkedTags \(topology)")
        state.withLock { $0.parked.removeAll { $0.topology == topology } }
    }

    /// Parks a tag, as LibXLBackend does for a domain gone without iovm destroying it.
    func park(_ tag: ManagedTag) { state.withLock { $0.parked.append(tag) } }

    func removeStaleRecords() throws {
        try call("removeStaleRecords")
        state.withLock { state in
            let uuids = Set(state.domains.map(\.uuid))
            state.intents = state.intents.filter { uuids.contains($0.key) }
        }
    }

    func waitForDriverDomain(domid: UInt32, timeout: Double) throws {
        try call("waitForDriverDomain \(name(domid))")
    }

    func waitForVifBackends(domid: UInt32, timeout: Double) throws {
        try call("waitForVifBackends \(name(domid))")
    }

    func waitForGuestNetwork(domid: UInt32, timeout: Double) throws {
        try call("waitForGuestNetwork \(name(domid))")
    }

    func destroyDomain(domid: UInt32) throws {
        try call("destroyDomain \(name(domid))")
        network?.unplug(domid: domid)
        state.withLock { state in
            if let uuid = state.domains.first(where: { $0.domid == domid })?.uuid { state.intents[uuid] = nil }
            state.domains.removeAll { $0.domid == domid }
        }
    }

    func removeDeadVif(domid: UInt32, devid: Int, staleBackend: UInt32) throws {
        try call("removeDeadVif \(name(domid)) \(devid)")
        state.withLock { state in
            guard let index = state.domains.firstIndex(where: { $0.domid == domid }) else { return }
            state.domains[index].vifs?.removeAll { $0.devid == devid }
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
        try refuseCoresOutsidePool(hard.map { [$0] } ?? [], of: domid)
        state.withLock { state in
            guard let index = state.domains.firstIndex(where: { $0.domid == domid }) else { return }
            state.domains[index].hardAffinity = Array(repeating: hard ?? CPUSet(0..<cores), count: vcpus)
        }
    }

    /// As Xen: a vCPU's hard affinity must share a core with its domain's cpupool (EINVAL).
    private func refuseCoresOutsidePool(_ sets: [CPUSet], of domid: UInt32) throws {
        let outside = state.withLock { state -> Bool in
            guard let domain = state.domains.first(where: { $0.domid == domid }), let pool = state.pools.first(where: { $0.name == domain.cpupool }) else {
                return false
            }
            return sets.contains { !$0.cores.contains { pool.cpus.contains($0) } }
        }
        if outside { throw FakeError(message: "setting vcpu affinity of \(name(domid)): Invalid argument (cores outside its cpupool)") }
    }

    func setAffinity(domid: UInt32, perVCPU: [CPUSet]) throws {
        try call("setAffinity \(name(domid)) per vCPU \(perVCPU.map(\.description).joined(separator: " "))")
        try refuseCoresOutsidePool(perVCPU, of: domid)
        state.withLock { state in
            guard let index = state.domains.firstIndex(where: { $0.domid == domid }) else { return }
            state.domains[index].hardAffinity = perVCPU
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
            state.domains[index].rtdsByVCPU = Array(repeating: parameters, count: state.domains[index].vcpus)
        }
    }

    func setRTDS(domid: UInt32, perVCPU: [RTDSParameters]) throws {
        try call("setRTDS \(name(domid)) per vCPU \(perVCPU.map { "\($0.periodMicroseconds)/\($0.budgetMicroseconds)/\($0.extratime)" }.joined(separator: " "))")
        state.withLock { state in
            guard let index = state.domains.firstIndex(where: { $0.domid == domid }) else { return }
            state.domains[index].rtdsByVCPU = perVCPU
            state.domains[index].rtds = perVCPU.first.flatMap { first in perVCPU.allSatisfy { $0 == first } ? first : nil }
        }
    }

    func moveToPool(domid: UInt32, pool: String) throws {
        try call("moveToPool \(name(domid)) \(pool)")
        state.withLock { state in
            guard let index = state.domains.firstIndex(where: { $0.domid == domid }) else { return }
            // As Xen 4.17's sched_move_domain: every core, and the new scheduler's defaults.
            state.domains[index].cpupool = pool
            state.domains[index].hardAffinity = Array(repeating: CPUSet(0..<cores), count: state.domains[index].vcpus)
            let rtds = state.pools.first { $0.name == pool }?.scheduler == "rtds"
            state.domains[index].weight = rtds ? -1 : 256
            state.domains[index].cap = rtds ? -1 : 0
            state.domains[index].rtds = rtds ? .xenDefault : nil
            state.domains[index].rtdsByVCPU = rtds ? Array(repeating: .xenDefault, count: state.domains[index].vcpus) : []
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

extension ObservedDomain {
    /// A running one-vCPU IOVM of `topology`, unpinned, weight 256, in Pool-0, holding the NICs `holding`.
    static func iovm(_ name: String, domid: UInt32, topology: String, holding pci: [PCIAddress]) -> ObservedDomain {
        let uuid = "u\(domid)"
        return ObservedDomain(
            domid: domid, name: name, uuid: uuid, vcpus: 1, hardAffinity: [[0, 1, 2, 3]], weight: 256, cap: 0, cpupool: "Pool-0", pci: pci,
            tag: ManagedTag(topology: topology, name: name, role: .iovm, uuid: uuid, specFingerprint: "s"))
    }
}

/// dom0's network in memory, for unit tests only: bridges and their ports, iovm's bridge tags, and the NICs'
/// interfaces (a NIC has its interface only while its FakeXenBackend binding is not pciback). Its calls go
/// into the backend's log (`observe…` for reads), where `fail(prefix)` makes them fail.
final class FakeDom0Network: Dom0Network, @unchecked Sendable {
    struct State: Equatable {
        /// Bridges by name, with their ports.
        var bridges: [String: [String]] = [:]
        /// Devices of dom0 that are not bridges.
        var devices: Set<String> = []
        /// iovm's tags: bridge → topology.
        var tags: [String: String] = [:]
        /// Addresses of interfaces.
        var addresses: [String: [String]] = [:]
        /// NICs bound to no driver (no interface until createBridge loads their driver).
        var unbound: Set<PCIAddress> = []
        /// The interfaces dom0's default routes leave through.
        var routed: Set<String> = []
    }

    let backend: FakeXenBackend
    /// Each NIC's interface while its driver drives it: `eth<k>` for the backend's NIC k unless given.
    let names: [PCIAddress: String]
    private let state: Mutex<State>

    init(backend: FakeXenBackend, state: State = State(), names: [PCIAddress: String]? = nil) {
        self.backend = backend
        self.names = names ?? Dictionary(uniqueKeysWithValues: backend.snapshot.nics.enumerated().map { ($0.element.pci, "eth\($0.offset)") })
        self.state = Mutex(state)
        backend.attach(self)
    }

    var snapshot: State { state.withLock { $0 } }

    /// A bridge iovm did not make (or made for `tag`), with `ports`.
    func addBridge(_ name: String, ports: [String] = [], tag: String? = nil) {
        state.withLock { state in
            state.bridges[name] = ports
            state.tags[name] = tag
        }
    }
    func addDevice(_ name: String) { state.withLock { _ = $0.devices.insert(name) } }
    func setAddresses(_ addresses: [String], of interface: String) { state.withLock { $0.addresses[interface] = addresses } }
    func unbind(_ pci: String) { state.withLock { _ = $0.unbound.insert(PCIAddress(pci)!) } }
    func hasBridge(_ name: String) -> Bool { state.withLock { $0.bridges[name] != nil } }
    func plug(_ port: String, into bridge: String) { state.withLock { $0.bridges[bridge]?.append(port) } }
    func unplug(domid: UInt32) {
        state.withLock { state in
            for name in state.bridges.keys { state.bridges[name]?.removeAll { $0.hasPrefix("vif\(domid).") } }
        }
    }

    func interface(of pci: PCIAddress) throws -> Dom0Interface? {
        try backend.record("observeInterface \(pci)")
        guard let binding = backend.snapshot.nics.first(where: { $0.pci == pci }), !binding.assignable, let name = names[pci] else { return nil }
        return state.withLock { state in
            if state.unbound.contains(pci) { return nil }
            return Dom0Interface(name: name, master: state.bridges.first { $0.value.contains(name) }?.key, addresses: state.addresses[name] ?? [])
        }
    }

    func bridge(named name: String) throws -> ObservedBridge? {
        try backend.record("observeBridge \(name)")
        return state.withLock { state in
            if state.devices.contains(name) { return ObservedBridge(name: name, isBridge: false, managedBy: state.tags[name]) }
            guard let ports = state.bridges[name] else { return nil }
            return ObservedBridge(name: name, ports: ports, managedBy: state.tags[name])
        }
    }

    func managedBridges() throws -> [String: String] {
        try backend.record("observeBridgeTags")
        return snapshot.tags
    }

    func defaultRouteInterfaces() throws -> Set<String> {
        try backend.record("observeDefaultRoutes")
        return snapshot.routed
    }
    func route(through interface: String) { state.withLock { _ = $0.routed.insert(interface) } }

    func createBridge(_ name: String, on pci: PCIAddress, topology: String) throws -> String {
        try backend.record("createBridge \(name) \(pci)")
        // A NIC bound to no driver gets its own (LibXLBackend's binding then reads it; the fake's does not care).
        if backend.snapshot.nics.first(where: { $0.pci == pci })?.driver == nil { state.withLock { _ = $0.unbound.remove(pci) } }
        guard let interface = try interface(of: pci) else { throw FakeXenBackend.FakeError(message: "NIC \(pci) has no interface in dom0") }
        return try state.withLock { state in
            if let master = interface.master, master != name { throw FakeXenBackend.FakeError(message: "\(interface.name) is a port of \(master)") }
            if state.bridges[name] != nil && state.tags[name] != topology { throw FakeXenBackend.FakeError(message: "\(name) is not iovm's") }
            state.tags[name] = topology
            if !(state.bridges[name]?.contains(interface.name) ?? false) { state.bridges[name, default: []].append(interface.name) }
            return interface.name
        }
    }

    func removeBridge(named name: String) throws {
        try backend.record("removeBridge \(name)")
        try state.withLock { state in
            guard state.tags[name] != nil else { throw FakeXenBackend.FakeError(message: "iovm did not make \(name)") }
            state.bridges[name] = nil
            state.tags[name] = nil
        }
    }
}
