/// Quoting for a POSIX shell.
package enum ShellWord {
    /// `word` as one shell word: as it is when every scalar is an ASCII letter, digit or one of `._:/=@,+-%`,
    /// else in single quotes, each `'` written `'\''`.
    ///
    /// By scalar, not Character: a `'` with a combining mark after it is one Character, which a Character match
    /// would leave unescaped, ending the quotes early.
    package static func quoted(_ word: String) -> String {
        let plain = !word.isEmpty && word.unicodeScalars.allSatisfy { $0.isASCII && (isAlphanumeric($0) || "._:/=@,+-%".unicodeScalars.contains($0)) }
        if plain { return word }
        var quoted = "'"
        for scalar in word.unicodeScalars {
            if scalar == "'" { quoted += "'\\''" } else { quoted.unicodeScalars.append(scalar) }
        }
        return quoted + "'"
    }

    private static func isAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
    }
}
