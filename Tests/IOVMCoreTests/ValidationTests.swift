import IOVMCore
import IOVMWireFormat
import Testing

/// Every validation error names the thing and the line, and nothing plans.
@Suite("Validation")
struct ValidationTests {
    /// An explicit topology: IOVMs on lines 10+, guests on lines 20+.
    func explicit(
        iovms: [IOVMDocument], guests: [GuestDocument], cores: Int = 4, memoryMiB: Int? = 8192,
        placement: PlacementKind = .credit, scheduling: SchedulingDocument? = nil,
        defaults: DefaultsDocument? = DefaultsDocument(kernel: "/boot/vmlinux", source: Fixture.at(3))
    ) -> TopologyDocument {
        TopologyDocument(
            name: "test", source: Fixture.at(1),
            host: HostDocument(cores: cores, memoryMiB: memoryMiB, source: Fixture.at(2)),
            defaults: defaults, iovms: iovms, guests: guests,
            placement: PlacementDocument(kind: placement, source: Fixture.at(30)), scheduling: scheduling)
    }

    func iovm(_ name: String, _ nics: [String], line: Int, resources: DomainResources = .init()) -> IOVMDocument {
        IOVMDocument(
            name: name, resources: resources,
            nics: nics.enumerated().map { NICDocument(pci: $1, source: Fixture.at(line * 10 + $0)) },
            source: Fixture.at(line))
    }

    func guest(
        _ name: String, backend: String? = "net0", line: Int, resources: DomainResources = .init(),
        nic: String? = nil, bridge: String? = nil, mac: String? = nil
    ) -> GuestDocument {
        GuestDocument(name: name, resources: resources, backend: backend, nic: nic, bridge: bridge, mac: mac, source: Fixture.at(line))
    }

    /// Asserts exactly one error, at `line`, whose message contains every fragment.
    func expectError(_ document: TopologyDocument, line: Int, _ fragments: String..., sourceLocation: Testing.SourceLocation = #_sourceLocation) {
        let errors = Fixture.errors(document)
        #expect(errors.count == 1, "expected one error, got \(errors)", sourceLocation: sourceLocation)
        guard let error = errors.first else { return }
        #expect(error.location == Fixture.at(line), "\(error)", sourceLocation: sourceLocation)
        for fragment in fragments {
            #expect(error.message.contains(fragment), "\"\(error.message)\" lacks \"\(fragment)\"", sourceLocation: sourceLocation)
        }
        #expect(error.description.hasPrefix("\(Fixture.file):\(line): error: "), sourceLocation: sourceLocation)
    }

    @Test func validExplicitTopologyPlans() throws {
        let plan = try Fixture.plan(explicit(iovms: [iovm("net0", ["0000:03:00.0"], line: 10)], guests: [guest("web", line: 20)]))
        #expect(plan.configuration == .monolithic)
        #expect(plan.declaredConfiguration == .explicit)
        #expect(plan.domain("net0")?.driverDomain == true)
        #expect(plan.domain("web")?.vifs == [VifSpec(backend: "net0", bridge: "br0", mac: plan.domain("web")!.vifs[0].mac, nic: PCIAddress("0000:03:00.0"), script: "iovm-vif")])
    }

    @Test func duplicateNames() {
        expectError(
            explicit(
                iovms: [iovm("net0", ["0000:03:00.0"], line: 10)],
                guests: [guest("web", line: 20), guest("web", line: 21)]),
            line: 21, "duplicate domain name \"web\"", "first declared at \(Fixture.file):20")
        expectError(
            explicit(iovms: [iovm("net0", ["0000:03:00.0"], line: 10)], guests: [guest("net0", line: 20)]),
            line: 20, "duplicate domain name \"net0\"")
    }

    @Test func nicClaimedTwice() {
        expectError(
            explicit(
                iovms: [iovm("net0", ["0000:03:00.0"], line: 10), iovm("net1", ["03:00.0"], line: 11)],
                guests: [guest("web", line: 20)]),
            line: 110, "NIC 0000:03:00.0 is claimed twice", "IOVM net0", "IOVM net1")
    }

    @Test func malformedPCIAddress() {
        expectError(
            explicit(iovms: [iovm("net0", ["0000:03:20.0"], line: 10)], guests: [guest("web", line: 20)]),
            line: 100, "\"0000:03:20.0\"", "not a PCI address")
    }

