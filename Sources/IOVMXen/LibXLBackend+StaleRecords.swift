import FoundationEssentials
import IOVMControl
import IOVMCore
import IOVMWireFormat
import XenKit

/// The records iovm keeps in dom0's xenstore once their domain is gone: creation intents, tags, parked tags.
///
/// A tag whose domain vanished without iovm destroying it is parked (`/local/domain/0/iovm/parked/<uuid>`), not
/// removed: `xl save` takes a domain away until `xl restore` brings it back, the same UUID and name under a new
/// ID, and an apply, destroy or watch recovery may run in between. A parked tag makes that domain iovm's again
/// when it comes back. It goes when iovm makes a domain of its name again, or destroys its topology.
extension LibXLBackend {
    /// Where removeStaleRecords keeps the tag of a domain that vanished: `<uuid>` = the tag.
    static let parkedRoot = "\(tagRoot)/parked"

    /// The parked tags by UUID.
    static func parked(_ store: any TagStore) throws -> [String: ManagedTag] {
        var parked: [String: ManagedTag] = [:]
        for uuid in try store.directory(parkedRoot) ?? [] {
            guard let tag = Self.tag(from: try store.read("\(parkedRoot)/\(uuid)")) else { continue }
            parked[tag.uuid] = tag
        }
        return parked
    }

    /// `tag`, a parked tag, if it makes the domain `uuid` named `name` iovm's (a restored domain before the next
    /// apply tags it again): its UUID and its name are the domain's.
    static func parkedTag(_ tag: ManagedTag?, of uuid: String, named name: String?) -> ManagedTag? {
        guard let tag, tag.uuid == uuid, tag.name == name else { return nil }
        return tag
    }

    /// The parked tags whose domain is still gone: no domain has its UUID, and no domain of iovm's has its name.
    static func gone(_ parked: [String: ManagedTag], domains: [ObservedDomain]) -> [ManagedTag] {
        let held = Set(domains.compactMap { domain in domain.tag.flatMap { $0.uuid == domain.uuid ? nameKey($0) : nil } })
        return parked.values.filter { tag in !held.contains(nameKey(tag)) && !domains.contains { $0.uuid == tag.uuid } }
            .sorted { ($0.topology, $0.name) < ($1.topology, $1.name) }
    }

    public func removeStaleRecords() throws {
        try removeStaleRecords(store: try openStore(false))
    }

    /// Removes the stale records, then observes through the same connection. When the removal wrote nothing, the
    /// observation's reads of iovm's records (tags, intents, parked tags) are answered from what the removal read:
    /// under the host lock only iovm writes them (issue 16: a no-op re-apply read each twice, 2 ms a read under TCG).
    public func removeStaleRecordsThenObserve(nics: [PCIAddress], removalFailed: (any Error) -> Void) throws -> ObservedHost {
        let base = try openStore(false)
        // iovm's records, fetched in two pipelined waves: what the removal reads, and the intents the observation reads.
        let records = PrefetchingStore(base)
        let roots = [Self.intentRoot, Self.managedRoot, Self.parkedRoot]
        records.prefetch(roots.map { .directory($0) })
        if records.batching {
            records.prefetch(roots.flatMap { root in (((try? records.directory(root)) ?? nil) ?? []).map { .read("\(root)/\($0)") } })
        }
        let remembering = RememberingStore(records, under: Self.tagRoot)
        do { try removeStaleRecords(store: remembering) } catch {
            removalFailed(error)
            // A connection of its own, as before: the removal may have failed with this one.
            return try observe(nics: nics)
        }
        return try observe(nics: nics, store: remembering.wrote ? base : remembering.answeringFromMemory())
    }

    func removeStaleRecords(store: any TagStore) throws {
        let domains = try context.domains(names: false)
        let uuids = Set(domains.map(\.uuid))
        for uuid in try store.directory(Self.intentRoot) ?? [] where !uuids.contains(uuid) {
            logger.notice("removing the creation intent \(uuid): its domain does not exist (an apply stopped before creating it)")
            try store.remove("\(Self.intentRoot)/\(uuid)")
        }
        let live = Dictionary(domains.map { ($0.domid, $0.uuid) }, uniquingKeysWith: { first, _ in first })
        let domidsByUUID = Dictionary(grouping: domains, by: \.uuid).mapValues { $0.map(\.domid) }
        var tags: [(domid: UInt32, tag: ManagedTag, text: String)] = []
        for key in try store.directory(Self.managedRoot) ?? [] {
            guard let domid = UInt32(key), let text = try store.read("\(Self.managedRoot)/\(key)"), let tag = Self.tag(from: text) else { continue }
            tags.append((domid, tag, text))
        }
        // Which live domain holds each of iovm's names (a tag whose UUID a live domain has, at its ID or not).
        var holders: [String: String] = [:]
        for entry in tags where uuids.contains(entry.tag.uuid) { holders[Self.nameKey(entry.tag)] = entry.tag.uuid }
        // First the tags of domains gone (no live domain has their UUID), then those of domains under a new ID: a move
        // only ever writes over a tag already retired, or parks the one it writes over.
        for (domid, tag, text) in tags where !uuids.contains(tag.uuid) {
            let was = live[domid] == nil ? "no domain has that ID any more" : "that ID is another domain's now"
            try retire(tag, text: text, at: domid, from: "\(Self.tagRoot)/managed/\(domid)", because: was, holders: holders, store: store)
        }
        for (domid, tag, text) in tags where uuids.contains(tag.uuid) && live[domid] != tag.uuid {
            let path = "\(Self.tagRoot)/managed/\(domid)"
            guard try store.read(path) == text else { continue }  // written over by a move since the listing
            // The same domain under a new ID (`xl save` then `xl restore`, or a migration on this host): its UUID and
            // name are the tag's. The tag follows it, or iovm would take it for a domain it did not create. While any
            // live domain has the tag's UUID, the tag is never removed.
            guard let moved = domidsByUUID[tag.uuid], moved.count == 1, let newDomid = moved.first, try context.domainName(newDomid) == tag.name else {
                continue  // renamed half-way (a migration's `--incoming`), or two of them: a later call looks again
            }
            let newPath = "\(Self.tagRoot)/managed/\(newDomid)"
            let thereText = try store.read(newPath)
            if let there = Self.tag(from: thereText), let thereText {
                if there.uuid == tag.uuid {  // moved already: a kill came between the write and the removal below
                    try store.remove(path)
                    continue
                }
                try retire(there, text: thereText, at: newDomid, from: nil, because: "that ID is \(tag.name)'s now", holders: holders, store: store)
            }
            try store.write(newPath, text)
            try store.remove(path)
            logger.notice("moving the tag of \(tag.name) from domain \(domid) to \(newDomid): the same domain (UUID \(tag.uuid)) has a new ID (xl restore, or a migration)")
        }
        try adoptParked(store: store, domidsByUUID: domidsByUUID, live: live, holders: holders)
    }

