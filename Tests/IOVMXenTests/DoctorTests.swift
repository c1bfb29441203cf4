import Foundation
import IOVMControl
import IOVMCore
import IOVMWireFormat
import IOVMXen
import Testing

/// `iovm doctor` over a fake sysfs tree (built in a temporary directory) and hand-made Xen facts.
@Suite("Doctor")
struct DoctorTests {
    /// A fake /sys with one e1000 bound to e1000 (FLR), one bound to pciback (no reset), pciback loaded.
    func fakeSysfs() throws -> URL {
        let root = FileManager.default.temporaryDirectory.appending(path: "iovm-fake-sysfs-\(UUID().uuidString)")
        let manager = FileManager.default
        func device(_ bdf: String, driver: String, reset: String?, group: Int) throws {
            let directory = root.appending(path: "bus/pci/devices/\(bdf)")
            try manager.createDirectory(at: directory, withIntermediateDirectories: true)
            try "0x8086\n".write(to: directory.appending(path: "vendor"), atomically: true, encoding: .utf8)
            try "0x100e\n".write(to: directory.appending(path: "device"), atomically: true, encoding: .utf8)
            try "0x020000\n".write(to: directory.appending(path: "class"), atomically: true, encoding: .utf8)
            if let reset { try "\(reset)\n".write(to: directory.appending(path: "reset_method"), atomically: true, encoding: .utf8) }
            try manager.createDirectory(at: root.appending(path: "bus/pci/drivers/\(driver)"), withIntermediateDirectories: true)
            try manager.createSymbolicLink(atPath: directory.appending(path: "driver").path, withDestinationPath: "../../../bus/pci/drivers/\(driver)")
            try manager.createDirectory(at: root.appending(path: "kernel/iommu_groups/\(group)"), withIntermediateDirectories: true)
            try manager.createSymbolicLink(atPath: directory.appending(path: "iommu_group").path, withDestinationPath: "../../../kernel/iommu_groups/\(group)")
        }
        try device("0000:00:10.0", driver: "e1000", reset: "flr bus", group: 3)
        try device("0000:00:11.0", driver: "pciback", reset: nil, group: 4)
        return root
    }

    func plan() throws -> Plan {
        try Planner().plan(
            TopologyDocument(
                name: "t", host: HostDocument(cores: 4), defaults: DefaultsDocument(kernel: "/k"),
                configuration: ConfigurationDocument(kind: .monolithic),
                nics: ["0000:00:10.0", "0000:00:11.0", "0000:00:12.0"].map { NICDocument(pci: $0) },
                guests: [GuestDocument(name: "g")]))
    }