    @Test func unknownIOVM() {
        expectError(
            explicit(iovms: [iovm("net0", ["0000:03:00.0"], line: 10)], guests: [guest("web", backend: "net9", line: 20)]),
            line: 20, "unknown IOVM \"net9\"", "known IOVMs: net0")
    }

    @Test func guestNamesNoBackendAmongSeveral() {
        expectError(
            explicit(
                iovms: [iovm("net0", ["0000:03:00.0"], line: 10), iovm("net1", ["0000:04:00.0"], line: 11)],
                guests: [guest("web", backend: nil, line: 20)]),
            line: 20, "guest web names no backend")
    }

    @Test func guestNICOwnedByAnotherIOVM() {
        expectError(
            explicit(
                iovms: [iovm("net0", ["0000:03:00.0"], line: 10), iovm("net1", ["0000:04:00.0"], line: 11)],
                guests: [guest("web", backend: "net0", line: 20, nic: "0000:04:00.0")]),
            line: 20, "belongs to net1", "not to its backend net0")
    }

    @Test func moreVCPUsThanCores() {
        expectError(
            explicit(
                iovms: [iovm("net0", ["0000:03:00.0"], line: 10)],
                guests: [guest("web", line: 20, resources: DomainResources(vcpus: 6))]),
            line: 20, "6 vCPUs", "host's 4 cores")
    }

    @Test func pinnedToMissingCore() {
        expectError(
            explicit(
                iovms: [iovm("net0", ["0000:03:00.0"], line: 10, resources: DomainResources(cpus: [7]))],
                guests: [guest("web", line: 20)]),
            line: 10, "pinned to core 7", "cores 0-3")
    }

    @Test func moreMemoryThanHost() {
        expectError(
            explicit(
                iovms: [iovm("net0", ["0000:03:00.0"], line: 10)],
                guests: [guest("web", line: 20, resources: DomainResources(memoryMiB: 4096))], memoryMiB: 2048),
            line: 2, "4352 MiB", "2048 MiB")
    }

    @Test func missingKernel() throws {
        // An IOVM that names no kernel boots the minimal image instead; a guest has no such default.
        let plan = try Fixture.plan(
            explicit(
                iovms: [iovm("net0", ["0000:03:00.0"], line: 10)],
                guests: [guest("web", line: 20, resources: DomainResources(kernel: "/k"))], defaults: nil))
        #expect(plan.domain("net0")?.image?.kind == "minimal")
        let errors = Fixture.errors(
            explicit(
                iovms: [iovm("net0", ["0000:03:00.0"], line: 10, resources: DomainResources(kernel: "/k"))],
                guests: [guest("web", line: 20)], defaults: nil))
        #expect(errors.map(\.message) == ["guest web has no kernel: give kernel: or Defaults(kernel:)"])
    }

    @Test func noHostShape() {
        var document = explicit(iovms: [iovm("net0", ["0000:03:00.0"], line: 10)], guests: [guest("web", line: 20)])
        document.host = nil
        expectError(document, line: 1, "no host shape", "--host-cores")
        #expect((try? Planner(hostOverride: HostShape(cores: 2)).plan(document)) != nil)
    }

