public import IOVMWireFormat

/// A problem found in a topology, pointing at where it was declared.
public struct Diagnostic: Sendable, Hashable, CustomStringConvertible, Codable {
    /// How bad it is.
    public enum Severity: String, Sendable, Codable {
        /// The topology cannot be planned.
        case error
        /// The topology plans, but probably not as meant.
        case warning
    }
    /// How bad it is.
    public var severity: Severity
    /// What is wrong, naming the thing.
    public var message: String
    /// Where it was declared (file and line), when known.
    public var location: SourceLocation?

    /// Creates a diagnostic.
    public init(_ severity: Severity, _ message: String, at location: SourceLocation?) {
        self.severity = severity
        self.message = message
        self.location = location
    }

    /// `file:line: error: message`, the form editors jump to. A message of several lines (another host's error) goes
    /// on in lines indented by four spaces: a newline in a name it quotes cannot start a line that passes for a
    /// diagnostic of its own.
    public var description: String {
        let place = location.map { "\($0): " } ?? ""
        let text = TerminalText.visible("\(place)\(severity.rawValue): \(message)", cuttingLongLines: false)
        return text.contains("\n") ? text.replacing("\n", with: "\n    ") : text
    }
}

/// Errors that make a topology unusable: exit code 65 (`EX_DATAERR`).
public enum TopologyError: Error, Sendable, CustomStringConvertible {
    /// Validation found errors (warnings may come along).
    case invalid([Diagnostic])
    /// The topology file did not compile; `output` holds the compiler's `file:line:col` messages.
    case compilationFailed(file: String, output: String)
    /// The compiled topology ran but failed or wrote no document.
    case evaluationFailed(file: String, reason: String)
    /// The JSON document could not be read or has an unknown schema.
    case unreadableDocument(file: String, reason: String)

    /// Human-readable text, one diagnostic per line.
    public var description: String {
        switch self {
        case .invalid(let diagnostics):
            return Diagnostic.report(diagnostics, summary: "in the topology; nothing was touched.")
        case .compilationFailed(let file, let output):
            return output.trimmingSuffixNewlines() + "\nerror: \(file) does not compile as a topology; nothing was touched."
        case .evaluationFailed(let file, let reason):
            return "\(file): error: evaluating the topology failed: \(reason)"
        case .unreadableDocument(let file, let reason):
            return "\(file): error: not a usable topology document: \(reason)"
        }
    }
}

extension String {
    func trimmingSuffixNewlines() -> String {
        var text = self
        while text.hasSuffix("\n") { text.removeLast() }
        return text
    }
}

/// Collects diagnostics while a topology is checked.
struct DiagnosticCollector {
    private(set) var diagnostics: [Diagnostic] = []

    /// Records one of the named diagnostics (`Planner+Diagnostics.swift`).
    mutating func emit(_ diagnostic: Diagnostic) {
        diagnostics.append(diagnostic)
    }

    var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }
    var warnings: [Diagnostic] { diagnostics.filter { $0.severity == .warning } }
}

extension Diagnostic {
    /// Every diagnostic, ordered by file and line (in emission order within a line), then
    /// "N error(s) \(summary)": how topology and experiment errors print.
    static func report(_ diagnostics: [Diagnostic], summary: String) -> String {
        let errors = diagnostics.filter { $0.severity == .error }.count
        let ordered = diagnostics.enumerated().sorted { a, b in
            let left = (a.element.location?.file ?? "", a.element.location?.line ?? 0, a.offset)
            let right = (b.element.location?.file ?? "", b.element.location?.line ?? 0, b.offset)
            return left < right
        }.map(\.element)
        return (ordered.map(\.description) + ["\(errors) error\(errors == 1 ? "" : "s") \(summary)"]).joined(separator: "\n")
    }
}
