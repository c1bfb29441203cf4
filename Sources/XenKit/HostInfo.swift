import CLibXen

/// What `libxl_get_physinfo` reports about the machine (`xl info`'s host half).
public struct PhysInfo: Sendable, Hashable, Codable {
    /// Hardware threads per core.
    public var threadsPerCore: UInt32
    /// Cores per socket.
    public var coresPerSocket: UInt32
    /// Highest CPU id Xen could bring online.
    public var maxCPUID: UInt32
    /// Physical CPUs online (`nr_cpus`).
    public var nrCPUs: UInt32
    /// CPU frequency in kHz (`xl info` prints it as `cpu_mhz`).
    public var cpuKHz: UInt32
    /// NUMA nodes.
    public var nrNodes: UInt32
    /// Total machine memory in 4 KiB pages.
    public var totalPages: UInt64
    /// Free (unallocated) memory in 4 KiB pages.
    public var freePages: UInt64
    /// Pages still being scrubbed.
    public var scrubPages: UInt64
    /// Pages claimed but not yet allocated.
    public var outstandingPages: UInt64
    /// Virtualisation capabilities.
    public var capabilities: Capabilities

    /// Total machine memory in KiB (`totalPages * 4`).
    public var totalMemoryKiB: UInt64 { totalPages * 4 }
    /// Free memory in KiB (`freePages * 4`).
    public var freeMemoryKiB: UInt64 { freePages * 4 }

    /// The `cap_*` flags of `libxl_physinfo` (Xen 4.17).
    public struct Capabilities: Sendable, Hashable, Codable {
        /// HVM guests can run (`cap_hvm`).
        public var hvm: Bool
        /// PV guests can run (`cap_pv`).
        public var pv: Bool
        /// An IOMMU is active, so devices can be passed through (`cap_hvm_directio`; `xl info`
        /// shows it as `hvm_directio`, and with `pv` as `pv_directio`).
        public var hvmDirectIO: Bool
        /// Hardware-assisted paging (`cap_hap`).
        public var hap: Bool
        /// Shadow paging (`cap_shadow`).
        public var shadow: Bool
        /// The IOMMU shares HAP page tables (`cap_iommu_hap_pt_share`).
        public var iommuHAPPageTableShare: Bool
        /// Processor trace (`cap_vmtrace`).
        public var vmtrace: Bool
        /// Virtual PMU (`cap_vpmu`).
        public var vpmu: Bool
        /// Grant table v1 (`cap_gnttab_v1`).
        public var gnttabV1: Bool
        /// Grant table v2 (`cap_gnttab_v2`).
        public var gnttabV2: Bool

        /// Whether PCI passthrough is possible: an IOMMU is active (`cap_hvm_directio`).
        public var iommu: Bool { hvmDirectIO }
    }

    /// Copies the fields out of a `libxl_physinfo`.
    init(_ p: libxl_physinfo) {
        threadsPerCore = p.threads_per_core
        coresPerSocket = p.cores_per_socket
        maxCPUID = p.max_cpu_id
        nrCPUs = p.nr_cpus
        cpuKHz = p.cpu_khz
        nrNodes = p.nr_nodes
        totalPages = p.total_pages
        freePages = p.free_pages
        scrubPages = p.scrub_pages
        outstandingPages = p.outstanding_pages
        capabilities = Capabilities(
            hvm: p.cap_hvm, pv: p.cap_pv, hvmDirectIO: p.cap_hvm_directio,
            hap: p.cap_hap, shadow: p.cap_shadow, iommuHAPPageTableShare: p.cap_iommu_hap_pt_share,
            vmtrace: p.cap_vmtrace, vpmu: p.cap_vpmu, gnttabV1: p.cap_gnttab_v1, gnttabV2: p.cap_gnttab_v2)
    }
}

