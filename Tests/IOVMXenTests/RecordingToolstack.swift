import CPUSets
import Foundation
import Synchronization
import XenKit

@testable import IOVMXen

/// A ``Toolstack`` for unit tests only: it keeps cpupools and domains in memory, records every call
/// as one line (`removeCPU 2 from 0`), and fails with a libxl error the calls it is told to.
final class RecordingToolstack: Toolstack, @unchecked Sendable {
    private struct State {
        var pools: [CPUPoolInfo]
        var domains: [DomainInfo] = []
        var assignable: Set<PCIDeviceAddress> = []
        var nextDomid: UInt32 = 1
        var log: [String] = []
        var failures: [String: Int32] = [:]
        var addedNICs: [String] = []
        var storeSeenAtDestroy: MemoryTagStore?
        var seenAtDestroy: [String] = []
        var rtdsByVCPU: [UInt32: [RTDSSchedule]] = [:]
    }

    private let state: Mutex<State>
    let cores: Int

    /// A host of `cores` CPUs, all in Pool-0, running only dom0.
    init(cores: Int = 4) {
        self.cores = cores
        state = Mutex(
            State(
                pools: [CPUPoolInfo(id: 0, name: "Pool-0", scheduler: "credit", cpus: CPUSet(0..<cores))],
                domains: [DomainInfo(domid: 0, name: "Domain-0", uuid: "00000000-0000-0000-0000-000000000000", vcpusOnline: 2)]))
    }

    /// Every call so far, one line each.
    var calls: [String] { state.withLock { $0.log } }
    /// The cpupools now.
    var pools: [CPUPoolInfo] { state.withLock { $0.pools } }
    /// The domains now.
    var liveDomains: [DomainInfo] { state.withLock { $0.domains } }

    /// Puts domain `domid` under rtds with these per-vCPU reservations, as ``schedule(of:)`` reads them.
    func setRTDSReading(of domid: UInt32, _ reservations: [RTDSSchedule]) { state.withLock { $0.rtdsByVCPU[domid] = reservations } }

    /// Makes every call whose line starts with `prefix` fail with libxl error `code` (ERROR_FAIL by default).
    func fail(_ prefix: String, code: Int32 = -3) { state.withLock { $0.failures[prefix] = code } }

    private func call(_ line: String, operation: String) throws(XenError) {
        let code = state.withLock { state -> Int32? in
            state.log.append(line)
            return state.failures.first { line.hasPrefix($0.key) }?.value
        }
        if let code { throw XenError.libxl(code: code, operation: operation) }
    }

    // MARK: Toolstack

    func hostCPUCount() throws(XenError) -> Int {
        try call("hostCPUCount", operation: "libxl_get_physinfo")
        return cores
    }

    func schedulerName() throws(XenError) -> String { "credit" }

    func domains() throws(XenError) -> [DomainInfo] {
        try call("domains", operation: "libxl_list_domain")
        return liveDomains
    }

    func domainInfo(_ domid: UInt32) throws(XenError) -> DomainInfo {
        try call("domainInfo \(domid)", operation: "libxl_domain_info(\(domid))")
        guard let domain = liveDomains.first(where: { $0.domid == domid }) else {
            throw XenError.libxl(code: -21, operation: "libxl_domain_info(\(domid))")
        }
        return domain
    }

    func vcpuAffinities(of domid: UInt32) throws(XenError) -> [CPUSet] {
        try call("vcpuAffinities \(domid)", operation: "libxl_list_vcpu(\(domid))")
        return [CPUSet(0..<cores)]
    }

    func schedule(of domid: UInt32) throws(XenError) -> DomainSchedule {
        try call("schedule \(domid)", operation: "libxl_domain_sched_params_get(\(domid))")
        if let rtds = state.withLock({ $0.rtdsByVCPU[domid] }) { return DomainSchedule(weight: -1, cap: -1, rtdsByVCPU: rtds) }
        return DomainSchedule(weight: 256, cap: 0)
    }

    func schedule(of domid: UInt32, poolScheduler: String) throws(XenError) -> DomainSchedule {
        try call("schedule \(domid) under \(poolScheduler)", operation: "xc_sched_\(poolScheduler)_domain_get(\(domid))")
        if let rtds = state.withLock({ $0.rtdsByVCPU[domid] }) { return DomainSchedule(weight: -1, cap: -1, rtdsByVCPU: rtds) }
        return DomainSchedule(weight: 256, cap: 0)
    }

