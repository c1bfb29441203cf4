import IOVMWireFormat
import Testing

@testable import IOVMCore

@Suite("Text written to the terminal")
struct TerminalTextTests {
    @Test("control characters and bidirectional controls are shown, not obeyed; newline and tab stay; plain text is untouched")
    func hiddenCharactersAreShown() {
        #expect(TerminalText.visible("guest \"\u{1B}]0;owned\u{07}\" and\ttab\n") == "guest \"\\u{1B}]0;owned\\u{7}\" and\ttab\n")
        #expect(TerminalText.visible("a\u{7F}b\u{9B}c\u{202E}d\u{2066}e\r") == "a\\u{7F}b\\u{9B}c\\u{202E}d\\u{2066}e\\u{D}")
        let plain = "iovm0 → guest1 … ok, naïve café"
        #expect(TerminalText.visible(plain) == plain)
    }

    @Test("a line longer than the limit keeps its start and says how much was cut; the next line starts afresh")
    func longLinesAreCut() {
        let limit = TerminalText.maximumLineLength
        let long = String(repeating: "x", count: limit + 1000)
        let shown = TerminalText.visible("error: name \"\(long)\" is too long\nnext line\n")
        let lines = shown.split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines[0].hasPrefix("error: name \"xxx"))
        let cut = limit + 1000 + "error: name \"\" is too long".count - limit
        #expect(lines[0].hasSuffix("… [\(cut) more characters]"))
        #expect(lines[1] == "next line")
        let exact = String(repeating: "y", count: limit)
        #expect(TerminalText.visible(exact) == exact)
    }

    @Test("a table cell keeps no line break; CRLF text loses its CR; standard output's long lines are not cut")
    func modes() {
        #expect(TerminalText.visible("6.1\nabc  fake-row\tx", keepingLineBreaks: false) == "6.1\\u{A}abc  fake-row\\u{9}x")
        #expect(TerminalText.visible("one\r\ntwo\r\n") == "one\ntwo\n")
        #expect(TerminalText.visible("\rtwo") == "\\u{D}two")
        let long = String(repeating: "z", count: TerminalText.maximumLineLength * 2)
        #expect(TerminalText.visible(long, cuttingLongLines: false) == long)
    }

    @Test("the cut counts Unicode scalars, not bytes: 4096 two-byte letters stay whole, one more is cut")
    func cutCountsScalars() {
        let limit = TerminalText.maximumLineLength
        let exact = String(repeating: "é", count: limit)
        #expect(TerminalText.visible(exact) == exact)
        #expect(TerminalText.visible(exact + "é") == exact + "… [1 more character]")
    }

    @Test("a diagnostic's further lines are indented, so a name it quotes cannot start one that passes for a diagnostic")
    func diagnosticIsOneLine() {
        let diagnostic = Diagnostic(.error, "guest name \"web\n2026-12-06 notice: all good\" is not valid", at: SourceLocation(file: "t.swift", line: 3))
        #expect(diagnostic.description == "t.swift:3: error: guest name \"web\n    2026-12-06 notice: all good\" is not valid")
    }
}
