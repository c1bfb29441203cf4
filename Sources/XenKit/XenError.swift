import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// An error from the Xen toolstack libraries, carrying the failing C call and its code.
///
/// Every `-1`/`errno`, libxl `ERROR_*` code and `NULL` return in XenKit becomes one of these cases,
/// so callers can both match on the kind of failure and print a message that names what was being
/// done (`libxl_ctx_alloc`, `xenstat_get_node`, `xs_read /local/domain/0/name`, …).
public enum XenError: Error, Sendable, Hashable, CustomStringConvertible {
    /// This process is not running in a Xen dom0 (no `/proc/xen`/privcmd, a domU, or libxl could
    /// not open the hypervisor interfaces). `reason` says which check failed.
    case notXenDom0(reason: String)

    /// A libxl call returned a negative `libxl_error` code.
    ///
    /// `name` is the C enumerator (`"ERROR_FAIL"`), or `"ERROR_UNKNOWN(<code>)"` for a code
    /// libxl 4.17 does not define.
    case libxl(code: Int32, name: String, operation: String)

    /// A C call failed with `errno` (libxenstore, libxenstat, stdio, the file system).
    case errno(Errno, operation: String)

    /// A C call returned `NULL` or failed without a usable `errno`.
    case failed(operation: String, detail: String)

    /// libxlutil rejected an xl.cfg text; `message` is libxlutil's own report
    /// (`"<name>:<line>: config parsing error near …"`).
    case configParse(name: String, message: String)

    /// A CPU set could not become a `libxl_bitmap` (a CPU the host or the bitmap cannot hold).
    case invalidCPUMap(String, reason: String)

    /// A libvirt call failed; `code` is libvirt's `virErrorNumber`, `name` its enumerator
    /// (``LibvirtErrorCode``), `message` what libvirt said (it names the host or the domain).
    case libvirt(code: Int32, name: String, operation: String, message: String)

    /// Makes a `.libxl` error from a libxl return code, filling in the enumerator name.
    public static func libxl(code: Int32, operation: String) -> XenError {
        .libxl(code: code, name: libxlErrorName(code), operation: operation)
    }

    /// Makes an `.errno` error from the calling thread's current `errno`.
    public static func currentErrno(operation: String) -> XenError {
        .errno(Errno(rawValue: currentCErrno()), operation: operation)
    }

    /// The `enum libxl_error` enumerator name for a libxl return code (`-3` → `"ERROR_FAIL"`).
    public static func libxlErrorName(_ code: Int32) -> String {
        if code == 0 { return "SUCCESS" }
        let index = Int(-code) - 1
        if index >= 0, index < libxlErrorNames.count { return libxlErrorNames[index] }
        return "ERROR_UNKNOWN(\(code))"
    }

    /// `enum libxl_error` of Xen 4.17 (`_libxl_types.h`), in order: element `i` is code `-(i+1)`.
    static let libxlErrorNames: [String] = [
        "ERROR_NONSPECIFIC",  // -1
        "ERROR_VERSION",  // -2
        "ERROR_FAIL",  // -3
        "ERROR_NI",  // -4
        "ERROR_NOMEM",  // -5
        "ERROR_INVAL",  // -6
        "ERROR_BADFAIL",  // -7
        "ERROR_GUEST_TIMEDOUT",  // -8
        "ERROR_TIMEDOUT",  // -9
        "ERROR_NOPARAVIRT",  // -10
        "ERROR_NOT_READY",  // -11
        "ERROR_OSEVENT_REG_FAIL",  // -12
        "ERROR_BUFFERFULL",  // -13
        "ERROR_UNKNOWN_CHILD",  // -14
        "ERROR_LOCK_FAIL",  // -15
        "ERROR_JSON_CONFIG_EMPTY",  // -16
        "ERROR_DEVICE_EXISTS",  // -17
        "ERROR_CHECKPOINT_DEVOPS_DOES_NOT_MATCH",  // -18
        "ERROR_CHECKPOINT_DEVICE_NOT_SUPPORTED",  // -19
        "ERROR_VNUMA_CONFIG_INVALID",  // -20
        "ERROR_DOMAIN_NOTFOUND",  // -21
        "ERROR_ABORTED",  // -22
        "ERROR_NOTFOUND",  // -23
        "ERROR_DOMAIN_DESTROYED",  // -24
        "ERROR_FEATURE_REMOVED",  // -25
        "ERROR_PROTOCOL_ERROR_QMP",  // -26
        "ERROR_UNKNOWN_QMP_ERROR",  // -27
        "ERROR_QMP_GENERIC_ERROR",  // -28
        "ERROR_QMP_COMMAND_NOT_FOUND",  // -29
        "ERROR_QMP_DEVICE_NOT_ACTIVE",  // -30
        "ERROR_QMP_DEVICE_NOT_FOUND",  // -31
        "ERROR_QEMU_API",  // -32
    ]

    /// A one-line, human-readable message naming the operation and the code.
    public var description: String {
        switch self {
        case .notXenDom0(let reason):
            return "not running on a Xen dom0 (\(reason))"
        case .libxl(let code, let name, let operation):
            return "\(operation) failed: libxl \(name) (\(code))"
        case .errno(let errno, let operation):
            return "\(operation) failed: \(errno) (errno \(errno.rawValue))"
        case .failed(let operation, let detail):
            return "\(operation) failed: \(detail)"
        case .configParse(let name, let message):
            return "xl config \(name) does not parse: \(message)"
        case .invalidCPUMap(let text, let reason):
            return "invalid CPU list \"\(text)\": \(reason)"
        case .libvirt(_, let name, let operation, let message):
            return "\(operation) failed: \(message.isEmpty ? "libvirt error" : message) (libvirt \(name))"
        }
    }
}

/// The calling thread's C `errno`.
@inline(__always)
func currentCErrno() -> Int32 {
    errno
}
