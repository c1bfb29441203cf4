import CPUSets
import Foundation
import IOVMControl
import IOVMCore
import IOVMWireFormat
import Logging
import Synchronization
import Testing
import XenKit

@testable import IOVMXen

/// Apply, re-apply, live changes and destroy through ``LibvirtBackend`` against a recording libvirt host.
@Suite struct LibvirtBackendTests {
    static let nics = ["0000:00:10.0", "0000:00:11.0", "0000:00:12.0", "0000:00:13.0"]

    func plan(_ placement: PlacementKind = .hybridPinned, dedicatedPool: Bool? = nil, iovmCap: Int? = nil) throws -> Plan {
        try Planner().plan(
            TopologyDocument(
                name: "table3", host: HostDocument(cores: 4, memoryMiB: 8192, scheduler: "credit"),
                defaults: DefaultsDocument(kernel: "/lab/vmlinux", guestMemoryMiB: 256),
                configuration: ConfigurationDocument(kind: .hybrid, groups: 2), nics: Self.nics.map { NICDocument(pci: $0) },
                guests: (1...4).map { GuestDocument(name: "guest\($0)") }, placement: PlacementDocument(kind: placement, dedicatedPool: dedicatedPool),
                scheduling: SchedulingDocument(iovmWeight: 512, iovmCap: iovmCap)))
    }

    struct Setup {
        let host: RecordingLibvirtHost
        let store: MemoryTagStore
        let backend: LibvirtBackend
        let dom0: RecordingRemoteDom0
        var engine: ApplyEngine { ApplyEngine(backend: backend, network: RemoteDom0Network(uri: host.uri), lock: NoLock(), logger: Logger(label: "test")) }
    }

    func setup(xenDomains: [UInt32: String] = [:], files: Set<String> = ["/lab/vmlinux"]) -> Setup {
        let store = MemoryTagStore()
        let host = RecordingLibvirtHost(nics: Self.nics, store: store)
        let dom0 = RecordingRemoteDom0(store: store, files: files, xenDomains: xenDomains, onRelease: { pci in host.releaseFromPciback(pci) })
        let backend = LibvirtBackend(host: host, dom0: dom0, logger: Logger(label: "test"))
        return Setup(host: host, store: store, backend: backend, dom0: dom0)
    }

    func configs(_ plan: Plan) -> [String: String] { Dictionary(uniqueKeysWithValues: plan.domains.map { ($0.name, "{}") }) }

    @Test func applyCreatesTaggedDomainsAndAReapplyChangesNothing() throws {
        let setup = setup()
        let plan = try plan(iovmCap: 50)
        let report = try setup.engine.apply(plan, libxlJSON: configs(plan))
        #expect(report.domids.count == 6)
        let calls = setup.host.calls
        // NICs to pciback first, their drivers recorded in the host's xenstore.
        #expect(calls.prefix(4).sorted() == Self.nics.map { "detach \(LibvirtBackend.nodeDevice(PCIAddressForTests($0))) xen" }.sorted())
        #expect(setup.store.values["/local/domain/0/iovm/nics/0000_00_10_0"] == #"{"driver":"e1000","topology":"table3"}"#)
        // IOVMs start paused, get their libxl/ directory, then run; their cap is set after the start (no XML has it).
        #expect(calls.contains("create iovm0 paused") && calls.contains("resume iovm0"))
        #expect(calls.contains("credit iovm0 - 50"))
        #expect(calls.contains("create guest1"))
        #expect(setup.dom0.calls.filter { $0.hasPrefix("driver-domain ") }.count == 2)
        let iovm0 = try #require(setup.host.domainState("iovm0"))
        #expect(iovm0.pins == [[3]])
        #expect(iovm0.weight == 512)
        #expect(iovm0.metadata?.contains("<iovm:topology>table3</iovm:topology>") == true)
        #expect(setup.host.driver("pci_0000_00_10_0") == "pciback")

        let observed = try setup.backend.observe(nics: plan.hostNICs)
        let tagged = observed.domains.filter { $0.isManaged(by: "table3") }
        #expect(tagged.count == 6)
        #expect(observed.domain("iovm0")?.pci == [PCIAddressForTests("0000:00:10.0"), PCIAddressForTests("0000:00:11.0")])
        #expect(observed.domain("guest1")?.vifs?.first?.backendState == "4")

        let again = try setup.engine.apply(plan, libxlJSON: configs(plan))
        #expect(again.nothingToDo, "re-apply changed \(again.done)")
    }