/// The hypervisor's version and build (`libxl_get_version_info`, `xl info`'s `xen_*` lines).
public struct XenVersion: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Major version (4).
    public var major: Int
    /// Minor version (17).
    public var minor: Int
    /// Everything after `major.minor` as the hypervisor reports it (e.g. `".7"`).
    public var extra: String
    /// `xen_caps`, e.g. `"xen-3.0-x86_64 hvm-3.0-x86_32 …"`.
    public var capabilities: String
    /// The changeset the hypervisor was built from.
    public var changeset: String
    /// The hypervisor's command line.
    public var commandLine: String
    /// Compiler used for the hypervisor.
    public var compiler: String
    /// Build date.
    public var compileDate: String
    /// Build id, if the hypervisor has one.
    public var buildID: String
    /// Page size in bytes.
    public var pageSize: Int

    /// `"<major>.<minor><extra>"`, as `xl info` prints `xen_version` (e.g. `"4.17.7"`).
    public var description: String { "\(major).\(minor)\(extra)" }

    /// Copies the fields out of a `libxl_version_info`.
    init(_ v: libxl_version_info) {
        major = Int(v.xen_version_major)
        minor = Int(v.xen_version_minor)
        extra = String(optionalCString: v.xen_version_extra)
        capabilities = String(optionalCString: v.capabilities)
        changeset = String(optionalCString: v.changeset)
        commandLine = String(optionalCString: v.commandline)
        compiler = String(optionalCString: v.compiler)
        compileDate = String(optionalCString: v.compile_date)
        buildID = String(optionalCString: v.build_id)
        pageSize = Int(v.pagesize)
    }
}

/// One domain as `libxl_list_domain` reports it (`xl list`).
public struct DomainInfo: Sendable, Hashable, Codable {
    /// Domain id (0 is dom0).
    public var domid: UInt32
    /// Name from xenstore (`libxl_domid_to_name`); `nil` if it has none (e.g. while dying).
    public var name: String?
    /// UUID in the usual 8-4-4-4-12 lowercase hex form.
    public var uuid: String
    /// Current memory in KiB (`current_memkb`).
    public var currentMemoryKiB: UInt64
    /// Maximum memory in KiB (`max_memkb`).
    public var maxMemoryKiB: UInt64
    /// vCPUs online (`vcpu_online`).
    public var vcpusOnline: UInt32
    /// Highest vCPU id (`vcpu_max_id`); `vcpu_max_id + 1` vCPUs exist.
    public var maxVCPUID: UInt32
    /// CPU time used, in nanoseconds (`cpu_time`).
    public var cpuTimeNanoseconds: UInt64
    /// Domain type: `"pv"`, `"hvm"`, `"pvh"` or `"invalid"`.
    public var type: String
    /// cpupool id.
    public var cpupool: UInt32
    /// Run state flags.
    public var state: State
    /// Why it shut down (`"poweroff"`, `"crash"`, …) when `state.shutdown`; else `nil`.
    public var shutdownReason: String?

    /// The `xl list` state letters as flags.
    public struct State: Sendable, Hashable, Codable, CustomStringConvertible {
        /// Running on a CPU now (`r`).
        public var running: Bool
        /// Blocked (`b`).
        public var blocked: Bool
        /// Paused (`p`).
        public var paused: Bool
        /// Shut down (`s`).
        public var shutdown: Bool
        /// Dying (`d`).
        public var dying: Bool

        /// Creates run state flags (all clear by default).
        public init(running: Bool = false, blocked: Bool = false, paused: Bool = false, shutdown: Bool = false, dying: Bool = false) {
            self.running = running
            self.blocked = blocked
            self.paused = paused
            self.shutdown = shutdown
            self.dying = dying
        }

        /// The six-letter `xl list` form, e.g. `"-b----"` (crash `c` is folded into `s` here).
        public var description: String {
            (running ? "r" : "-") + (blocked ? "b" : "-") + (paused ? "p" : "-")
                + (shutdown ? "s" : "-") + "-" + (dying ? "d" : "-")
        }
    }

    /// Creates a domain description (libxl's come from ``LibXLContext/domains()``).
    public init(
        domid: UInt32, name: String?, uuid: String, currentMemoryKiB: UInt64 = 0, maxMemoryKiB: UInt64 = 0,
        vcpusOnline: UInt32 = 0, maxVCPUID: UInt32 = 0, cpuTimeNanoseconds: UInt64 = 0, type: String = "pvh",
        cpupool: UInt32 = 0, state: State = State(), shutdownReason: String? = nil
    ) {
        self.domid = domid
        self.name = name
        self.uuid = uuid
        self.currentMemoryKiB = currentMemoryKiB
        self.maxMemoryKiB = maxMemoryKiB
        self.vcpusOnline = vcpusOnline
        self.maxVCPUID = maxVCPUID
        self.cpuTimeNanoseconds = cpuTimeNanoseconds
        self.type = type
        self.cpupool = cpupool
        self.state = state
        self.shutdownReason = shutdownReason
    }

