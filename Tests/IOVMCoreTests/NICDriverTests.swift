import Foundation
import IOVMCore
import IOVMWireFormat
import Testing

/// Which kernel fragment drives which NIC: modules.alias, a NIC's declared driver, and the errors.
@Suite("NIC drivers for the IOVM kernel")
struct NICDriverTests {
    static let alias = """
        alias pci:v00008086d0000100Esv*sd*bc*sc*i* e1000
        alias pci:v00008086d000010D3sv*sd*bc*sc*i* e1000e
        alias pci:v00008086d00001533sv*sd*bc*sc*i* igb
        alias pci:v00008086d000010FBsv*sd*bc*sc*i* ixgbe
        alias pci:v000014E4d00001639sv*sd*bc*sc*i* bnx2
        alias pci:v00008086d*sv*sd*bc02sc00i* e1000
        alias virtio:d00000001v* virtio_net
        """

    @Test("modules.alias maps exact PCI ids to the drivers that have a fragment; virtio's two ids are known")
    func table() {
        let table = NICDriverTable(modulesAlias: Self.alias)
        #expect(table.driver(for: "8086:100e") == "e1000")
        #expect(table.driver(for: "8086:10D3") == "e1000e")
        #expect(table.driver(for: "8086:1533") == "igb")
        #expect(table.driver(for: "8086:10fb") == "ixgbe")
        #expect(table.driver(for: "1af4:1000") == "virtio")
        #expect(table.driver(for: "1af4:1041") == "virtio")
        #expect(table.driver(for: "14e4:1639") == nil)  // bnx2: no fragment
        #expect(table.drivers.count == 6)  // the wildcard line is not an exact id
    }

    @Test("lines that are not one exact PCI alias of a module with a fragment are skipped, wherever they are")
    func oddLines() {
        let text = """
            alias pci:v00008086d0000100Esv*sd*bc*sc*i* e1000 extra
            alias pci:v0000808*d0000100Esv*sd*bc*sc*i* e1000
            alias pci:v00008086d000010*3sv*sd*bc*sc*i* e1000e
            alias  pci:v00008086d00001533sv*sd*bc*sc*i* igb
            alias pci:v00008086d00001533
            softdep e1000 pre: crc32
            alias pci:v00008086d000010FBsv*sd*bc*sc*i* ixgbe
            """
        let table = NICDriverTable(modulesAlias: text)
        #expect(table.drivers == ["1af4:1000": "virtio", "1af4:1041": "virtio", "8086:10fb": "ixgbe"])
        #expect(NICDriverTable(modulesAlias: "").drivers.count == 2)
    }

