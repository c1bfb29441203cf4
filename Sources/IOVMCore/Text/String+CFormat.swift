#if canImport(Glibc)
    import Glibc
#endif

extension String {
    /// `format` filled in by the C library's `vsnprintf`, for the numeric conversions (`%.1f`, `%d`,
    /// `%+.1f%%`, `%g`); Swift strings go in by interpolation, not `%@`.
    ///
    /// Foundation's `String(format:)` lives in swift-corelibs-foundation, which with its ICU data adds
    /// about 44 MB to a static binary (issue 16); this one needs only libc.
    package init(cFormat format: String, _ arguments: any CVarArg...) {
        var buffer = [CChar](repeating: 0, count: 64)
        let needed = Int(withVaList(arguments) { vsnprintf(&buffer, buffer.count, format, $0) })
        if needed >= buffer.count {
            buffer = [CChar](repeating: 0, count: needed + 1)
            _ = withVaList(arguments) { vsnprintf(&buffer, buffer.count, format, $0) }
        }
        self = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
