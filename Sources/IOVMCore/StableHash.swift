/// FNV-1a, 64 bit: a small, stable, non-cryptographic hash for names (MACs, cache entries, fingerprints).
/// Never a security boundary: every user of it keeps or compares the full input where that matters.
public enum StableHash {
    /// The FNV-1a hash of `text`'s UTF-8 bytes.
    public static func fnv1a(_ text: String) -> UInt64 { fnv1a(bytes: text.utf8) }

    /// The FNV-1a hash of `bytes`.
    public static func fnv1a(bytes: some Sequence<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }
}
