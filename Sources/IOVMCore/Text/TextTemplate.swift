/// A text template in the subset of Mustache that `Templates/` uses: `{{name}}`, sections
/// `{{#name}}…{{/name}}`, inverted sections `{{^name}}…{{/name}}`, comments `{{! …}}` and pragmas
/// `{{% …}}` (ignored: the output is text, never HTML-escaped).
///
/// A tag alone on its line other than `{{name}}` takes its line with it, as Mustache's "standalone"
/// rule says. swift-mustache did this before; its `NSLock` linked all of swift-corelibs-foundation and
/// ICU into iovm, about 44 MB of a 64 MB binary (issue 16).
package struct TextTemplate: Sendable {
    private indirect enum Node: Sendable {
        case text(String)
        case variable(String)
        case section(String, inverted: Bool, [Node])
    }

    /// Why a template does not parse.
    package struct ParseError: Error, CustomStringConvertible {
        package var description: String
    }

    private let nodes: [Node]

    /// Parses `text`.
    package init(_ text: String) throws(ParseError) {
        var stack: [(name: String, inverted: Bool, nodes: [Node])] = [("", false, [])]
        for line in Self.lines(text) {
            let tags = Self.tags(in: line)
            // A line holding only one non-variable tag (and whitespace) is dropped whole, with its newline.
            let standalone =
                tags.count == 1 && tags[0].kind != .variable
                && line[..<tags[0].range.lowerBound].allSatisfy { $0 == " " || $0 == "\t" }
                && line[tags[0].range.upperBound...].allSatisfy { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
            var cursor = line.startIndex
            for tag in tags {
                if !standalone, cursor < tag.range.lowerBound { stack[stack.count - 1].nodes.append(.text(String(line[cursor..<tag.range.lowerBound]))) }
                cursor = tag.range.upperBound
                switch tag.kind {
                case .variable: stack[stack.count - 1].nodes.append(.variable(tag.name))
                case .comment, .pragma: break
                case .open(let inverted): stack.append((tag.name, inverted, []))
                case .close:
                    guard stack.count > 1, let open = stack.last, open.name == tag.name else {
                        throw ParseError(description: "{{/\(tag.name)}} closes no open section")
                    }
                    stack.removeLast()
                    stack[stack.count - 1].nodes.append(.section(open.name, inverted: open.inverted, open.nodes))
                case .unsupported(let text): throw ParseError(description: "the tag {{\(text)}} is not supported")
                }
            }
            if !standalone, cursor < line.endIndex { stack[stack.count - 1].nodes.append(.text(String(line[cursor...]))) }
        }
        guard stack.count == 1 else { throw ParseError(description: "the section {{#\(stack[stack.count - 1].name)}} is not closed") }
        nodes = stack[0].nodes
    }

    /// The text with `context`'s values: a missing key renders as nothing; a section renders once when its
    /// value is present and not `false` (an empty string too, as swift-mustache had it), an inverted section when
    /// it is not.
    package func render(_ context: [String: any Sendable]) -> String {
        var output = ""
        Self.render(nodes, context, into: &output)
        return output
    }

    private static func render(_ nodes: [Node], _ context: [String: any Sendable], into output: inout String) {
        for node in nodes {
            switch node {
            case .text(let text): output += text
            case .variable(let name): if let value = context[name] { output += "\(value)" }
            case .section(let name, let inverted, let children):
                if truthy(context[name]) != inverted { render(children, context, into: &output) }
            }
        }
    }

    private static func truthy(_ value: (any Sendable)?) -> Bool {
        switch value {
        case nil: false
        case let flag as Bool: flag
        default: true
        }
    }

    private enum Kind: Equatable {
        case variable, comment, pragma, close
        case open(inverted: Bool)
        case unsupported(String)
    }

    private struct Tag {
        var range: Range<Substring.Index>
        var kind: Kind
        var name: String
    }

    /// The lines of `text`, each with its newline.
    private static func lines(_ text: String) -> [Substring] {
        var lines: [Substring] = []
        var start = text.startIndex
        while let newline = text[start...].firstIndex(of: "\n") {
            lines.append(text[start...newline])
            start = text.index(after: newline)
        }
        if start < text.endIndex { lines.append(text[start...]) }
        return lines
    }

    private static func tags(in line: Substring) -> [Tag] {
        var tags: [Tag] = []
        var rest = line[...]
        while let open = rest.firstRange(of: "{{"), let close = rest[open.upperBound...].firstRange(of: "}}") {
            let inside = rest[open.upperBound..<close.lowerBound]
            let body = trimmed(inside.dropFirst())
            let kind: Kind =
                switch inside.first {
                case "#": .open(inverted: false)
                case "^": .open(inverted: true)
                case "/": .close
                case "!": .comment
                case "%": .pragma
                case "{", "&", ">", "<", "$", "=": .unsupported(String(inside))
                default: .variable
                }
            let name = kind == .variable ? trimmed(inside) : body
            tags.append(Tag(range: open.lowerBound..<close.upperBound, kind: kind, name: name))
            rest = rest[close.upperBound...]
        }
        return tags
    }

    private static func trimmed(_ text: Substring) -> String {
        String(text.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
