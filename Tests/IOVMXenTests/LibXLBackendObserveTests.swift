import CPUSets
import Foundation
import IOVMControl
import IOVMCore
import IOVMWireFormat
import Logging
import Synchronization
import Testing
import XenKit

@testable import IOVMXen

/// A ``TagStore`` for unit tests only that counts the reads and listings that reach it.
final class CountingTagStore: TagStore, @unchecked Sendable {
    let base: MemoryTagStore
    private let counts = Mutex<[String: Int]>([:])
    private let failing = Mutex<[String]>([])

    /// Whether ``answers(_:)`` fetches at once, as xenstored's socket does (else nil: one by one).
    let batching: Bool
    private let batched = Mutex<[[XenStoreQuery]]>([])

    init(_ base: MemoryTagStore, batching: Bool = false) {
        self.base = base
        self.batching = batching
    }

    /// Each batch ``answers(_:)`` was asked, in order; their queries are not counted as reads.
    var batches: [[XenStoreQuery]] { batched.withLock { $0 } }
    /// The paths read or listed one by one, with how often.
    var counted: [String: Int] { counts.withLock { $0 } }

    func answers(_ queries: [XenStoreQuery]) throws(XenError) -> [XenStoreAnswer]? {
        guard batching else { return nil }
        batched.withLock { $0.append(queries) }
        return queries.map { query in
            if failing.withLock({ $0.contains { query.path.hasPrefix($0) } }) {
                return .failed(XenError.errno(.permissionDenied, operation: "xs_read \(query.path)"))
            }
            switch query.kind {
            case .read: return .value((try? base.read(query.path)) ?? nil)
            case .directory: return .children((try? base.directory(query.path)) ?? nil)
            }
        }
    }

    /// Makes every read or listing of a path that starts with `prefix` fail with `EACCES`.
    func failReads(_ prefix: String) { failing.withLock { $0.append(prefix) } }

    /// How many reads or listings of `path` reached this store.
    func count(_ path: String) -> Int { counts.withLock { $0[path] ?? 0 } }
    /// How many reads and listings reached this store, in all.
    var total: Int { counts.withLock { $0.values.reduce(0, +) } }

    private func counted(_ path: String) throws(XenError) {
        counts.withLock { $0[path, default: 0] += 1 }
        if failing.withLock({ $0.contains { path.hasPrefix($0) } }) { throw XenError.errno(.permissionDenied, operation: "xs_read \(path)") }
    }

    func read(_ path: String) throws(XenError) -> String? {
        try counted(path)
        return try base.read(path)
    }

    func directory(_ path: String) throws(XenError) -> [String]? {
        try counted(path)
        return try base.directory(path)
    }

    func write(_ path: String, _ value: String) throws(XenError) { try base.write(path, value) }
    func remove(_ path: String) throws(XenError) { try base.remove(path) }
}

/// The observation's round trips to xenstored (issue 16): iovm's records read once per no-op apply, the PCI devices
/// asked only of the domains that have a pci backend.
@Suite struct LibXLBackendObserveTests {
    let undo = LibXLBackendUndoTests()

    func backend(_ toolstack: RecordingToolstack, _ store: CountingTagStore) -> LibXLBackend {
        LibXLBackend(
            context: toolstack, openToolstack: { () throws(XenError) in toolstack }, openStore: { _ throws(XenError) in store },
            logger: Logger(label: "iovm.test"), sysfs: SysfsPCI(root: "/nonexistent"), strictReset: true)
    }

