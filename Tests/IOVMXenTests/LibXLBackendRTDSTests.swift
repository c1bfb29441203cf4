import Foundation
import IOVMControl
import IOVMCore
import Logging
import Testing
import XenKit

@testable import IOVMXen

/// rtds through the backend: Xen keeps a reservation per vCPU, and drops the extratime of a domain-wide one, so
/// each vCPU's is read and set.
@Suite("LibXLBackend rtds reservations")
struct LibXLBackendRTDSTests {
    func backend(_ toolstack: RecordingToolstack, _ store: MemoryTagStore) -> LibXLBackend {
        LibXLBackend(
            context: toolstack, openToolstack: { () throws(XenError) in toolstack }, openStore: { _ throws(XenError) in store },
            logger: Logger(label: "iovm.test"), sysfs: SysfsPCI(root: "/nonexistent"), strictReset: true)
    }

    /// A guest without NICs, with `rtds` as its reservation.
    func guestSpec(_ name: String, rtds: RTDSParameters?) throws -> DomainSpec {
        let json = """
            {"name": "\(name)", "role": "guest", "type": "pvh", "memoryMiB": 256, "vcpus": 1, "kernel": "/boot/vmlinuz",
             "cmdline": "", "disks": [], "driverDomain": false, "nics": [], "vifs": [], "cpupool": "Pool-0",
             "weight": 256, "cap": 0, "backs": []}
            """
        var spec = try JSONDecoder().decode(DomainSpec.self, from: Data(json.utf8))
        spec.rtds = rtds
        return spec
    }

    func tag(_ name: String) -> ManagedTag {
        ManagedTag(topology: "rtds", name: name, role: .guest, uuid: "", specFingerprint: "f")
    }

    @Test("a domain with a reservation gets each vCPU's set while it is paused: libxl's create drops extratime")
    func creationSetsEachVCPUBeforeUnpausing() throws {
        let toolstack = RecordingToolstack()
        let reservation = RTDSParameters(periodMicroseconds: 20_000, budgetMicroseconds: 5_000, extratime: false)
        let domid = try backend(toolstack, MemoryTagStore()).createDomain(try guestSpec("guest1", rtds: reservation), libxlJSON: "{}", tag: tag("guest1"))
        #expect(toolstack.calls == ["createDomain guest1", "setRTDSSchedule 1 20000 5000 false", "unpauseDomain 1", "domainInfo 1"])
        #expect(domid == 1)
    }

    @Test func aDomainWithoutAReservationGetsNoRTDSCall() throws {
        let toolstack = RecordingToolstack()
        _ = try backend(toolstack, MemoryTagStore()).createDomain(try guestSpec("guest1", rtds: nil), libxlJSON: "{}", tag: tag("guest1"))
        #expect(!toolstack.calls.contains { $0.hasPrefix("setRTDSSchedule") })
    }

    @Test("a reservation Xen refuses at creation destroys the paused domain, never unpaused")
    func aRefusedReservationDestroysTheDomain() throws {
        let toolstack = RecordingToolstack()
        let store = MemoryTagStore()
        toolstack.fail("setRTDSSchedule")
        let reservation = RTDSParameters(periodMicroseconds: 20_000, budgetMicroseconds: 5_000, extratime: true)
        #expect(throws: XenError.libxl(code: -3, operation: "libxl_vcpu_sched_params_set_all(1)")) {
            _ = try backend(toolstack, store).createDomain(try guestSpec("guest1", rtds: reservation), libxlJSON: "{}", tag: tag("guest1"))
        }
        #expect(toolstack.calls == ["createDomain guest1", "setRTDSSchedule 1 20000 5000 true", "destroyDomain 1"])
        #expect(toolstack.liveDomains.map(\.domid) == [0])
        #expect(store.values.isEmpty)
    }

    @Test("the observation reads the reservation the vCPUs share; vCPUs that differ are no reservation, so apply sets them")
    func observationReadsEachVCPU() throws {
        let toolstack = RecordingToolstack()
        let store = MemoryTagStore()
        let own = backend(toolstack, store)
        let reservation = RTDSParameters(periodMicroseconds: 20_000, budgetMicroseconds: 5_000, extratime: false)
        let domid = try own.createDomain(try guestSpec("guest1", rtds: reservation), libxlJSON: "{}", tag: tag("guest1"))
        #expect(try own.observe(nics: []).domain("guest1")?.rtds == reservation)

        let first = RTDSSchedule(periodMicroseconds: 20_000, budgetMicroseconds: 5_000, extratime: false)
        let second = RTDSSchedule(periodMicroseconds: 20_000, budgetMicroseconds: 5_000, extratime: true)
        toolstack.setRTDSReading(of: domid, [first, second])
        let observed = try own.observe(nics: []).domain("guest1")
        #expect(observed?.rtds == nil)
        #expect(observed?.rtdsByVCPU.map(\.extratime) == [false, true])
        #expect(DomainSchedule(weight: -1, cap: -1, rtdsByVCPU: [first, second]).rtds == nil)
        #expect(DomainSchedule(weight: -1, cap: -1, rtdsByVCPU: [second, second]).rtds == second)
        #expect(DomainSchedule(weight: 256, cap: 0).rtds == nil)
    }

    @Test("reservations that differed between vCPUs are set back each to its vCPU, in one libxl call")
    func eachVCPUIsSetBack() throws {
        let toolstack = RecordingToolstack()
        let own = backend(toolstack, MemoryTagStore())
        let domid = try own.createDomain(try guestSpec("guest1", rtds: nil), libxlJSON: "{}", tag: tag("guest1"))
        let apart = [
            RTDSParameters(periodMicroseconds: 20_000, budgetMicroseconds: 5_000, extratime: false),
            RTDSParameters(periodMicroseconds: 10_000, budgetMicroseconds: 1_000, extratime: true),
        ]
        try own.setRTDS(domid: domid, perVCPU: apart)
        #expect(toolstack.calls.last == "setRTDSSchedules 1 20000/5000/false 10000/1000/true")
        #expect(try own.observe(nics: []).domain("guest1")?.rtdsByVCPU == apart)
    }
}