    func setSchedule(of domid: UInt32, to schedule: DomainSchedule) throws(XenError) {
        try call("setSchedule \(domid) \(schedule.weight) \(schedule.cap)", operation: "libxl_domain_sched_params_set(\(domid))")
    }

    func setRTDSSchedule(of domid: UInt32, to schedule: RTDSSchedule) throws(XenError) {
        try call(
            "setRTDSSchedule \(domid) \(schedule.periodMicroseconds) \(schedule.budgetMicroseconds) \(schedule.extratime)",
            operation: "libxl_vcpu_sched_params_set_all(\(domid))")
        state.withLock { state in
            if let count = state.domains.first(where: { $0.domid == domid })?.vcpusOnline {
                state.rtdsByVCPU[domid] = Array(repeating: schedule, count: Int(count))
            }
        }
    }

    func setRTDSSchedules(of domid: UInt32, perVCPU: [RTDSSchedule]) throws(XenError) {
        let listed = perVCPU.map { "\($0.periodMicroseconds)/\($0.budgetMicroseconds)/\($0.extratime)" }
        try call("setRTDSSchedules \(domid) \(listed.joined(separator: " "))", operation: "libxl_vcpu_sched_params_set(\(domid))")
        state.withLock { $0.rtdsByVCPU[domid] = perVCPU }
    }

    func setHardAffinities(of domid: UInt32, perVCPU: [CPUSet]) throws(XenError) {
        try call("setHardAffinities \(domid) \(perVCPU.map(\.description).joined(separator: " "))", operation: "libxl_set_vcpuaffinity(\(domid))")
    }

    func setHardAffinity(of domid: UInt32, vcpus: Int, to cpus: CPUSet?) throws(XenError) {
        try call("setHardAffinity \(domid) \(vcpus) \(cpus?.description ?? "all")", operation: "libxl_set_vcpuaffinity(\(domid))")
    }

    func cpuPools() throws(XenError) -> [CPUPoolInfo] {
        try call("cpuPools", operation: "libxl_list_cpupool")
        return pools
    }

    func removeCPU(_ cpu: Int, fromPool poolID: UInt32) throws(XenError) {
        try call("removeCPU \(cpu) from \(poolID)", operation: "libxl_cpupool_cpuremove(\(poolID), \(cpu))")
        state.withLock { state in
            guard let index = state.pools.firstIndex(where: { $0.id == poolID }) else { return }
            state.pools[index].cpus = CPUSet(state.pools[index].cpus.cores.filter { $0 != cpu })
        }
    }

    func addCPU(_ cpu: Int, toPool poolID: UInt32) throws(XenError) {
        try call("addCPU \(cpu) to \(poolID)", operation: "libxl_cpupool_cpuadd(\(poolID), \(cpu))")
        state.withLock { state in
            guard let index = state.pools.firstIndex(where: { $0.id == poolID }) else { return }
            state.pools[index].cpus = CPUSet(state.pools[index].cpus.cores + [cpu])
        }
    }

    func createCPUPool(name: String, scheduler: String, cpus: CPUSet) throws(XenError) -> UInt32 {
        try call("createCPUPool \(name) \(scheduler) \(cpus)", operation: "libxl_cpupool_create(\(name))")
        return state.withLock { state in
            let id = (state.pools.map(\.id).max() ?? 0) + 1
            state.pools.append(CPUPoolInfo(id: id, name: name, scheduler: scheduler, cpus: cpus))
            return id
        }
    }

    func destroyCPUPool(_ pool: CPUPoolInfo) throws(XenError) {
        try call("destroyCPUPool \(pool.name)", operation: "libxl_cpupool_destroy(\(pool.name))")
        state.withLock { $0.pools.removeAll { $0.id == pool.id } }
    }

    func moveDomain(_ domid: UInt32, toPoolNamed poolName: String) throws(XenError) {
        try call("moveDomain \(domid) \(poolName)", operation: "libxl_cpupool_movedomain(\(poolName), \(domid))")
        state.withLock { state in
            guard let pool = state.pools.first(where: { $0.name == poolName }), let index = state.domains.firstIndex(where: { $0.domid == domid }) else { return }
            state.domains[index].cpupool = pool.id
        }
    }

