import CPUSets
import Foundation
import IOVMControl
import IOVMCore
import IOVMWireFormat
import Logging
import Testing
import XenKit

@testable import IOVMXen

/// LibXLBackend's undo paths, over a recording toolstack and an in-memory xenstore: what a failed
/// step leaves behind must be exactly what was there before it.
@Suite("LibXLBackend undo paths")
struct LibXLBackendUndoTests {
    /// A backend over `toolstack` and `store`; creations get `toolstack` as their own context too.
    func backend(_ toolstack: RecordingToolstack, _ store: MemoryTagStore, sysfs: SysfsPCI = SysfsPCI(root: "/nonexistent")) -> LibXLBackend {
        LibXLBackend(
            context: toolstack, openToolstack: { () throws(XenError) in toolstack }, openStore: { _ throws(XenError) in store },
            logger: Logger(label: "iovm.test"), sysfs: sysfs, strictReset: true)
    }

    /// A fake /sys with pciback loaded and one e1000 NIC at 0000:00:10.0 bound to e1000.
    func fakeSysfs() throws -> SysfsPCI {
        let manager = FileManager.default
        let root = manager.temporaryDirectory.appending(path: "iovm-undo-sysfs-\(UUID().uuidString)")
        let device = root.appending(path: "bus/pci/devices/0000:00:10.0")
        try manager.createDirectory(at: device, withIntermediateDirectories: true)
        for driver in ["pciback", "e1000"] {
            try manager.createDirectory(at: root.appending(path: "bus/pci/drivers/\(driver)"), withIntermediateDirectories: true)
        }
        try manager.createSymbolicLink(atPath: device.appending(path: "driver").path, withDestinationPath: "../../../bus/pci/drivers/e1000")
        return SysfsPCI(root: root.path)
    }

    /// A guest without NICs (so createDomain resets nothing through sysfs).
    func guestSpec(_ name: String) throws -> DomainSpec {
        let json = """
            {"name": "\(name)", "role": "guest", "type": "pvh", "memoryMiB": 256, "vcpus": 1, "kernel": "/boot/vmlinuz",
             "cmdline": "", "disks": [], "driverDomain": false, "nics": [], "vifs": [], "cpupool": "Pool-0",
             "weight": 256, "cap": 0, "backs": []}
            """
        return try JSONDecoder().decode(DomainSpec.self, from: Data(json.utf8))
    }

    func tag(_ name: String) -> ManagedTag {
        ManagedTag(topology: "undo", name: name, role: .guest, uuid: "", specFingerprint: "f")
    }

    // MARK: cpupool: the cores taken from Pool-0 go back

