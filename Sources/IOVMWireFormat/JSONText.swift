public import FoundationEssentials

/// The one way iovm writes JSON: keys sorted, slashes unescaped; pretty for files and terminals,
/// one line for streams (JSON lines, xenstore values, the document a topology file writes).
public enum JSONText {
    /// An encoder with iovm's settings.
    public static func encoder(pretty: Bool) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// `value` on one line, without a newline.
    public static func line<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try encoder(pretty: false).encode(value), as: UTF8.self)
    }

    /// `value` pretty-printed, without a final newline.
    public static func pretty<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try encoder(pretty: true).encode(value), as: UTF8.self)
    }
}
