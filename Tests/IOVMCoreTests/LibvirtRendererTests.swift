import Foundation
import IOVMCore
import IOVMWireFormat
import Testing

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// `iovm render --format libvirt`: libvirt domain XML for the libxl driver of libvirt 9.0 (issue 15).
@Suite("LibvirtRenderer")
struct LibvirtRendererTests {
    /// Table 3's Core Pinning: Hybrid, 2 IOVMs on cores 3 and 2, guests on 0-1, weights 512/256, an IOVM cap of 50.
    static func hybridPinned() throws -> Plan {
        var document = Fixture.generated(.hybrid, groups: 2, nics: Fixture.paperNICs4, guests: 4, placement: .hybridPinned)
        document.scheduling = SchedulingDocument(iovmWeight: 512, iovmCap: 50, guestWeight: 256, source: Fixture.at(40))
        document.defaults?.guestDisks = ["/var/lib/xen/guest.qcow2,qcow2,xvda,rw", "/dev/vg0/data,xvdb,r"]
        return try Fixture.plan(document)
    }

    static func parse(_ xml: String) throws -> XMLDocument {
        try XMLDocument(xmlString: xml, options: [])
    }

    static func values(_ document: XMLDocument, _ xpath: String) throws -> [String] {
        try document.nodes(forXPath: xpath).compactMap(\.stringValue)
    }

