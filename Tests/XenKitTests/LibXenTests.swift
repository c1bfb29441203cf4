import CLibXen
import CPUSets
import CXenShim
import Testing

@testable import XenKit

/// These run on machines without Xen (CI, developer boxes): every entry point must fail with a
/// typed error, never crash. On a real dom0 (the lab) they check real values instead.
@Suite("libxl, libxenstat and xenstore without Xen")
struct LibXenTests {
    static let onXen = XenHost.exists("/proc/xen") || XenHost.exists("/dev/xen")

    @Test(.enabled(if: !onXen, "this machine runs Xen"))
    func contextCreationThrowsNotXenDom0() {
        do {
            _ = try LibXLContext()
            Issue.record("LibXLContext() succeeded on a machine without /proc/xen")
        } catch {
            guard case .notXenDom0(let reason) = error else {
                Issue.record("wrong error \(error)")
                return
            }
            #expect(reason.contains("/proc/xen"), "reason: \(reason)")
            #expect(error.description.hasPrefix("not running on a Xen dom0 ("), "\(error)")
        }
    }

    /// Skips the /proc/xen check so the real `libxl_ctx_alloc` runs and fails: the lab notes say
    /// it returns ERROR_FAIL (-3) here, and that must come back as `.notXenDom0`, not a crash.
    @Test(.enabled(if: !onXen, "this machine runs Xen"))
    func libxlCtxAllocFailureBecomesNotXenDom0() {
        do {
            _ = try LibXLContext(logLevel: .silent, checkHost: false)
            Issue.record("libxl_ctx_alloc succeeded without Xen")
        } catch {
            guard case .notXenDom0(let reason) = error else {
                Issue.record("wrong error \(error)")
                return
            }
            #expect(reason.contains("libxl_ctx_alloc returned ERROR_FAIL (-3)"), "reason: \(reason)")
        }
    }

    @Test(.enabled(if: !onXen, "this machine runs Xen"))
    func xenstatThrowsNotXenDom0() {
        #expect(throws: XenError.self) { try XenStatSnapshot.capture() }
        do {
            _ = try XenStat(checkHost: false)  // the real xenstat_init: NULL off Xen
            Issue.record("xenstat_init succeeded without Xen")
        } catch {
            guard case .notXenDom0(let reason) = error else {
                Issue.record("wrong error \(error)")
                return
            }
            #expect(reason.contains("xenstat_init returned NULL"), "reason: \(reason)")
        }
    }

    @Test(.enabled(if: !onXen, "this machine runs Xen"))
    func xenctrlThrowsNotXenDom0() {
        #expect(throws: XenError.self) { try XenControl() }
        do {
            _ = try XenControl(checkHost: false)  // the real xc_interface_open: NULL without /dev/xen/privcmd
            Issue.record("xc_interface_open succeeded without Xen")
        } catch {
            guard case .notXenDom0(let reason) = error else {
                Issue.record("wrong error \(error)")
                return
            }
            #expect(reason.contains("xc_interface_open returned NULL"), "reason: \(reason)")
        }
    }

    /// One hypercall's buffer is one page, which libxencall keeps between calls (a bigger one is mapped afresh).
    @Test func xenctrlChunkFitsOnePage() {
        #expect(XenControl.chunk * MemoryLayout<xc_domaininfo_t>.stride <= 4096)
        #expect(XenControl.chunk >= 16)
    }

    /// The sampler asks libxenstat for vCPUs only; the flags must be libxenstat's own.
    @Test func xenstatPartsAreLibxenstatsFlags() {
        #expect(XenStatSnapshot.Parts.vcpus.rawValue == 0x1)
        #expect(XenStatSnapshot.Parts.networks.rawValue == 0x2)
        #expect(XenStatSnapshot.Parts.version.rawValue == 0x4)
        #expect(XenStatSnapshot.Parts.vbds.rawValue == 0x8)
        #expect(XenStatSnapshot.Parts.all.rawValue == UInt32(cxenshim_xenstat_all()))
    }

    @Test(.enabled(if: !onXen, "this machine runs Xen"))
    func xenstoreThrowsNotXenDom0() {
        do {
            _ = try XenStoreClient()
            Issue.record("xs_open succeeded without Xen")
        } catch {
            guard case .notXenDom0 = error else {
                Issue.record("wrong error \(error)")
                return
            }
        }
    }

    @Test func xenstorePathsWithNULAreRejectedBeforeCallingC() throws {
        try XenStoreClient.validate("/local/domain/0/name", "xs_read")
        do {
            try XenStoreClient.validate("/local/domain/0/bad\u{0}path", "xs_write")
            Issue.record("a path with NUL was accepted")
        } catch {
            guard case .errno(let errno, let operation) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(errno == .invalidArgument)
            #expect(operation.hasPrefix("xs_write "))
            #expect(error.description.contains("path contains NUL"))
        }
    }