    @Test func readsDevicesFromSysfs() throws {
        let root = try fakeSysfs()
        defer { try? FileManager.default.removeItem(at: root) }
        let sysfs = SysfsPCI(root: root.path)
        let e1000 = sysfs.device(PCIAddress("0000:00:10.0")!)
        #expect(
            e1000
                == PCIDeviceState(
                    address: PCIAddress("0000:00:10.0")!, present: true, driver: "e1000", ids: "8086:100e",
                    deviceClass: "0x020000", resetMethods: ["flr", "bus"], iommuGroup: 3))
        #expect(!e1000.assignable)
        #expect(sysfs.device(PCIAddress("0000:00:11.0")!).assignable)
        #expect(!sysfs.device(PCIAddress("0000:00:12.0")!).present)
        #expect(sysfs.ids(PCIAddress("0000:00:10.0")!) == "8086:100e")
        #expect(sysfs.ids(PCIAddress("0000:00:12.0")!) == nil)
        #expect(sysfs.pcibackLoaded)
        // What the observation reads: present and driver, as the whole read gives them; nothing else.
        for bdf in ["0000:00:10.0", "0000:00:11.0", "0000:00:12.0"] {
            let address = PCIAddress(bdf)!
            let whole = sysfs.device(address)
            let binding = sysfs.binding(address)
            #expect(binding == PCIDeviceState(address: address, present: whole.present, driver: whole.driver, resetMethods: []), "\(bdf)")
            #expect(binding.assignable == whole.assignable, "\(bdf)")
        }
        #expect(sysfs.binding(PCIAddress("0000:00:11.0")!).driver == "pciback")
    }

    @Test func checksEveryNICAndRefusesWithoutIOMMU() throws {
        let root = try fakeSysfs()
        defer { try? FileManager.default.removeItem(at: root) }
        let doctor = Doctor(sysfs: SysfsPCI(root: root.path))
        let facts = XenFacts(version: "4.17.7", scheduler: "credit2", iommu: false, cores: 4)
        let checks = doctor.run(facts: facts, plan: try plan(), allowNoIOMMU: false)
        func check(_ name: String) -> DoctorCheck? { checks.first { $0.name == name } }
        #expect(check("Xen dom0")?.status == .ok)
        #expect(check("scheduler")?.status == .warning)
        #expect(check("IOMMU")?.status == .failed)
        #expect(check("NIC 0000:00:10.0 (iovm0)")?.detail == "8086:100e, driver e1000; not yet assignable; reset: flr, bus; IOMMU group 3")
        #expect(check("NIC 0000:00:11.0 (iovm0)")?.status == .warning)
        #expect(check("NIC 0000:00:11.0 (iovm0)")?.detail.contains("no reset method") == true)
        #expect(check("NIC 0000:00:12.0 (iovm0)")?.status == .failed)
        #expect(doctor.run(facts: facts, plan: nil, allowNoIOMMU: true).first { $0.name == "IOMMU" }?.status == .warning)
    }

    @Test func notADom0StopsEarly() {
        let checks = Doctor(sysfs: SysfsPCI(root: "/nonexistent")).run(facts: XenFacts(notDom0: "no /proc/xen"), plan: nil, allowNoIOMMU: false)
        #expect(checks.map(\.name) == ["Xen dom0", "xen-pciback"])
        #expect(checks[0].status == .failed)
        #expect(checks[0].detail == "no /proc/xen")
    }
}

/// The facts-derived policies apply and plan share with `iovm doctor`.
@Suite("Xen facts")
struct XenFactsTests {
    func plan(nics: [String]) throws -> Plan {
        let document = TopologyDocument(
            name: "t", host: HostDocument(cores: 4, memoryMiB: 4096), defaults: DefaultsDocument(kernel: "/k"),
            configuration: ConfigurationDocument(kind: nics.isEmpty ? .centralized : .monolithic),
            nics: nics.map { NICDocument(pci: $0) }, guests: [GuestDocument(name: "g")], placement: PlacementDocument(kind: .credit))
        return try Planner().plan(document)
    }

    @Test("passthrough without an active IOMMU is refused unless allowed; no NICs, nothing to refuse")
    func passthroughPolicy() throws {
        let withNIC = try plan(nics: ["0000:00:10.0"])
        #expect(XenFacts(iommu: false).passthroughRefusal(withNIC, allowNoIOMMU: false)?.contains("no active IOMMU") == true)
        #expect(XenFacts(iommu: nil).passthroughRefusal(withNIC, allowNoIOMMU: false) != nil)
        #expect(XenFacts(iommu: false).passthroughRefusal(withNIC, allowNoIOMMU: true) == nil)
        #expect(XenFacts(iommu: true).passthroughRefusal(withNIC, allowNoIOMMU: false) == nil)
        #expect(XenFacts(iommu: false).passthroughRefusal(try plan(nics: []), allowNoIOMMU: false) == nil)
    }

    @Test("the host shape for planning comes from a dom0's facts only")
    func hostShape() {
        #expect(XenFacts(scheduler: "credit", cores: 4, freeMemoryMiB: 3000).hostShape == HostShape(cores: 4, memoryMiB: 3000, scheduler: "credit"))
        #expect(XenFacts(cores: 8).hostShape?.scheduler == "credit2")
        #expect(XenFacts(notDom0: "no privcmd", cores: 4).hostShape == nil)
    }
}