    @Test func rememberedReadsBelowTheRootAreAnsweredFromMemoryAndOthersAlwaysReachTheStore() throws {
        let memory = MemoryTagStore()
        let counting = CountingTagStore(memory)
        try memory.write("/local/domain/0/iovm/managed/3", "tag3")
        try memory.write("/local/domain/3/name", "guest3")
        let store = RememberingStore(counting, under: "/local/domain/0/iovm")
        #expect(try store.directory("/local/domain/0/iovm/managed") == ["3"])
        #expect(try store.read("/local/domain/0/iovm/managed/3") == "tag3")
        #expect(try store.read("/local/domain/3/name") == "guest3")
        // Before `answeringFromMemory()`, every read reaches the store.
        #expect(try store.read("/local/domain/0/iovm/managed/3") == "tag3")
        #expect(counting.count("/local/domain/0/iovm/managed/3") == 2)
        let answering = store.answeringFromMemory()
        #expect(try answering.read("/local/domain/0/iovm/managed/3") == "tag3")
        #expect(try answering.directory("/local/domain/0/iovm/managed") == ["3"])
        // A child the listed parent does not have is nil without asking the store.
        #expect(try answering.read("/local/domain/0/iovm/managed/0") == nil)
        #expect(try answering.read("/local/domain/3/name") == "guest3")
        #expect(counting.count("/local/domain/0/iovm/managed/3") == 2)
        #expect(counting.count("/local/domain/0/iovm/managed") == 1)
        #expect(counting.count("/local/domain/0/iovm/managed/0") == 0)
        #expect(counting.count("/local/domain/3/name") == 2)
        // Unread paths below the root reach the store, once.
        #expect(try answering.read("/local/domain/0/iovm/pools/p") == nil)
        #expect(try answering.read("/local/domain/0/iovm/pools/p") == nil)
        #expect(counting.count("/local/domain/0/iovm/pools/p") == 1)
        // A path ending in `/` is not a child of the listing: the store answers it.
        _ = try? answering.read("/local/domain/0/iovm/managed/")
        #expect(counting.count("/local/domain/0/iovm/managed/") == 1)
        #expect(!store.wrote)
        try store.write("/local/domain/0/iovm/x", "1")
        #expect(store.wrote && memory.values["/local/domain/0/iovm/x"] == "1")
    }

    @Test func aNoOpObservationReadsEachTagOnceAndSeesWhatTwoCallsSee() throws {
        let toolstack = RecordingToolstack()
        let memory = MemoryTagStore()
        let made = undo.backend(toolstack, memory)
        for name in ["guest1", "guest2"] { _ = try made.createDomain(try undo.guestSpec(name), libxlJSON: "{}", tag: undo.tag(name)) }
        let counting = CountingTagStore(memory)
        let both = try backend(toolstack, counting).removeStaleRecordsThenObserve(nics: []) { Issue.record("removal failed: \($0)") }
        #expect(counting.count("/local/domain/0/iovm/managed/1") == 1 && counting.count("/local/domain/0/iovm/managed/2") == 1)
        #expect(counting.count("/local/domain/0/iovm/managed/0") == 0)
        #expect(counting.count("/local/domain/0/iovm/intents") == 1 && counting.count("/local/domain/0/iovm/parked") == 1)
        let once = counting.total
        try backend(toolstack, counting).removeStaleRecords()
        let apart = try backend(toolstack, counting).observe(nics: [])
        #expect(both == apart)
        #expect(both.domains.filter { $0.isManaged(by: "undo") }.map(\.name) == ["guest1", "guest2"])
        #expect(counting.total - once > once)
    }

    @Test("each domain's weight and cap are asked with its pool's scheduler, never through the call that looks the pool up")
    func scheduleParametersAreAskedWithThePoolsScheduler() throws {
        let toolstack = RecordingToolstack()
        let memory = MemoryTagStore()
        let made = undo.backend(toolstack, memory)
        for name in ["guest1", "guest2"] { _ = try made.createDomain(try undo.guestSpec(name), libxlJSON: "{}", tag: undo.tag(name)) }
        _ = try toolstack.createCPUPool(name: "net", scheduler: "credit2", cpus: CPUSet([1]))
        try toolstack.moveDomain(2, toPoolNamed: "net")
        let before = toolstack.calls.count
        let observed = try backend(toolstack, CountingTagStore(memory)).observe(nics: [])
        let asked = toolstack.calls.dropFirst(before).filter { $0.hasPrefix("schedule") }
        #expect(asked == ["schedule 0 under credit", "schedule 1 under credit", "schedule 2 under credit2"])
        #expect(observed.domains.map(\.cpupool) == ["Pool-0", "Pool-0", "net"])
        #expect(observed.domains.allSatisfy { $0.weight == 256 && $0.cap == 0 })
    }