    @Test func badNamesAndValues() {
        expectError(
            explicit(iovms: [iovm("net0", ["0000:03:00.0"], line: 10)], guests: [guest("web server", line: 20)]),
            line: 20, "\"web server\" is not a valid domain name")
        expectError(
            explicit(iovms: [iovm("net0", ["0000:03:00.0"], line: 10)], guests: [guest("Domain-0", line: 20)]),
            line: 20, "dom0's")
        expectError(
            explicit(
                iovms: [iovm("net0", ["0000:03:00.0"], line: 10)],
                guests: [guest("web", line: 20, resources: DomainResources(weight: 70000))]),
            line: 20, "credit weight 70000")
        expectError(
            explicit(
                iovms: [iovm("net0", ["0000:03:00.0"], line: 10)], guests: [guest("web", line: 20)],
                scheduling: SchedulingDocument(iovmCap: 150, source: Fixture.at(5))),
            line: 5, "credit cap 150 of IOVM net0", "0-100")
        expectError(
            explicit(
                iovms: [iovm("net0", ["0000:03:00.0"], line: 10)],
                guests: [guest("web", line: 20, resources: DomainResources(memoryMiB: 8))]),
            line: 20, "8 MiB")
        expectError(
            explicit(
                iovms: [iovm("net0", ["0000:03:00.0"], line: 10)],
                guests: [guest("web", line: 20, resources: DomainResources(cmdline: "root=\"x\""))]),
            line: 20, "cmdline of guest web", "quote")
        expectError(
            explicit(iovms: [iovm("net0", ["0000:03:00.0"], line: 10)], guests: [guest("web", line: 20, bridge: "a-very-long-bridge-name")]),
            line: 20, "bridge \"a-very-long-bridge-name\"")
        expectError(
            explicit(iovms: [iovm("net0", ["0000:03:00.0"], line: 10)], guests: [guest("web", line: 20, mac: "00:16:3e:zz:00:01")]),
            line: 20, "MAC \"00:16:3e:zz:00:01\"")
        expectError(
            explicit(iovms: [iovm("net0", ["0000:03:00.0"], line: 10)], guests: [guest("web", line: 20, mac: "01:16:3e:00:00:01")]),
            line: 20, "multicast")
        expectError(
            explicit(
                iovms: [iovm("net0", ["0000:03:00.0"], line: 10)],
                guests: [guest("web", line: 20, mac: "00:16:3e:00:00:01"), guest("db", line: 21, mac: "00:16:3e:00:00:01")]),
            line: 21, "MAC 00:16:3e:00:00:01", "guest web")
    }

    @Test func mixingGeneratorAndHandDeclaredIOVMs() {
        var document = Fixture.generated(.monolithic, nics: ["0000:03:00.0"], guests: 1, placement: .credit)
        document.iovms = [iovm("net0", [], line: 15)]
        expectError(document, line: 15, "IOVM net0 is declared by hand", "Configuration.monolithic")
    }

    @Test func strayNICWithoutGenerator() {
        var document = explicit(iovms: [iovm("net0", ["0000:03:00.0"], line: 10)], guests: [guest("web", line: 20)])
        document.nics = [NICDocument(pci: "0000:04:00.0", source: Fixture.at(12))]
        expectError(document, line: 12, "NIC 0000:04:00.0 is declared outside any IOVM")
    }

    @Test func hybridGroupsOutOfRange() {
        expectError(
            Fixture.generated(.hybrid, groups: 3, nics: ["0000:03:00.0", "0000:04:00.0"], guests: 2, placement: .credit),
            line: 4, "hybrid(groups: 3)", "between 1 and 2")
    }

    @Test func generatorWithoutNICs() {
        expectError(Fixture.generated(.multipleSmall, nics: [], guests: 2, placement: .credit), line: 4, "needs at least one NIC")
    }

    @Test func guestNamesUndeclaredNIC() {
        var document = Fixture.generated(.multipleSmall, nics: ["0000:03:00.0"], guests: 1, placement: .credit)
        document.guests[0].nic = "0000:09:00.0"
        expectError(document, line: 20, "NIC 0000:09:00.0", "no NIC(…) declaration")
    }

    @Test func unsupportedSchemaVersion() {
        var document = Fixture.generated(.monolithic, nics: ["0000:03:00.0"], guests: 1, placement: .credit)
        document.schemaVersion = 99
        expectError(document, line: 1, "schema version 99")
    }

    @Test func everyErrorIsReportedAtOnce() {
        let document = explicit(
            iovms: [iovm("net0", ["0000:03:00.0", "bogus"], line: 10), iovm("net1", ["0000:03:00.0"], line: 11)],
            guests: [guest("web", backend: "nope", line: 20), guest("db", line: 21, resources: DomainResources(vcpus: 9))])
        let errors = Fixture.errors(document)
        #expect(errors.count == 4, "\(errors)")
        if case .invalid(let all) = (Result { try Planner().plan(document) }.mapError { $0 as! TopologyError }).failure! {
            let text = TopologyError.invalid(all).description
            #expect(text.hasSuffix("4 errors in the topology; nothing was touched."))
            let lines = text.split(separator: "\n").dropLast().map { String($0) }
            let numbers = lines.compactMap { Int($0.split(separator: ":")[1]) }
            #expect(numbers == numbers.sorted(), "diagnostics are not in line order: \(lines)")
        }
    }
}

extension Result {
    var failure: Failure? { if case .failure(let error) = self { error } else { nil } }
}
