public import Foundation

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
            if context.codingPath.isEmpty, let syntax = Self.syntaxError(in: data) { return syntax }
            let underlying = (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
            let reason = underlying ?? context.debugDescription
            return context.codingPath.isEmpty ? reason : "at \(path(context)): \(reason)"
        @unknown default:
            return "\(error)"
        }
    }

    /// Where text that is not JSON goes wrong, as `line L, column C: <the parser's words>`
    /// (JSONDecoder says only "not valid JSON"; JSONSerialization names the character).
    static func syntaxError(in data: Data) -> String? {
        do {
            _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
            return nil
        } catch {
            let message = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
            guard let range = message.range(of: #"character (\d+)"#, options: .regularExpression),
                let offset = Int(message[range].dropFirst("character ".count))
            else { return message }
            var line = 1
            var column = 1
            for byte in data.prefix(offset) {
                if byte == UInt8(ascii: "\n") {
                    line += 1
                    column = 1
                } else {
                    column += 1
                }
            }
            return "line \(line), column \(column): \(message)"
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
