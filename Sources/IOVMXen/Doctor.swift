import FoundationEssentials
public import IOVMControl
public import IOVMCore
public import Logging
import XenKit

extension XenFacts {
    /// Asks this machine's Xen through libxl and xenstore; libxl's messages are entries of `logger`'s log when given.
    public static func gather(logger: Logger? = nil) -> XenFacts {
        var facts = XenFacts()
        do { try XenHost.requireDom0() } catch {
            facts.notDom0 = "\(error)"
            return facts
        }
        do {
            let store = try XenStoreClient(readOnly: true)
            if try store.read("/local/domain/0/name") == nil { facts.xenstoreProblem = "xenstore has no /local/domain/0/name" }
        } catch { facts.xenstoreProblem = "\(error)" }
        do { try facts.ask(try LibXLContext.opened(logger: logger)) } catch { facts.notDom0 = "\(error)" }
        facts.readBuildSchedulers()
        return facts
    }

    /// Asks Xen through an open libxl context (xenstore is not probed): what apply checks before it touches anything,
    /// without opening a context of its own.
    static func gather(using context: LibXLContext) -> XenFacts {
        var facts = XenFacts()
        do { try facts.ask(context) } catch { facts.notDom0 = "\(error)" }
        facts.readBuildSchedulers()
        return facts
    }

    private mutating func ask(_ context: LibXLContext) throws {
        let info = try context.physicalInfo()
        cores = Int(info.nrCPUs)
        freeMemoryMiB = Int(info.freeMemoryKiB / 1024)
        iommu = info.capabilities.iommu
        scheduler = try? context.schedulerName()
        version = (try? context.versionInfo()).map { "\($0.major).\($0.minor)\($0.extra)" }
    }

    /// The schedulers Xen was built with, from hypfs; left unknown off dom0 or when hypfs cannot be read.
    private mutating func readBuildSchedulers() {
        if notDom0 == nil, let config = try? XenHypervisorFS.read("/buildinfo/config") {
            schedulers = XenFacts.schedulers(fromBuildConfig: config)
        }
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
            switch facts.schedulers {
            case let built? where built.contains("rtds"): checks.append(DoctorCheck("schedulers", .ok, "Xen offers \(built.joined(separator: ", "))"))
            case let built?:
                checks.append(
                    DoctorCheck(
                        "schedulers", .warning,
                        "Xen offers \(built.joined(separator: ", ")): no rtds (Figs. 10/11's static scheduler; a Xen built with CONFIG_SCHED_RTDS=y has it)"))
            case nil: checks.append(DoctorCheck("schedulers", .warning, "unknown: Xen's hypfs /buildinfo/config cannot be read"))
            }
            if let plan, let refusal = facts.schedulerRefusal(plan) { checks.append(DoctorCheck("cpupools", .failed, refusal)) }
            checks.append(facts.iommuCheck(allowNoIOMMU: allowNoIOMMU))
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