    func addAssignablePCI(_ address: PCIDeviceAddress) throws(XenError) {
        try call("addAssignablePCI \(address)", operation: "libxl_device_pci_assignable_add(\(address))")
        state.withLock { _ = $0.assignable.insert(address) }
    }

    func removeAssignablePCI(_ address: PCIDeviceAddress) throws(XenError) {
        try call("removeAssignablePCI \(address)", operation: "libxl_device_pci_assignable_remove(\(address))")
        state.withLock { _ = $0.assignable.remove(address) }
    }

    func createDomain(configJSON: String, uuid: String, name: String) throws(XenError) -> UInt32 {
        try call("createDomain \(name)", operation: "libxl_domain_create_new(\(name))")
        return state.withLock { state in
            let domid = state.nextDomid
            state.nextDomid += 1
            state.domains.append(DomainInfo(domid: domid, name: name, uuid: uuid, vcpusOnline: 1, state: .init(paused: true)))
            return domid
        }
    }

    func unpauseDomain(_ domid: UInt32, name: String) throws(XenError) {
        try call("unpauseDomain \(domid)", operation: "libxl_domain_unpause(\(name))")
        state.withLock { state in
            guard let index = state.domains.firstIndex(where: { $0.domid == domid }) else { return }
            state.domains[index].state.paused = false
        }
    }

    func destroyDomain(_ domid: UInt32, name: String) throws(XenError) {
        try call("destroyDomain \(domid)", operation: "libxl_domain_destroy(\(name))")
        let seen = storeSeenAtDestroy.map { "\(domid): " + (((try? $0.directory("/local/domain/0/backend/pci/\(domid)")) ?? []).isEmpty ? "no PCI backend" : "PCI backend") }
        state.withLock {
            $0.domains.removeAll { $0.domid == domid }
            if let seen { $0.seenAtDestroy.append(seen) }
        }
    }

    /// The store whose PCI backends ``seenAtDestroy`` reports at each destroy.
    var storeSeenAtDestroy: MemoryTagStore? {
        get { state.withLock { $0.storeSeenAtDestroy } }
        set { state.withLock { $0.storeSeenAtDestroy = newValue } }
    }
    /// At each destroy, whether ``storeSeenAtDestroy`` still held the domain's PCI backend ("7: PCI backend").
    var seenAtDestroy: [String] { state.withLock { $0.seenAtDestroy } }

    /// Marks `domid` as shut down for `reason` (a crashed IOVM: "crash"), as Xen leaves it for the toolstack;
    /// `dying` when a toolstack is destroying it already.
    func shutDown(_ domid: UInt32, reason: String, dying: Bool = false) {
        state.withLock { state in
            guard let index = state.domains.firstIndex(where: { $0.domid == domid }) else { return }
            state.domains[index].state = .init(shutdown: true, dying: dying)
            state.domains[index].shutdownReason = reason
        }
    }

    /// What `xl save` then `xl restore` (or a migration on this host) does: the same domain, its UUID and name, under
    /// a new ID; `name` when it has another one for now (a migration's `guest1--incoming`).
    func changeDomid(_ domid: UInt32, to newDomid: UInt32, name: String? = nil) {
        state.withLock { state in
            guard let index = state.domains.firstIndex(where: { $0.domid == domid }) else { return }
            state.domains[index].domid = newDomid
            if let name { state.domains[index].name = name }
        }
    }

    /// What `xl save` does: the domain is gone; returns what `xl restore` brings back.
    func save(_ domid: UInt32) -> DomainInfo? {
        state.withLock { state in
            guard let index = state.domains.firstIndex(where: { $0.domid == domid }) else { return nil }
            return state.domains.remove(at: index)
        }
    }

    /// What `xl restore` does: `saved` (its UUID and name) again, under `domid`.
    func restore(_ saved: DomainInfo, as domid: UInt32) {
        var domain = saved
        domain.domid = domid
        state.withLock { $0.domains.append(domain) }
    }

