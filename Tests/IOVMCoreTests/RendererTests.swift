import Foundation
import IOVMCore
import Testing
import XenKitTestSupport

/// Rendered xl.cfg files must parse with the real libxlutil parser (the one `xl create` uses).
@Suite("Renderers")
struct RendererTests {
    static let configurations: [(String, ConfigurationKind, Int?, [String], Int, PlacementKind, Bool?)] = [
        ("centralized", .centralized, nil, Fixture.paperNICs3, 3, .credit, nil),
        ("monolithic", .monolithic, nil, Fixture.paperNICs3, 3, .credit, nil),
        ("multiple-small", .multipleSmall, nil, Fixture.paperNICs3, 3, .iovmAffinity, true),
        ("hybrid", .hybrid, 2, Fixture.paperNICs4, 4, .credit, nil),
        ("hybrid-pinned", .hybrid, 2, Fixture.paperNICs4, 4, .hybridPinned, nil),
    ]

    @Test("every rendered xl.cfg and cpupool config parses with libxlutil", arguments: 0..<5)
    func everyFileParses(index: Int) throws {
        let (name, kind, groups, nics, guests, placement, pool) = Self.configurations[index]
        let plan = try Fixture.plan(
            Fixture.generated(
                kind, groups: groups, nics: nics, guests: guests,
                placement: placement, dedicatedPool: pool))
        let rendered = try PlanRenderer().render(plan)
        let configs = rendered.files.filter { $0.path.hasSuffix(".cfg") }
        #expect(configs.count == plan.domains.count + plan.cpupools.count, "\(name)")
        for file in configs {
            let parsed = try XLConfigFile.parse(file.contents, name: file.path)
            if file.path.hasPrefix("cpupool-") {
                #expect(parsed.string("sched") == "credit")
                continue
            }
            let domain = try #require(plan.domain(String(file.path.dropLast(4))))
            #expect(parsed.string("name") == domain.name)
            #expect(parsed.string("type") == "pv")
            #expect(parsed.string("kernel") == "/boot/vmlinux")
            #expect(parsed.string("ramdisk") == "/boot/initrd")
            #expect(parsed.int("memory") == 256)
            #expect(parsed.int("vcpus") == 1)
            #expect(parsed.int("cpu_weight") == domain.weight)
            #expect(parsed.string("cpus") == domain.hardAffinity?.description)
            #expect(parsed.int("driver_domain") == (domain.role == .iovm ? 1 : nil))
            #expect(parsed.list("pci") == (domain.nics.isEmpty ? nil : domain.pci.map(\.description)))
            #expect(parsed.string("pool") == (domain.cpupool == "Pool-0" ? nil : domain.cpupool))
        }
    }