    @Test("a file read in chunks gives the table of its whole text, lines across chunk ends included", arguments: [64, 97, 200, 65536])
    func scannedInChunks(chunk: Int) throws {
        // The aliases, a line longer than any chunk here (dropped whole when it is: no alias line is that long; its
        // tail would read as an alias of 8086:1111), then aliases the first part lacks, so that a line lost anywhere
        // shows, and lines end at every offset of a chunk.
        let later = """
            alias pci:v00008086d00001234sv*sd*bc*sc*i* e1000
            alias pci:v00008086d000010C9sv*sd*bc*sc*i* igb
            alias pci:v00008086d000010FCsv*sd*bc*sc*i* ixgbe
            """
        let long = String(repeating: "#", count: 300) + "alias pci:v00008086d00001111sv*sd*bc*sc*i* igb"
        let text = Self.alias + "\n" + long + "\n" + later + "\nalias pci:v00008086d000010D6sv*sd*bc*sc*i* e1000e"
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("iovm-alias-\(UUID().uuidString)")
        try Data(text.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let scanned = try #require(NICDriverTable.scanning(file: file.path, chunk: chunk))
        #expect(scanned == NICDriverTable(modulesAlias: text))
        #expect(scanned.drivers.count == 10)
        for (ids, driver) in ["8086:100e": "e1000", "8086:1234": "e1000", "8086:10c9": "igb", "8086:10fc": "ixgbe", "8086:10d6": "e1000e"] {
            #expect(scanned.driver(for: ids) == driver)
        }
        #expect(scanned.driver(for: "8086:1111") == nil)
        #expect(NICDriverTable.scanning(file: file.path + ".absent") == nil)
    }

    @Test("an alias line longer than the chunk is dropped whole, and the line after it is read")
    func chunkShorterThanALine() throws {
        // An alias of 65 bytes, then one of 46: with 52-byte chunks the first is dropped, the second read.
        let first = "alias pci:v00008086d0000100Esv00001234sd00005678bc02sc00i* e1000"
        let second = "alias pci:v00008086d00001533sv*sd*bc*sc*i* igb"
        #expect(NICDriverTable(modulesAlias: first).driver(for: "8086:100e") == "e1000")  // read whole, it counts
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("iovm-alias-\(UUID().uuidString)")
        // Before them, 52 bytes of no alias and then an alias's text: a chunk ends just where that text begins, and
        // the rest of a dropped line must not be read as a line of its own.
        let dropped = String(repeating: "#", count: 52) + "alias pci:v00008086d00001111sv*sd*bc*sc*i* igb"
        try Data("\(dropped)\n\(first)\n\(second)\n".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let scanned = try #require(NICDriverTable.scanning(file: file.path, chunk: 52))
        #expect(scanned.driver(for: "8086:1533") == "igb")
        #expect(scanned.driver(for: "8086:100e") == nil)
        #expect(scanned.driver(for: "8086:1111") == nil)
        #expect(scanned.drivers.count == 3)
    }

    @Test("this machine's kernel knows the lab's e1000 (8086:100e)", .enabled(if: NICDriverTable.installed(cacheDirectory: nil) != nil))
    func installedTable() throws {
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("iovm-cache-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: cache) }
        let scanned = try #require(NICDriverTable.installed(cacheDirectory: nil))
        #expect(scanned.driver(for: "8086:100e") == "e1000")
        #expect(NICDriverTable.installed(cacheDirectory: cache) == scanned)  // scanned and kept
        #expect(NICDriverTable.installed(cacheDirectory: cache) == scanned)  // read as kept
        #expect(try FileManager.default.contentsOfDirectory(atPath: cache.appendingPathComponent("nic-drivers").path).count == 1)
    }

    @Test("a kept table is read instead of the file; a changed file, a bad entry or no cache is scanned")
    func keptTable() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("iovm-cache-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("modules.alias")
        try Data(Self.alias.utf8).write(to: file)
        let cache = directory.appendingPathComponent("cache")
        let first = try #require(NICDriverTable.cached(file: file.path, in: cache))
        #expect(first == NICDriverTable(modulesAlias: Self.alias))
        let entries = try FileManager.default.contentsOfDirectory(atPath: cache.appendingPathComponent("nic-drivers").path)
        #expect(entries.count == 1)
        let entry = cache.appendingPathComponent("nic-drivers").appendingPathComponent(try #require(entries.first))
        let kept = try String(contentsOf: entry, encoding: .utf8)
        #expect(kept.hasPrefix("iovm NIC driver table 1\nfile \(file.path)\nstat "))
        let table = "1af4:1000 virtio\n1af4:1041 virtio\n8086:100e e1000\n8086:10d3 e1000e\n8086:10fb ixgbe\n8086:1533 igb\n"
        #expect(kept.hasSuffix("\nmodules e1000=e1000,e1000e=e1000e,igb=igb,ixgbe=ixgbe\nknown 1af4:1000=virtio,1af4:1041=virtio\n" + table))

        // What is kept is what is read: an entry edited under the same key comes back edited.
        try Data(kept.replacingOccurrences(of: "8086:1533 igb", with: "8086:1533 e1000e").utf8).write(to: entry)
        #expect(NICDriverTable.cached(file: file.path, in: cache)?.driver(for: "8086:1533") == "e1000e")

        // A file that changed (its size, its time) is scanned again, and kept anew.
        try Data((Self.alias + "\nalias pci:v00008086d000010C9sv*sd*bc*sc*i* igb\n").utf8).write(to: file)
        let rescanned = try #require(NICDriverTable.cached(file: file.path, in: cache))
        #expect(rescanned.driver(for: "8086:1533") == "igb")
        #expect(rescanned.driver(for: "8086:10c9") == "igb")
        #expect(NICDriverTable.cached(file: file.path, in: cache) == rescanned)

        // A bad entry, one cut short, or one of another format: scanned.
        let good = try String(contentsOf: entry, encoding: .utf8)
        for bad in ["garbage", String(good.dropLast()), good.replacingOccurrences(of: "table 1", with: "table 2"), good + "8086:1533\n", good + "8086:1533 igb extra\n"] {
            try Data(bad.utf8).write(to: entry)
            #expect(NICDriverTable.cached(file: file.path, in: cache) == rescanned, "\(bad.suffix(30))")
        }
        // No cache, or one that cannot be made (a file where its directory would be): scanned.
        #expect(NICDriverTable.cached(file: file.path, in: nil) == rescanned)
        let blocked = directory.appendingPathComponent("blocked")
        try Data("x".utf8).write(to: blocked)
        #expect(NICDriverTable.cached(file: file.path, in: blocked) == rescanned)
        #expect(NICDriverTable.cached(file: file.path + ".absent", in: cache) == nil)
    }

    func plan(_ nics: [NICDocument]) throws -> Plan {
        try Planner().plan(
            TopologyDocument(
                name: "t", host: HostDocument(cores: 4, memoryMiB: 8192), defaults: DefaultsDocument(kernel: "/k"),
                configuration: ConfigurationDocument(kind: .multipleSmall), nics: nics, guests: [GuestDocument(name: "g")],
                placement: PlacementDocument(kind: .credit)))
    }

    @Test("a topology's drivers: declared ones win, the others come from the NICs' ids; sorted, once each")
    func resolution() throws {
        let plan = try plan([
            NICDocument(pci: "0000:03:00.0"), NICDocument(pci: "0000:04:00.0", driver: "ixgbe"), NICDocument(pci: "0000:05:00.0"),
        ])
        let ids = ["0000:03:00.0": "8086:1533", "0000:05:00.0": "8086:1533"]
        let drivers = try KernelConfig.nicDrivers(for: plan, table: NICDriverTable(modulesAlias: Self.alias)) { ids[$0.description] }
        #expect(drivers == ["igb", "ixgbe"])
        let fragment = try KernelConfig.fragment(nicDrivers: drivers)
        #expect(fragment.contains("CONFIG_IGB=y") && fragment.contains("CONFIG_IXGBE=y") && fragment.contains("CONFIG_XEN_NETDEV_BACKEND=y"))
    }

    @Test("a NIC that is not here and names no driver, or whose ids no fragment drives, is named with its line")
    func errors() throws {
        let table = NICDriverTable(modulesAlias: Self.alias)
        let missing = try plan([NICDocument(pci: "0000:03:00.0", source: SourceLocation(file: "t.swift", line: 7))])
        #expect {
            try KernelConfig.nicDrivers(for: missing, table: table) { _ in nil }
        } throws: { error in
            (error as? KernelConfig.Error)?.location?.line == 7 && "\(error)".contains("say NIC(\"0000:03:00.0\", driver:")
        }
        #expect {
            try KernelConfig.nicDrivers(for: missing, table: table) { _ in "14e4:1639" }
        } throws: { error in
            "\(error)".contains("NIC 0000:03:00.0 (14e4:1639) is driven by none of the drivers with an IOVM kernel fragment (supported: e1000, e1000e, igb, ixgbe, virtio)")
        }
    }

    @Test("a host without modules.alias: declared drivers need no table; a NIC that names none is named with its line")
    func noDriverTable() throws {
        let declared = try plan([NICDocument(pci: "0000:04:00.0", driver: "ixgbe"), NICDocument(pci: "0000:05:00.0", driver: "virtio")])
        #expect(try KernelConfig.nicDrivers(for: declared, table: nil) { _ in nil } == ["ixgbe", "virtio"])
        let undeclared = try plan([
            NICDocument(pci: "0000:04:00.0", driver: "ixgbe"), NICDocument(pci: "0000:03:00.0", source: SourceLocation(file: "t.swift", line: 9)),
        ])
        #expect {
            try KernelConfig.nicDrivers(for: undeclared, table: nil) { _ in "8086:1533" }
        } throws: { error in
            (error as? KernelConfig.Error)?.location?.line == 9
                && "\(error)".contains("NIC 0000:03:00.0 (8086:1533) names no driver, and this host has no /lib/modules/*/modules.alias")
        }
    }

    @Test("a declared driver without a fragment is an error at the NIC's line")
    func unknownDeclaredDriver() {
        let errors = Fixture.errors(
            TopologyDocument(
                name: "t", host: HostDocument(cores: 4, memoryMiB: 8192), defaults: DefaultsDocument(kernel: "/k"),
                configuration: ConfigurationDocument(kind: .monolithic),
                nics: [NICDocument(pci: "0000:03:00.0", driver: "tulip", source: Fixture.at(9))], guests: [GuestDocument(name: "g")],
                placement: PlacementDocument(kind: .credit)))
        #expect(errors.map(\.location?.line) == [9])
        #expect(errors.first?.message.contains("names driver \"tulip\", which has no IOVM kernel fragment") == true)
    }
}
