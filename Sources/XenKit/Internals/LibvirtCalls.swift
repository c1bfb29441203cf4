import CVirtShim

#if canImport(Glibc)
    import Glibc
#endif

/// The one funnel every libvirt call of XenKit goes through, as ``LibXLCalls`` is for libxl: it records
/// the call in the task's ``LibXLMocking`` trace (when a test installed one), lets that trace force a
/// failure instead of calling libvirt (the forced code is the `virErrorNumber` reported), and turns
/// libvirt's -1/`NULL` returns and its thread-local last error into ``XenError/libvirt(code:name:operation:message:)``.
enum LibvirtCalls {
    /// Loads libvirt.so.0 once; every other call needs it.
    ///
    /// - Throws: ``XenError/failed(operation:detail:)`` naming what is missing.
    static func load() throws(XenError) {
        var buffer = [CChar](repeating: 0, count: 512)
        guard cvirt_load(&buffer, buffer.count) == 0 else {
            throw XenError.failed(operation: "load libvirt", detail: String(cBuffer: buffer))
        }
    }

    /// Runs a libvirt call that returns -1 on failure; returns its result.
    @discardableResult
    static func check(_ function: String, operation: @autoclosure () -> String, _ call: () -> Int32) throws(XenError) -> Int32 {
        if let forced = LibXLMocking.current?.record(function) { throw forcedError(forced, operation: operation()) }
        let result = call()
        guard result >= 0 else { throw lastError(operation: operation()) }
        return result
    }

    /// Runs a libvirt call that returns `NULL` on failure.
    static func pointer<T>(_ function: String, operation: @autoclosure () -> String, _ call: () -> T?) throws(XenError) -> T {
        if let forced = LibXLMocking.current?.record(function) { throw forcedError(forced, operation: operation()) }
        guard let result = call() else { throw lastError(operation: operation()) }
        return result
    }

    /// Runs a libvirt call whose `NULL` is an answer when libvirt's error is `absent` (a domain without
    /// iovm's metadata, a node device that does not exist): nil then, an error for any other failure.
    static func optional<T>(_ function: String, absent: Set<LibvirtErrorCode>, operation: @autoclosure () -> String, _ call: () -> T?) throws(XenError)
        -> T?
    {
        if let forced = LibXLMocking.current?.record(function) {
            if let code = LibvirtErrorCode(rawValue: forced), absent.contains(code) { return nil }
            throw forcedError(forced, operation: operation())
        }
        if let result = call() { return result }
        let error = lastError(operation: operation())
        if case .libvirt(let code, _, _, _) = error, let known = LibvirtErrorCode(rawValue: code), absent.contains(known) { return nil }
        throw error
    }

    /// The thread's last libvirt error (and resets it); a generic one when libvirt recorded none.
    static func lastError(operation: String) -> XenError {
        var code: Int32 = 0
        var domain: Int32 = 0
        var buffer = [CChar](repeating: 0, count: 4096)
        guard cvirt_last_error(&code, &domain, &buffer, buffer.count) != 0 else {
            return .libvirt(code: LibvirtErrorCode.internalError.rawValue, name: "VIR_ERR_INTERNAL_ERROR", operation: operation, message: "")
        }
        let message = String(cBuffer: buffer)
        return .libvirt(code: code, name: LibvirtErrorCode.name(of: code), operation: operation, message: message)
    }

    private static func forcedError(_ code: Int32, operation: String) -> XenError {
        .libvirt(code: code, name: LibvirtErrorCode.name(of: code), operation: operation, message: "forced by a test")
    }

    /// A C string libvirt allocated, as a String, freed.
    static func take(_ pointer: UnsafeMutablePointer<CChar>) -> String {
        defer { free(pointer) }
        return String(cString: pointer)
    }
}
