import Foundation
public import IOVMCore
import XenKit

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

/// What Xen itself says, gathered once (the real one from XenKit; tests build it by hand).
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

    /// Creates facts.
    public init(
        notDom0: String? = nil, xenstoreProblem: String? = nil, version: String? = nil, scheduler: String? = nil,
        iommu: Bool? = nil, cores: Int? = nil, freeMemoryMiB: Int? = nil
    ) {
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

    /// Why passing `plan`'s NICs through is refused on this host, or nil: without an active IOMMU an
    /// IOVM would get unchecked DMA (the same policy `iovm doctor` reports as its IOMMU check).
    public func passthroughRefusal(_ plan: Plan, allowNoIOMMU: Bool) -> String? {
        guard !plan.iovms.allSatisfy({ $0.nics.isEmpty }), !allowNoIOMMU, iommu != true else { return nil }
        return "Xen reports no active IOMMU: passing NICs through would give the IOVMs unchecked DMA; run `iovm doctor`, or pass --allow-no-iommu"
    }

    /// Asks this machine's Xen through libxl and xenstore.
    public static func gather() -> XenFacts {
        var facts = XenFacts()
        do { try XenHost.requireDom0() } catch {
            facts.notDom0 = "\(error)"
            return facts
        }
        do {
            let store = try XenStoreClient(readOnly: true)
            if try store.read("/local/domain/0/name") == nil { facts.xenstoreProblem = "xenstore has no /local/domain/0/name" }
        } catch { facts.xenstoreProblem = "\(error)" }
        do {
            let context = try LibXLContext()
            let info = try context.physicalInfo()
            facts.cores = Int(info.nrCPUs)
            facts.freeMemoryMiB = Int(info.freeMemoryKiB / 1024)
            facts.iommu = info.capabilities.iommu
            facts.scheduler = try? context.schedulerName()
            facts.version = (try? context.versionInfo()).map { "\($0.major).\($0.minor)\($0.extra)" }
        } catch { facts.notDom0 = "\(error)" }
        return facts
    }
}

/// `iovm doctor`: can iovm drive this host, and can each NIC of the topology be passed through?
public struct Doctor: Sendable {
    /// Where PCI state is read.
    public var sysfs: SysfsPCI

    /// Creates a doctor reading `sysfs`.
    public init(sysfs: SysfsPCI = SysfsPCI()) {
        self.sysfs = sysfs
    }

    /// Runs every check; `plan` adds the per-NIC and per-host-size checks.
    public func run(facts: XenFacts, plan: Plan?, allowNoIOMMU: Bool) -> [DoctorCheck] {
        var checks: [DoctorCheck] = []
        if let reason = facts.notDom0 {
            checks.append(DoctorCheck("Xen dom0", .failed, reason))
        } else {
            checks.append(DoctorCheck("Xen dom0", .ok, "privcmd present, libxl context allocated\(facts.version.map { ", Xen \($0)" } ?? "")"))
        }
        if facts.notDom0 == nil {
            checks.append(facts.xenstoreProblem.map { DoctorCheck("xenstored", .failed, $0) } ?? DoctorCheck("xenstored", .ok, "reachable"))
            switch facts.scheduler {
            case "credit": checks.append(DoctorCheck("scheduler", .ok, "credit, the paper's scheduler"))
            case let name?:
                checks.append(
                    DoctorCheck(
                        "scheduler", .warning,
                        "Pool-0 runs \(name); the paper's results are under credit: boot Xen with sched=credit, or use a placement with a dedicated credit cpupool"))
            case nil: checks.append(DoctorCheck("scheduler", .warning, "unknown"))
            }
            switch facts.iommu {
            case true?: checks.append(DoctorCheck("IOMMU", .ok, "active (VT-d/AMD-Vi): passthrough is isolated"))
            case false?, nil:
                checks.append(
                    DoctorCheck(
                        "IOMMU", allowNoIOMMU ? .warning : .failed,
                        allowNoIOMMU
                            ? "not active; passthrough allowed by --allow-no-iommu, without DMA isolation"
                            : "not active: PCI passthrough would give IOVMs unchecked DMA; refusing (--allow-no-iommu to override)"))
            }
            if let plan, let cores = facts.cores, cores < plan.host.cores {
                checks.append(DoctorCheck("cores", .failed, "the topology is planned for \(plan.host.cores) cores; Xen has \(cores)"))
            }
        }
        checks.append(
            sysfs.pcibackLoaded
                ? DoctorCheck("xen-pciback", .ok, "loaded")
                : DoctorCheck("xen-pciback", .warning, "not loaded: apply loads it (modprobe xen-pciback)"))
        for iovm in plan?.iovms ?? [] {
            for pci in iovm.pci {
                let device = sysfs.device(pci)
                let name = "NIC \(pci) (\(iovm.name))"
                guard device.present else {
                    checks.append(DoctorCheck(name, .failed, "no such PCI device on this host"))
                    continue
                }
                var notes = ["\(device.ids ?? "?"), driver \(device.driver ?? "none")", device.assignable ? "assignable" : "not yet assignable"]
                var status = DoctorCheck.Status.ok
                if !device.isNetworkController {
                    notes.append("class \(device.deviceClass ?? "?") is not a network controller")
                    status = .warning
                }
                if device.resetMethods.isEmpty {
                    notes.append("no reset method: its state may leak between domains")
                    status = .warning
                } else {
                    notes.append("reset: \(device.resetMethods.joined(separator: ", "))")
                }
                if let group = device.iommuGroup { notes.append("IOMMU group \(group)") }
                checks.append(DoctorCheck(name, status, notes.joined(separator: "; ")))
            }
        }
        return checks
    }
}
