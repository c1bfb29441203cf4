/// A value that writes itself as one JSON value through a ``JSONLineWriter``.
public protocol JSONLineWritable {
    /// Writes this value (an object, usually: ``JSONLineWriter/object(_:)``).
    func write(to writer: inout JSONLineWriter)
}

/// Writes one line of JSON as ``JSONText/line(_:)`` does, byte for byte, without an encoder's tree.
///
/// For the sampler's per-interval lines (`iovm monitor --json`): `JSONEncoder` built a dictionary per object
/// and sorted its keys, more than half of a sample's CPU (perf of a replayed run,
/// `docs/results/2026-12-05-lab-session23-json-lines-and-boot.md`). The same rules: keys in byte order, which each
/// writer gives its fields in (tests compare with ``JSONText``); nil optionals left out; a `Double` as its
/// `description` without a trailing `.0`; strings escaped as `JSONEncoder` escapes them with
/// `.withoutEscapingSlashes`. One difference: a non-finite `Double` is written as `null`, where `JSONText` throws.
public struct JSONLineWriter {
    /// The UTF-8 written so far.
    private var bytes: [UInt8] = []
    /// True when the next value needs no comma: just after `{`, `[` or a key.
    private var first = true
    private static let hex = Array("0123456789abcdef".utf8)

    /// An empty writer.
    public init() {
        bytes.reserveCapacity(1024)
    }

    /// The line written, as a string.
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    /// `value` as one line.
    public static func line<T: JSONLineWritable>(_ value: T) -> String {
        var writer = JSONLineWriter()
        value.write(to: &writer)
        return writer.text
    }

    /// Writes an object whose fields `body` writes, keys in byte order.
    public mutating func object(_ body: (inout JSONLineWriter) -> Void) {
        separate()
        bytes.append(UInt8(ascii: "{"))
        first = true
        body(&self)
        bytes.append(UInt8(ascii: "}"))
        first = false
    }

    /// Writes an array of `values`.
    private mutating func array<T: JSONLineWritable>(_ values: [T]) {
        separate()
        bytes.append(UInt8(ascii: "["))
        first = true
        for value in values { value.write(to: &self) }
        bytes.append(UInt8(ascii: "]"))
        first = false
    }

    /// Writes an object of `values` by key, keys in byte order.
    private mutating func dictionary<T: JSONLineWritable>(_ values: [String: T]) {
        object { writer in
            for (key, value) in values.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) {
                writer.key(key)
                value.write(to: &writer)
            }
        }
    }

    /// Writes a field's key; its value comes next.
    private mutating func key(_ key: String) {
        separate()
        string(key)
        bytes.append(UInt8(ascii: ":"))
        first = true  // the value needs no comma
    }

    /// Writes `key` and `value`.
    public mutating func field(_ key: String, _ value: Double) {
        self.key(key)
        number(value)
    }

    /// Writes `key` and `value`, or nothing when it is nil.
    public mutating func field(_ key: String, _ value: Double?) {
        if let value { field(key, value) }
    }

    /// Writes `key` and `value`.
    public mutating func field(_ key: String, _ value: UInt64) {
        self.key(key)
        digits(value)
    }

    /// Writes `key` and `value`, or nothing when it is nil.
    public mutating func field(_ key: String, _ value: UInt64?) {
        if let value { field(key, value) }
    }

    /// Writes `key` and `value`, or nothing when it is nil.
    public mutating func field(_ key: String, _ value: Int?) {
        guard let value else { return }
        self.key(key)
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        digits(UInt64(value.magnitude))
    }

    /// Writes `key` and `value`.
    public mutating func field(_ key: String, _ value: Bool) {
        self.key(key)
        bytes.append(contentsOf: value ? "true".utf8 : "false".utf8)
        first = false
    }

    /// Writes `key` and `value`.
    public mutating func field(_ key: String, _ value: String) {
        self.key(key)
        string(value)
        first = false
    }

    /// Writes `key` and `value`, or nothing when it is nil.
    public mutating func field(_ key: String, _ value: String?) {
        if let value { field(key, value) }
    }

    /// Writes `key` and `value`, or nothing when it is nil.
    public mutating func field<T: JSONLineWritable>(_ key: String, _ value: T?) {
        guard let value else { return }
        self.key(key)
        value.write(to: &self)
    }

    /// Writes `key` and the array `values`, or nothing when it is nil.
    public mutating func field<T: JSONLineWritable>(_ key: String, _ values: [T]?) {
        guard let values else { return }
        self.key(key)
        array(values)
    }

    /// Writes `key` and the object `values`, or nothing when it is nil.
    public mutating func field<T: JSONLineWritable>(_ key: String, _ values: [String: T]?) {
        guard let values else { return }
        self.key(key)
        dictionary(values)
    }

    private mutating func separate() {
        if !first { bytes.append(UInt8(ascii: ",")) }
        first = false
    }

    private mutating func number(_ value: Double) {
        // JSONEncoder throws for these (see the type's documentation); the sampler's figures are finite.
        guard value.isFinite else {
            bytes.append(contentsOf: "null".utf8)
            first = false
            return
        }
        let text = value.description
        let utf8 = text.utf8
        if text.hasSuffix(".0") {
            bytes.append(contentsOf: utf8.dropLast(2))
        } else {
            bytes.append(contentsOf: utf8)
        }
        first = false
    }

    private mutating func digits(_ value: UInt64) {
        if value < 10 {
            bytes.append(UInt8(ascii: "0") + UInt8(value))
        } else {
            var scratch: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: UInt64.max has 20 digits
            withUnsafeMutableBytes(of: &scratch) { buffer in
                var n = value
                var end = buffer.count
                while n > 0 {
                    end -= 1
                    buffer[end] = UInt8(ascii: "0") + UInt8(n % 10)
                    n /= 10
                }
                bytes.append(contentsOf: buffer[end...])
            }
        }
        first = false
    }

    private mutating func string(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x08: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x0C: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case 0..<0x20:
                bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), Self.hex[Int(byte >> 4)], Self.hex[Int(byte & 0xF)]])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
