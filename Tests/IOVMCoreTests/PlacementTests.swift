import IOVMCore
import IOVMWireFormat
import Testing

/// The placement schemes of paper Table 2 and Sections 4.4-4.5, checked cell by cell.
@Suite("Placement schemes")
struct PlacementTests {
    // Section 4.3: Multiple Small IOVMs, 3 NICs, 3 guests, 4 cores.

    @Test("co-locate: each guest on its IOVM's core, one core per pair")
    func coLocate() throws {
        let plan = try Fixture.plan(Fixture.generated(.multipleSmall, nics: Fixture.paperNICs3, guests: 3, placement: .coLocate))
        #expect(plan.iovms.map(\.name) == ["iovm0", "iovm1", "iovm2"])
        #expect(plan.cores("iovm0") == [3])
        #expect(plan.cores("guest1") == [3])
        #expect(plan.cores("iovm1") == [2])
        #expect(plan.cores("guest2") == [2])
        #expect(plan.cores("iovm2") == [1])
        #expect(plan.cores("guest3") == [1])
        #expect(plan.cpupools.isEmpty)
    }

    @Test("separate: each guest off its IOVM's core, on a different IOVM's core")
    func separate() throws {
        let plan = try Fixture.plan(Fixture.generated(.multipleSmall, nics: Fixture.paperNICs3, guests: 3, placement: .separate))
        #expect(plan.cores("iovm0") == [3])
        #expect(plan.cores("iovm1") == [2])
        #expect(plan.cores("iovm2") == [1])
        #expect(plan.cores("guest1") == [2])
        #expect(plan.cores("guest2") == [1])
        #expect(plan.cores("guest3") == [3])
        for guest in plan.guests {
            let backend = try #require(guest.vifs.first?.backend)
            let own = try #require(plan.cores(backend))
            let core = try #require(guest.hardAffinity?.cores)
            #expect(core != own, "\(guest.name) shares a core with its own IOVM")
            #expect(
                plan.iovms.contains { $0.name != backend && $0.hardAffinity?.cores == core },
                "\(guest.name) is not with a different IOVM")
        }
    }

    @Test("IOVM-affinity: all IOVMs on one core, each guest on its own remaining core")
    func iovmAffinity() throws {
        let plan = try Fixture.plan(Fixture.generated(.multipleSmall, nics: Fixture.paperNICs3, guests: 3, placement: .iovmAffinity))
        for iovm in ["iovm0", "iovm1", "iovm2"] { #expect(plan.cores(iovm) == [3]) }
        #expect(plan.cores("guest1") == [2])
        #expect(plan.cores("guest2") == [1])
        #expect(plan.cores("guest3") == [0])
        #expect(plan.cpupools.isEmpty)
        #expect(plan.domains.allSatisfy { $0.cpupool == "Pool-0" })
    }

    @Test("IOVM-affinity with a dedicated credit cpupool for the IOVMs' core")
    func iovmAffinityPool() throws {
        let plan = try Fixture.plan(
            Fixture.generated(
                .multipleSmall, nics: Fixture.paperNICs3, guests: 3,
                placement: .iovmAffinity, dedicatedPool: true))
        #expect(plan.cpupools == [CPUPoolSpec(name: "iovm-pool", scheduler: "credit", cpus: [3])])
        #expect(plan.iovms.allSatisfy { $0.cpupool == "iovm-pool" })
        #expect(plan.guests.allSatisfy { $0.cpupool == "Pool-0" })
    }

    @Test("credit: nothing pinned")
    func credit() throws {
        let plan = try Fixture.plan(Fixture.generated(.monolithic, nics: Fixture.paperNICs3, guests: 3, placement: .credit))
        #expect(plan.domains.allSatisfy { $0.hardAffinity == nil })
        #expect(plan.iovms.count == 1)
        #expect(plan.iovms[0].pci.map(\.description) == Fixture.paperNICs3)
    }

    // Table 3: Hybrid, 2 IOVMs x 2 NICs, 4 guests.

    @Test("Table 3 core pinning: first IOVM on core 3, second on core 2, guests on 0-1")
    func table3HybridPinned() throws {
        let plan = try Fixture.plan(Fixture.generated(.hybrid, groups: 2, nics: Fixture.paperNICs4, guests: 4, placement: .hybridPinned))
        #expect(plan.configuration == .hybrid)
        #expect(plan.iovms.map { $0.pci.map(\.description) } == [["0000:00:04.0", "0000:00:05.0"], ["0000:00:06.0", "0000:00:07.0"]])
        #expect(plan.cores("iovm0") == [3])
        #expect(plan.cores("iovm1") == [2])
        for guest in 1...4 { #expect(plan.cores("guest\(guest)") == [0, 1]) }
        #expect(plan.domain("guest1")?.vifs.first?.backend == "iovm0")
        #expect(plan.domain("guest2")?.vifs.first?.backend == "iovm0")
        #expect(plan.domain("guest3")?.vifs.first?.backend == "iovm1")
        #expect(plan.domain("guest4")?.vifs.first?.backend == "iovm1")
        #expect(plan.domain("guest2")?.vifs.first?.bridge == "br1")
        #expect(plan.stages == [["iovm0", "iovm1"], ["guest1", "guest2", "guest3", "guest4"]])
    }

    @Test("Table 3 default: the same Hybrid under the credit scheduler pins nothing")
    func table3Default() throws {
        let plan = try Fixture.plan(Fixture.generated(.hybrid, groups: 2, nics: Fixture.paperNICs4, guests: 4, placement: .credit))
        #expect(plan.domains.allSatisfy { $0.hardAffinity == nil })
        #expect(plan.iovms.count == 2)
    }

    @Test("Section 4.4 hybrid: 3 NICs in 2 IOVMs split 2 + 1")
    func hybridSplit() throws {
        let plan = try Fixture.plan(Fixture.generated(.hybrid, groups: 2, nics: Fixture.paperNICs3, guests: 3, placement: .credit))
        #expect(plan.iovms.map(\.nics.count) == [2, 1])
        #expect(plan.domain("guest3")?.vifs.first?.backend == "iovm1")
    }

    @Test("reserved cores are left to dom0")
    func reservedCores() throws {
        let plan = try Fixture.plan(
            Fixture.generated(
                .hybrid, groups: 2, nics: Fixture.paperNICs4, guests: 4,
                placement: .hybridPinned, reserved: [0]))
        #expect(plan.cores("iovm0") == [3])
        #expect(plan.cores("iovm1") == [2])
        #expect(plan.cores("guest1") == [1])
    }

    @Test(
        "a scheme the core count cannot satisfy is an error at the Placement line",
        arguments: [
            (ConfigurationKind.multipleSmall, 5, PlacementKind.coLocate, 4),
            (.multipleSmall, 4, .hybridPinned, 4),
            (.monolithic, 2, .iovmAffinity, 1),
            (.monolithic, 2, .separate, 1),
            (.multipleSmall, 3, .separate, 2),
        ])
    func impossible(kind: ConfigurationKind, nics: Int, placement: PlacementKind, cores: Int) {
        let addresses = (0..<nics).map { "0000:00:0\($0 + 4).0" }
        let errors = Fixture.errors(Fixture.generated(kind, nics: addresses, guests: nics, placement: placement, cores: cores))
        #expect(errors.count == 1)
        #expect(errors.first?.location == Fixture.at(30))
        #expect(errors.first?.message.contains("the host has \(cores)") == true, "\(errors)")
    }

    @Test("centralized: guests backed by dom0 on its bridges, nothing to pin")
    func centralized() throws {
        let plan = try Fixture.plan(Fixture.generated(.centralized, nics: Fixture.paperNICs3, guests: 3, placement: .credit))
        #expect(plan.iovms.isEmpty)
        #expect(plan.guests.map { $0.vifs[0].backend } == [nil, nil, nil])
        #expect(plan.guests.map { $0.vifs[0].bridge } == ["xenbr0", "xenbr1", "xenbr2"])
        let errors = Fixture.errors(Fixture.generated(.centralized, nics: Fixture.paperNICs3, guests: 3, placement: .iovmAffinity))
        #expect(errors.map(\.message).contains { $0.contains("has none") })
    }
}

@Suite("Creation graph")
struct CreationGraphTests {
    @Test("a guest waits for the IOVM that backs its vif, an IOVM for nothing, a dom0-backed guest for nothing")
    func dependencies() throws {
        let hybrid = try Fixture.plan(Fixture.generated(.hybrid, groups: 2, nics: Fixture.paperNICs4, guests: 4, placement: .credit))
        #expect(
            hybrid.creationDependencies == [
                "iovm0": [], "iovm1": [], "guest1": ["iovm0"], "guest2": ["iovm0"], "guest3": ["iovm1"], "guest4": ["iovm1"],
            ])
        let centralized = try Fixture.plan(Fixture.generated(.centralized, nics: Fixture.paperNICs3, guests: 3, placement: .credit))
        #expect(centralized.creationDependencies.values.allSatisfy { $0.isEmpty })
    }
}
