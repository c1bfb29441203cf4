import IOVMDescription
import IOVMWireFormat
import Testing

/// The DSL writes the wire document with the line of every declaration.
@Suite("Topology DSL")
struct DSLTests {
    @Test func explicitTopologyBecomesDocument() throws {
        let line = #line + 1
        let topology = Topology("dsl") {
            Host(cores: 4, memory: .gib(2), reservedCores: [0])
            Defaults(kernel: "/k", iovmMemory: 128)
            IOVM("net0", weight: 512) {
                NIC("0000:03:00.0", bridge: "up0")
                for slot in 1...2 { NIC("0000:0\(slot + 3):00.0") }
            }
            Guest("web", backend: "net0", cap: 50)
            Placement.iovmAffinity(dedicatedPool: true)
            Scheduling(guestWeight: 128)
        }
        let document = topology.document
        #expect(document.schemaVersion == 1)
        #expect(document.source?.line == line)
        #expect(document.source?.file == #filePath)
        #expect(document.host == HostDocument(cores: 4, memoryMiB: 2048, reservedCores: [0], source: .init(file: #filePath, line: line + 1)))
        #expect(document.defaults?.iovmMemoryMiB == 128)
        #expect(document.configuration.kind == .explicit)
        #expect(document.iovms.count == 1)
        #expect(document.iovms[0].resources.weight == 512)
        #expect(document.iovms[0].nics.map(\.pci) == ["0000:03:00.0", "0000:04:00.0", "0000:05:00.0"])
        #expect(document.iovms[0].nics[0].bridge == "up0")
        #expect(document.iovms[0].nics[1].source?.line == line + 5)
        #expect(document.guests[0].backend == "net0")
        #expect(document.guests[0].resources.cap == 50)
        #expect(document.guests[0].source?.line == line + 7)
        #expect(document.placement.kind == .iovmAffinity)
        #expect(document.placement.dedicatedPool == true)
        #expect(document.scheduling?.guestWeight == 128)
    }

    @Test func generatorsAndControlFlow() {
        let withPinning = true
        let topology = Topology("gen") {
            Configuration.hybrid(groups: 2)
            for index in 0..<4 { NIC("0000:00:0\(index + 4).0") }
            if withPinning { Placement.hybridPinned() } else { Placement.credit() }
            Guest("a")
        }
        #expect(topology.document.configuration == ConfigurationDocument(kind: .hybrid, groups: 2, source: topology.document.configuration.source))
        #expect(topology.document.nics.count == 4)
        #expect(topology.document.placement.kind == .hybridPinned)
        #expect(topology.document.guests.map(\.name) == ["a"])
    }

    @Test func namedHostsAndWhatIsOnThem() throws {
        let topology = Topology("fleet") {
            Host("xen-a", connect: "xen+ssh://root@a/system", cores: 8)
            Host("xen-b", cores: 4, scheduler: "credit")
            IOVM("net-a", host: "xen-a") { NIC("0000:03:00.0") }
            NIC("0000:04:00.0", host: "xen-b")
            Guest("web", host: "xen-a", backend: "net-a")
        }
        let document = topology.document
        #expect(document.host == nil)
        #expect(document.hosts?.map(\.name) == ["xen-a", "xen-b"])
        #expect(document.hosts?.map(\.connect) == ["xen+ssh://root@a/system", nil])
        #expect(document.hosts?.map(\.cores) == [8, 4])
        #expect(document.iovms.first?.host == "xen-a")
        #expect(document.nics.first?.host == "xen-b")
        #expect(document.guests.first?.host == "xen-a")
    }
}
