/// Text as a terminal should receive it: what a topology or a host wrote is shown, never obeyed.
///
/// A name, a path or a command line quoted in an error comes from the user's file or from the host. Written as it is,
/// an escape sequence in it would drive the terminal (retitle it, move the cursor, hide the rest of the line) and a
/// bidirectional override would reorder what is read. A 15 MB value would be printed once per error about it.
package enum TerminalText {
    /// The longest line written whole, in Unicode scalars; a longer one keeps its start and says how much was cut.
    package static let maximumLineLength = 4096

    /// `text` with each control character other than newline and tab, and each bidirectional control, written as
    /// `\u{1B}`; a line over ``maximumLineLength`` scalars cut there and ending in `… [N more characters]`.
    package static func visible(_ text: String) -> String {
        guard needsRewriting(text) else { return text }
        var result = String.UnicodeScalarView()
        var length = 0
        var cut = 0
        func endLine() {
            if cut > 0 { result.append(contentsOf: "… [\(cut) more characters]".unicodeScalars) }
            length = 0
            cut = 0
        }
        for scalar in text.unicodeScalars {
            if scalar == "\n" {
                endLine()
                result.append(scalar)
                continue
            }
            if length >= maximumLineLength {
                cut += 1
                continue
            }
            length += 1
            if isHidden(scalar) {
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

    /// Whether anything in `text` is hidden or a line is too long (counted in bytes first: most text is short ASCII).
    private static func needsRewriting(_ text: String) -> Bool {
        var bytesOnLine = 0
        var longLine = false
        for byte in text.utf8 {
            if byte == 0x0A {
                bytesOnLine = 0
                continue
            }
            bytesOnLine += 1
            if bytesOnLine > maximumLineLength { longLine = true }
            if byte < 0x20 && byte != 0x09 || byte == 0x7F || byte >= 0x80 { return true }
        }
        return longLine
    }
}
