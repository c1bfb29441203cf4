import SystemPackage

/// The one funnel every libxl call of XenKit (and libxenstore's watch calls) goes through: it records the call in the task's
/// ``LibXLMocking`` trace (when a test installed one), lets that trace force a result instead of
/// calling libxl, and turns libxl's return conventions into ``XenError``.
///
/// Each helper takes the C function's name (what the trace records and a forced result matches)
/// and the operation to name in an error, which may add arguments (`libxl_cpupool_create(iovm)`).
enum LibXLCalls {
    /// Runs `call`, or returns the code a test forced for it, without checking it.
    ///
    /// For calls whose failure needs more than a ``XenError/libxl(code:name:operation:)``
    /// (`libxl_ctx_alloc`, which becomes ``XenError/notXenDom0(reason:)``).
    static func code(_ function: String, _ call: () -> Int32) -> Int32 {
        if let forced = LibXLMocking.current?.record(function) { return forced }
        return call()
    }

    /// Runs a libxl call that returns 0 on success or a negative `ERROR_*` code.
    ///
    /// - Throws: ``XenError/libxl(code:name:operation:)`` for any nonzero code.
    static func check(_ function: String, operation: @autoclosure () -> String, _ call: () -> Int32) throws(XenError) {
        let rc = code(function, call)
        guard rc == 0 else { throw XenError.libxl(code: rc, operation: operation()) }
    }

    /// Runs a libxl call that returns a count or an enumerator, negative on failure
    /// (`libxl_get_max_cpus`, `libxl_get_scheduler`); `minimum` is the smallest valid value.
    ///
    /// - Throws: ``XenError/libxl(code:name:operation:)`` for a value below `minimum`.
    static func value(_ function: String, minimum: Int32 = 0, operation: @autoclosure () -> String, _ call: () -> Int32) throws(XenError)
        -> Int32
    {
        let result = code(function, call)
        guard result >= minimum else { throw XenError.libxl(code: result, operation: operation()) }
        return result
    }

    /// Runs a libxl call that returns a pointer, `NULL` on failure (`libxl_list_domain`, …).
    /// A forced code makes it return `NULL`.
    ///
    /// - Throws: ``XenError/failed(operation:detail:)`` with `detail` for `NULL`.
    static func pointer<T>(_ function: String, operation: @autoclosure () -> String, detail: String, _ call: () -> T?) throws(XenError) -> T {
        let result: T?
        if LibXLMocking.current?.record(function) != nil { result = nil } else { result = call() }
        guard let result else { throw XenError.failed(operation: operation(), detail: detail) }
        return result
    }

    /// Runs a libxl call that returns a pointer where `NULL` is an answer, not a failure
    /// (`libxl_domid_to_name` of a domain without a name). A forced code makes it return `NULL`.
    static func optionalPointer<T>(_ function: String, _ call: () -> T?) -> T? {
        if LibXLMocking.current?.record(function) != nil { return nil }
        return call()
    }

    /// Runs a libxenstore call that returns `false` and sets `errno` on failure (`xs_watch`,
    /// `xs_unwatch`). A forced code is the errno it fails with (0: succeed without calling).
    ///
    /// - Throws: ``XenError/errno(_:operation:)``.
    static func xenstore(_ function: String, operation: @autoclosure () -> String, _ call: () -> Bool) throws(XenError) {
        if let forced = LibXLMocking.current?.record(function) {
            guard forced == 0 else { throw XenError.errno(Errno(rawValue: forced), operation: operation()) }
            return
        }
        guard call() else { throw XenError.currentErrno(operation: operation()) }
    }
}
