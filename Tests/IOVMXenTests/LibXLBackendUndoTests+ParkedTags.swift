import Foundation
import IOVMControl
import IOVMWireFormat
import Testing
import XenKit

@testable import IOVMXen

/// Parked tags: a domain that vanished without iovm destroying it (`xl save`) is iovm's again when it comes back.
extension LibXLBackendUndoTests {
    /// The keys under iovm's subtree of `store`, sorted.
    func records(_ store: MemoryTagStore) -> [String] {
        store.values.keys.filter { $0.hasPrefix("/local/domain/0/iovm/") }.sorted()
    }

    /// A backend over a recording toolstack and an in-memory xenstore, with a guest of each of `names` made through it
    /// (domids 1, 2, ... in order).
    func madeGuests(_ names: String...) throws -> (RecordingToolstack, MemoryTagStore, LibXLBackend) {
        let toolstack = RecordingToolstack()
        let store = MemoryTagStore()
        let backend = backend(toolstack, store)
        for name in names { _ = try backend.createDomain(try guestSpec(name), libxlJSON: "{}", tag: tag(name)) }
        return (toolstack, store, backend)
    }

    @Test func aSavedGuestIsIOVMsAgainWhenRestoredThoughARecoveryRanMeanwhile() throws {
        let (toolstack, store, backend) = try madeGuests("guest1", "guest2")
        let tag1 = try #require(store.values["/local/domain/0/iovm/managed/1"])
        let saved = try #require(toolstack.save(1))  // xl save guest1
        try backend.removeStaleRecords()  // a watch recovery, or an apply or destroy of another topology, in the gap
        #expect(records(store) == ["/local/domain/0/iovm/managed/2", "/local/domain/0/iovm/parked/\(saved.uuid)"])
        let gap = try backend.observe(nics: [])
        #expect(gap.domains.allSatisfy { $0.name != "guest1" })
        #expect(gap.parked?.map(\.name) == ["guest1"])  // `iovm status`: gone
        toolstack.restore(saved, as: 5)  // xl restore
        #expect(try backend.observe(nics: []).parked == [])  // back: not gone any more
        // Before the next apply tags it: observe, and the live verbs, take it for iovm's by its parked tag.
        let restored = try #require(try backend.observe(nics: []).domains.first { $0.domid == 5 })
        #expect(restored.name == "guest1" && restored.isManaged(by: "undo"))
        #expect(try backend.managedDomain("guest1")?.domid == 5)
        try backend.removeStaleRecords()
        #expect(records(store) == ["/local/domain/0/iovm/managed/2", "/local/domain/0/iovm/managed/5"])
        #expect(LibXLBackend.tag(from: store.values["/local/domain/0/iovm/managed/5"]) == LibXLBackend.tag(from: tag1))
    }

    @Test func aParkedTagMakesNoOtherDomainIOVMs() throws {
        let (toolstack, store, backend) = try madeGuests("guest1")
        var saved = try #require(toolstack.save(1))
        try backend.removeStaleRecords()
        var namesake = saved
        namesake.uuid = "another-uuid"  // a guest1 of another toolstack
        toolstack.restore(namesake, as: 3)
        saved.name = "other"  // the saved one, restored under another name
        toolstack.restore(saved, as: 4)
        #expect(try backend.observe(nics: []).domains.allSatisfy { $0.tag == nil })
        #expect(throws: XenError.self) { try backend.managedDomain("other") }
        #expect(throws: XenError.self) { try backend.managedDomain("guest1") }
        #expect(throws: XenError.self) { try backend.destroyDomain(domid: 3) }
        #expect(throws: XenError.self) { try backend.destroyDomain(domid: 4) }
        try backend.removeStaleRecords()
        #expect(records(store) == ["/local/domain/0/iovm/parked/\(saved.uuid)"])
        // Named back (`xl rename`), with no other guest1 about: the next call tags it.
        try toolstack.destroyDomain(3, name: "guest1")
        toolstack.changeDomid(4, to: 4, name: "guest1")
        try backend.removeStaleRecords()
        #expect(records(store) == ["/local/domain/0/iovm/managed/4"])
    }

    @Test func aParkedTagGoesOnceIOVMMadeItsNameAgainNotBefore() throws {
        let (toolstack, store, backend) = try madeGuests("guest1", "guest2")
        try toolstack.destroyDomain(1, name: "guest1")  // xl destroy: iovm cannot tell it from xl save
        try toolstack.destroyDomain(2, name: "guest2")
        try backend.removeStaleRecords()
        #expect(records(store).count == 2 && records(store).allSatisfy { $0.hasPrefix("/local/domain/0/iovm/parked/") })
        // Made again, the parked tag stays until the next call: the apply that made it may still roll it back.
        let again = try backend.createDomain(try guestSpec("guest1"), libxlJSON: "{}", tag: tag("guest1"))
        #expect(records(store).filter { $0.hasPrefix("/local/domain/0/iovm/parked/") }.count == 2)
        #expect(try backend.observe(nics: []).parked?.map(\.name) == ["guest2"])  // `iovm status`: guest1 is not gone
        try backend.removeStaleRecords()
        #expect(records(store).filter { $0.hasPrefix("/local/domain/0/iovm/parked/") }.count == 1)
        #expect(store.values["/local/domain/0/iovm/managed/\(again)"] != nil)
    }

