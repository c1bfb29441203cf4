import IOVMCore

/// The one formatter of iovm's human-readable tables: columns as wide as their widest cell, two
/// spaces apart, no trailing spaces. (`iovm monitor`'s live table has fixed widths instead: its rows
/// are printed as they come, before the widest is known.)
enum TextTable {
    /// `rows` (the first is usually the header) as lines ending in a newline, each prefixed by `indent`;
    /// the columns in `rightAligned` (by index) are aligned to the right.
    static func render(_ rows: [[String]], rightAligned: Set<Int> = [], indent: String = "") -> String {
        // Names read from the host are shown, not obeyed; a newline in one would start a row of its own.
        let rows = rows.map { $0.map { TerminalText.visible($0, keepingLineBreaks: false, cuttingLongLines: false) } }
        guard let first = rows.first else { return "" }
        let widths = first.indices.map { column in rows.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0 }
        return rows.map { row in
            let cells = row.indices.map { column in
                let cell = row[column]
                let padding = String(repeating: " ", count: max(0, widths[column] - cell.count))
                return rightAligned.contains(column) ? padding + cell : cell + padding
            }
            var line = indent + cells.joined(separator: "  ")
            while line.last == " " { line.removeLast() }
            return line + "\n"
        }.joined()
    }
}
