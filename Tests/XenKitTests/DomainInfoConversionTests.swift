import CLibXen
import CXenShim
import Testing

@testable import XenKit

/// A hypervisor's domain entry converted as `libxl__xcinfo2xlinfo` converts it (the observation lists domains through
/// libxenctrl since issue 16, and must see what libxl's listing showed).
@Suite("DomainInfo from xc_domaininfo_t")
struct DomainInfoConversionTests {
    func entry(domid: UInt16, flags: UInt32) -> xc_domaininfo_t {
        var info = xc_domaininfo_t()
        info.domain = domid
        info.flags = flags
        info.tot_pages = 65_536
        info.max_pages = 65_792
        info.nr_online_vcpus = 2
        info.max_vcpu_id = 3
        info.cpu_time = 123_456_789
        info.cpupool = 2
        withUnsafeMutableBytes(of: &info.handle) { bytes in
            for index in bytes.indices { bytes[index] = UInt8(index * 17 & 0xff) }
        }
        return info
    }

    @Test("a running PV domain: its UUID, memory in KiB, vCPUs, pool and state letters")
    func running() {
        let domain = DomainInfo(xc: entry(domid: 7, flags: XEN_DOMINF_running | XEN_DOMINF_blocked))
        #expect(domain.domid == 7 && domain.name == nil)
        #expect(domain.uuid == "00112233-4455-6677-8899-aabbccddeeff")
        #expect(domain.currentMemoryKiB == 262_144 && domain.maxMemoryKiB == 263_168)
        #expect(domain.vcpusOnline == 2 && domain.maxVCPUID == 3 && domain.cpuTimeNanoseconds == 123_456_789)
        #expect(domain.type == "pv" && domain.cpupool == 2)
        #expect(domain.state.description == "rb----" && domain.shutdownReason == nil)
    }

    @Test("a crashed HVM domain being destroyed: type hvm, shutdown code 3 named crash")
    func crashedAndDying() {
        let flags = XEN_DOMINF_hvm_guest | XEN_DOMINF_shutdown | XEN_DOMINF_dying | (3 << UInt32(XEN_DOMINF_shutdownshift))
        let domain = DomainInfo(xc: entry(domid: 9, flags: flags))
        #expect(domain.type == "hvm")
        #expect(domain.state.shutdown && domain.state.dying && !domain.state.running)
        #expect(domain.shutdownReason == "crash")
    }

    @Test("each shutdown code gets libxl's name for it; one libxl has none is unknown")
    func shutdownCodes() {
        for (code, name) in [(0, "poweroff"), (1, "reboot"), (2, "suspend"), (4, "watchdog"), (5, "soft_reset"), (200, "unknown")] {
            let flags = XEN_DOMINF_shutdown | (UInt32(code) << UInt32(XEN_DOMINF_shutdownshift))
            #expect(DomainInfo(xc: entry(domid: 1, flags: flags)).shutdownReason == name, "code \(code)")
        }
        // The names are libxl's own, and so are the types'.
        for code in 0..<6 {
            let libxl = String(cString: libxl_shutdown_reason_to_string(libxl_shutdown_reason(rawValue: Int32(code)))!)
            #expect(DomainInfo.shutdownReasons[code] == libxl)
        }
        #expect(String(cString: libxl_domain_type_to_string(LIBXL_DOMAIN_TYPE_HVM)!) == "hvm")
        #expect(String(cString: libxl_domain_type_to_string(LIBXL_DOMAIN_TYPE_PV)!) == "pv")
        // The code is read only when the domain has shut down.
        #expect(DomainInfo(xc: entry(domid: 1, flags: 3 << UInt32(XEN_DOMINF_shutdownshift))).shutdownReason == nil)
    }
}
