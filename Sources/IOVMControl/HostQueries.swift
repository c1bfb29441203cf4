public import IOVMCore

/// What commands ask of the host without changing it: the read-only side of the seam, next to
/// ``XenBackend`` (which changes it). `XenHostQueries` (in the `IOVMXen` target) is the real one.
public protocol HostQueries: Sendable {
    /// What Xen says about this host; what cannot be read is recorded in the facts, never thrown.
    func facts() -> XenFacts
    /// The `iovm host` report: libxl's view of the host and one libxenstat sample.
    /// Throws when this is not a Xen dom0.
    func hostReport() throws -> HostReport
    /// The PCI vendor:device ids of a device on this machine; nil when it is not here.
    func pciIDs(_ pci: PCIAddress) -> String?
    /// `iovm doctor`'s checks of this host and of `plan`'s NICs.
    func doctorChecks(plan: Plan?, allowNoIOMMU: Bool) -> [DoctorCheck]
}

/// The `iovm host` report; its `Codable` form is `iovm host --json`'s output.
public struct HostReport: Codable, Sendable, Equatable {
    /// One domain as libxl lists it.
    public struct Domain: Codable, Sendable, Equatable {
        /// Domain id.
        public var domid: UInt32
        /// Name ("" when it has none).
        public var name: String
        /// Current memory, KiB.
        public var memoryKiB: UInt64
        /// vCPUs online.
        public var vcpus: UInt32
        /// The `xl list` state letters.
        public var state: String

        /// Creates a domain row.
        public init(domid: UInt32, name: String, memoryKiB: UInt64, vcpus: UInt32, state: String) {
            self.domid = domid
            self.name = name
            self.memoryKiB = memoryKiB
            self.vcpus = vcpus
            self.state = state
        }
    }

    /// One domain in the libxenstat sample.
    public struct StatDomain: Codable, Sendable, Equatable {
        /// Domain id.
        public var domid: UInt32
        /// Name.
        public var name: String
        /// CPU time used, ns.
        public var cpuNanoseconds: UInt64
        /// vCPUs.
        public var vcpus: Int
        /// CPU time of each vCPU, ns.
        public var vcpuNanoseconds: [UInt64]

        /// Creates a sampled domain.
        public init(domid: UInt32, name: String, cpuNanoseconds: UInt64, vcpus: Int, vcpuNanoseconds: [UInt64]) {
            self.domid = domid
            self.name = name
            self.cpuNanoseconds = cpuNanoseconds
            self.vcpus = vcpus
            self.vcpuNanoseconds = vcpuNanoseconds
        }
    }

    /// The libxenstat sample.
    public struct XenStat: Codable, Sendable, Equatable {
        /// Nominal CPU frequency, Hz.
        public var cpuHz: UInt64
        /// Every domain sampled.
        public var domains: [StatDomain]

        /// Creates a sample.
        public init(cpuHz: UInt64, domains: [StatDomain]) {
            self.cpuHz = cpuHz
            self.domains = domains
        }
    }

    /// Xen's version, e.g. 4.17.7.
    public var xenVersion: String
    /// The default scheduler.
    public var scheduler: String
    /// Physical CPUs.
    public var cores: UInt32
    /// CPU frequency, kHz.
    public var cpuKHz: UInt32
    /// Total memory, KiB.
    public var totalMemoryKiB: UInt64
    /// Free memory, KiB.
    public var freeMemoryKiB: UInt64
    /// Whether an IOMMU is active.
    public var iommu: Bool
    /// Every domain.
    public var domains: [Domain]
    /// One libxenstat sample.
    public var xenstat: XenStat

    /// Creates a report.
    public init(
        xenVersion: String, scheduler: String, cores: UInt32, cpuKHz: UInt32, totalMemoryKiB: UInt64, freeMemoryKiB: UInt64, iommu: Bool,
        domains: [Domain], xenstat: XenStat
    ) {
        self.xenVersion = xenVersion
        self.scheduler = scheduler
        self.cores = cores
        self.cpuKHz = cpuKHz
        self.totalMemoryKiB = totalMemoryKiB
        self.freeMemoryKiB = freeMemoryKiB
        self.iommu = iommu
        self.domains = domains
        self.xenstat = xenstat
    }
}