    @Test func anObservationAfterARemovalThatWroteReadsTheStoreAgain() throws {
        let toolstack = RecordingToolstack()
        let memory = MemoryTagStore()
        let made = undo.backend(toolstack, memory)
        for name in ["guest1", "guest2"] { _ = try made.createDomain(try undo.guestSpec(name), libxlJSON: "{}", tag: undo.tag(name)) }
        try toolstack.destroyDomain(1, name: "guest1")  // an `xl destroy`: its tag is parked by the removal
        let counting = CountingTagStore(memory)
        let host = try backend(toolstack, counting).removeStaleRecordsThenObserve(nics: []) { Issue.record("removal failed: \($0)") }
        #expect(memory.values["/local/domain/0/iovm/managed/1"] == nil)
        #expect(host.parked?.map(\.name) == ["guest1"])
        #expect(counting.count("/local/domain/0/iovm/parked") == 2)
        #expect(host == (try backend(toolstack, counting).observe(nics: [])))
    }

    @Test func aFailedRemovalIsToldAndTheObservationGoesOn() throws {
        let toolstack = RecordingToolstack()
        let memory = MemoryTagStore()
        _ = try undo.backend(toolstack, memory).createDomain(try undo.guestSpec("guest1"), libxlJSON: "{}", tag: undo.tag("guest1"))
        try toolstack.destroyDomain(1, name: "guest1")
        memory.fail("write /local/domain/0/iovm/parked/")
        let told = Mutex<[String]>([])
        let host = try backend(toolstack, CountingTagStore(memory)).removeStaleRecordsThenObserve(nics: []) { error in told.withLock { $0.append("\(error)") } }
        #expect(told.withLock { $0.count } == 1)
        #expect(host.domains.map(\.domid) == [0])
    }

    @Test func aDomainsPCIDevicesAreReadFromItsPCIBackendAndOnlyADomainWithOneIsAsked() throws {
        let toolstack = RecordingToolstack()
        let memory = MemoryTagStore()
        let iovm = try undo.madeIOVM(toolstack, memory)  // num_devs 2: dev-0 0000:00:10.0, dev-1 0000:00:11.0
        let guest = try undo.backend(toolstack, memory).createDomain(try undo.guestSpec("guest1"), libxlJSON: "{}", tag: undo.tag("guest1"))
        let counting = CountingTagStore(memory)
        let host = try backend(toolstack, counting).observe(nics: [])
        #expect(host.domains.first { $0.domid == iovm }?.pci.map(\.description) == ["0000:00:10.0", "0000:00:11.0"])
        #expect(host.domains.first { $0.domid == guest }?.pci == [])
        #expect(counting.count("/local/domain/0/backend/pci/\(iovm)/0/num_devs") == 1)
        #expect(counting.count("/local/domain/0/backend/pci/\(guest)/0/num_devs") == 0)
        // A listing of the pci backends that fails fails the observation: no domain is taken for one without devices.
        counting.failReads("/local/domain/0/backend/pci")
        #expect(throws: XenError.self) { try backend(toolstack, counting).observe(nics: []) }
        // A damaged device key is skipped; a count beyond the keys reads nothing more than there is.
        try memory.write("/local/domain/0/backend/pci/\(iovm)/0/dev-1", "not an address")
        try memory.write("/local/domain/0/backend/pci/\(iovm)/0/num_devs", "3")
        #expect(try LibXLBackend.passedThrough(iovm, store: memory).map(\.description) == ["0000:00:10.0"])
    }

