public import FoundationEssentials

extension TopologyLoader {
    /// A decoding error in the words of the document: the JSON path where it went wrong and what was
    /// expected, or the parser's own line and column for text that is not JSON.
    public static func describe(_ error: any Error, in data: Data) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        func path(_ context: DecodingError.Context) -> String {
            let components = context.codingPath.map { key in key.intValue.map { "[\($0)]" } ?? ".\(key.stringValue)" }
            return "$" + components.joined()
        }
        switch error {
        case .typeMismatch(let type, let context):
            return "at \(path(context)): expected \(Self.kind(type)) (\(context.debugDescription))"
        case .valueNotFound(let type, let context):
            return "at \(path(context)): expected \(Self.kind(type)), found null"
        case .keyNotFound(let key, let context):
            return "at \(path(context)): the key \"\(key.stringValue)\" is missing"
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty, let syntax = JSONSyntax.check(data) { return syntax.description }
            return context.codingPath.isEmpty ? context.debugDescription : "at \(path(context)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    /// A JSON word for a Swift type in a decoding error.
    static func kind(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type, is Int32.Type, is Int64.Type, is UInt32.Type, is UInt64.Type: "an integer"
        case is Double.Type: "a number"
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        default:
            String(describing: type).hasPrefix("Array") ? "an array" : String(describing: type).hasPrefix("Dictionary") ? "an object" : "\(type)"
        }
    }
}
