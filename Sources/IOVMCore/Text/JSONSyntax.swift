/// Where text that is not JSON goes wrong: `JSONDecoder` says only "not valid JSON".
///
/// A strict RFC 8259 scan, with no values built: the first error's line, column and what was found there. A key
/// that an object has twice is an error too: RFC 8259 leaves its meaning open, `JSONDecoder` takes the first and `jq`
/// the last, so a document could read one way to whoever checks it and another to iovm.
package struct JSONSyntax {
    /// The first error of a document.
    package struct Failure: Equatable, CustomStringConvertible {
        /// 1-based line and column of the offending byte (one past the end for a truncated document).
        package var line: Int
        package var column: Int
        /// What is wrong there.
        package var reason: String
        /// Whether it is a key an object has twice (the text is JSON otherwise).
        package var isDuplicateKey = false

        package var description: String { "line \(line), column \(column): \(reason)" }
    }

    /// A key of a document, as ``keys(of:)`` lists it.
    package struct Key: Equatable {
        /// Where it is: `$.guests[0].resources.memoryMiB`.
        package var path: String
        /// Its byte offset in the document (``position(of:in:)``).
        package var offset: Int
        /// Whether its value is `null` (the same as no key, for a decoder).
        package var valueIsNull: Bool
    }

    private let bytes: [UInt8]
    private var index = 0
    /// The keys seen so far, when they are being listed.
    private var keys: [Key]?
    /// The path of the value being scanned, when keys are being listed.
    private var path: [String] = []

    private init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// Every key of the document `bytes` with its path, in document order; nil when it is not JSON (``check(_:)``).
    package static func keys<Bytes: Sequence<UInt8>>(of bytes: Bytes) -> [Key]? {
        var scanner = JSONSyntax(Array(bytes))
        scanner.keys = []
        do throws(Stop) {
            scanner.skipWhitespace()
            try scanner.value(depth: 0)
            return scanner.keys
        } catch {
            return nil
        }
    }

    /// The 1-based line and column of byte `offset` of `bytes`.
    package static func position<Bytes: Collection<UInt8>>(of offset: Int, in bytes: Bytes) -> (line: Int, column: Int) {
        let failure = Stop(offset: offset, reason: "").failure(in: Array(bytes.prefix(offset)))
        return (failure.line, failure.column)
    }

    /// Nil when `bytes` is one JSON value, with only whitespace around it; else its first error.
    package static func check<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> Failure? {
        var scanner = JSONSyntax(Array(bytes))
        do throws(Stop) {
            scanner.skipWhitespace()
            try scanner.value(depth: 0)
            scanner.skipWhitespace()
            if scanner.index < scanner.bytes.count { throw scanner.unexpected("after the document's value") }
            return nil
        } catch {
            return error.failure(in: scanner.bytes)
        }
    }

    private struct Stop: Error {
        var offset: Int
        var reason: String
        var isDuplicateKey = false

        func failure(in bytes: [UInt8]) -> Failure {
            var line = 1
            var column = 1
            for byte in bytes.prefix(offset) {
                if byte == UInt8(ascii: "\n") {
                    line += 1
                    column = 1
                } else {
                    column += 1
                }
            }
            return Failure(line: line, column: column, reason: reason, isDuplicateKey: isDuplicateKey)
        }
    }

    private func unexpected(_ context: String) -> Stop {
        guard index < bytes.count else { return Stop(offset: index, reason: "unexpected end of file \(context)") }
        let byte = bytes[index]
        let shown = (0x21..<0x7f).contains(byte) ? "character '\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
        return Stop(offset: index, reason: "unexpected \(shown) \(context)")
    }

    private mutating func skipWhitespace() {
        while index < bytes.count, [0x20, 0x09, 0x0a, 0x0d].contains(bytes[index]) { index += 1 }
    }

    private mutating func expect(_ byte: UInt8, _ context: String) throws(Stop) {
        guard index < bytes.count, bytes[index] == byte else { throw unexpected(context) }
        index += 1
    }

    private mutating func value(depth: Int) throws(Stop) {
        guard depth < 512 else { throw Stop(offset: index, reason: "nested too deep") }
        guard index < bytes.count else { throw unexpected("where a value was expected") }
        switch bytes[index] {
        case UInt8(ascii: "{"): try members(depth: depth)
        case UInt8(ascii: "["): try elements(depth: depth)
        case UInt8(ascii: "\""): try string()
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
        default: throw unexpected("where a value was expected")
        }
    }

    private mutating func members(depth: Int) throws(Stop) {
        index += 1
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return
        }
        // Strings, not bytes: `JSONDecoder` matches keys as Swift Strings, so "é" and "e" + U+0301 are one key.
        var seen: Set<String> = []
        while true {
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw unexpected("where a key in quotes was expected") }
            let start = index
            try string()
            let key = Self.unescaped(bytes[(start + 1)..<(index - 1)])
            guard seen.insert(key).inserted else { throw Stop(offset: start, reason: "the key \(key.debugDescription) appears twice in one object", isDuplicateKey: true) }
            skipWhitespace()
            try expect(UInt8(ascii: ":"), "where ':' was expected after a key")
            skipWhitespace()
            if keys != nil {
                let plain = !key.isEmpty && key.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) || $0 == 0x5F }
                path.append(plain ? ".\(key)" : "[\(key.debugDescription)]")
                keys?.append(Key(path: "$" + path.joined(), offset: start, valueIsNull: index < bytes.count && bytes[index] == UInt8(ascii: "n")))
            }
            try value(depth: depth + 1)
            if keys != nil { path.removeLast() }
            skipWhitespace()
            guard index < bytes.count else { throw unexpected("inside an object") }
            if bytes[index] == UInt8(ascii: "}") {
                index += 1
                return
            }
            try expect(UInt8(ascii: ","), "where ',' or '}' was expected")
            skipWhitespace()
        }
    }

    private mutating func elements(depth: Int) throws(Stop) {
        index += 1
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return
        }
        var element = 0
        while true {
            if keys != nil { path.append("[\(element)]") }
            try value(depth: depth + 1)
            if keys != nil { path.removeLast() }
            element += 1
            skipWhitespace()
            guard index < bytes.count else { throw unexpected("inside an array") }
            if bytes[index] == UInt8(ascii: "]") {
                index += 1
                return
            }
            try expect(UInt8(ascii: ","), "where ',' or ']' was expected")
            skipWhitespace()
        }
    }

    private mutating func string() throws(Stop) {
        index += 1
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return
            case UInt8(ascii: "\\"):
                index += 1
                guard index < bytes.count else { throw unexpected("inside a string") }
                switch bytes[index] {
                case UInt8(ascii: "u"):
                    for _ in 0..<4 {
                        index += 1
                        guard index < bytes.count, bytes[index].isHexDigit else { throw unexpected("in a \\u escape") }
                    }
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"),
                    UInt8(ascii: "r"), UInt8(ascii: "t"):
                    break
                default: throw unexpected("after '\\' in a string")
                }
                index += 1
            case 0..<0x20: throw unexpected("(a control character) inside a string")
            default: index += 1
            }
        }
        throw unexpected("inside a string")
    }

    /// A key's text between its quotes (checked already), its escapes resolved: `"k"` and `"\u006b"` are one key.
    private static func unescaped(_ raw: ArraySlice<UInt8>) -> String {
        guard raw.contains(UInt8(ascii: "\\")) else { return String(decoding: raw, as: UTF8.self) }
        var scalars = String.UnicodeScalarView()
        var index = raw.startIndex
        var pendingHigh: UInt32?
        func hex(_ at: Int) -> UInt32 { UInt32(String(decoding: raw[at..<(at + 4)], as: UTF8.self), radix: 16) ?? 0xFFFD }
        while index < raw.endIndex {
            let byte = raw[index]
            guard byte == UInt8(ascii: "\\") else {
                // A run of plain bytes: the document's own UTF-8.
                if pendingHigh != nil { scalars.append("\u{FFFD}") }
                pendingHigh = nil
                var end = index
                while end < raw.endIndex, raw[end] != UInt8(ascii: "\\") { end += 1 }
                scalars.append(contentsOf: String(decoding: raw[index..<end], as: UTF8.self).unicodeScalars)
                index = end
                continue
            }
            let kind = raw[index + 1]
            index += 2
            let scalar: UInt32
            switch kind {
            case UInt8(ascii: "u"):
                scalar = hex(index)
                index += 4
            case UInt8(ascii: "b"): scalar = 0x08
            case UInt8(ascii: "f"): scalar = 0x0C
            case UInt8(ascii: "n"): scalar = 0x0A
            case UInt8(ascii: "r"): scalar = 0x0D
            case UInt8(ascii: "t"): scalar = 0x09
            default: scalar = UInt32(kind)  // \" \\ \/
            }
            if (0xD800..<0xDC00).contains(scalar) {
                pendingHigh = scalar
                continue
            }
            if let high = pendingHigh, (0xDC00..<0xE000).contains(scalar) {
                scalars.append(Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (scalar - 0xDC00)) ?? "\u{FFFD}")
            } else {
                if pendingHigh != nil { scalars.append("\u{FFFD}") }
                scalars.append(Unicode.Scalar(scalar) ?? "\u{FFFD}")
            }
            pendingHigh = nil
        }
        if pendingHigh != nil { scalars.append("\u{FFFD}") }
        return String(scalars)
    }

    private mutating func literal(_ word: StaticString) throws(Stop) {
        let expected = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        for byte in expected {
            guard index < bytes.count, bytes[index] == byte else { throw unexpected("in '\(word)'") }
            index += 1
        }
    }

    private mutating func number() throws(Stop) {
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, bytes[index].isDigit else { throw unexpected("where a digit was expected") }
        if bytes[index] == UInt8(ascii: "0") { index += 1 } else { digits() }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard index < bytes.count, bytes[index].isDigit else { throw unexpected("where a digit was expected after '.'") }
            digits()
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, bytes[index].isDigit else { throw unexpected("where an exponent was expected") }
            digits()
        }
    }

    private mutating func digits() {
        while index < bytes.count, bytes[index].isDigit { index += 1 }
    }
}

extension UInt8 {
    fileprivate var isDigit: Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self) }
    fileprivate var isHexDigit: Bool {
        isDigit || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(self) || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(self)
    }
}
