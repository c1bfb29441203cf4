import Foundation
import IOVMControl
import Logging
import Synchronization
import Testing
import XenKit

@testable import IOVMXen

/// The live verbs' lookup through LibXLBackend: one domain listing and one xenstore connection for all the
/// domains of a call, and the scheduler asked only when a cap is needed (issue 16: `iovm pin` of two IOVMs
/// listed every domain twice and read schedules it never used).
@Suite("LibXLBackend live verb lookup")
struct LibXLBackendLiveVerbTests {
    /// How many times the backend opened the tag store.
    final class Openings: Sendable {
        let count = Mutex(0)
        var value: Int { count.withLock { $0 } }
    }

    /// A backend over a host with iovm0 and iovm1 tagged as iovm's and `foreign` untagged; counts store openings.
    func setup() throws -> (backend: LibXLBackend, toolstack: RecordingToolstack, opened: Openings) {
        let toolstack = RecordingToolstack(cores: 4)
        let store = MemoryTagStore()
        for name in ["iovm0", "iovm1", "foreign"] {
            let uuid = UUID().uuidString.lowercased()
            let domid = try toolstack.createDomain(configJSON: "{}", uuid: uuid, name: name)
            guard name != "foreign" else { continue }
            let tag = ManagedTag(topology: "t", name: name, role: .iovm, uuid: uuid, specFingerprint: "f")
            try store.write("\(LibXLBackend.tagRoot)/managed/\(domid)", String(decoding: try JSONEncoder().encode(tag), as: UTF8.self))
        }
        let opened = Openings()
        let backend = LibXLBackend(
            context: toolstack, openToolstack: { () throws(XenError) in toolstack },
            openStore: { _ throws(XenError) in
                opened.count.withLock { $0 += 1 }
                return store
            }, logger: Logger(label: "iovm.test"), sysfs: SysfsPCI(root: "/nonexistent"), strictReset: true)
        return (backend, toolstack, opened)
    }

    @Test func twoDomainsAreFoundWithOneListingAndNoScheduleForPin() throws {
        let (backend, toolstack, opened) = try setup()
        let before = toolstack.calls.count
        let found = try backend.managedDomains(["iovm0", "2"], withCap: false)
        #expect(found.map { $0?.name } == ["iovm0", "iovm1"])
        #expect(found.map { $0?.cap } == [nil, nil])
        #expect(Array(toolstack.calls.dropFirst(before)) == ["domains"])
        #expect(opened.value == 1)
    }

    @Test func weightWithoutACapReadsEachSchedule() throws {
        let (backend, toolstack, _) = try setup()
        let before = toolstack.calls.count
        let found = try backend.managedDomains(["iovm0", "iovm1"], withCap: true)
        #expect(found.map { $0?.cap } == [0, 0])
        #expect(Array(toolstack.calls.dropFirst(before)) == ["domains", "schedule 1", "schedule 2"])
    }

    @Test func anUnknownNameIsNilAndAForeignDomainIsRefused() throws {
        let (backend, _, _) = try setup()
        #expect(try backend.managedDomains(["iovm0", "nope"], withCap: false).map { $0?.name } == ["iovm0", nil])
        #expect(throws: XenError.failed(operation: "change foreign (3)", detail: "iovm did not create it; iovm never changes it")) {
            try backend.managedDomains(["iovm1", "foreign"], withCap: false)
        }
    }
}