    /// The live verbs' lookup through libvirt: one listing for every name, credit read only when a cap is needed.
    @Test func liveVerbsLookTheirDomainsUpWithOneListing() throws {
        let setup = setup()
        let plan = try plan()
        _ = try setup.engine.apply(plan, libxlJSON: configs(plan))
        let before = setup.host.reads.count
        let found = try setup.backend.managedDomains(["iovm0", "iovm1"], withCap: false)
        #expect(found.map { $0?.name } == ["iovm0", "iovm1"])
        #expect(Array(setup.host.reads.dropFirst(before)) == ["domains"])
        let again = setup.host.reads.count
        #expect(try setup.backend.managedDomains(["iovm0", "nope"], withCap: true).map { $0?.cap } == [0, nil])
        #expect(Array(setup.host.reads.dropFirst(again)) == ["domains", "credit iovm0"])
    }

    @Test func aDomainWithoutTheTagIsNeverTouched() throws {
        let setup = setup()
        setup.host.addForeign("iovm0")
        let plan = try plan()
        #expect(throws: ApplyError.self) { try setup.engine.apply(plan, libxlJSON: configs(plan)) }
        #expect(setup.host.calls.isEmpty)
        #expect(throws: XenError.self) { try setup.backend.managedDomain("iovm0") }
        let foreign = try #require(setup.host.domainState("iovm0"))
        #expect(throws: XenError.self) { try setup.backend.destroyDomain(domid: foreign.id) }
        #expect(setup.host.domainState("iovm0") != nil)
    }

    @Test func aDomainLibvirtDoesNotKnowStillConflicts() throws {
        // xl made "iovm1": libvirt's libxl driver does not list it; xenstore (over ssh) does.
        let setup = setup(xenDomains: [0: "Domain-0", 9: "iovm1"])
        let plan = try plan()
        #expect(throws: ApplyError.self) { try setup.engine.apply(plan, libxlJSON: configs(plan)) }
        #expect(setup.host.calls.isEmpty)
    }

