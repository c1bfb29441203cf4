public import FoundationEssentials
import IOVMWireFormat

extension TopologyLoader {
    /// Why `data` has keys that `decoded` (what it decoded to) has no place for, or nil when it has none.
    ///
    /// A decoder skips a key it does not know without a word, so a typo (`memory` for `memoryMiB`) would leave the
    /// default in place. `decoded` is encoded again, and every key of `data` whose value is not `null` must be in it, at
    /// the same path. The first unknown key is named with its line and column; the others are counted.
    /// `keys` are `data`'s (``JSONSyntax/keys(of:)``, listed once for this and ``locating(_:in:keys:file:)``).
    static func unknownKeys<Document: Encodable>(in data: Data, keys: [JSONSyntax.Key], decodedAs decoded: Document) -> String? {
        guard let encoded = try? JSONEncoder().encode(decoded),
            let known = JSONSyntax.keys(of: encoded).map({ Set($0.map(\.path)) })
        else { return nil }
        let unknown = keys.filter { !$0.valueIsNull && !known.contains($0.path) }
        guard let first = unknown.first else { return nil }
        let (line, column) = JSONSyntax.position(of: first.offset, in: data)
        let more = unknown.count > 1 ? "; and \(unknown.count - 1) more: \(unknown.dropFirst().prefix(5).map(\.path).joined(separator: ", "))\(unknown.count > 6 ? ", …" : "")" : ""
        return "line \(line), column \(column): iovm reads no key \(first.path) (a typo? it would be ignored)\(more)"
    }
}

extension TopologyLoader {
    /// `document` with a ``IOVMWireFormat/SourceLocation`` in `file` for each part that has none: the line its JSON
    /// object starts on (that of its first key). A document written by hand has no `source` keys, and its errors would
    /// name no place.
    static func locating(_ document: TopologyDocument, in data: Data, keys: [JSONSyntax.Key], file: String) -> TopologyDocument {
        // The first key under each path, by document order.
        var firstOffset: [String: Int] = [:]
        for key in keys {
            var path = Substring(key.path)
            while let cut = path.lastIndex(where: { $0 == "." || $0 == "[" }), cut > path.startIndex {
                path = path[..<cut]
                if firstOffset[String(path)] == nil { firstOffset[String(path)] = key.offset }
            }
        }
        func at(_ path: String) -> SourceLocation? {
            firstOffset[path].map { SourceLocation(file: file, line: JSONSyntax.position(of: $0, in: data).line) }
        }
        var located = document
        located.source = located.source ?? SourceLocation(file: file, line: 1)
        if located.host != nil, located.host?.source == nil { located.host?.source = at("$.host") }
        if located.defaults != nil, located.defaults?.source == nil { located.defaults?.source = at("$.defaults") }
        if located.configuration.source == nil { located.configuration.source = at("$.configuration") }
        if located.placement.source == nil { located.placement.source = at("$.placement") }
        if located.scheduling != nil, located.scheduling?.source == nil { located.scheduling?.source = at("$.scheduling") }
        for index in located.iovms.indices where located.iovms[index].source == nil { located.iovms[index].source = at("$.iovms[\(index)]") }
        for index in located.nics.indices where located.nics[index].source == nil { located.nics[index].source = at("$.nics[\(index)]") }
        for index in located.guests.indices where located.guests[index].source == nil { located.guests[index].source = at("$.guests[\(index)]") }
        if let hosts = located.hosts {
            for index in hosts.indices where hosts[index].source == nil { located.hosts?[index].source = at("$.hosts[\(index)]") }
        }
        return located
    }
}

extension TopologyLoader {
    /// What a document says of itself before it is decoded as what it claims to be.
    struct DocumentProbe: Decodable {
        /// Its schema's version.
        var schemaVersion: Int?
        /// `experiment` for an experiment's document; none for a topology's.
        var kind: String?
        /// What the Swift file that wrote it reported instead of a document.
        var error: String?
    }

    /// The checks topology and experiment documents share before their own: not empty, within ``DocumentLimits``, JSON
    /// with no key twice in an object, and no error reported by the file that wrote it. Returns its UTF-8 text (nil for
    /// UTF-16 or UTF-32, which only the decoder reads) and what it says of itself.
    static func probe(_ data: Data, file: String) throws(TopologyError) -> (text: Data?, probe: DocumentProbe) {
        if data.isEmpty { throw .unreadableDocument(file: file, reason: "the file is empty") }
        if let violation = DocumentLimits.violation(data) { throw .unreadableDocument(file: file, reason: violation) }
        let text = utf8Text(data)
        if let text, let failure = JSONSyntax.check(text) {
            throw .unreadableDocument(file: file, reason: failure.isDuplicateKey ? "\(failure)" : "not a JSON object: \(failure)")
        }
        let probe: DocumentProbe
        do { probe = try JSONDecoder().decode(DocumentProbe.self, from: data) } catch {
            throw .unreadableDocument(file: file, reason: "not a JSON object: \(describe(error, in: data))")
        }
        if let message = probe.error { throw .evaluationFailed(file: file, reason: message) }
        return (text, probe)
    }

    /// Decodes `data` as `Document` and refuses a key it does not read. Returns the document's keys with it (nil when
    /// `text` is nil), for the line locator.
    static func decodeReadingEveryKey<Document: Codable>(
        _ type: Document.Type, _ data: Data, text: Data?, file: String
    ) throws(TopologyError) -> (document: Document, keys: [JSONSyntax.Key]?) {
        let document: Document
        do { document = try JSONDecoder().decode(Document.self, from: data) } catch {
            throw .unreadableDocument(file: file, reason: describe(error, in: data))
        }
        guard let text, let keys = JSONSyntax.keys(of: text) else { return (document, nil) }
        if let unknown = unknownKeys(in: text, keys: keys, decodedAs: document) { throw .unreadableDocument(file: file, reason: unknown) }
        return (document, keys)
    }

    /// `data` as UTF-8 JSON text for the checks that read its bytes (syntax, keys, lines): without a UTF-8 byte order
    /// mark; nil for UTF-16 or UTF-32 (a NUL in its first four bytes, or their mark), which `JSONDecoder` reads and the
    /// checks leave alone.
    static func utf8Text(_ data: Data) -> Data? {
        let head = Array(data.prefix(4))
        if head.starts(with: [0xEF, 0xBB, 0xBF]) { return Data(data.dropFirst(3)) }
        if head.contains(0) || head.starts(with: [0xFE, 0xFF]) || head.starts(with: [0xFF, 0xFE]) { return nil }
        return data
    }
}
