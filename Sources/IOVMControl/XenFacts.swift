public import IOVMCore

/// One finding of `iovm doctor`.
public struct DoctorCheck: Sendable, Codable, Equatable {
    /// How it went.
    public enum Status: String, Sendable, Codable {
        /// Fine.
        case ok
        /// Works, but not as the paper or a careful operator would want.
        case warning
        /// Blocks apply.
        case failed
    }
    /// What was checked.
    public var name: String
    /// How it went.
    public var status: Status
    /// What was found.
    public var detail: String

    /// Creates a finding.
    public init(_ name: String, _ status: Status, _ detail: String) {
        self.name = name
        self.status = status
        self.detail = detail
    }
}

/// What Xen itself says, gathered once (the real one by IOVMXen; tests build it by hand).
public struct XenFacts: Sendable, Equatable {
    /// Why this is not a usable dom0, or nil when it is.
    public var notDom0: String?
    /// Why xenstored cannot be reached, or nil when it can.
    public var xenstoreProblem: String?
    /// Xen version, e.g. 4.17.7.
    public var version: String?
    /// Pool-0's scheduler.
    public var scheduler: String?
    /// Whether Xen reports an active IOMMU (directio capability); nil if unknown.
    public var iommu: Bool?
    /// Physical cores.
    public var cores: Int?
    /// Memory free for new domains, MiB.
    public var freeMemoryMiB: Int?
    /// The schedulers Xen was built with (its hypfs `/buildinfo/config`), in Kconfig order; nil when unknown.
    public var schedulers: [String]?

    /// Creates facts.
    public init(
        notDom0: String? = nil, xenstoreProblem: String? = nil, version: String? = nil, scheduler: String? = nil,
        iommu: Bool? = nil, cores: Int? = nil, freeMemoryMiB: Int? = nil, schedulers: [String]? = nil
    ) {
        self.schedulers = schedulers
        self.notDom0 = notDom0
        self.xenstoreProblem = xenstoreProblem
        self.version = version
        self.scheduler = scheduler
        self.iommu = iommu
        self.cores = cores
        self.freeMemoryMiB = freeMemoryMiB
    }

    /// The host to plan for when a topology declares none: Xen's cores, free memory and Pool-0's scheduler.
    public var hostShape: HostShape? {
        guard notDom0 == nil, let cores else { return nil }
        return HostShape(cores: cores, memoryMiB: freeMemoryMiB, scheduler: scheduler ?? "credit2")
    }

    /// The schedulers a hypervisor's Kconfig (hypfs `/buildinfo/config`) builds in: `CONFIG_SCHED_CREDIT=y` is
    /// `credit`, `CONFIG_SCHED_RTDS=y` is `rtds`, and so on; nil when it names none (Xen always has one: the text is
    /// not what was expected).
    public static func schedulers(fromBuildConfig config: String) -> [String]? {
        let names = ["CREDIT": "credit", "CREDIT2": "credit2", "RTDS": "rtds", "ARINC653": "arinc653", "NULL": "null"]
        let found = config.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("CONFIG_SCHED_"), line.hasSuffix("=y") else { return nil }
            return names[String(line.dropFirst("CONFIG_SCHED_".count).dropLast(2))]
        }
        return found.isEmpty ? nil : found
    }

    /// Why `plan` cannot run on this Xen, which was built without a scheduler one of its cpupools (or Pool-0)
    /// needs, or nil (also when the schedulers are unknown: apply then finds out from libxl).
    public func schedulerRefusal(_ plan: Plan) -> String? {
        guard let schedulers, !schedulers.isEmpty else { return nil }
        let needed = Set(plan.cpupools.map(\.scheduler))
        guard let missing = needed.subtracting(schedulers).sorted().first else { return nil }
        let pool = plan.cpupools.first { $0.scheduler == missing }!.name
        var hint = ""
        if missing == "rtds" {
            hint =
                "; rtds is an unsupported scheduler Xen builds only in debug builds or with CONFIG_SCHED_RTDS=y (Debian's Xen is built without it): for a static placement under credit, pin instead (Placement.iovmAffinity() with the credit scheduler)"
        }
        return
            "cpupool \(pool) needs the \(missing) scheduler, but Xen on this host was built without it (its build configuration, hypfs /buildinfo/config, has \(schedulers.joined(separator: ", ")))\(hint)"
    }

    /// The IOMMU policy: whether passthrough is refused on this host, which it is without an active
    /// IOMMU (an IOVM would get unchecked DMA) unless `--allow-no-iommu` accepts that.
    public func refusesPassthrough(allowNoIOMMU: Bool) -> Bool {
        !allowNoIOMMU && iommu != true
    }

    /// Why passing `plan`'s NICs through is refused on this host, or nil (the policy of
    /// ``refusesPassthrough(allowNoIOMMU:)``, for a plan that passes NICs through).
    public func passthroughRefusal(_ plan: Plan, allowNoIOMMU: Bool) -> String? {
        guard !plan.iovms.allSatisfy({ $0.nics.isEmpty }), refusesPassthrough(allowNoIOMMU: allowNoIOMMU) else { return nil }
        return "Xen reports no active IOMMU: passing NICs through would give the IOVMs unchecked DMA; run `iovm doctor`, or pass --allow-no-iommu"
    }

    /// `iovm doctor`'s IOMMU finding, by the same policy as ``passthroughRefusal(_:allowNoIOMMU:)``.
    public func iommuCheck(allowNoIOMMU: Bool) -> DoctorCheck {
        if iommu == true { return DoctorCheck("IOMMU", .ok, "active (VT-d/AMD-Vi): passthrough is isolated") }
        return refusesPassthrough(allowNoIOMMU: allowNoIOMMU)
            ? DoctorCheck("IOMMU", .failed, "not active: PCI passthrough would give IOVMs unchecked DMA; refusing (--allow-no-iommu to override)")
            : DoctorCheck("IOMMU", .warning, "not active; passthrough allowed by --allow-no-iommu, without DMA isolation")
    }
}