    /// Adds a domain as a create killed half-way leaves it: no name yet.
    func addNameless(domid: UInt32, uuid: String) {
        state.withLock { $0.domains.append(DomainInfo(domid: domid, name: nil, uuid: uuid, vcpusOnline: 0, state: .init(paused: true))) }
    }

    /// The NIC JSON of every `addNIC`, in order.
    var addedNICs: [String] { state.withLock { $0.addedNICs } }

    func addNIC(to domid: UInt32, configJSON: String, name: String) throws(XenError) {
        try call("addNIC \(domid)", operation: "libxl_device_nic_add(\(name))")
        state.withLock { $0.addedNICs.append(configJSON) }
    }

    func removeNIC(devid: Int, of domid: UInt32, backendDomid: UInt32, name: String) throws(XenError) {
        try call("removeNIC \(domid) vif \(devid) backend \(backendDomid)", operation: "libxl_device_nic_remove(\(name), vif \(devid))")
    }
}

/// An in-memory xenstore for unit tests only: it records writes and removes, and fails the
/// operations it is told to with `EACCES`.
final class MemoryTagStore: TagStore, @unchecked Sendable {
    private struct State {
        var values: [String: String] = [:]
        var log: [String] = []
        var failures: [String] = []
        var watches: [String] = []
        /// Changes under a watched path not yet taken by ``awaitChange(timeout:)``.
        var pending = 0
        var wakes = 0
        var parked = 0
    }

    private let state = Mutex(State())

    /// Every write and remove so far (`write <path>`, `remove <path>`).
    var changes: [String] { state.withLock { $0.log } }
    /// Every path with a value now.
    var values: [String: String] { state.withLock { $0.values } }

    /// Makes every write or remove whose line (`write <path>`) starts with `prefix` fail.
    func fail(_ prefix: String) { state.withLock { $0.failures.append(prefix) } }

    /// Every path given to ``watch(_:)`` so far, in order.
    var watches: [String] { state.withLock { $0.watches } }
    /// How often ``awaitChange(timeout:)`` returned because a watched path changed.
    var wakes: Int { state.withLock { $0.wakes } }
    /// How many ``awaitChange(timeout:)`` calls found nothing pending and waited: a test that writes once this grew
    /// knows its write is what wakes the waiter.
    var parked: Int { state.withLock { $0.parked } }

    private func change(_ verb: String, _ path: String, operation: String, _ body: (inout [String: String]) -> Void) throws(XenError) {
        let line = "\(verb) \(path)"
        let failed = state.withLock { state -> Bool in
            state.log.append(line)
            if state.failures.contains(where: { line.hasPrefix($0) }) { return true }
            body(&state.values)
            if state.watches.contains(where: { path == $0 || path.hasPrefix($0 + "/") }) { state.pending += 1 }
            return false
        }
        if failed { throw XenError.errno(.permissionDenied, operation: operation) }
    }

    func read(_ path: String) throws(XenError) -> String? { state.withLock { $0.values[path] } }

    func directory(_ path: String) throws(XenError) -> [String]? {
        state.withLock { state in
            let prefix = path + "/"
            let children = Set(state.values.keys.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count).split(separator: "/")[0]) })
            return children.isEmpty ? nil : children.sorted()
        }
    }

    func write(_ path: String, _ value: String) throws(XenError) {
        try change("write", path, operation: "xs_write \(path)") { $0[path] = value }
    }

    func remove(_ path: String) throws(XenError) {
        try change("remove", path, operation: "xs_rm \(path)") { values in
            values = values.filter { $0.key != path && !$0.key.hasPrefix(path + "/") }
        }
    }

    /// Records the watch; like xenstored, it fires once at once.
    func watch(_ path: String) throws(XenError) {
        state.withLock {
            $0.watches.append(path)
            $0.pending += 1
        }
    }

    /// True as soon as a watched path was written or removed since the last call (or a watch was set), false after
    /// `timeout` seconds without one.
    func awaitChange(timeout: Double) throws(XenError) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        var first = true
        while true {
            let woken = state.withLock { state -> Bool in
                guard state.pending > 0 else {
                    if first { state.parked += 1 }
                    return false
                }
                state.pending = 0
                state.wakes += 1
                return true
            }
            first = false
            if woken { return true }
            if Date() >= deadline { return false }
            Thread.sleep(forTimeInterval: 0.005)
        }
    }
}