    @Test func aNICPcibackKeepsAfterLibvirtsReattachIsGivenBack() throws {
        let setup = setup()
        let plan = try plan()
        _ = try setup.engine.apply(plan, libxlJSON: configs(plan))
        setup.host.reattachKeepsPciback.withLock { $0 = true }
        _ = try setup.engine.destroy(topology: plan.topology, nics: plan.hostNICs)
        #expect(setup.host.calls.contains("pciback release 0000:00:10.0"))
        for nic in Self.nics { #expect(setup.host.driver(LibvirtBackend.nodeDevice(PCIAddressForTests(nic))) == "e1000") }
    }

    @Test func aPlanWithACpupoolIsRefusedBeforeAnythingIsTouched() throws {
        let setup = setup()
        let plan = try plan(.iovmAffinity, dedicatedPool: true)
        #expect(throws: LibvirtRenderError.self) { try setup.engine.apply(plan, libxlJSON: configs(plan)) }
        #expect(setup.host.calls.isEmpty)
    }

    /// An IOVM's image (this machine's image store) is copied to the host that lacks it, before the IOVM is created.
    @Test func anIOVMImageTheHostLacksIsCopiedThere() throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "iovm-images-\(UUID().uuidString)/c395ae9eda49fe70")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory.deletingLastPathComponent()) }
        let kernel = directory.appending(path: "bzImage").path
        let initrd = directory.appending(path: "initrd.img").path
        try Data("kernel".utf8).write(to: URL(fileURLWithPath: kernel))
        try Data("initrd".utf8).write(to: URL(fileURLWithPath: initrd))
        var plan = try plan()
        for index in plan.domains.indices where plan.domains[index].role == .iovm {
            plan.domains[index].image = ImageUse(kind: "minimal", nicDrivers: ["e1000"], hash: "c395ae9eda49fe70")
            plan.domains[index].kernel = kernel
            plan.domains[index].ramdisk = initrd
        }
        let setup = setup()
        _ = try setup.engine.apply(plan, libxlJSON: configs(plan))
        let copies = setup.dom0.calls.filter { $0.hasPrefix("copy ") }
        #expect(Set(copies) == ["copy \(kernel)", "copy \(initrd)"])
        #expect(setup.dom0.files.isSuperset(of: [kernel, initrd]))
        // Copied before the IOVMs were created.
        #expect(setup.host.calls.contains("create iovm0 paused"))
        // A re-apply finds them there and copies nothing.
        let before = setup.dom0.calls.count
        _ = try setup.engine.apply(plan, libxlJSON: configs(plan))
        #expect(setup.dom0.calls.count == before)
    }

    /// A kernel the host lacks that is not iovm's own image is refused, naming it, before anything is touched.
    @Test func aGuestKernelTheHostLacksIsRefusedBeforeAnythingIsTouched() throws {
        var plan = try plan()
        let guest = try #require(plan.domains.firstIndex { $0.name == "guest3" })
        plan.domains[guest].kernel = "/boot/guest-kernel"
        let setup = setup()
        #expect {
            try setup.engine.apply(plan, libxlJSON: configs(plan))
        } throws: { error in
            "\(error)".contains("/boot/guest-kernel is not on root@xen-test:22") && "\(error)".contains("create guest3")
        }
        #expect(setup.host.calls.isEmpty)
        #expect(setup.dom0.calls.isEmpty)
    }

    @Test func livePinAndWeightGoThroughLibvirt() throws {
        let setup = setup()
        let plan = try plan()
        _ = try setup.engine.apply(plan, libxlJSON: configs(plan))
        _ = try setup.engine.pin([("iovm0", [1]), ("iovm1", nil)])
        #expect(setup.host.domainState("iovm0")?.pins == [[1]])
        #expect(setup.host.domainState("iovm1")?.pins == [[0, 1, 2, 3]])
        _ = try setup.engine.setWeight([("iovm0", 768)], cap: nil)
        #expect(setup.host.domainState("iovm0")?.weight == 768)
    }

    @Test func destroyRemovesOnlyWhatIovmMadeAndGivesTheNICsBack() throws {
        let setup = setup()
        let plan = try plan()
        _ = try setup.engine.apply(plan, libxlJSON: configs(plan))
        setup.host.addForeign("other")
        let report = try setup.engine.destroy(topology: plan.topology, nics: plan.hostNICs)
        #expect(!report.done.isEmpty)
        #expect(setup.host.domainState("other") != nil)
        #expect(try setup.host.domains().map(\.name).sorted() == ["Domain-0", "other"])
        for nic in Self.nics { #expect(setup.host.driver(LibvirtBackend.nodeDevice(PCIAddressForTests(nic))) == "e1000") }
        #expect(setup.store.values.keys.filter { $0.hasPrefix("/local/domain/0/iovm/nics") }.isEmpty)
    }

    @Test("an apply through libvirt records its plan in the host's xenstore, as libxl's does; destroy marks, then removes it")
    func theAppliedPlanIsRecordedInTheHostsXenstore() throws {
        let setup = setup()
        let plan = try plan()
        let node = "/local/domain/0/iovm/applied/\(LibXLBackend.appliedKey(plan.topology))"
        _ = try setup.engine.apply(plan, libxlJSON: configs(plan))
        #expect(setup.store.values[node] == #"{"fingerprint":"\#(plan.appliedFingerprint)","topology":"table3"}"#)
        #expect(try setup.backend.observe(nics: []).applied == ["table3": plan.appliedFingerprint])
        _ = try setup.engine.destroy(topology: plan.topology, nics: plan.hostNICs)
        #expect(setup.store.values[node] == nil)
        // The apply's record, the destroy's mark (an `iovm watch` then finds it being destroyed), its removal.
        #expect(setup.store.changes.filter { $0.hasSuffix(" \(node)") } == ["write \(node)", "write \(node)", "remove \(node)"])
    }

    @Test("destroy through libvirt leaves a NIC another applied topology marked, as through libxl")
    func destroyLeavesANICAnAppliedTopologyMarked() throws {
        let setup = setup()
        let plan = try plan()
        _ = try setup.engine.apply(plan, libxlJSON: configs(plan))
        let nic = PCIAddressForTests("0000:00:10.0")
        // Its IOVM gone (killed), table3 is still applied: another file naming the NIC must not take it back.
        let iovm0 = try #require(try setup.backend.observe(nics: []).domain("iovm0"))
        try setup.backend.destroyDomain(domid: iovm0.domid)
        let report = try setup.engine.destroy(topology: "other", nics: [nic])
        #expect(report.done == ["left NIC \(nic) assignable: topology table3, which is applied, made it so; its destroy gives it back"])
        #expect(setup.host.driver(LibvirtBackend.nodeDevice(nic)) == "pciback")
    }

    @Test func aNICADomainHoldsIsNeverGivenBack() throws {
        let setup = setup()
        let plan = try plan()
        _ = try setup.engine.apply(plan, libxlJSON: configs(plan))
        #expect(throws: XenError.self) { try setup.backend.releaseNIC(PCIAddressForTests("0000:00:10.0")) }
        #expect(setup.host.driver("pci_0000_00_10_0") == "pciback")
    }

    @Test func aNodeDeviceGivesItsDriverAndPCIIDs() {
        // The shape of `virsh nodedev-dumpxml pci_0000_00_10_0` (libvirt 9.0, node_device_conf.c: virPCIDeviceCapFormat).
        let xml = """
            <device>
              <name>pci_0000_00_10_0</name>
              <path>/sys/devices/pci0000:00/0000:00:10.0</path>
              <parent>computer</parent>
              <driver>
                <name>e1000</name>
              </driver>
              <capability type='pci'>
                <class>0x020000</class>
                <domain>0</domain>
                <bus>0</bus>
                <slot>16</slot>
                <function>0</function>
                <product id='0x100e'>82540EM Gigabit Ethernet Controller</product>
                <vendor id='0x8086'>Intel Corporation</vendor>
              </capability>
            </device>
            """
        #expect(LibvirtBackend.driver(inNodeDeviceXML: xml) == "e1000")
        #expect(LibvirtBackend.pciIDs(inNodeDeviceXML: xml) == "8086:100e")
        #expect(LibvirtBackend.driver(inNodeDeviceXML: "<device><name>pci_0000_00_11_0</name><capability type='pci'/></device>") == nil)
        #expect(LibvirtBackend.nodeDevice(PCIAddressForTests("0000:00:10.0")) == "pci_0000_00_10_0")
    }

    @Test func theTagRoundTripsThroughTheRenderedXML() throws {
        let plan = try plan()
        let spec = try #require(plan.domain("iovm1"))
        let xml = try PlanRenderer.libvirtXML(spec, plan: plan)
        let tag = try #require(LibvirtBackend.tag(fromMetadata: xml, name: "x", uuid: "u"))
        #expect(tag == ManagedTag(topology: "table3", name: "iovm1", role: .iovm, uuid: "u", specFingerprint: spec.specFingerprint))
        #expect(LibvirtBackend.hostdevs(xml) == spec.pci)
    }
}