    @Test("Table 3 pinning as xl.cfg: IOVMs own their NICs, guests' vifs name their IOVM backend")
    func hybridPinnedValues() throws {
        let plan = try Fixture.plan(Fixture.generated(.hybrid, groups: 2, nics: Fixture.paperNICs4, guests: 4, placement: .hybridPinned))
        let rendered = try PlanRenderer().render(plan)
        let iovm0 = try XLConfigFile.parse(try #require(rendered.file("iovm0.cfg")).contents, name: "iovm0.cfg")
        #expect(iovm0.list("pci") == ["0000:00:04.0", "0000:00:05.0"])
        #expect(iovm0.string("cpus") == "3")
        #expect(iovm0.int("driver_domain") == 1)
        let guest3 = try XLConfigFile.parse(try #require(rendered.file("guest3.cfg")).contents, name: "guest3.cfg")
        let mac = try #require(plan.domain("guest3")?.vifs.first?.mac)
        #expect(guest3.list("vif") == ["mac=\(mac),bridge=br0,backend=iovm1,script=iovm-vif"])
        #expect(guest3.string("cpus") == "0-1")
        #expect(guest3.contains("driver_domain") == false)
    }

    @Test("libxl JSON carries the libxl_domain_config fields")
    func libxlJSON() throws {
        let plan = try Fixture.plan(
            Fixture.generated(
                .multipleSmall, nics: Fixture.paperNICs3, guests: 3,
                placement: .iovmAffinity, dedicatedPool: true))
        let rendered = try PlanRenderer().render(plan)
        let text = try #require(rendered.file("iovm1.json")).contents
        let json = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let cInfo = try #require(json["c_info"] as? [String: Any])
        #expect(cInfo["name"] as? String == "iovm1")
        #expect(cInfo["type"] as? String == "pv")
        #expect(cInfo["driver_domain"] as? String == "True")
        #expect(cInfo["pool_name"] as? String == "iovm-pool")
        let bInfo = try #require(json["b_info"] as? [String: Any])
        #expect(bInfo["max_memkb"] as? Int == 262144)
        #expect(bInfo["vcpu_hard_affinity"] as? [[Int]] == [[3]])
        #expect((bInfo["sched_params"] as? [String: Int])?["weight"] == 256)
        let pci = try #require((json["pcidevs"] as? [[String: Int]])?.first)
        #expect(pci == ["domain": 0, "bus": 0, "dev": 5, "func": 0])
        let guestText = try #require(rendered.file("guest2.json")).contents
        let guest = try #require(try JSONSerialization.jsonObject(with: Data(guestText.utf8)) as? [String: Any])
        let nic = try #require((guest["nics"] as? [[String: String]])?.first)
        #expect(nic["backend_domname"] == "iovm1")
        #expect(nic["bridge"] == "br0")
        #expect(nic["script"] == "iovm-vif")
    }

    @Test("vifs an IOVM backs run iovm's hotplug script unless the topology names another; dom0's keep libxl's")
    func vifScripts() throws {
        let hybrid = try Fixture.plan(Fixture.generated(.hybrid, groups: 2, nics: Fixture.paperNICs4, guests: 4, placement: .credit))
        #expect(hybrid.guests.flatMap(\.vifs).map(\.script) == Array(repeating: "iovm-vif", count: 4))

        let centralized = try Fixture.plan(Fixture.generated(.centralized, nics: Fixture.paperNICs3, guests: 3, placement: .credit))
        #expect(centralized.guests.flatMap(\.vifs).allSatisfy { $0.script == nil })
        let rendered = try PlanRenderer().render(centralized)
        let guest1 = try XLConfigFile.parse(try #require(rendered.file("guest1.cfg")).contents, name: "guest1.cfg")
        #expect(guest1.list("vif")?.first?.contains("script=") == false)

        var stock = Fixture.generated(.hybrid, groups: 2, nics: Fixture.paperNICs4, guests: 4, placement: .credit)
        stock.defaults?.vifScript = "vif-bridge"
        let stockPlan = try Fixture.plan(stock)
        #expect(stockPlan.guests.flatMap(\.vifs).map(\.script) == Array(repeating: "vif-bridge", count: 4))
        let text = try #require(try PlanRenderer().render(stockPlan).file("guest4.cfg")).contents
        let guest4 = try XLConfigFile.parse(text, name: "guest4.cfg")
        #expect(guest4.list("vif")?.first?.hasSuffix(",script=vif-bridge") == true)
    }

    @Test(
        "a vif script that is not a name or an absolute path is refused at its Defaults line",
        arguments: ["", "my script", "../x", "/etc/../x", "a,b", "scripts/x", "/etc/xen/", "x'y"])
    func badVifScript(script: String) throws {
        var document = Fixture.generated(.hybrid, groups: 2, nics: Fixture.paperNICs4, guests: 4, placement: .credit)
        document.defaults?.vifScript = script
        let errors = Fixture.errors(document)
        #expect(errors.count == 1)
        #expect(errors.first?.location?.line == 3)
        #expect(errors.first?.message.contains("vifScript") == true)
    }

    @Test("an absolute vif script path plans", arguments: ["/etc/xen/scripts/iovm-vif", "/usr/local/lib/xen/vif-fast", "vif-bridge"])
    func goodVifScript(script: String) throws {
        var document = Fixture.generated(.hybrid, groups: 2, nics: Fixture.paperNICs4, guests: 4, placement: .credit)
        document.defaults?.vifScript = script
        #expect(try Fixture.plan(document).guests.first?.vifs.first?.script == script)
    }

    @Test("plan.json decodes back to the same plan")
    func planJSONRoundTrips() throws {
        let plan = try Fixture.plan(Fixture.generated(.hybrid, groups: 2, nics: Fixture.paperNICs4, guests: 4, placement: .hybridPinned))
        let text = try #require(try PlanRenderer().render(plan).file("plan.json")).contents
        #expect(try JSONDecoder().decode(Plan.self, from: Data(text.utf8)) == plan)
    }

    @Test("the kernel fragment for each NIC driver has Table 1's functions")
    func kernelFragments() throws {
        #expect(KernelConfig.nicDrivers == ["e1000", "e1000e", "igb", "ixgbe", "virtio"])
        let fragment = try KernelConfig.fragment(nicDriver: "e1000")
        for symbol in [
            "CONFIG_INET=y", "CONFIG_BRIDGE=y", "CONFIG_PACKET=y", "CONFIG_UNIX=y", "CONFIG_XEN_NETDEV_BACKEND=y",
            "CONFIG_XEN_PCIDEV_FRONTEND=y", "CONFIG_HVC_XEN=y", "CONFIG_BLK_DEV_INITRD=y", "CONFIG_E1000=y",
            "# CONFIG_SMP is not set", "# CONFIG_IPV6 is not set", "# CONFIG_BRIDGE_NETFILTER is not set",
        ] {
            #expect(fragment.contains(symbol), "missing \(symbol)")
        }
        #expect(try KernelConfig.fragment(nicDriver: "ixgbe").contains("CONFIG_IXGBE=y"))
        #expect(throws: KernelConfig.Error.self) { try KernelConfig.fragment(nicDriver: "tulip") }
    }
}
