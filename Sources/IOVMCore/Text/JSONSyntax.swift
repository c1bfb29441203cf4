/// Where text that is not JSON goes wrong: `JSONDecoder` says only "not valid JSON".
///
/// A strict RFC 8259 scan, with no values built: the first error's line, column and what was found there.
package struct JSONSyntax {
    /// The first error of a document.
    package struct Failure: Equatable, CustomStringConvertible {
        /// 1-based line and column of the offending byte (one past the end for a truncated document).
        package var line: Int
        package var column: Int
        /// What is wrong there.
        package var reason: String

        package var description: String { "line \(line), column \(column): \(reason)" }
    }

    private let bytes: [UInt8]
    private var index = 0

    private init(_ bytes: [UInt8]) { self.bytes = bytes }

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
            return Failure(line: line, column: column, reason: reason)
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
        while true {
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw unexpected("where a key in quotes was expected") }
            try string()
            skipWhitespace()
            try expect(UInt8(ascii: ":"), "where ':' was expected after a key")
            skipWhitespace()
            try value(depth: depth + 1)
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
        while true {
            try value(depth: depth + 1)
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