    @Test func aHalfMadeDomainWhosePCIDevicesCannotBeReadIsSeenWithoutThemABuiltOneFailsTheObservation() throws {
        let toolstack = RecordingToolstack()
        let memory = MemoryTagStore()
        toolstack.addNameless(domid: 31, uuid: "half")
        try memory.write("/local/domain/0/backend/pci/31/0/num_devs", "1")
        let counting = CountingTagStore(memory)
        counting.failReads("/local/domain/0/backend/pci/31/0/")
        let host = try backend(toolstack, counting).observe(nics: [])
        #expect(host.domains.first { $0.domid == 31 }?.pci == [])
        let iovm = try undo.madeIOVM(toolstack, memory)
        counting.failReads("/local/domain/0/backend/pci/\(iovm)/0/")
        #expect(throws: XenError.self) { try backend(toolstack, counting).observe(nics: []) }
    }

    /// Table 3's shape in small: an IOVM with 2 NICs, guests whose vifs it backs (libxl's record of the backend; only
    /// the frontend's claim; a record that points elsewhere), a domain being restored (no name from libxl yet).
    func pipelinedHost() throws -> (RecordingToolstack, MemoryTagStore, iovm: UInt32, guests: [UInt32]) {
        let toolstack = RecordingToolstack()
        let memory = MemoryTagStore()
        let iovm = try undo.madeIOVM(toolstack, memory)
        var guests: [UInt32] = []
        for name in ["guest1", "guest2", "guest3"] {
            guests.append(try undo.backend(toolstack, memory).createDomain(try undo.guestSpec(name), libxlJSON: "{}", tag: undo.tag(name)))
        }
        for (index, guest) in guests.enumerated() {
            let backend = "/local/domain/\(iovm)/backend/vif/\(guest)/0"
            try memory.write("/local/domain/\(guest)/device/vif/0/backend", backend)
            if index == 0 { try memory.write("/libxl/\(guest)/device/vif/0/backend", backend) }
            if index == 2 { try memory.write("/libxl/\(guest)/device/vif/0/backend", "/local/domain/\(guest)/elsewhere") }
            try memory.write("\(backend)/state", "4")
            try memory.write("\(backend)/hotplug-status", "connected")
        }
        toolstack.addNameless(domid: 31, uuid: "restoring")
        try memory.write("/local/domain/31/name", "guest9")
        return (toolstack, memory, iovm, guests)
    }

    @Test("an observation fetched in three pipelined waves sees what reads one at a time see, and reads one by one only what no wave could know")
    func pipelinedWavesSeeWhatReadsOneByOneSee() throws {
        let (toolstack, memory, iovm, guests) = try pipelinedHost()
        let nics = [PCIAddress("0000:00:10.0")!, PCIAddress("0000:00:11.0")!]
        let one = CountingTagStore(memory)
        let waves = CountingTagStore(memory, batching: true)
        let sequential = try backend(toolstack, one).observe(nics: nics)
        let pipelined = try backend(toolstack, waves).observe(nics: nics)
        #expect(pipelined == sequential)
        #expect(sequential.domains.first { $0.domid == iovm }?.pci.map(\.description) == ["0000:00:10.0", "0000:00:11.0"])
        #expect(sequential.domains.first { $0.domid == 31 }?.name == "guest9")
        #expect(sequential.domains.filter { guests.contains($0.domid) }.map { $0.vifs?.first?.backendDomid } == [iovm, iovm, iovm])
        #expect(waves.batches.count == 3)
        // Only the backends known from the frontend's claim (wave 3's answers) are read one by one.
        let claimed = guests.dropFirst().flatMap { ["/local/domain/\(iovm)/backend/vif/\($0)/0/state", "/local/domain/\(iovm)/backend/vif/\($0)/0/hotplug-status"] }
        #expect(waves.counted == Dictionary(uniqueKeysWithValues: claimed.map { ($0, 1) }))
        #expect(one.total > 3 * waves.total)
        // Through the records a removal read (``RememberingStore``), the same again.
        let remembering = CountingTagStore(memory, batching: true)
        let afterRemoval = try backend(toolstack, remembering).removeStaleRecordsThenObserve(nics: nics) { Issue.record("removal failed: \($0)") }
        #expect(afterRemoval == sequential)
        // The removal's two waves (the records' listings, then their entries), then the observation's three, which ask
        // none of the records again.
        #expect(remembering.batches.count == 5)
        #expect(remembering.batches[0].map(\.path) == ["/local/domain/0/iovm/intents", "/local/domain/0/iovm/managed", "/local/domain/0/iovm/parked"])
        let records = ["/local/domain/0/iovm/intents", "/local/domain/0/iovm/managed", "/local/domain/0/iovm/parked"]
        #expect(!remembering.batches.suffix(3).joined().contains { query in records.contains { query.path.hasPrefix($0) } })
        #expect(remembering.counted == waves.counted)
    }