    @Test func aPoolLibxlRefusesGivesItsCoresBackToPool0() throws {
        let toolstack = RecordingToolstack(cores: 4)
        let store = MemoryTagStore()
        toolstack.fail("createCPUPool")
        #expect(throws: XenError.libxl(code: -3, operation: "libxl_cpupool_create(iovm.pool)")) {
            try backend(toolstack, store).createPool(CPUPoolSpec(name: "iovm.pool", scheduler: "credit", cpus: [2, 3]), topology: "undo")
        }
        #expect(
            toolstack.calls == [
                "removeCPU 2 from 0", "removeCPU 3 from 0", "createCPUPool iovm.pool credit 2-3", "addCPU 2 to 0", "addCPU 3 to 0",
            ])
        #expect(toolstack.pools.map(\.name) == ["Pool-0"])
        #expect(toolstack.pools[0].cpus == CPUSet(0..<4))
        #expect(store.changes.isEmpty)
    }

    @Test func aFailedCoreRemovalGivesBackOnlyTheCoresAlreadyRemoved() throws {
        let toolstack = RecordingToolstack(cores: 4)
        toolstack.fail("removeCPU 3")
        #expect(throws: XenError.self) {
            try backend(toolstack, MemoryTagStore()).createPool(CPUPoolSpec(name: "p", scheduler: "credit", cpus: [1, 2, 3]), topology: "undo")
        }
        #expect(toolstack.calls == ["removeCPU 1 from 0", "removeCPU 2 from 0", "removeCPU 3 from 0", "addCPU 1 to 0", "addCPU 2 to 0"])
        #expect(toolstack.pools[0].cpus == CPUSet(0..<4))
    }

    @Test func aPoolWhoseTagCannotBeWrittenStillGivesItsCoresBack() throws {
        let toolstack = RecordingToolstack(cores: 4)
        let store = MemoryTagStore()
        store.fail("write /local/domain/0/iovm/pools/")
        #expect(throws: XenError.self) {
            try backend(toolstack, store).createPool(CPUPoolSpec(name: "p", scheduler: "credit", cpus: [3]), topology: "undo")
        }
        #expect(toolstack.calls == ["removeCPU 3 from 0", "createCPUPool p credit 3", "addCPU 3 to 0"])
        #expect(toolstack.pools[0].cpus == CPUSet(0..<4))
    }

    // MARK: NICs: the recorded previous driver is removed again

    @Test func aNICLibxlCannotMakeAssignableLeavesNoRecordInXenstore() throws {
        let toolstack = RecordingToolstack()
        let store = MemoryTagStore()
        toolstack.fail("addAssignablePCI")
        let nic = try #require(PCIAddress("0000:00:10.0"))
        #expect(throws: XenError.libxl(code: -3, operation: "libxl_device_pci_assignable_add(0000:00:10.0)")) {
            try backend(toolstack, store, sysfs: try fakeSysfs()).makeAssignable(nic, for: "lab-hybrid")
        }
        #expect(store.changes == ["write /local/domain/0/iovm/nics/0000_00_10_0", "remove /local/domain/0/iovm/nics/0000_00_10_0"])
        #expect(store.values.isEmpty)
    }

    @Test func anAssignableNICKeepsItsPreviousDriverInXenstore() throws {
        let toolstack = RecordingToolstack()
        let store = MemoryTagStore()
        let nic = try #require(PCIAddress("0000:00:10.0"))
        try backend(toolstack, store, sysfs: try fakeSysfs()).makeAssignable(nic, for: "lab-hybrid")
        #expect(toolstack.calls == ["addAssignablePCI 0000:00:10.0"])
        #expect(store.values == ["/local/domain/0/iovm/nics/0000_00_10_0": #"{"driver":"e1000","topology":"lab-hybrid"}"#])
    }

    @Test("observe reads a NIC's mark: the driver before and the topology; an older iovm's mark (the driver alone) has none")
    func observeReadsTheNICMark() throws {
        let toolstack = RecordingToolstack()
        let store = MemoryTagStore()
        let nic = try #require(PCIAddress("0000:00:10.0"))
        let backend = backend(toolstack, store, sysfs: try fakeSysfs())
        try backend.makeAssignable(nic, for: "lab-hybrid")
        let marked = try #require(try backend.observe(nics: [nic]).nics.first)
        #expect(marked.madeAssignableByIOVM && marked.previousDriver == "e1000" && marked.madeAssignableFor == "lab-hybrid", "\(marked)")
        for (value, driver) in [("e1000", "e1000"), ("", nil)] as [(String, String?)] {
            try store.write("/local/domain/0/iovm/nics/0000_00_10_0", value)
            let older = try #require(try backend.observe(nics: [nic]).nics.first)
            #expect(older.madeAssignableByIOVM && older.previousDriver == driver && older.madeAssignableFor == nil, "\(value): \(older)")
        }
    }

    @Test("markNIC rewrites the topology of a NIC's mark and keeps its driver; a NIC with no mark stays without one")
    func markNICKeepsTheDriver() throws {
        let store = MemoryTagStore()
        let backend = backend(RecordingToolstack(), store, sysfs: try fakeSysfs())
        let nic = try #require(PCIAddress("0000:00:10.0"))
        try store.write("/local/domain/0/iovm/nics/0000_00_10_0", "e1000")  // an older iovm's mark
        try backend.markNIC(nic, for: "lab-hybrid")
        #expect(store.values["/local/domain/0/iovm/nics/0000_00_10_0"] == #"{"driver":"e1000","topology":"lab-hybrid"}"#)
        try backend.markNIC(nic, for: nil)
        #expect(store.values["/local/domain/0/iovm/nics/0000_00_10_0"] == #"{"driver":"e1000"}"#)
        try backend.markNIC(try #require(PCIAddress("0000:00:11.0")), for: "lab-hybrid")
        #expect(store.values.count == 1)
    }

    @Test("nicsMarked lists the NICs whose mark names the topology, not another's nor an older iovm's")
    func nicsMarkedForATopology() throws {
        let store = MemoryTagStore()
        try store.write("/local/domain/0/iovm/nics/0000_00_10_0", NICMark(driver: "e1000", topology: "a").value)
        try store.write("/local/domain/0/iovm/nics/0000_00_11_0", NICMark(driver: "", topology: "b").value)
        try store.write("/local/domain/0/iovm/nics/0000_00_12_0", "e1000")
        try store.write("/local/domain/0/iovm/nics/0000_01_00_1", NICMark(driver: "igb", topology: "a").value)
        let backend = backend(RecordingToolstack(), store)
        #expect(try backend.nicsMarked(for: "a").map(\.description) == ["0000:00:10.0", "0000:01:00.1"])
        #expect(try backend.nicsMarked(for: "c").isEmpty)
        #expect(LibXLBackend.pci(key: LibXLBackend.key(PCIAddress("0000:af:1f.7")!))?.description == "0000:af:1f.7")
        #expect(LibXLBackend.pci(key: "junk") == nil)
    }

    @Test("a NIC mark's value: JSON with sorted keys, read back; anything else is an older iovm's driver alone")
    func nicMarkValues() {
        let mark = NICMark(driver: "e1000", topology: "lab-hybrid")
        #expect(mark.value == #"{"driver":"e1000","topology":"lab-hybrid"}"#)
        #expect(NICMark(value: mark.value) == mark)
        #expect(NICMark(value: NICMark(driver: "", topology: "t").value) == NICMark(driver: "", topology: "t"))
        #expect(NICMark(value: "igb") == NICMark(driver: "igb", topology: nil))
        #expect(NICMark(value: "").previousDriver == nil)
        #expect(NICMark(value: "{not json") == NICMark(driver: "{not json", topology: nil))
    }

    // MARK: Domains: a domain made but not finished is destroyed

    @Test func aDomainThatCannotBeUnpausedIsDestroyedAndLeavesNoIntent() throws {
        let toolstack = RecordingToolstack()
        let store = MemoryTagStore()
        toolstack.fail("unpauseDomain")
        #expect(throws: XenError.libxl(code: -3, operation: "libxl_domain_unpause(guest1)")) {
            _ = try backend(toolstack, store).createDomain(try guestSpec("guest1"), libxlJSON: "{}", tag: tag("guest1"))
        }
        #expect(toolstack.calls == ["createDomain guest1", "unpauseDomain 1", "destroyDomain 1"])
        #expect(toolstack.liveDomains.map(\.domid) == [0])
        #expect(store.values.isEmpty)
        #expect(store.changes.first?.hasPrefix("write /local/domain/0/iovm/intents/") == true)
    }

    @Test("a domain made but neither unpaused nor destroyed keeps its intent: the next apply finds it iovm's, incomplete")
    func aDomainThatCannotBeDestroyedKeepsItsIntent() throws {
        let toolstack = RecordingToolstack()
        let store = MemoryTagStore()
        toolstack.fail("unpauseDomain")
        toolstack.fail("destroyDomain")
        #expect(throws: XenError.libxl(code: -3, operation: "libxl_domain_unpause(guest1)")) {
            _ = try backend(toolstack, store).createDomain(try guestSpec("guest1"), libxlJSON: "{}", tag: tag("guest1"))
        }
        #expect(toolstack.calls == ["createDomain guest1", "unpauseDomain 1", "destroyDomain 1"])
        #expect(toolstack.liveDomains.map(\.domid) == [0, 1])
        let intents = store.values.keys.filter { $0.hasPrefix("/local/domain/0/iovm/intents/") }
        #expect(intents.count == 1 && store.values.count == 1)
        let host = try backend(toolstack, store).observe(nics: [])
        #expect(host.domain("guest1")?.tag?.incomplete == true)
    }

    @Test("the observation says which domains are paused: a domain left paused, and one unpaused")
    func pausedIsObserved() throws {
        let toolstack = RecordingToolstack()
        let store = MemoryTagStore()
        _ = try backend(toolstack, store).createDomain(try guestSpec("guest1"), libxlJSON: "{}", tag: tag("guest1"))
        toolstack.fail("unpauseDomain")
        toolstack.fail("destroyDomain")
        #expect(throws: XenError.self) {
            _ = try backend(toolstack, store).createDomain(try guestSpec("guest2"), libxlJSON: "{}", tag: tag("guest2"))
        }
        let host = try backend(toolstack, store).observe(nics: [])
        #expect(host.domain("guest1")?.paused == false)
        #expect(host.domain("guest2")?.paused == true)
    }

    @Test func aDomainWhoseTagCannotBeWrittenIsDestroyed() throws {
        let toolstack = RecordingToolstack()
        let store = MemoryTagStore()
        store.fail("write /local/domain/0/iovm/managed/")
        #expect(throws: XenError.self) {
            _ = try backend(toolstack, store).createDomain(try guestSpec("guest1"), libxlJSON: "{}", tag: tag("guest1"))
        }
        #expect(toolstack.calls == ["createDomain guest1", "unpauseDomain 1", "domainInfo 1", "destroyDomain 1"])
        #expect(toolstack.liveDomains.map(\.domid) == [0])
        #expect(store.values.isEmpty)
    }

    @Test func aCreationLibxlRefusesDestroysNothingButRemovesTheIntent() throws {
        let toolstack = RecordingToolstack()
        let store = MemoryTagStore()
        toolstack.fail("createDomain")
        #expect(throws: XenError.libxl(code: -3, operation: "libxl_domain_create_new(guest1)")) {
            _ = try backend(toolstack, store).createDomain(try guestSpec("guest1"), libxlJSON: "{}", tag: tag("guest1"))
        }
        #expect(toolstack.calls == ["createDomain guest1"])
        #expect(store.values.isEmpty)
        #expect(store.changes.count == 2 && store.changes[1].hasPrefix("remove /local/domain/0/iovm/intents/"))
    }

    // MARK: A NIC left marked assigned by a create that was killed inside libxl

    /// An IOVM spec with the NIC 0000:00:10.0, and a fake /sys where that NIC can be reset.
    func iovmWithNIC() throws -> (DomainSpec, SysfsPCI) {
        let json = """
            {"name": "iovm0", "role": "iovm", "type": "pv", "memoryMiB": 64, "vcpus": 1, "kernel": "/boot/vmlinuz",
             "cmdline": "", "disks": [], "driverDomain": true, "nics": [{"pci": "0000:00:10.0", "bridge": "br0"}], "vifs": [],
             "cpupool": "Pool-0", "weight": 256, "cap": 0, "backs": []}
            """
        let spec = try JSONDecoder().decode(DomainSpec.self, from: Data(json.utf8))
        #expect(spec.pci.map(\.description) == ["0000:00:10.0"])
        let sysfs = try fakeSysfs()
        try "".write(toFile: sysfs.root + "/bus/pci/devices/0000:00:10.0/reset", atomically: true, encoding: .utf8)
        return (spec, sysfs)
    }

    @Test func aNICMarkedAssignedToADeadDomainIsReleasedBeforeTheCreate() throws {
        let toolstack = RecordingToolstack()
        let store = MemoryTagStore()
        try store.write("/libxl/pci/0000-00-10-0/domid", "7")  // domain 7 died half-made
        try store.write("/libxl/pci/0000-00-10-0/driver_path", "/sys/bus/pci/drivers/e1000")
        let (spec, sysfs) = try iovmWithNIC()
        _ = try backend(toolstack, store, sysfs: sysfs).createDomain(spec, libxlJSON: "{}", tag: tag("iovm0"))
        #expect(store.values["/libxl/pci/0000-00-10-0/domid"] == nil)
        #expect(store.values["/libxl/pci/0000-00-10-0/driver_path"] == "/sys/bus/pci/drivers/e1000")  // kept for the rebind
        #expect(store.changes.contains("remove /libxl/pci/0000-00-10-0/domid"))
    }

    @Test func aNICAssignedToALiveDomainKeepsItsMarker() throws {
        let toolstack = RecordingToolstack()
        let store = MemoryTagStore()
        try store.write("/libxl/pci/0000-00-10-0/domid", "0")  // a live domain holds it: libxl must refuse, not iovm hide it
        let (spec, sysfs) = try iovmWithNIC()
        _ = try backend(toolstack, store, sysfs: sysfs).createDomain(spec, libxlJSON: "{}", tag: tag("iovm0"))
        #expect(store.values["/libxl/pci/0000-00-10-0/domid"] == "0")
        #expect(!store.changes.contains { $0.hasPrefix("remove /libxl/") })
    }

    @Test func aCreatedDomainIsTaggedWithItsOwnUUIDAndItsIntentRemoved() throws {
        let toolstack = RecordingToolstack()
        let store = MemoryTagStore()
        let domid = try backend(toolstack, store).createDomain(try guestSpec("guest1"), libxlJSON: "{}", tag: tag("guest1"))
        #expect(domid == 1)
        let text = try #require(store.values["/local/domain/0/iovm/managed/1"])
        let recorded = try JSONDecoder().decode(ManagedTag.self, from: Data(text.utf8))
        #expect(recorded.uuid == toolstack.liveDomains.last?.uuid)
        #expect(store.values.count == 1)  // the intent is gone
        #expect(toolstack.liveDomains.last?.state.paused == false)
    }

    // MARK: stale records

    @Test func staleRecordsGoAndTheLiveDomainsTagsStay() throws {
        let toolstack = RecordingToolstack()
        let store = MemoryTagStore()
        let backend = backend(toolstack, store)
        for name in ["guest1", "guest2", "guest3"] { _ = try backend.createDomain(try guestSpec(name), libxlJSON: "{}", tag: tag(name)) }
        try toolstack.destroyDomain(1, name: "guest1")  // an `xl destroy`: its tag stays behind
        let other = ManagedTag(topology: "undo", name: "guest2", role: .guest, uuid: "0ther", specFingerprint: "f")
        try store.write("/local/domain/0/iovm/managed/2", try JSONText.line(other))  // domain 2 is not the one tagged
        try store.write("/local/domain/0/iovm/managed/9", "not a tag")  // unknown content: left alone
        try store.write("/local/domain/0/iovm/intents/dead-uuid", try JSONText.line(tag("guest4")))
        let kept = try #require(store.values["/local/domain/0/iovm/managed/3"])
        let tag1 = try #require(store.values["/local/domain/0/iovm/managed/1"])
        let uuid1 = try #require(LibXLBackend.tag(from: tag1)?.uuid)
        try backend.removeStaleRecords()
        // The tags of domains gone are parked (by UUID): an `xl restore` may bring them back.
        #expect(
            store.values.keys.filter { $0.hasPrefix("/local/domain/0/iovm/") }.sorted()
                == [
                    "/local/domain/0/iovm/managed/3", "/local/domain/0/iovm/managed/9", "/local/domain/0/iovm/parked/0ther",
                    "/local/domain/0/iovm/parked/\(uuid1)",
                ].sorted())
        #expect(store.values["/local/domain/0/iovm/parked/\(uuid1)"] == tag1)
        #expect(store.values["/local/domain/0/iovm/managed/3"] == kept)
        #expect(toolstack.liveDomains.map(\.domid) == [0, 2, 3])
    }

    @Test func aTagFollowsItsDomainToTheNewIDARestoreGaveIt() throws {
        let toolstack = RecordingToolstack()
        let store = MemoryTagStore()
        let backend = backend(toolstack, store)
        for name in ["guest1", "guest2", "guest3"] { _ = try backend.createDomain(try guestSpec(name), libxlJSON: "{}", tag: tag(name)) }
        let tag1 = try #require(store.values["/local/domain/0/iovm/managed/1"])
        let tag3 = try #require(store.values["/local/domain/0/iovm/managed/3"])
        toolstack.changeDomid(1, to: 7)  // xl save, xl restore
        toolstack.addNameless(domid: 1, uuid: "reused")  // its old ID another domain's now: the tag still follows
        let other = ManagedTag(topology: "undo", name: "old", role: .guest, uuid: "gone", specFingerprint: "f")
        try store.write("/local/domain/0/iovm/managed/7", try JSONText.line(other))  // a stale tag at the new ID
        toolstack.changeDomid(3, to: 8, name: "guest3--incoming")  // a migration half-way: not moved yet, not removed
        try backend.removeStaleRecords()
        #expect(
            store.values.keys.filter { $0.hasPrefix("/local/domain/0/iovm/managed/") }.sorted() == [
                "/local/domain/0/iovm/managed/2", "/local/domain/0/iovm/managed/3", "/local/domain/0/iovm/managed/7",
            ])
        #expect(store.values["/local/domain/0/iovm/managed/7"] == tag1)
        #expect(store.values["/local/domain/0/iovm/managed/3"] == tag3)
        let restored = try #require(try backend.observe(nics: []).domains.first { $0.domid == 7 })
        #expect(restored.name == "guest1" && restored.isManaged(by: "undo"))
        // Renamed at the end of the migration: the tag follows then.
        toolstack.changeDomid(8, to: 8, name: "guest3")
        try backend.removeStaleRecords()
        #expect(store.values["/local/domain/0/iovm/managed/8"] == tag3 && store.values["/local/domain/0/iovm/managed/3"] == nil)
    }

    // MARK: vif re-attach

    @Test func aStaleVifIsRemovedThroughItsRecordedBackendThenAddedWithTheSameMACBridgeAndDevid() throws {
        let toolstack = RecordingToolstack()
        let store = MemoryTagStore()
        let guest = try backend(toolstack, store).createDomain(try guestSpec("guest1"), libxlJSON: "{}", tag: tag("guest1"))
        try store.write("/local/domain/\(guest)/device/vif/0/backend-id", "7")  // the dead IOVM
        let vif = VifSpec(backend: "iovm0", bridge: "br0", mac: "00:16:3e:00:00:01")
        try backend(toolstack, store).reattachVif(domid: guest, devid: 0, staleBackend: 7, to: vif)
        #expect(toolstack.calls.suffix(3) == ["domains", "removeNIC \(guest) vif 0 backend 7", "addNIC \(guest)"])
        let json = try #require(toolstack.addedNICs.first)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["backend_domname"] as? String == "iovm0")
        #expect(object["mac"] as? String == "00:16:3e:00:00:01")
        #expect(object["bridge"] as? String == "br0")
        #expect(object["devid"] as? Int == 0)
        #expect(object["nictype"] as? String == "vif")
    }

    @Test func aMissingVifIsOnlyAdded() throws {
        let toolstack = RecordingToolstack()
        let store = MemoryTagStore()
        let guest = try backend(toolstack, store).createDomain(try guestSpec("guest1"), libxlJSON: "{}", tag: tag("guest1"))
        try backend(toolstack, store).reattachVif(domid: guest, devid: 0, staleBackend: nil, to: VifSpec(backend: "iovm0", bridge: "br0", mac: "00:16:3e:00:00:01"))
        #expect(!toolstack.calls.contains { $0.hasPrefix("removeNIC") })
        #expect(toolstack.calls.last == "addNIC \(guest)")
    }

    @Test func aVifLibxlRefusesToAddIsAnError() throws {
        let toolstack = RecordingToolstack()
        let store = MemoryTagStore()
        let guest = try backend(toolstack, store).createDomain(try guestSpec("guest1"), libxlJSON: "{}", tag: tag("guest1"))
        toolstack.fail("addNIC")
        #expect(throws: XenError.libxl(code: -3, operation: "libxl_device_nic_add(guest1)")) {
            try backend(toolstack, store).reattachVif(domid: guest, devid: 0, staleBackend: nil, to: VifSpec(backend: "iovm0", bridge: "br0", mac: "00:16:3e:00:00:01"))
        }
    }

    @Test func destroyingADomainThatIsGoneAlreadyOnlyRemovesItsTag() throws {
        let toolstack = RecordingToolstack()
        let store = MemoryTagStore()
        try store.write("/local/domain/0/iovm/managed/9", "{}")
        try backend(toolstack, store).destroyDomain(domid: 9)
        #expect(store.values["/local/domain/0/iovm/managed/9"] == nil)
        #expect(!toolstack.calls.contains { $0.hasPrefix("destroyDomain") })
    }

    /// An IOVM iovm made, with the PCI backend dom0's pciback keeps for its two NICs and libxl's assignment marks.
    func madeIOVM(_ toolstack: RecordingToolstack, _ store: MemoryTagStore) throws -> UInt32 {
        let domid = try backend(toolstack, store).createDomain(try guestSpec("iovm0"), libxlJSON: "{}", tag: tag("iovm0"))
        let path = "/local/domain/0/backend/pci/\(domid)/0"
        for (key, value) in [
            "frontend-id": "\(domid)", "state": "4", "num_devs": "2", "dev-0": "0000:00:10.0", "state-0": "3", "dev-1": "0000:00:11.0", "state-1": "3",
        ] {
            try store.write("\(path)/\(key)", value)
        }
        try store.write("/libxl/pci/0000-00-10-0/domid", "\(domid)")
        try store.write("/libxl/pci/0000-00-11-0/domid", "\(domid)")
        return domid
    }

    @Test func aCrashedIOVMLosesItsPCIBackendBeforeLibxlDestroysIt() throws {
        let toolstack = RecordingToolstack()
        let store = MemoryTagStore()
        let domid = try madeIOVM(toolstack, store)
        try store.write("/local/domain/0/backend/pci/99/0/num_devs", "1")  // another domain's: not touched
        toolstack.shutDown(domid, reason: "crash")
        toolstack.storeSeenAtDestroy = store
        try backend(toolstack, store).destroyDomain(domid: domid)
        #expect(toolstack.seenAtDestroy == ["\(domid): no PCI backend"])
        #expect(store.values.keys.filter { $0.hasPrefix("/local/domain/0/backend/pci/\(domid)/") }.isEmpty)
        #expect(store.values["/local/domain/0/backend/pci/99/0/num_devs"] == "1")
        // libxl's marks of the NICs, which its own removal would have cleared, go once the domain is gone.
        #expect(store.values["/libxl/pci/0000-00-10-0/domid"] == nil && store.values["/libxl/pci/0000-00-11-0/domid"] == nil)
        #expect(store.values["/local/domain/0/iovm/managed/\(domid)"] == nil)
    }

    @Test func aRunningIOVMKeepsItsPCIBackendForLibxlsOwnRemoval() throws {
        let toolstack = RecordingToolstack()
        let store = MemoryTagStore()
        let domid = try madeIOVM(toolstack, store)
        toolstack.storeSeenAtDestroy = store
        try backend(toolstack, store).destroyDomain(domid: domid)
        #expect(toolstack.seenAtDestroy == ["\(domid): PCI backend"])
        #expect(!store.changes.contains("remove /local/domain/0/backend/pci/\(domid)"))
    }

    @Test func theNICsOfACrashedIOVMAreReadFromItsDevKeysWhateverNumDevsSays() throws {
        let toolstack = RecordingToolstack()
        let store = MemoryTagStore()
        let domid = try madeIOVM(toolstack, store)
        try store.write("/local/domain/0/backend/pci/\(domid)/0/num_devs", "-1")
        toolstack.shutDown(domid, reason: "crash")
        toolstack.storeSeenAtDestroy = store
        try backend(toolstack, store).destroyDomain(domid: domid)
        #expect(toolstack.seenAtDestroy == ["\(domid): no PCI backend"])
        #expect(store.values["/libxl/pci/0000-00-10-0/domid"] == nil && store.values["/libxl/pci/0000-00-11-0/domid"] == nil)
    }

    @Test func aCrashedIOVMAnotherToolstackIsDestroyingKeepsItsPCIBackend() throws {
        let toolstack = RecordingToolstack()
        let store = MemoryTagStore()
        let domid = try madeIOVM(toolstack, store)
        toolstack.shutDown(domid, reason: "crash", dying: true)
        toolstack.storeSeenAtDestroy = store
        try backend(toolstack, store).destroyDomain(domid: domid)
        #expect(toolstack.seenAtDestroy == ["\(domid): PCI backend"])
    }

    @Test func aCrashedGuestWithoutPCIBackendRemovesNothingBeforeItsDestroy() throws {
        let toolstack = RecordingToolstack()
        let store = MemoryTagStore()
        let domid = try backend(toolstack, store).createDomain(try guestSpec("guest1"), libxlJSON: "{}", tag: tag("guest1"))
        toolstack.shutDown(domid, reason: "crash")
        try backend(toolstack, store).destroyDomain(domid: domid)
        #expect(!store.changes.contains { $0.hasPrefix("remove /local/domain/0/backend/pci") })
        #expect(toolstack.calls.last == "destroyDomain \(domid)")
    }

    @Test func aCrashedIOVMWhoseBackendCannotBeRemovedIsStillDestroyedByLibxl() throws {
        let toolstack = RecordingToolstack()
        let store = MemoryTagStore()
        let domid = try madeIOVM(toolstack, store)
        toolstack.shutDown(domid, reason: "crash")
        store.fail("remove /local/domain/0/backend/pci/")
        try backend(toolstack, store).destroyDomain(domid: domid)
        #expect(toolstack.calls.last == "destroyDomain \(domid)")
        #expect(!toolstack.liveDomains.contains { $0.domid == domid })
    }

    @Test func aNamelessHalfMadeDomainWhoseVCPUsCannotBeListedDoesNotFailTheObservation() throws {
        let toolstack = RecordingToolstack()
        let store = MemoryTagStore()
        toolstack.addNameless(domid: 31, uuid: "half")
        toolstack.fail("vcpuAffinities 31")
        let host = try backend(toolstack, store).observe(nics: [])
        let half = try #require(host.domains.first { $0.domid == 31 })
        #expect(half.name == "domid31" && half.hardAffinity.isEmpty && half.pci.isEmpty)
        // A named domain that cannot list its vCPUs (CI run 15: a kill -9 during guest2's create) is seen without them.
        toolstack.fail("vcpuAffinities 0")
        let again = try backend(toolstack, store).observe(nics: [])
        #expect(again.domains.first { $0.domid == 0 }?.hardAffinity.isEmpty == true)
    }
}