/// A lock that is always free.
struct NoLock: HostLock, HostLockHold {
    func acquire(timeout: Double) throws -> any HostLockHold { self }
    func release() {}
}

/// How iovm reaches a libvirt host's xenstore: the ssh of its `xen+ssh://` URI.
@Suite struct SSHXenStoreTests {
    @Test func theURIsSSHAccessBecomesSSHArguments() throws {
        let store = try #require(SSHXenStore(uri: "xen+ssh://root@127.0.0.1:2222/system?keyfile=/lab/key&no_verify=1&no_tty=1"))
        #expect(store.target == "root@127.0.0.1:2222")
        let arguments = store.sshArguments
        #expect(arguments.suffix(2) == ["127.0.0.1", "--"])
        for pair in [["-p", "2222"], ["-l", "root"], ["-i", "/lab/key"], ["-o", "StrictHostKeyChecking=no"], ["-o", "BatchMode=yes"]] {
            #expect(arguments.indices.contains { arguments[$0] == pair[0] && $0 + 1 < arguments.count && arguments[$0 + 1] == pair[1] }, "\(pair) in \(arguments)")
        }
        let plain = try #require(SSHXenStore(uri: "xen+ssh://a.example.org/system"))
        #expect(plain.target == "a.example.org")
        #expect(!plain.sshArguments.contains("-p") && !plain.sshArguments.contains("StrictHostKeyChecking=no"))
        #expect(SSHXenStore(uri: "xen:///system") == nil)
        #expect(SSHXenStore(uri: "xen+tls://a/system") == nil)
    }

