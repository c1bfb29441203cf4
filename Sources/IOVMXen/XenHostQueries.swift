public import IOVMControl
public import IOVMCore
public import Logging
import XenKit

/// The real ``HostQueries``: libxl, libxenstat, xenstore and sysfs of this dom0.
public struct XenHostQueries: HostQueries {
    /// Where PCI state is read.
    public var sysfs: SysfsPCI
    /// Where libxl's messages go, as entries of iovm's log (as the backend's: ``LibXLBackend/openContext(_:)``); nil:
    /// libxl writes its errors to standard error itself.
    public var logger: Logger?

    /// Queries reading PCI state from `sysfs`, libxl's messages entries of `logger`'s log.
    public init(sysfs: SysfsPCI = SysfsPCI(), logger: Logger? = nil) {
        self.sysfs = sysfs
        self.logger = logger
    }

    /// Asks libxl and xenstore (``XenFacts/gather(logger:)``).
    public func facts() -> XenFacts {
        XenFacts.gather(logger: logger)
    }

    /// Asks libxl and libxenstat; throws `XenError.notXenDom0` off Xen.
    public func hostReport() throws -> HostReport {
        let xl = try LibXLContext.opened(logger: logger)
        let version = try xl.versionInfo()
        let physical = try xl.physicalInfo()
        let scheduler = try xl.schedulerName()
        let domains = try xl.domains()
        let sample = try XenStatSnapshot.capture()
        return HostReport(
            xenVersion: version.description,
            scheduler: scheduler,
            cores: physical.nrCPUs,
            cpuKHz: physical.cpuKHz,
            totalMemoryKiB: physical.totalMemoryKiB,
            freeMemoryKiB: physical.freeMemoryKiB,
            iommu: physical.capabilities.iommu,
            domains: domains.map {
                HostReport.Domain(
                    domid: $0.domid, name: $0.name ?? "", memoryKiB: $0.currentMemoryKiB,
                    vcpus: $0.vcpusOnline, state: $0.state.description)
            },
            xenstat: HostReport.XenStat(
                cpuHz: sample.cpuHz,
                domains: sample.domains.map {
                    HostReport.StatDomain(
                        domid: $0.domid, name: $0.name, cpuNanoseconds: $0.cpuNanoseconds,
                        vcpus: $0.vcpus.count, vcpuNanoseconds: $0.vcpus.map(\.nanoseconds))
                }))
    }

    /// The vendor:device ids from sysfs.
    public func pciIDs(_ pci: PCIAddress) -> String? {
        sysfs.ids(pci)
    }

    /// ``Doctor``'s checks over this host's facts.
    public func doctorChecks(plan: Plan?, allowNoIOMMU: Bool) -> [DoctorCheck] {
        Doctor(sysfs: sysfs).run(facts: facts(), plan: plan, allowNoIOMMU: allowNoIOMMU)
    }
}
