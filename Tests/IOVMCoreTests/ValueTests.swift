import Foundation
import IOVMCore
import IOVMWireFormat
import Testing

@Suite("PCI addresses, CPU sets, wire format")
struct ValueTests {
    @Test(arguments: [("0000:03:00.0", "0000:03:00.0"), ("03:00.0", "0000:03:00.0"), ("0000:0A:1f.7", "0000:0a:1f.7"), ("1:2:3.4", "0001:02:03.4")])
    func parsesPCIAddresses(text: String, canonical: String) throws {
        #expect(try #require(PCIAddress(text)).description == canonical)
    }

    @Test(arguments: ["", "0000:03:00", "0000:03:20.0", "0000:03:00.8", "00000:03:00.0", "0000:003:00.0", "zz:00.0", "0000:03:00.0.1", "0000:03:00.00"])
    func rejectsMalformedPCIAddresses(text: String) {
        #expect(PCIAddress(text) == nil)
    }

    @Test func documentRoundTripsThroughJSON() throws {
        let document = Fixture.generated(.hybrid, groups: 2, nics: Fixture.paperNICs4, guests: 4, placement: .hybridPinned)
        let data = try JSONEncoder().encode(document)
        #expect(try TopologyLoader.decode(data, file: "x.json") == document)
    }

    @Test func decodeRejectsOtherSchemaVersionsAndErrors() {
        #expect(throws: TopologyError.self) { try TopologyLoader.decode(Data(#"{"schemaVersion":2,"name":"x"}"#.utf8), file: "x.json") }
        #expect(throws: TopologyError.self) { try TopologyLoader.decode(Data("not json".utf8), file: "x.json") }
        do {
            _ = try TopologyLoader.decode(Data(#"{"error":"the file declares no Topology"}"#.utf8), file: "t.swift")
            Issue.record("no error")
        } catch {
            #expect(error.description.contains("declares no Topology"))
        }
    }

    @Test func planIsDeterministic() throws {
        let document = Fixture.generated(.hybrid, groups: 2, nics: Fixture.paperNICs4, guests: 4, placement: .hybridPinned)
        let first = try Fixture.plan(document)
        let second = try Fixture.plan(document)
        #expect(first == second)
        let macs = Set(first.guests.flatMap { $0.vifs.map(\.mac) })
        #expect(macs.count == 4)
        #expect(macs.allSatisfy { $0.hasPrefix("00:16:3e:") })
    }
}
