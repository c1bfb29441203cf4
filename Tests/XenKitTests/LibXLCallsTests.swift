import CLibXen
import Testing

@testable import XenKit

/// The funnel every libxl call goes through, driven by the mocking trace (no Xen needed).
@Suite("libxl call funnel and its mocking trace")
struct LibXLCallsTests {
    @Test func aNonzeroCodeBecomesATypedErrorNamingTheOperation() {
        #expect(throws: XenError.libxl(code: -3, name: "ERROR_FAIL", operation: "libxl_cpupool_create(iovm)")) {
            try LibXLCalls.check("libxl_cpupool_create", operation: "libxl_cpupool_create(iovm)") { -3 }
        }
        #expect(throws: Never.self) { try LibXLCalls.check("libxl_cpupool_create", operation: "unused") { 0 } }
        #expect(
            XenError.libxl(code: -3, operation: "libxl_cpupool_create(iovm)").description
                == "libxl_cpupool_create(iovm) failed: libxl ERROR_FAIL (-3)")
    }

    @Test func aForcedCodeReplacesTheCallAndIsTraced() throws {
        let mocking = LibXLMocking()
        mocking.force("libxl_cpupool_cpuremove", code: -6, occurrence: 2)
        var reached: [Int] = []
        let outcome = LibXLMocking.$current.withValue(mocking) { () -> [Result<Void, XenError>] in
            (1...3).map { cpu in
                Result { () throws(XenError) in
                    try LibXLCalls.check("libxl_cpupool_cpuremove", operation: "libxl_cpupool_cpuremove(Pool-0, \(cpu))") {
                        reached.append(cpu)
                        return 0
                    }
                }
            }
        }
        #expect(reached == [1, 3])  // the second call never reached "libxl"
        #expect(mocking.trace == ["libxl_cpupool_cpuremove", "libxl_cpupool_cpuremove", "libxl_cpupool_cpuremove"])
        guard case .failure(let error) = outcome[1] else {
            Issue.record("the forced call succeeded")
            return
        }
        #expect(error == .libxl(code: -6, name: "ERROR_INVAL", operation: "libxl_cpupool_cpuremove(Pool-0, 2)"))
        #expect((try? outcome[0].get()) != nil && (try? outcome[2].get()) != nil)
    }

    @Test func aForcedPointerCallReturnsNull() {
        let mocking = LibXLMocking()
        mocking.force("libxl_list_domain", code: -3)
        LibXLMocking.$current.withValue(mocking) {
            #expect(throws: XenError.failed(operation: "libxl_list_domain", detail: "returned NULL")) {
                _ = try LibXLCalls.pointer("libxl_list_domain", operation: "libxl_list_domain", detail: "returned NULL") { () -> Int? in 1 }
            }
            #expect(LibXLCalls.optionalPointer("libxl_list_domain") { () -> Int? in 1 } == nil)
            #expect(LibXLCalls.optionalPointer("libxl_domid_to_name") { () -> Int? in 1 } == 1)
        }
        #expect(mocking.trace == ["libxl_list_domain", "libxl_list_domain", "libxl_domid_to_name"])
    }

    /// The rtds reservation goes through the funnel as one `libxl_vcpu_sched_params_set_all`, every vCPU's at once;
    /// libxl's refusal (another scheduler, a budget over the period) becomes an error naming the reservation.
    @Test func anRTDSReservationIsOneFunnelledCall() {
        let mocking = LibXLMocking()
        mocking.force("libxl_vcpu_sched_params_set_all", code: -3)
        let ctx = OpaquePointer(bitPattern: 0x1)!  // never dereferenced: the forced call does not reach libxl
        LibXLMocking.$current.withValue(mocking) {
            #expect(
                throws: XenError.libxl(
                    code: -3, name: "ERROR_FAIL", operation: "libxl_vcpu_sched_params_set_all(7, rtds period 10000 us, budget 4000 us, extratime 1)")
            ) {
                try LibXLContext.setRTDSSchedule(ctx, domid: 7, to: RTDSSchedule(periodMicroseconds: 10_000, budgetMicroseconds: 4_000, extratime: true))
            }
            // Too large for libxl's int: refused before any call.
            #expect(throws: XenError.self) {
                try LibXLContext.setRTDSSchedule(ctx, domid: 7, to: RTDSSchedule(periodMicroseconds: 1 << 40, budgetMicroseconds: 1, extratime: false))
            }
        }
        #expect(mocking.trace == ["libxl_vcpu_sched_params_set_all"])
    }

    /// Reservations that differ between vCPUs are one funnelled `libxl_vcpu_sched_params_set`, each entry naming its
    /// vCPU; an empty list or a value over libxl's int is refused before any call.
    @Test func perVCPUReservationsAreOneFunnelledCall() {
        let mocking = LibXLMocking()
        mocking.force("libxl_vcpu_sched_params_set", code: -6)
        let ctx = OpaquePointer(bitPattern: 0x1)!  // never dereferenced: the forced call does not reach libxl
        let apart = [
            RTDSSchedule(periodMicroseconds: 10_000, budgetMicroseconds: 4_000, extratime: true),
            RTDSSchedule(periodMicroseconds: 20_000, budgetMicroseconds: 5_000, extratime: false),
        ]
        LibXLMocking.$current.withValue(mocking) {
            #expect(
                throws: XenError.libxl(
                    code: -6, name: "ERROR_INVAL",
                    operation: "libxl_vcpu_sched_params_set(7, rtds vCPU 0 10000/4000 us extratime, vCPU 1 20000/5000 us)")
            ) {
                try LibXLContext.setRTDSSchedules(ctx, domid: 7, perVCPU: apart)
            }
            #expect(throws: XenError.self) { try LibXLContext.setRTDSSchedules(ctx, domid: 7, perVCPU: []) }
            #expect(throws: XenError.self) {
                try LibXLContext.setRTDSSchedules(ctx, domid: 7, perVCPU: [RTDSSchedule(periodMicroseconds: 1 << 40, budgetMicroseconds: 1, extratime: false)])
            }
        }
        #expect(mocking.trace == ["libxl_vcpu_sched_params_set"])
    }

    /// Each vCPU's reservation is read through the funnel (`libxl_vcpu_sched_params_get_all`), not the domain-wide
    /// query, which rtds answers with its defaults.
    @Test func rtdsReservationsAreReadPerVCPUThroughTheFunnel() {
        let mocking = LibXLMocking()
        mocking.force("libxl_vcpu_sched_params_get_all", code: -6)
        let ctx = OpaquePointer(bitPattern: 0x1)!
        LibXLMocking.$current.withValue(mocking) {
            #expect(throws: XenError.libxl(code: -6, name: "ERROR_INVAL", operation: "libxl_vcpu_sched_params_get_all(7)")) {
                _ = try LibXLContext.rtdsReservations(ctx, domid: 7)
            }
        }
        #expect(mocking.trace == ["libxl_vcpu_sched_params_get_all"])
    }

    /// Under rtds the reservation comes from the per-vCPU answer, never from the domain-wide one (rtds' defaults);
    /// under credit the per-vCPU call is not made.
    @Test func rtdsReadsEachVCPUNotTheDomainWideDefaults() throws {
        var wide = libxl_domain_sched_params()
        wide.sched = LIBXL_SCHEDULER_RTDS
        wide.weight = -1
        wide.cap = -1
        wide.period = 10_000
        wide.budget = 4_000
        wide.extratime = -1
        let own = RTDSSchedule(periodMicroseconds: 20_000, budgetMicroseconds: 5_000, extratime: false)
        let read = try LibXLContext.schedule(from: wide) { () throws(XenError) in [own, own] }
        #expect(read.rtds == own && read.rtdsByVCPU.count == 2)

        var credit = libxl_domain_sched_params()
        credit.sched = LIBXL_SCHEDULER_CREDIT
        credit.weight = 512
        credit.cap = 50
        let plain = try LibXLContext.schedule(from: credit) { () throws(XenError) in
            Issue.record("the per-vCPU call is made under credit")
            return []
        }
        #expect(plain == DomainSchedule(weight: 512, cap: 50))

        let entries = UnsafeMutablePointer<libxl_sched_params>.allocate(capacity: 2)
        defer { entries.deallocate() }
        entries[0] = libxl_sched_params(vcpuid: 0, weight: -1, cap: -1, period: 20_000, extratime: 0, budget: 5_000)
        entries[1] = libxl_sched_params(vcpuid: 1, weight: -1, cap: -1, period: 20_000, extratime: 1, budget: 5_000)
        let perVCPU = LibXLContext.rtdsReservations(from: libxl_vcpu_sched_params(sched: LIBXL_SCHEDULER_RTDS, num_vcpus: 2, vcpus: entries))
        #expect(perVCPU == [own, RTDSSchedule(periodMicroseconds: 20_000, budgetMicroseconds: 5_000, extratime: true)])
        #expect(DomainSchedule(weight: -1, cap: -1, rtdsByVCPU: perVCPU).rtds == nil)
    }

    @Test func valuesBelowTheMinimumAreErrors() {
        #expect(throws: XenError.libxl(code: 0, name: "SUCCESS", operation: "libxl_get_max_cpus")) {
            try LibXLCalls.value("libxl_get_max_cpus", minimum: 1, operation: "libxl_get_max_cpus") { 0 }
        }
        #expect((try? LibXLCalls.value("libxl_get_scheduler", operation: "libxl_get_scheduler") { 5 }) == 5)
    }

    /// A forced `libxl_ctx_alloc` failure takes the same path as a real one: `.notXenDom0`
    /// naming the code, with the logger torn down and nothing leaked.
    @Test func aForcedContextAllocationFailureIsNotXenDom0() {
        let mocking = LibXLMocking()
        mocking.force("libxl_ctx_alloc", code: -5)
        LibXLMocking.$current.withValue(mocking) {
            do throws(XenError) {
                _ = try LibXLContext(logLevel: .silent, checkHost: false)
                Issue.record("a forced libxl_ctx_alloc failure made a context")
            } catch {
                guard case .notXenDom0(let reason) = error else {
                    Issue.record("wrong error \(error)")
                    return
                }
                #expect(reason.hasPrefix("libxl_ctx_alloc returned ERROR_NOMEM (-5)"), "reason: \(reason)")
            }
        }
        #expect(mocking.trace == ["libxl_ctx_alloc"])
    }

    @Test func pciAddressesPrintAsSysfsDoes() {
        #expect(PCIDeviceAddress(domain: 0, bus: 0, device: 0x10, function: 0).description == "0000:00:10.0")
        #expect(PCIDeviceAddress(domain: 1, bus: 0x0a, device: 0x1f, function: 7).description == "0001:0a:1f.7")
    }
}