    @Test("a read that fails in a wave fails the observation as it would alone; a store that cannot fetch at once reads one by one")
    func pipelinedFailuresAreTheReadsOwn() throws {
        let (toolstack, memory, iovm, _) = try pipelinedHost()
        for batching in [false, true] {
            let failing = CountingTagStore(memory, batching: batching)
            failing.failReads("/local/domain/0/backend/pci")
            #expect(throws: XenError.errno(.permissionDenied, operation: "xs_read /local/domain/0/backend/pci")) { try backend(toolstack, failing).observe(nics: []) }
            let pci = CountingTagStore(memory, batching: batching)
            pci.failReads("/local/domain/0/backend/pci/\(iovm)/0/dev-")
            #expect(throws: XenError.self) { try backend(toolstack, pci).observe(nics: []) }
            // A vif's reads fail quietly, alone or in a wave: the vif is seen without its backend.
            let vifs = CountingTagStore(memory, batching: batching)
            vifs.failReads("/libxl/")
            vifs.failReads("/local/domain/\(iovm)/backend/vif")
            let host = try backend(toolstack, vifs).observe(nics: [])
            #expect(host.domains.compactMap { $0.vifs?.first }.allSatisfy { $0.backendState == nil })
        }
    }

    @Test("a removal that parks and moves tags from records fetched at once does what it does reading one by one")
    func pipelinedRemovalMatches() throws {
        var outcomes: [(ObservedHost, [String: String])] = []
        for batching in [false, true] {
            let toolstack = RecordingToolstack()
            let memory = MemoryTagStore()
            let made = undo.backend(toolstack, memory)
            for name in ["guest1", "guest2", "guest3"] { _ = try made.createDomain(try undo.guestSpec(name), libxlJSON: "{}", tag: undo.tag(name)) }
            try toolstack.destroyDomain(1, name: "guest1")  // an `xl destroy`: its tag is parked
            try memory.write("/local/domain/0/iovm/intents/gone", "{}")  // an intent without its domain: removed
            let store = CountingTagStore(memory, batching: batching)
            let host = try backend(toolstack, store).removeStaleRecordsThenObserve(nics: []) { Issue.record("removal failed: \($0)") }
            #expect(host.parked?.map(\.name) == ["guest1"])
            #expect(memory.values["/local/domain/0/iovm/intents/gone"] == nil)
            outcomes.append((host, memory.values))
        }
        // Each run makes domains of its own UUIDs: compared without them.
        func shape(_ outcome: (ObservedHost, [String: String])) -> [String] {
            outcome.0.domains.map { "\($0.domid) \($0.name) \($0.tag?.name ?? "-")" } + (outcome.0.parked ?? []).map { "parked \($0.name)" }
                + outcome.1.keys.map { $0.hasPrefix("/local/domain/0/iovm/parked/") ? "/local/domain/0/iovm/parked/*" : $0 }.sorted()
        }
        #expect(shape(outcomes[0]) == shape(outcomes[1]))
        #expect(shape(outcomes[1]).contains("/local/domain/0/iovm/parked/*"))
    }

