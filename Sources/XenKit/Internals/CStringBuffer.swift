extension String {
    /// The NUL-terminated text a C function wrote into `buffer` (all of it when it holds no NUL), invalid UTF-8
    /// repaired: the shims' error messages.
    init(cBuffer buffer: [CChar]) {
        self.init(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