    @Test func vifLinesFromOneRoundTripBecomeVifs() {
        // 8's backend is a node of the guest's own: no backend. 9's names another vif's backend.
        let text =
            "5 0 /local/domain/2/backend/vif/5/0 4 connected\n5 1 /local/domain/2/backend/vif/5/1 2 -\n7 0 - - -\ngarbage\n"
            + "8 0 /local/domain/8/data/x 4 error\n9 0 /local/domain/2/backend/vif/9/1 4 connected\n10 0 a b 4 - -\n"
        let vifs = SSHXenStore.parseVifs(text, domids: [5, 6, 7, 8, 9, 10])
        #expect(
            vifs[5] == [
                ObservedVif(devid: 0, backendDomid: 2, backendState: "4", hotplugStatus: "connected"),
                ObservedVif(devid: 1, backendDomid: 2, backendState: "2", hotplugStatus: nil),
            ])
        #expect(vifs[6] == [])
        #expect(vifs[7] == [ObservedVif(devid: 0, backendDomid: nil, backendState: nil, hotplugStatus: nil)])
        #expect(vifs[8] == [ObservedVif(devid: 0, backendDomid: nil, backendState: nil, hotplugStatus: nil)])
        #expect(vifs[9] == [ObservedVif(devid: 0, backendDomid: nil, backendState: nil, hotplugStatus: nil)])
        #expect(vifs[10] == [ObservedVif(devid: 0, backendDomid: nil, backendState: nil, hotplugStatus: nil)])  // a backend with a space
    }

    @Test func wordsAreQuotedForTheRemoteShell() {
        #expect(SSHXenStore.quoted("/local/domain/0/name") == "/local/domain/0/name")
        #expect(SSHXenStore.quoted("") == "''")
        #expect(SSHXenStore.quoted("a b") == "'a b'")
        #expect(SSHXenStore.quoted("it's") == "'it'\\''s'")
        #expect(SSHXenStore.quoted("$(reboot)") == "'$(reboot)'")
    }

    @Test("records(under:) reads every child's value in one shell call, any byte in a value, and parses what it printed")
    func recordsComeBackWhole() throws {
        // A fake xenstore: a node is a file under the directory, its children a directory.
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("iovm-records-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let values = [
            "/local/domain/0/iovm/nics/0000_00_10_0": #"{"driver":"e1000","topology":"lab-hybrid"}"#,
            "/local/domain/0/iovm/nics/0000_00_11_0": "tab\there, é, and\na second line",
            "/local/domain/0/iovm/applied/1f": #"{"fingerprint":"d03e","topology":"t"}"#,
        ]
        for (path, value) in values {
            try FileManager.default.createDirectory(atPath: root + "/store" + (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(value.utf8).write(to: URL(fileURLWithPath: root + "/store" + path))
        }
        try FileManager.default.createDirectory(atPath: root + "/bin", withIntermediateDirectories: true)
        let tools = [
            "xenstore-list": "#!/bin/sh\n[ -d \"\(root)/store$1\" ] && ls \"\(root)/store$1\"\n",
            "xenstore-read": "#!/bin/sh\n[ -f \"\(root)/store$1\" ] && cat \"\(root)/store$1\" && echo\n",
        ]
        for (name, text) in tools {
            try Data(text.utf8).write(to: URL(fileURLWithPath: "\(root)/bin/\(name)"))
            chmod("\(root)/bin/\(name)", 0o755)
        }
        // The vifs' script over the same fake: libxl's record first, else the frontend's key.
        for (path, value) in [
            ("/libxl/5/device/vif/0/backend", "/local/domain/2/backend/vif/5/0"), ("/local/domain/5/device/vif/0/backend", "/local/domain/3/x"),
            ("/local/domain/2/backend/vif/5/0/state", "4"), ("/local/domain/5/device/vif/1/backend", "/local/domain/2/backend/vif/5/1"),
            ("/local/domain/2/backend/vif/5/1/state", "2"),
        ] {
            try FileManager.default.createDirectory(atPath: root + "/store" + (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(value.utf8).write(to: URL(fileURLWithPath: root + "/store" + path))
        }
        let vifs = try ProcessRunner.run("/bin/sh", ["-c", SSHXenStore.vifsScript([5, 6])], environment: ["PATH": "\(root)/bin:/usr/bin:/bin"], timeout: 30)
        #expect(
            SSHXenStore.parseVifs(vifs.output, domids: [5, 6]) == [
                5: [
                    ObservedVif(devid: 0, backendDomid: 2, backendState: "4", hotplugStatus: nil),
                    ObservedVif(devid: 1, backendDomid: 2, backendState: "2", hotplugStatus: nil),
                ],
                6: [],
            ], "\(vifs.output)")
        let roots = ["/local/domain/0/iovm/nics", "/local/domain/0/iovm/applied", "/local/domain/0/iovm/none"]
        let outcome = try ProcessRunner.run(
            "/usr/bin/env", ["LC_ALL=C", "sh", "-c", SSHXenStore.recordsScript(roots)], environment: ["PATH": "\(root)/bin:/usr/bin:/bin"], timeout: 30)
        #expect(outcome.succeeded, "\(outcome.output)")
        // ssh's warnings share the output: a line before the records is skipped.
        let records = RemoteRecords.parse(Array(("Warning: Permanently added '[127.0.0.1]:2222' to the list of known hosts.\n" + outcome.output).utf8))
        #expect(records.count == 2)
        #expect(
            records["/local/domain/0/iovm/nics"] == [
                "0000_00_10_0": values["/local/domain/0/iovm/nics/0000_00_10_0"]!, "0000_00_11_0": values["/local/domain/0/iovm/nics/0000_00_11_0"]!,
            ])
        #expect(records["/local/domain/0/iovm/applied"] == ["1f": values["/local/domain/0/iovm/applied/1f"]!])
        // A record cut short ends the parse; the ones before it stand.
        let cut = RemoteRecords.parse(Array("/r\ta\t2\nok\n/r\tb\t10\nshort\n".utf8))
        #expect(cut == ["/r": ["a": "ok"]])
        // A count near Int.max (a junk line's) ends the parse; it does not overflow.
        #expect(RemoteRecords.parse(Array("/r\ta\t2\nok\n/r\tb\t9223372036854775807\nx\n".utf8)) == ["/r": ["a": "ok"]])
    }
}
