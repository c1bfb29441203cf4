/// Text as a terminal should receive it: what a topology or a host wrote is shown, never obeyed.
///
/// A name, a path or a command line quoted in an error comes from the user's file or from the host. Written as it is,
/// an escape sequence in it would drive the terminal (retitle it, move the cursor, hide the rest of the line) and a
/// bidirectional override would reorder what is read. A 15 MB value would be printed once per error about it.
package enum TerminalText {
    /// The longest line written whole, in Unicode scalars; a longer one keeps its start and says how much was cut.
    package static let maximumLineLength = 4096

    /// `text` with each control character and bidirectional control written as `\u{1B}`, except newline and tab
    /// when `keepingLineBreaks` (a CR before a newline is dropped: CRLF text); with `cuttingLongLines`, a line over
    /// ``maximumLineLength`` scalars cut there and ending in `… [N more characters]`.
    ///
    /// A table cell keeps no line break (a value with a newline would start a row of its own); standard output is not
    /// cut (a long line there is what was asked for).
    package static func visible(_ text: String, keepingLineBreaks: Bool = true, cuttingLongLines: Bool = true) -> String {
        guard needsRewriting(text, keepingLineBreaks: keepingLineBreaks, cuttingLongLines: cuttingLongLines) else { return text }
        let limit = cuttingLongLines ? maximumLineLength : Int.max
        var result = String.UnicodeScalarView()
        var length = 0
        var cut = 0
        func endLine() {
            if cut > 0 { result.append(contentsOf: "… [\(cut) more character\(cut == 1 ? "" : "s")]".unicodeScalars) }
            length = 0
            cut = 0
        }
        let scalars = Array(text.unicodeScalars)
        for (index, scalar) in scalars.enumerated() {
            if keepingLineBreaks {
                if scalar == "\n" {
                    endLine()
                    result.append(scalar)
                    continue
                }
                if scalar == "\r", index + 1 < scalars.count, scalars[index + 1] == "\n" { continue }
            }
            if length >= limit {
                cut += 1
                continue
            }
            length += 1
            if isHidden(scalar) || (!keepingLineBreaks && (scalar == "\n" || scalar == "\t")) {
                result.append(contentsOf: "\\u{\(String(scalar.value, radix: 16, uppercase: true))}".unicodeScalars)
            } else {
                result.append(scalar)
            }
        }
        endLine()
        return String(result)
    }

    /// Whether `scalar` acts on a terminal or on the order of what is shown instead of being shown: C0 controls but
    /// newline and tab, DEL, C1 controls, and the bidirectional embeddings, overrides and isolates.
    package static func isHidden(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x0A, 0x09: false
        case 0x00...0x1F, 0x7F...0x9F: true
        case 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }

    /// Whether anything in `text` may need rewriting, by its UTF-8 bytes: a control byte, DEL, the lead bytes of a
    /// C1 control (0xC2) or of a bidirectional control (0xE2), or a line longer than ``maximumLineLength`` bytes (a
    /// line of fewer bytes has fewer scalars). Other text, `…` and `→` included, is written as it is.
    private static func needsRewriting(_ text: String, keepingLineBreaks: Bool, cuttingLongLines: Bool) -> Bool {
        var bytesOnLine = 0
        var longLine = false
        for byte in text.utf8 {
            if byte == 0x0A || byte == 0x09 {
                if !keepingLineBreaks { return true }
                if byte == 0x0A {
                    bytesOnLine = 0
                    continue
                }
            } else if byte < 0x20 || byte == 0x7F || byte == 0xC2 || byte == 0xE2 {
                return true
            }
            bytesOnLine += 1
            if cuttingLongLines && bytesOnLine > maximumLineLength { longLine = true }
        }
        return longLine
    }
}