    /// Copies a `libxl_dominfo`; `name` is looked up separately.
    init(_ d: libxl_dominfo, name: String?) {
        domid = d.domid
        self.name = name
        uuid = formatUUID(d.uuid)
        currentMemoryKiB = d.current_memkb
        maxMemoryKiB = d.max_memkb
        vcpusOnline = d.vcpu_online
        maxVCPUID = d.vcpu_max_id
        cpuTimeNanoseconds = d.cpu_time
        type = String(optionalCString: libxl_domain_type_to_string(d.domain_type), default: "invalid")
        cpupool = d.cpupool
        state = State(
            running: d.running, blocked: d.blocked, paused: d.paused,
            shutdown: d.shutdown, dying: d.dying)
        shutdownReason =
            d.shutdown
            ? String(optionalCString: libxl_shutdown_reason_to_string(d.shutdown_reason), default: "unknown")
            : nil
    }
}

extension DomainInfo {
    /// libxl's names of the shutdown codes (`libxl_shutdown_reason_to_string`), by code.
    static let shutdownReasons = ["poweroff", "reboot", "suspend", "crash", "watchdog", "soft_reset"]

    /// Converts a hypervisor's entry as `libxl__xcinfo2xlinfo` does (no name, no security label): pages are 4 KiB, the
    /// type is hvm for an HVM or PVH guest and pv otherwise, and the shutdown code is in bits 16-23 of the flags.
    init(xc info: xc_domaininfo_t) {
        let flags = info.flags
        func flag(_ bit: UInt32) -> Bool { flags & bit != 0 }
        let shutdown = flag(XEN_DOMINF_shutdown)
        let code = Int((flags >> UInt32(XEN_DOMINF_shutdownshift)) & UInt32(XEN_DOMINF_shutdownmask))
        let uuid = withUnsafeBytes(of: info.handle) { formatUUID(Array($0)) }
        self.init(
            domid: UInt32(info.domain), name: nil, uuid: uuid, currentMemoryKiB: info.tot_pages &* 4, maxMemoryKiB: info.max_pages &* 4,
            vcpusOnline: info.nr_online_vcpus, maxVCPUID: info.max_vcpu_id, cpuTimeNanoseconds: info.cpu_time,
            type: flag(XEN_DOMINF_hvm_guest) ? "hvm" : "pv", cpupool: info.cpupool,
            state: State(
                running: flag(XEN_DOMINF_running), blocked: flag(XEN_DOMINF_blocked), paused: flag(XEN_DOMINF_paused), shutdown: shutdown,
                dying: flag(XEN_DOMINF_dying)),
            shutdownReason: shutdown ? (code < Self.shutdownReasons.count ? Self.shutdownReasons[code] : "unknown") : nil)
    }
}

/// Lowercase 8-4-4-4-12 hex form of a `libxl_uuid` (`LIBXL_UUID_FMT`).
func formatUUID(_ uuid: libxl_uuid) -> String {
    withUnsafeBytes(of: uuid.uuid) { formatUUID(Array($0)) }
}

/// Lowercase 8-4-4-4-12 hex form of a UUID's 16 bytes (a `libxl_uuid`'s, or a hypervisor entry's `handle`).
func formatUUID(_ bytes: [UInt8]) -> String {
    let hex = bytes.map { byte -> String in
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xf)]])
    }
    return hex[0..<4].joined() + "-" + hex[4..<6].joined() + "-" + hex[6..<8].joined() + "-"
        + hex[8..<10].joined() + "-" + hex[10..<16].joined()
}

extension String {
    /// A Swift string from a C string that may be `NULL`.
    init(optionalCString pointer: UnsafePointer<CChar>?, default fallback: String = "") {
        if let pointer { self.init(cString: pointer) } else { self = fallback }
    }

    init(optionalCString pointer: UnsafeMutablePointer<CChar>?, default fallback: String = "") {
        if let pointer { self.init(cString: pointer) } else { self = fallback }
    }
}