    @Test("a write or removal through the prefetching store forgets the path, what is below it and the listings above it; a refused query is asked again when read")
    func prefetchedAnswersAreForgottenOnWriteAndRefusalsAskedAgain() throws {
        let memory = MemoryTagStore()
        for (path, value) in ["/a/b": "1", "/a/b/c": "2", "/a/d": "3", "/x": "4"] { try memory.write(path, value) }
        let counting = CountingTagStore(memory, batching: true)
        counting.failReads("/f")
        let store = PrefetchingStore(counting)
        store.prefetch([.read("/a/b"), .read("/a/b/c"), .directory("/a"), .read("/a/d"), .read("/x"), .read("/f")])
        #expect(store.prefetched == 6 && counting.total == 0)
        #expect(try store.read("/a/b") == "1" && store.directory("/a") == ["b", "d"] && counting.total == 0)
        try store.write("/a/b", "9")
        #expect(try store.read("/a/b") == "9")
        #expect(try store.read("/a/b/c") == "2")
        #expect(try store.directory("/a") == ["b", "d"])
        #expect(counting.count("/a/b") == 1 && counting.count("/a/b/c") == 1 && counting.count("/a") == 1)
        #expect(try store.read("/a/d") == "3" && store.read("/x") == "4" && counting.count("/a/d") == 0 && counting.count("/x") == 0)
        try store.remove("/x")
        #expect(try store.read("/x") == nil && counting.count("/x") == 1)
        #expect(throws: XenError.errno(.permissionDenied, operation: "xs_read /f")) { try store.read("/f") }
        #expect(counting.count("/f") == 1)
    }

    @Test("tags that follow their domains to new IDs, over a stale tag, are moved alike from records fetched at once")
    func pipelinedMovesMatch() throws {
        var outcomes: [[String]] = []
        for batching in [false, true] {
            let toolstack = RecordingToolstack()
            let memory = MemoryTagStore()
            let made = undo.backend(toolstack, memory)
            for name in ["guest1", "guest2", "guest3"] { _ = try made.createDomain(try undo.guestSpec(name), libxlJSON: "{}", tag: undo.tag(name)) }
            let tag1 = try #require(memory.values["/local/domain/0/iovm/managed/1"])
            toolstack.changeDomid(1, to: 7)  // xl save, xl restore
            toolstack.addNameless(domid: 1, uuid: "reused")
            let other = ManagedTag(topology: "undo", name: "old", role: .guest, uuid: "gone", specFingerprint: "f")
            try memory.write("/local/domain/0/iovm/managed/7", try JSONText.line(other))  // a stale tag at the new ID: parked
            toolstack.changeDomid(2, to: 9)
            let store = CountingTagStore(memory, batching: batching)
            let host = try backend(toolstack, store).removeStaleRecordsThenObserve(nics: []) { Issue.record("removal failed: \($0)") }
            #expect(memory.values["/local/domain/0/iovm/managed/7"] == tag1)
            #expect(host.domains.filter { $0.isManaged(by: "undo") }.map(\.name).sorted() == ["guest1", "guest2", "guest3"])
            #expect(host.parked?.map(\.name) == ["old"])
            outcomes.append(
                memory.values.keys.map { $0.hasPrefix("/local/domain/0/iovm/parked/") ? "/local/domain/0/iovm/parked/*" : $0 }.sorted()
                    + host.domains.map { "\($0.domid) \($0.name) \($0.tag?.name ?? "-")" })
        }
        #expect(outcomes[0] == outcomes[1])
    }
}
