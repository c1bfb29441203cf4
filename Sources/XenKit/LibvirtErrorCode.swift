/// The `virErrorNumber`s iovm tells apart (libvirt 9.0's `virterror.h`); any other code is reported by number.
public enum LibvirtErrorCode: Int32, Sendable, CaseIterable {
    /// VIR_ERR_INTERNAL_ERROR.
    case internalError = 1
    /// VIR_ERR_NO_SUPPORT: the driver lacks the call.
    case noSupport = 3
    /// VIR_ERR_UNKNOWN_HOST.
    case unknownHost = 4
    /// VIR_ERR_NO_CONNECT: no driver for the URI (libvirt without the Xen driver, or a daemon not running).
    case noConnect = 5
    /// VIR_ERR_INVALID_ARG.
    case invalidArgument = 8
    /// VIR_ERR_OPERATION_FAILED.
    case operationFailed = 9
    /// VIR_ERR_XML_ERROR.
    case xmlError = 27
    /// VIR_ERR_DOM_EXIST.
    case domainExists = 28
    /// VIR_ERR_OPERATION_DENIED.
    case operationDenied = 29
    /// VIR_ERR_SYSTEM_ERROR: an OS call failed (a refused or reset ssh connection lands here).
    case systemError = 38
    /// VIR_ERR_RPC.
    case rpc = 39
    /// VIR_ERR_NO_DOMAIN.
    case noDomain = 42
    /// VIR_ERR_AUTH_FAILED.
    case authFailed = 45
    /// VIR_ERR_NO_NODE_DEVICE.
    case noNodeDevice = 53
    /// VIR_ERR_OPERATION_INVALID: not in this domain's state.
    case operationInvalid = 55
    /// VIR_ERR_CONFIG_UNSUPPORTED.
    case configUnsupported = 67
    /// VIR_ERR_OPERATION_TIMEOUT.
    case operationTimeout = 68
    /// VIR_ERR_NO_DOMAIN_METADATA: the domain has no element in that namespace.
    case noDomainMetadata = 80
    /// VIR_ERR_OPERATION_UNSUPPORTED.
    case operationUnsupported = 84
    /// VIR_ERR_SSH.
    case ssh = 85
    /// VIR_ERR_ACCESS_DENIED.
    case accessDenied = 88
    /// VIR_ERR_AUTH_UNAVAILABLE.
    case authUnavailable = 94
    /// VIR_ERR_LIBSSH.
    case libssh = 98

    /// The enumerator's C name (`VIR_ERR_NO_DOMAIN`), or `VIR_ERR_<code>` for one not listed here.
    public static func name(of code: Int32) -> String {
        guard let known = LibvirtErrorCode(rawValue: code) else { return "VIR_ERR_\(code)" }
        return known.cName
    }

    /// The C enumerator's name.
    public var cName: String {
        switch self {
        case .internalError: "VIR_ERR_INTERNAL_ERROR"
        case .noSupport: "VIR_ERR_NO_SUPPORT"
        case .unknownHost: "VIR_ERR_UNKNOWN_HOST"
        case .noConnect: "VIR_ERR_NO_CONNECT"
        case .invalidArgument: "VIR_ERR_INVALID_ARG"
        case .operationFailed: "VIR_ERR_OPERATION_FAILED"
        case .xmlError: "VIR_ERR_XML_ERROR"
        case .domainExists: "VIR_ERR_DOM_EXIST"
        case .operationDenied: "VIR_ERR_OPERATION_DENIED"
        case .systemError: "VIR_ERR_SYSTEM_ERROR"
        case .rpc: "VIR_ERR_RPC"
        case .noDomain: "VIR_ERR_NO_DOMAIN"
        case .authFailed: "VIR_ERR_AUTH_FAILED"
        case .noNodeDevice: "VIR_ERR_NO_NODE_DEVICE"
        case .operationInvalid: "VIR_ERR_OPERATION_INVALID"
        case .configUnsupported: "VIR_ERR_CONFIG_UNSUPPORTED"
        case .operationTimeout: "VIR_ERR_OPERATION_TIMEOUT"
        case .noDomainMetadata: "VIR_ERR_NO_DOMAIN_METADATA"
        case .operationUnsupported: "VIR_ERR_OPERATION_UNSUPPORTED"
        case .ssh: "VIR_ERR_SSH"
        case .accessDenied: "VIR_ERR_ACCESS_DENIED"
        case .authUnavailable: "VIR_ERR_AUTH_UNAVAILABLE"
        case .libssh: "VIR_ERR_LIBSSH"
        }
    }
}