    @Test func aDestroyDropsItsTopologysParkedTagsAndStaleTags() throws {
        let (toolstack, store, backend) = try madeGuests("guest1", "guest2")
        try toolstack.destroyDomain(1, name: "guest1")
        try backend.removeStaleRecords()
        let other = ManagedTag(topology: "elsewhere", name: "x", role: .guest, uuid: "dead", specFingerprint: "f")
        try store.write("/local/domain/0/iovm/managed/9", try JSONText.line(other))  // stale, of another topology
        let mine = ManagedTag(topology: "undo", name: "y", role: .guest, uuid: "dead2", specFingerprint: "f")
        try store.write("/local/domain/0/iovm/managed/8", try JSONText.line(mine))  // stale, of this one
        try backend.removeParkedTags(of: "undo")  // guest2 runs (its destroy failed): its tag stays
        #expect(records(store) == ["/local/domain/0/iovm/managed/2", "/local/domain/0/iovm/managed/9"])
    }

    @Test func aTaggingOverTheTagOfADomainWhoseMoveWaitsParksThatTag() throws {
        let (toolstack, store, backend) = try madeGuests("guest1", "guest2")
        let tag2 = try #require(store.values["/local/domain/0/iovm/managed/2"])
        let saved = try #require(toolstack.save(1))
        try backend.removeStaleRecords()  // guest1's tag parked
        toolstack.changeDomid(2, to: 5, name: "guest2--incoming")  // guest2 migrating: its tag waits at 2
        toolstack.restore(saved, as: 2)  // guest1 restored under guest2's old ID
        try backend.removeStaleRecords()
        #expect(LibXLBackend.tag(from: store.values["/local/domain/0/iovm/managed/2"])?.name == "guest1")
        toolstack.changeDomid(5, to: 5, name: "guest2")  // the migration ends
        try backend.removeStaleRecords()
        #expect(records(store) == ["/local/domain/0/iovm/managed/2", "/local/domain/0/iovm/managed/5"])
        #expect(LibXLBackend.tag(from: store.values["/local/domain/0/iovm/managed/5"]) == LibXLBackend.tag(from: tag2))
    }

    @Test func aKillHalfWayThroughAMoveOrATaggingIsFinishedByTheNextCall() throws {
        let (toolstack, store, backend) = try madeGuests("guest1", "guest2")
        let tag1 = try #require(store.values["/local/domain/0/iovm/managed/1"])
        let tag2 = try #require(store.values["/local/domain/0/iovm/managed/2"])
        toolstack.changeDomid(1, to: 7)
        try store.write("/local/domain/0/iovm/managed/7", tag1)  // the move wrote, and was killed before the removal
        let saved = try #require(toolstack.save(2))
        try backend.removeStaleRecords()
        toolstack.restore(saved, as: 8)
        try store.write("/local/domain/0/iovm/managed/8", tag2)  // the tagging wrote, and was killed before the removal
        try backend.removeStaleRecords()
        #expect(records(store) == ["/local/domain/0/iovm/managed/7", "/local/domain/0/iovm/managed/8"])
    }

    @Test func aMoveOverTheTagOfAnotherRestoredDomainParksItAndTagsThatOneToo() throws {
        let (toolstack, store, backend) = try madeGuests("guest1", "guest2")
        let tag1 = try #require(store.values["/local/domain/0/iovm/managed/1"])
        let tag2 = try #require(store.values["/local/domain/0/iovm/managed/2"])
        toolstack.changeDomid(2, to: 9)  // guest2 restored as 9, then guest1 restored as 2: the IDs crossed
        toolstack.changeDomid(1, to: 2)
        try backend.removeStaleRecords()
        #expect(records(store) == ["/local/domain/0/iovm/managed/2", "/local/domain/0/iovm/managed/9"])
        #expect(store.values["/local/domain/0/iovm/managed/2"] == tag1)
        #expect(LibXLBackend.tag(from: store.values["/local/domain/0/iovm/managed/9"]) == LibXLBackend.tag(from: tag2))
    }

    @Test func aStaleTagOfANameIOVMMadeAgainIsRemovedNotParked() throws {
        let (toolstack, store, backend) = try madeGuests("guest1")
        let stale = try #require(store.values["/local/domain/0/iovm/managed/1"])
        try toolstack.destroyDomain(1, name: "guest1")
        let again = try backend.createDomain(try guestSpec("guest1"), libxlJSON: "{}", tag: tag("guest1"))  // a watch's recovery
        try store.write("/local/domain/0/iovm/managed/1", stale)  // its tag is still there: no apply ran since
        try backend.removeStaleRecords()
        #expect(records(store) == ["/local/domain/0/iovm/managed/\(again)"])
    }

    @Test func aRestoredDomainNotYetTaggedAgainIsDestroyedByItsParkedTag() throws {
        let (toolstack, store, backend) = try madeGuests("guest1")
        let saved = try #require(toolstack.save(1))
        try backend.removeStaleRecords()
        toolstack.restore(saved, as: 3)
        try backend.destroyDomain(domid: 3)
        #expect(toolstack.calls.last == "destroyDomain 3")
        #expect(records(store).isEmpty)
    }
}