    /// Parks `tag`, the tag of a domain that is not at its ID any more, and removes it from `path`; when iovm made its
    /// name again meanwhile (`holders`: another UUID has it), only removes it.
    private func retire(
        _ tag: ManagedTag, text: String, at domid: UInt32, from path: String?, because why: String, holders: [String: String], store: any TagStore
    ) throws {
        if let holder = holders[Self.nameKey(tag)], holder != tag.uuid {
            logger.notice("removing the tag of \(tag.name) (domain \(domid)): \(why), and iovm made \(tag.name) again (UUID \(holder))")
        } else {
            // Destroyed by something else (`xl destroy`, a crash the watch has yet to replace), or saved (`xl save`).
            try store.write("\(Self.parkedRoot)/\(tag.uuid)", text)
            logger.notice("parking the tag of \(tag.name) (domain \(domid)): \(why); it is iovm's again if it comes back with UUID \(tag.uuid) (xl restore)")
        }
        if let path { try store.remove(path) }
    }

    /// Tags each domain that came back with a parked tag's UUID and name (`xl restore`), and drops the parked tags
    /// of names iovm made again.
    private func adoptParked(store: any TagStore, domidsByUUID: [String: [UInt32]], live: [UInt32: String], holders: [String: String]) throws {
        let parked = try Self.parked(store)
        for (uuid, tag) in parked.sorted(by: { $0.key < $1.key }) {
            let path = "\(Self.parkedRoot)/\(uuid)"
            if let holder = holders[Self.nameKey(tag)], holder != uuid {
                logger.notice("dropping the parked tag of \(tag.name) (UUID \(uuid)): iovm made \(tag.name) again (UUID \(holder))")
                try store.remove(path)
                continue
            }
            guard let back = domidsByUUID[uuid], back.count == 1, let domid = back.first, try context.domainName(domid) == tag.name else { continue }
            let managed = "\(Self.tagRoot)/managed/\(domid)"
            // Tagged already (a kill came between the write and the removal below): only the parked tag goes.
            let thereText = try store.read(managed)
            if Self.tag(from: thereText)?.uuid != live[domid] {
                // Over another domain's tag (one whose move waits for its domain's name): parked, not lost.
                if let there = Self.tag(from: thereText), let thereText {
                    try retire(there, text: thereText, at: domid, from: nil, because: "that ID is \(tag.name)'s now", holders: holders, store: store)
                }
                try store.write(managed, try JSONText.line(tag))
                logger.notice("tagging \(tag.name) (domain \(domid)) as iovm's again: it came back with the UUID of its parked tag (\(uuid); xl restore)")
            }
            try store.remove(path)
        }
    }

    /// Drops the parked tags of `topology`, and removes its tags no live domain has the UUID of (what a failed
    /// removeStaleRecords left), so that no later call parks them: its destroy ended.
    public func removeParkedTags(of topology: String) throws {
        let store = try openStore(false)
        for (uuid, tag) in try Self.parked(store) where tag.topology == topology {
            try store.remove("\(Self.parkedRoot)/\(uuid)")
            logger.notice("dropping the parked tag of \(tag.name) (UUID \(uuid)): \(topology) is destroyed")
        }
        let live = Dictionary(try context.domains(names: false).map { ($0.uuid, $0.domid) }, uniquingKeysWith: { first, _ in first })
        for key in try store.directory("\(Self.tagRoot)/managed") ?? [] {
            let path = "\(Self.tagRoot)/managed/\(key)"
            guard let tag = Self.tag(from: try store.read(path)), tag.topology == topology else { continue }
            if let domid = live[tag.uuid] {
                if "\(domid)" != key {
                    logger.warning("\(tag.name) of \(topology) runs as domain \(domid), under another name than its tag's (a migration half-way?): this destroy did not destroy it")
                }
                continue
            }
            try store.remove(path)
            logger.notice("removing the tag of \(tag.name) (domain \(key)): no domain has its UUID, and \(topology) is destroyed")
        }
    }

    /// A topology and name as one key.
    static func nameKey(_ tag: ManagedTag) -> String { "\(tag.topology)\u{0}\(tag.name)" }
}
