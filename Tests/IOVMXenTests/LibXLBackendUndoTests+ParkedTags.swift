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

    @Test func aSavedGuestIsIOVMsAgainWhenRestoredThoughAnApplyRanMeanwhile() throws {
        let toolstack = RecordingToolstack()
        let store = MemoryTagStore()
        let backend = backend(toolstack, store)
        for name in ["guest1", "guest2"] { _ = try backend.createDomain(try guestSpec(name), libxlJSON: "{}", tag: tag(name)) }
        let tag1 = try #require(store.values["/local/domain/0/iovm/managed/1"])
        let saved = try #require(toolstack.save(1))  // xl save guest1
        try backend.removeStaleRecords()  // an apply, a destroy or a watch recovery in the gap
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
        let toolstack = RecordingToolstack()
        let store = MemoryTagStore()
        let backend = backend(toolstack, store)
        _ = try backend.createDomain(try guestSpec("guest1"), libxlJSON: "{}", tag: tag("guest1"))
        var saved = try #require(toolstack.save(1))
        try backend.removeStaleRecords()
        saved.name = "other"  // the same UUID under another name (`xl restore` of a renamed save)
        toolstack.restore(saved, as: 4)
        toolstack.addNameless(domid: 6, uuid: "not-parked")
        #expect(try backend.observe(nics: []).domains.allSatisfy { $0.tag == nil })
        #expect(throws: XenError.self) { try backend.managedDomain("other") }
        #expect(throws: XenError.self) { try backend.destroyDomain(domid: 4) }
        try backend.removeStaleRecords()
        #expect(records(store) == ["/local/domain/0/iovm/parked/\(saved.uuid)"])  // kept: renamed back, it is adopted
    }

    @Test func aParkedTagGoesWhenIOVMMakesItsNameAgainOrDestroysItsTopology() throws {
        let toolstack = RecordingToolstack()
        let store = MemoryTagStore()
        let backend = backend(toolstack, store)
        for name in ["guest1", "guest2"] { _ = try backend.createDomain(try guestSpec(name), libxlJSON: "{}", tag: tag(name)) }
        try toolstack.destroyDomain(1, name: "guest1")  // xl destroy: iovm cannot tell it from xl save
        try toolstack.destroyDomain(2, name: "guest2")
        try backend.removeStaleRecords()
        #expect(records(store).count == 2 && records(store).allSatisfy { $0.hasPrefix("/local/domain/0/iovm/parked/") })
        let again = try backend.createDomain(try guestSpec("guest1"), libxlJSON: "{}", tag: tag("guest1"))
        #expect(records(store).filter { $0.hasPrefix("/local/domain/0/iovm/parked/") }.count == 1)
        #expect(store.values["/local/domain/0/iovm/managed/\(again)"] != nil)
        try backend.removeParkedTags(of: "elsewhere")
        #expect(records(store).count == 2)
        try backend.removeParkedTags(of: "undo")
        #expect(records(store) == ["/local/domain/0/iovm/managed/\(again)"])
    }

    @Test func aStaleTagOfANameIOVMMadeAgainIsRemovedNotParked() throws {
        let toolstack = RecordingToolstack()
        let store = MemoryTagStore()
        let backend = backend(toolstack, store)
        _ = try backend.createDomain(try guestSpec("guest1"), libxlJSON: "{}", tag: tag("guest1"))
        let stale = try #require(store.values["/local/domain/0/iovm/managed/1"])
        try toolstack.destroyDomain(1, name: "guest1")
        let again = try backend.createDomain(try guestSpec("guest1"), libxlJSON: "{}", tag: tag("guest1"))  // a watch's recovery
        try store.write("/local/domain/0/iovm/managed/1", stale)  // its tag is still there: no apply ran since
        try backend.removeStaleRecords()
        #expect(records(store) == ["/local/domain/0/iovm/managed/\(again)"])
    }

    @Test func aRestoredDomainNotYetTaggedAgainIsDestroyedByItsParkedTag() throws {
        let toolstack = RecordingToolstack()
        let store = MemoryTagStore()
        let backend = backend(toolstack, store)
        _ = try backend.createDomain(try guestSpec("guest1"), libxlJSON: "{}", tag: tag("guest1"))
        let saved = try #require(toolstack.save(1))
        try backend.removeStaleRecords()
        toolstack.restore(saved, as: 3)
        try backend.destroyDomain(domid: 3)
        #expect(toolstack.calls.last == "destroyDomain 3")
        #expect(records(store).isEmpty)
    }
}