    @Test(.enabled(if: onXen, "needs a Xen dom0"))
    func realHostReportsSaneValues() throws {
        let xl = try LibXLContext()
        let phys = try xl.physicalInfo()
        #expect(phys.nrCPUs > 0)
        #expect(phys.totalMemoryKiB >= phys.freeMemoryKiB)
        #expect(try xl.versionInfo().major == 4)
        let domains = try xl.domains()
        #expect(domains.first?.domid == 0)
        #expect(domains.first?.name == "Domain-0")
        #expect(!(try xl.schedulerName()).isEmpty)
        let stat = try XenStatSnapshot.capture()
        #expect(stat.domains.contains { $0.domid == 0 })
        #expect(stat.cpuHz > 0)

        var bitmap = try xl.makeCPUBitmap([0])
        defer { libxl_bitmap_dispose(&bitmap) }
        #expect(Int(bitmap.size) * 8 >= Int(phys.nrCPUs))
        #expect(CPUSet(bitmap) == [0])
        let maxCPUs = try xl.maxCPUs()
        var allButZero = try xl.makeCPUBitmap(try CPUSet(xlList: "all,^0", cpuCount: maxCPUs))
        defer { libxl_bitmap_dispose(&allButZero) }
        #expect(CPUSet(allButZero) == CPUSet(1..<maxCPUs))
        var all = try xl.makeCPUBitmap(nil)
        defer { libxl_bitmap_dispose(&all) }
        #expect(CPUSet(all) == CPUSet(0..<maxCPUs))
    }

    @Test(.enabled(if: onXen, "needs a Xen dom0"))
    func realXenstoreRoundTrip() throws {
        let xs = try XenStoreClient()
        #expect(try xs.read("/local/domain/0/name") == "Domain-0")
        let base = "/local/domain/0/iovm-xenkit-test"
        try xs.withTransaction { t throws(XenError) in
            try xs.write("\(base)/a", "1", in: t)
            try xs.write("\(base)/b", "two", in: t)
        }
        #expect(try xs.directory(base)?.sorted() == ["a", "b"])
        #expect(try xs.read("\(base)/b") == "two")
        try xs.remove(base)
        #expect(try xs.read("\(base)/a") == nil)
        #expect(try xs.directory(base) == nil)
        try xs.remove(base)  // already gone: still fine
        try xs.remove("/local/domain/0/iovm-no-such-parent/child")
        #expect(throws: XenError.self) { try xs.write("\(base)\u{0}cut", "x") }
        #expect(try xs.directory(base) == nil)
    }
}

@Suite("XenError")
struct XenErrorTests {
    @Test func libxlCodesAreNamedLikeLibxlH() {
        #expect(XenError.libxlErrorName(-3) == "ERROR_FAIL")
        #expect(XenError.libxlErrorName(-21) == "ERROR_DOMAIN_NOTFOUND")
        #expect(XenError.libxlErrorName(-32) == "ERROR_QEMU_API")
        #expect(XenError.libxlErrorName(-99) == "ERROR_UNKNOWN(-99)")
    }

    /// Checks the whole Swift table against libxl's own generated string table.
    @Test func tableMatchesLibxlErrorToString() throws {
        for code in Int32(-32)...Int32(-1) {
            let cName = try #require(libxl_error_to_string(libxl_error(rawValue: code)))
            #expect("ERROR_" + String(cString: cName).uppercased() == XenError.libxlErrorName(code))
        }
        #expect(libxl_error_to_string(libxl_error(rawValue: -33)) == nil)
    }

    @Test func descriptionsNameTheOperation() {
        let libxl = XenError.libxl(code: -3, operation: "libxl_ctx_alloc")
        #expect(libxl == .libxl(code: -3, name: "ERROR_FAIL", operation: "libxl_ctx_alloc"))
        #expect(libxl.description == "libxl_ctx_alloc failed: libxl ERROR_FAIL (-3)")
        let errno = XenError.errno(.noSuchFileOrDirectory, operation: "xs_read /local/domain/0/name")
        #expect(errno.description.hasPrefix("xs_read /local/domain/0/name failed: "))
        #expect(errno.description.contains("errno 2"))
        #expect(XenError.notXenDom0(reason: "no /proc/xen").description == "not running on a Xen dom0 (no /proc/xen)")
        #expect(
            XenError.failed(operation: "libxl_list_domain", detail: "returned NULL").description
                == "libxl_list_domain failed: returned NULL")
    }
}
