import CLibXen
import CXenShim
import Synchronization

/// One domain as the hypervisor lists it (`xc_domaininfo_t`): no name, which lives in xenstore.
public struct DomainRuntime: Sendable, Hashable {
    /// Domain id.
    public var domid: UInt32
    /// CPU time used, in nanoseconds.
    public var cpuNanoseconds: UInt64
    /// vCPUs online.
    public var onlineVCPUs: UInt32
    /// Being destroyed.
    public var dying: Bool
    /// Shut down (crashed, powered off, …) but not yet destroyed.
    public var shutdown: Bool

    /// Creates a domain's runtime figures.
    public init(domid: UInt32, cpuNanoseconds: UInt64, onlineVCPUs: UInt32, dying: Bool = false, shutdown: Bool = false) {
        self.domid = domid
        self.cpuNanoseconds = cpuNanoseconds
        self.onlineVCPUs = onlineVCPUs
        self.dying = dying
        self.shutdown = shutdown
    }
}

/// An open libxenctrl handle (`xc_interface`) for the cheapest whole-host reading: every domain's CPU time and
/// state in one hypercall per page of domains (`xc_domain_getinfolist`; 36 domains with 4.17's 112-byte entries).
///
/// What a sampler needs at 10 Hz. `libxl_list_domain` makes the same hypercall with a 112 KiB buffer (two fresh
/// mappings each time) and then asks the security module about every domain; libxenstat also reads every
/// domain's name from xenstore. Here the buffer fits one page, which libxencall keeps between calls.
///
/// `@unchecked Sendable`: the handle and the buffer are only used with `lock` held.
public final class XenControl: @unchecked Sendable {
    private let handle: OpaquePointer
    private let lock = Mutex(())
    /// Domains per hypercall: as many entries of `xc_domaininfo_t` as fit one 4 KiB page.
    static let chunk = 4096 / MemoryLayout<xc_domaininfo_t>.stride
    nonisolated(unsafe) private var buffer = [xc_domaininfo_t](repeating: xc_domaininfo_t(), count: XenControl.chunk)

    /// Opens libxenctrl (`xc_interface_open`).
    ///
    /// - Throws: ``XenError/notXenDom0(reason:)`` when this is not a Xen dom0 or the interface does not open.
    public convenience init() throws(XenError) {
        try self.init(checkHost: true)
    }

    init(checkHost: Bool) throws(XenError) {
        if checkHost { try XenHost.requireDom0() }
        try XenLibraries.load(.xenctrl)
        guard let handle = xc_interface_open(nil, nil, 0) else {
            throw XenError.notXenDom0(reason: "xc_interface_open returned NULL (errno \(currentCErrno()))")
        }
        self.handle = handle
    }

    deinit {
        xc_interface_close(handle)
    }

    /// The nominal CPU frequency in Hz (`xc_physinfo`'s `cpu_khz`).
    public func cpuHz() throws(XenError) -> UInt64 {
        try lock.withLock { _ throws(XenError) -> UInt64 in
            var info = xc_physinfo_t()
            guard xc_physinfo(handle, &info) == 0 else { throw XenError.currentErrno(operation: "xc_physinfo") }
            return UInt64(info.cpu_khz) * 1000
        }
    }

    /// Every domain, in domid order (`xc_domain_getinfolist`, one call per ``chunk`` domains).
    public func domains() throws(XenError) -> [DomainRuntime] {
        try eachDomain { info in
            DomainRuntime(
                domid: UInt32(info.domain), cpuNanoseconds: info.cpu_time, onlineVCPUs: info.nr_online_vcpus,
                dying: info.flags & UInt32(XEN_DOMINF_dying) != 0, shutdown: info.flags & UInt32(XEN_DOMINF_shutdown) != 0)
        }
    }

    /// Every domain's entry, in domid order, converted by `convert`: `xc_domain_getinfolist` into the one-page buffer,
    /// one call per ``chunk`` domains, until a call returns fewer.
    private func eachDomain<T: Sendable>(_ convert: (xc_domaininfo_t) -> T) throws(XenError) -> [T] {
        try lock.withLock { _ throws(XenError) -> [T] in
            var result: [T] = []
            var first: UInt32 = 0
            while true {
                let count = buffer.withUnsafeMutableBufferPointer { xc_domain_getinfolist(handle, first, UInt32($0.count), $0.baseAddress) }
                guard count >= 0 else { throw XenError.currentErrno(operation: "xc_domain_getinfolist(\(first), \(Self.chunk))") }
                result += buffer.prefix(Int(count)).map(convert)
                guard Int(count) == Self.chunk, let last = buffer.last else { return result }
                first = UInt32(last.domain) + 1
            }
        }
    }

    /// Domain `domid`'s weight and cap under credit or credit2, the scheduler of its cpupool
    /// (`xc_sched_credit_domain_get`, `xc_sched_credit2_domain_get`: one hypercall); nil under any other scheduler.
    ///
    /// The same figures as `libxl_domain_sched_params_get`, which first finds the scheduler itself: the domain's info,
    /// then its cpupool's (a hypercall, and the pool's name from xenstore), for every domain (issue 16).
    public func creditSchedule(of domid: UInt32, scheduler: String) throws(XenError) -> DomainSchedule? {
        try lock.withLock { _ throws(XenError) -> DomainSchedule? in
            switch scheduler {
            case "credit":
                var params = xen_domctl_sched_credit()
                guard xc_sched_credit_domain_get(handle, domid, &params) == 0 else {
                    throw XenError.currentErrno(operation: "xc_sched_credit_domain_get(\(domid))")
                }
                return DomainSchedule(weight: Int(params.weight), cap: Int(params.cap))
            case "credit2":
                var params = xen_domctl_sched_credit2()
                guard xc_sched_credit2_domain_get(handle, domid, &params) == 0 else {
                    throw XenError.currentErrno(operation: "xc_sched_credit2_domain_get(\(domid))")
                }
                return DomainSchedule(weight: Int(params.weight), cap: Int(params.cap))
            default:
                return nil
            }
        }
    }

    /// Every domain as `libxl_list_domain` reports it, names left out (`xc_domain_getinfolist`, one call per
    /// ``chunk`` domains, converted as libxl converts each entry).
    ///
    /// `libxl_list_domain` makes the same hypercall with room for 1,024 domains (a 112 KiB buffer mapped and unmapped
    /// each time), then asks the security module for every domain's label: a hypercall each, which fails with ENOSYS
    /// where Xen has no FLASK (issue 16). Here the buffer fits one page, kept between calls.
    public func domainInfos() throws(XenError) -> [DomainInfo] {
        try eachDomain(DomainInfo.init(xc:))
    }
}
