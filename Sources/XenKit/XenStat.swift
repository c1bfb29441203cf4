import CLibXen
import CXenShim
import Synchronization

/// One libxenstat sample of the whole host (what `xentop` shows for one refresh).
///
/// Network counters come from dom0's view of each domain's vif backends; a guest whose vif
/// backend lives in a driver domain shows no networks here: count its traffic inside the driver
/// domain.
public struct XenStatSnapshot: Sendable, Hashable, Codable {
    /// CPU frequency in Hz (`xenstat_node_cpu_hz`).
    public var cpuHz: UInt64
    /// Physical CPUs (`xenstat_node_num_cpus`).
    public var cpuCount: UInt32
    /// Total machine memory in bytes.
    public var totalMemoryBytes: UInt64
    /// Free machine memory in bytes.
    public var freeMemoryBytes: UInt64
    /// Hypervisor version string, when requested.
    public var xenVersion: String?
    /// Every domain in the sample.
    public var domains: [Domain]

    /// One domain in a sample.
    public struct Domain: Sendable, Hashable, Codable {
        /// Domain id.
        public var domid: UInt32
        /// Name (`xenstat_domain_name`); empty if xenstore had none.
        public var name: String
        /// CPU time used, in nanoseconds.
        public var cpuNanoseconds: UInt64
        /// Current memory in bytes.
        public var currentMemoryBytes: UInt64
        /// Maximum memory in bytes (`UInt64.max`-like values mean unlimited).
        public var maxMemoryBytes: UInt64
        /// Per-vCPU counters, index = vCPU id.
        public var vcpus: [VCPU]
        /// Per-vif counters seen by dom0.
        public var networks: [Network]
        /// Running on a CPU now.
        public var running: Bool
        /// Blocked.
        public var blocked: Bool
        /// Paused.
        public var paused: Bool
        /// Shut down.
        public var shutdown: Bool
        /// Crashed.
        public var crashed: Bool
        /// Dying.
        public var dying: Bool
    }

    /// One vCPU's counters.
    public struct VCPU: Sendable, Hashable, Codable {
        /// Whether the vCPU is online.
        public var online: Bool
        /// CPU time used by this vCPU, in nanoseconds.
        public var nanoseconds: UInt64
    }

    /// One vif's counters (backend view: `rx` is what the guest sent).
    public struct Network: Sendable, Hashable, Codable {
        /// vif device id (the `N` of `vifD.N`).
        public var id: UInt32
        /// Bytes received.
        public var rxBytes: UInt64
        /// Packets received.
        public var rxPackets: UInt64
        /// Receive errors.
        public var rxErrors: UInt64
        /// Receive drops.
        public var rxDrops: UInt64
        /// Bytes transmitted.
        public var txBytes: UInt64
        /// Packets transmitted.
        public var txPackets: UInt64
        /// Transmit errors.
        public var txErrors: UInt64
        /// Transmit drops.
        public var txDrops: UInt64
    }

    /// What a sample collects besides each domain's CPU time, memory and state (the `flags` of
    /// `xenstat_get_node`). Each part costs dom0 work: networks parse dom0's `/proc/net/dev`,
    /// VBDs read sysfs for every virtual disk, so a frequent sampler asks only for what it uses.
    public struct Parts: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        /// Creates parts from `xenstat_get_node` flags.
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// Per-vCPU time and online state (`XENSTAT_VCPU`).
        public static let vcpus = Parts(rawValue: UInt32(XENSTAT_VCPU))
        /// dom0's view of each vif (`XENSTAT_NETWORK`).
        public static let networks = Parts(rawValue: UInt32(XENSTAT_NETWORK))
        /// The hypervisor's version (`XENSTAT_XEN_VERSION`).
        public static let version = Parts(rawValue: UInt32(XENSTAT_XEN_VERSION))
        /// Virtual block devices (`XENSTAT_VBD`; read but not kept in a snapshot).
        public static let vbds = Parts(rawValue: UInt32(XENSTAT_VBD))
        /// Everything (`XENSTAT_ALL`).
        public static let all: Parts = [.vcpus, .networks, .version, .vbds]
    }

    /// Opens libxenstat, takes one sample with `XENSTAT_ALL`, and closes it again.
    ///
    /// - Throws: ``XenError/notXenDom0(reason:)`` off Xen or when `xenstat_init` returns `NULL`;
    ///   ``XenError/errno(_:operation:)`` when `xenstat_get_node` fails.
    public static func capture() throws(XenError) -> XenStatSnapshot {
        try XenStat().snapshot()
    }
}