    /// `virt-xml-validate` on PATH (libvirt-clients), or nil.
    static let validator: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return (path.split(separator: ":").map(String.init) + ["/usr/bin"]).map { $0 + "/virt-xml-validate" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    @Test("each IOVM passes its NICs through as unmanaged PCI hostdevs at their bus, slot and function")
    func hostdevs() throws {
        let plan = try Self.hybridPinned()
        for iovm in plan.iovms {
            let xml = try Self.parse(try PlanRenderer.libvirtXML(iovm, plan: plan))
            let hostdevs = try xml.nodes(forXPath: "/domain/devices/hostdev") as? [XMLElement] ?? []
            #expect(hostdevs.count == iovm.nics.count)
            for (hostdev, nic) in zip(hostdevs, iovm.nics) {
                #expect(hostdev.attribute(forName: "mode")?.stringValue == "subsystem")
                #expect(hostdev.attribute(forName: "type")?.stringValue == "pci")
                #expect(hostdev.attribute(forName: "managed")?.stringValue == "no")
                let address = try #require(try hostdev.nodes(forXPath: "source/address").first as? XMLElement)
                #expect(address.attribute(forName: "domain")?.stringValue == "0x0000")
                #expect(address.attribute(forName: "bus")?.stringValue == String(format: "0x%02x", Int(nic.pci.bus)))
                #expect(address.attribute(forName: "slot")?.stringValue == String(format: "0x%02x", Int(nic.pci.device)))
                #expect(address.attribute(forName: "function")?.stringValue == "0x\(nic.pci.function)")
            }
            #expect(try Self.values(xml, "/domain/devices/interface").isEmpty)
        }
        let iovm0 = try Self.parse(try PlanRenderer.libvirtXML(try #require(plan.domain("iovm0")), plan: plan))
        #expect(try Self.values(iovm0, "/domain/devices/hostdev/source/address/@slot") == ["0x04", "0x05"])
        #expect(try Self.values(iovm0, "/domain/os/type") == ["xen"])
        #expect(try Self.values(iovm0, "/domain/os/type/@machine") == ["xenpv"])
        #expect(try Self.values(iovm0, "/domain/os/kernel") == ["/boot/vmlinux"])
        #expect(try Self.values(iovm0, "/domain/os/initrd") == ["/boot/initrd"])
        #expect(try Self.values(iovm0, "/domain/memory") == ["262144"])
        #expect(try Self.values(iovm0, "/domain/memory/@unit") == ["KiB"])
    }

    @Test("each guest vif is a bridge interface whose backend is its IOVM; a dom0-backed vif names none")
    func backendDomains() throws {
        let plan = try Self.hybridPinned()
        for guest in plan.guests {
            let xml = try Self.parse(try PlanRenderer.libvirtXML(guest, plan: plan))
            #expect(try Self.values(xml, "/domain/devices/interface/@type") == guest.vifs.map { _ in "bridge" })
            #expect(try Self.values(xml, "/domain/devices/interface/backenddomain/@name") == guest.vifs.compactMap(\.backend))
            #expect(try Self.values(xml, "/domain/devices/interface/source/@bridge") == guest.vifs.map(\.bridge))
            #expect(try Self.values(xml, "/domain/devices/interface/mac/@address") == guest.vifs.map(\.mac))
            #expect(try Self.values(xml, "/domain/devices/interface/script/@path") == guest.vifs.compactMap(\.script))
            #expect(try Self.values(xml, "/domain/devices/interface/model/@type") == guest.vifs.map { _ in "netfront" })
            #expect(try Self.values(xml, "/domain/devices/hostdev").isEmpty)
        }
        #expect(plan.domain("guest3")?.vifs.first?.backend == "iovm1")
        let centralized = try Fixture.plan(Fixture.generated(.centralized, nics: Fixture.paperNICs3, guests: 3, placement: .credit))
        let guest = try #require(centralized.domain("guest1"))
        let xml = try Self.parse(try PlanRenderer.libvirtXML(guest, plan: centralized))
        #expect(try Self.values(xml, "/domain/devices/interface/backenddomain").isEmpty)
        #expect(try Self.values(xml, "/domain/devices/interface/source/@bridge") == [try #require(guest.vifs.first?.bridge)])
    }

    @Test("shares are the credit weight; one vcpupin per vCPU when pinned, none when not; the cap is a comment")
    func cputune() throws {
        var plan = try Self.hybridPinned()
        let index = try #require(plan.domains.firstIndex { $0.name == "iovm1" })
        plan.domains[index].vcpus = 3
        let iovm1 = plan.domains[index]
        let text = try PlanRenderer.libvirtXML(iovm1, plan: plan)
        let xml = try Self.parse(text)
        #expect(try Self.values(xml, "/domain/cputune/shares") == ["512"])
        #expect(try Self.values(xml, "/domain/vcpu") == ["3"])
        #expect(try Self.values(xml, "/domain/vcpu/@cpuset").isEmpty)
        #expect(try Self.values(xml, "/domain/cputune/vcpupin/@vcpu") == ["0", "1", "2"])
        #expect(try Self.values(xml, "/domain/cputune/vcpupin/@cpuset") == ["2", "2", "2"])
        #expect(text.contains("<!-- iovm1: credit cap 50 has no libvirt XML: set it after every start with virDomainSetSchedulerParametersFlags"))
        #expect(PlanRenderer.libvirtNotes(iovm1, plan: plan).contains { $0.hasPrefix("iovm1: credit cap 50") })

        let guest1 = try Self.parse(try PlanRenderer.libvirtXML(try #require(plan.domain("guest1")), plan: plan))
        #expect(try Self.values(guest1, "/domain/cputune/shares") == ["256"])
        #expect(try Self.values(guest1, "/domain/cputune/vcpupin/@cpuset") == ["0-1"])
        let unpinned = try Fixture.plan(Fixture.generated(.monolithic, nics: Fixture.paperNICs3, guests: 3, placement: .credit))
        let free = try Self.parse(try PlanRenderer.libvirtXML(try #require(unpinned.domain("guest1")), plan: unpinned))
        #expect(try Self.values(free, "/domain/cputune/vcpupin").isEmpty)
        #expect(try Self.values(free, "/domain/cputune/shares") == ["256"])
    }

    @Test("managed domains carry iovm's namespace, topology, role and the plan's fingerprint; the UUID when given")
    func metadata() throws {
        let plan = try Self.hybridPinned()
        let uuid = try #require(UUID(uuidString: "6F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F9"))
        let xml = try Self.parse(try PlanRenderer.libvirtXML(try #require(plan.domain("guest2")), plan: plan, uuid: uuid))
        let managed = try #require(try xml.nodes(forXPath: "/domain/metadata/*").first as? XMLElement)
        #expect(managed.localName == "managed")
        #expect(managed.uri == PlanRenderer.libvirtNamespace)
        #expect(PlanRenderer.libvirtNamespace == "https://iovm.dev/xmlns/libvirt/1")
        #expect(try Self.values(xml, "/domain/metadata/*/*[local-name()='topology']") == ["test"])
        #expect(try Self.values(xml, "/domain/metadata/*/*[local-name()='role']") == ["guest"])
        #expect(try Self.values(xml, "/domain/metadata/*/*[local-name()='plan']/@fingerprint") == [plan.fingerprint])
        #expect(try Self.values(xml, "/domain/metadata/*/*[local-name()='uuid']") == ["6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"])
        #expect(try Self.values(xml, "/domain/uuid") == ["6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"])
        // Without a UUID, none is written: libvirt picks one.
        let plain = try Self.parse(try PlanRenderer.libvirtXML(try #require(plan.domain("guest2")), plan: plan))
        #expect(try Self.values(plain, "/domain/uuid").isEmpty)
        // The same plan, the same bytes; another plan, another fingerprint.
        #expect(try PlanRenderer.renderLibvirt(plan).files == PlanRenderer.renderLibvirt(try Self.hybridPinned()).files)
        let other = try Fixture.plan(Fixture.generated(.hybrid, groups: 2, nics: Fixture.paperNICs4, guests: 4, placement: .credit))
        #expect(other.fingerprint != plan.fingerprint)
    }

    @Test("text and attribute values are escaped: a cmdline with & and <, a bridge with a quote")
    func escaping() throws {
        var plan = try Self.hybridPinned()
        let index = try #require(plan.domains.firstIndex { $0.name == "guest1" })
        plan.domains[index].cmdline = "console=hvc0 a=1&b=2 <x> 'q' \"d\""
        plan.domains[index].vifs[0].bridge = "br'0\""
        let text = try PlanRenderer.libvirtXML(plan.domains[index], plan: plan)
        #expect(text.contains("<cmdline>console=hvc0 a=1&amp;b=2 &lt;x&gt; &apos;q&apos; &quot;d&quot;</cmdline>"))
        #expect(text.contains("<source bridge='br&apos;0&quot;'/>"))
        let xml = try Self.parse(text)
        #expect(try Self.values(xml, "/domain/os/cmdline") == ["console=hvc0 a=1&b=2 <x> 'q' \"d\""])
        #expect(try Self.values(xml, "/domain/devices/interface/source/@bridge") == ["br'0\""])
        plan.domains[index].cmdline = "console=hvc0\u{1}"
        #expect(throws: LibvirtRenderError.notXML(domain: "guest1", field: "cmdline")) {
            try PlanRenderer.libvirtXML(plan.domains[index], plan: plan)
        }
    }

    @Test("disks: qcow2 through the qemu driver, raw with libxl's choice of backend, a block device read-only")
    func disks() throws {
        let plan = try Self.hybridPinned()
        let xml = try Self.parse(try PlanRenderer.libvirtXML(try #require(plan.domain("guest1")), plan: plan))
        #expect(try Self.values(xml, "/domain/devices/disk/@type") == ["file", "block"])
        #expect(try Self.values(xml, "/domain/devices/disk/driver/@type") == ["qcow2"])
        #expect(try Self.values(xml, "/domain/devices/disk/source/@file") == ["/var/lib/xen/guest.qcow2"])
        #expect(try Self.values(xml, "/domain/devices/disk/source/@dev") == ["/dev/vg0/data"])
        #expect(try Self.values(xml, "/domain/devices/disk/target/@dev") == ["xvda", "xvdb"])
        #expect(try Self.values(xml, "/domain/devices/disk/target/@bus") == ["xen", "xen"])
        #expect(try xml.nodes(forXPath: "/domain/devices/disk[2]/readonly").count == 1)
        #expect(try xml.nodes(forXPath: "/domain/devices/disk[1]/readonly").isEmpty)
    }

    @Test("a plan with a cpupool is refused, naming the placement that needs none; so is an rtds reservation")
    func refusals() throws {
        let pooled = try Fixture.plan(
            Fixture.generated(.multipleSmall, nics: Fixture.paperNICs3, guests: 3, placement: .iovmAffinity, dedicatedPool: true))
        #expect(!pooled.cpupools.isEmpty)
        do {
            _ = try PlanRenderer.renderLibvirt(pooled)
            Issue.record("a plan with a cpupool was rendered")
        } catch {
            #expect(
                "\(error)"
                    == "topology test needs cpupool iovm-pool (credit on 3), and libvirt's libxl driver has no cpupools: "
                    + "use Placement.iovmAffinity() without dedicatedPool (and no Host(scheduler:) other than the credit Pool-0 runs), "
                    + "or apply through libxl (iovm apply)")
        }
        let pooledGuest = try #require(pooled.domain("guest1"))
        #expect(pooledGuest.cpupool == "Pool-0")
        #expect(throws: LibvirtRenderError.self) { try PlanRenderer.libvirtXML(pooledGuest, plan: pooled) }
        // Without the dedicated pool, the same placement renders.
        let unpooled = try Fixture.plan(Fixture.generated(.multipleSmall, nics: Fixture.paperNICs3, guests: 3, placement: .iovmAffinity))
        #expect(try PlanRenderer.renderLibvirt(unpooled).files.count == unpooled.domains.count)

        // Pool-0 runs rtds: no pool, but reservations the driver cannot set.
        let rtds = SchedulerTests.asking(
            "rtds", Fixture.generated(.multipleSmall, nics: Fixture.paperNICs3, guests: 3, placement: .coLocate),
            iovm: RTDSDocument(periodMicroseconds: 10_000, budgetMicroseconds: 4_000, extratime: true))
        let rtdsPlan = try Planner(poolZeroScheduler: "rtds").plan(rtds)
        #expect(rtdsPlan.cpupools.isEmpty)
        #expect(throws: LibvirtRenderError.rtds(domain: "iovm0", reservation: "period 10000 us, budget 4000 us, extratime")) {
            try PlanRenderer.renderLibvirt(rtdsPlan)
        }
    }

    @Test(
        "every rendered file is valid against libvirt's domain schema (virt-xml-validate)",
        .enabled(if: LibvirtRendererTests.validator != nil, "virt-xml-validate is not installed (Debian: apt-get install libvirt-clients; scripts/setup does)"))
    func validates() throws {
        let validator = try #require(Self.validator)
        let plans: [(String, Plan)] = [
            ("hybrid-pinned", try Self.hybridPinned()),
            ("centralized", try Fixture.plan(Fixture.generated(.centralized, nics: Fixture.paperNICs3, guests: 3, placement: .credit))),
            ("monolithic", try Fixture.plan(Fixture.generated(.monolithic, nics: Fixture.paperNICs3, guests: 3, placement: .credit))),
            (
                "multiple-small", try Fixture.plan(Fixture.generated(.multipleSmall, nics: Fixture.paperNICs3, guests: 3, placement: .iovmAffinity))
            ),
            ("separate", try Fixture.plan(Fixture.generated(.multipleSmall, nics: Fixture.paperNICs3, guests: 3, placement: .separate))),
        ]
        let directory = FileManager.default.temporaryDirectory.appending(path: "iovm-libvirt-\(getpid())-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        var checked = 0
        for (name, plan) in plans {
            var escaped = plan
            escaped.domains[escaped.domains.count - 1].cmdline = "console=hvc0 a&b <c>"
            let rendered = try PlanRenderer.renderLibvirt(escaped)
            let out = directory.appending(path: name)
            try rendered.write(to: out)
            for file in rendered.files {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: validator)
                process.arguments = [out.appending(path: file.path).path, "domain"]
                let pipe = Pipe()
                process.standardOutput = pipe
                process.standardError = pipe
                try process.run()
                let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                process.waitUntilExit()
                #expect(process.terminationStatus == 0, "\(name)/\(file.path): \(output)\n\(file.contents)")
                #expect(output.contains("validates"), "\(name)/\(file.path): \(output)")
                checked += 1
            }
        }
        #expect(checked == plans.map(\.1.domains.count).reduce(0, +))
    }
}