/// An open libxenstat handle (`xenstat_handle`) for taking repeated ``XenStatSnapshot``s.
///
/// `@unchecked Sendable`: the handle is only used with `lock` held.
public final class XenStat: @unchecked Sendable {
    private let handle: OpaquePointer
    private let lock = Mutex(())

    /// Opens libxenstat (`xenstat_init`).
    ///
    /// - Throws: ``XenError/notXenDom0(reason:)`` when this is not a Xen dom0 or `xenstat_init`
    ///   returns `NULL`.
    public convenience init() throws(XenError) {
        try self.init(checkHost: true)
    }

    init(checkHost: Bool) throws(XenError) {
        if checkHost { try XenHost.requireDom0() }
        try XenLibraries.load(.xenstat)
        guard let handle = xenstat_init() else {
            let errno = currentCErrno()
            throw XenError.notXenDom0(reason: "xenstat_init returned NULL (errno \(errno))")
        }
        self.handle = handle
    }

    deinit {
        xenstat_uninit(handle)
    }

    /// Takes one sample of every domain (`xenstat_get_node(handle, flags)`), collecting `parts`
    /// (default: all, as xentop does). Parts not asked for are empty or nil in the snapshot.
    public func snapshot(_ parts: XenStatSnapshot.Parts = .all) throws(XenError) -> XenStatSnapshot {
        try lock.withLock { _ throws(XenError) -> XenStatSnapshot in
            guard let node = xenstat_get_node(handle, parts.rawValue) else {
                throw XenError.currentErrno(operation: "xenstat_get_node(0x\(String(parts.rawValue, radix: 16)))")
            }
            defer { xenstat_free_node(node) }
            return Self.read(node, parts)
        }
    }

    private static func read(_ node: OpaquePointer, _ parts: XenStatSnapshot.Parts) -> XenStatSnapshot {
        var domains: [XenStatSnapshot.Domain] = []
        let count = xenstat_node_num_domains(node)
        for index in 0..<count {
            guard let domain = xenstat_node_domain_by_index(node, index) else { continue }
            var vcpus: [XenStatSnapshot.VCPU] = []
            // Without XENSTAT_VCPU the vCPU array is not allocated: xenstat_domain_vcpu must not be called.
            for v in parts.contains(.vcpus) ? 0..<xenstat_domain_num_vcpus(domain) : 0..<0 {
                guard let vcpu = xenstat_domain_vcpu(domain, v) else { continue }
                vcpus.append(.init(online: xenstat_vcpu_online(vcpu) != 0, nanoseconds: xenstat_vcpu_ns(vcpu)))
            }
            var networks: [XenStatSnapshot.Network] = []
            for n in parts.contains(.networks) ? 0..<xenstat_domain_num_networks(domain) : 0..<0 {
                guard let net = xenstat_domain_network(domain, n) else { continue }
                networks.append(
                    .init(
                        id: xenstat_network_id(net),
                        rxBytes: xenstat_network_rbytes(net), rxPackets: xenstat_network_rpackets(net),
                        rxErrors: xenstat_network_rerrs(net), rxDrops: xenstat_network_rdrop(net),
                        txBytes: xenstat_network_tbytes(net), txPackets: xenstat_network_tpackets(net),
                        txErrors: xenstat_network_terrs(net), txDrops: xenstat_network_tdrop(net)))
            }
            domains.append(
                .init(
                    domid: UInt32(xenstat_domain_id(domain)),
                    name: String(optionalCString: xenstat_domain_name(domain)),
                    cpuNanoseconds: xenstat_domain_cpu_ns(domain),
                    currentMemoryBytes: xenstat_domain_cur_mem(domain),
                    maxMemoryBytes: xenstat_domain_max_mem(domain),
                    vcpus: vcpus, networks: networks,
                    running: xenstat_domain_running(domain) != 0, blocked: xenstat_domain_blocked(domain) != 0,
                    paused: xenstat_domain_paused(domain) != 0, shutdown: xenstat_domain_shutdown(domain) != 0,
                    crashed: xenstat_domain_crashed(domain) != 0, dying: xenstat_domain_dying(domain) != 0))
        }
        let version = parts.contains(.version) ? xenstat_node_xen_version(node).map { String(cString: $0) } : nil
        return XenStatSnapshot(
            cpuHz: xenstat_node_cpu_hz(node), cpuCount: xenstat_node_num_cpus(node),
            totalMemoryBytes: xenstat_node_tot_mem(node), freeMemoryBytes: xenstat_node_free_mem(node),
            xenVersion: version, domains: domains)
    }
}
