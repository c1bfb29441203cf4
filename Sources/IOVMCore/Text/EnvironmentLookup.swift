#if canImport(Glibc)
    import Glibc
#endif

/// An environment's variables, looked up one at a time: the process's through `getenv`, or a dictionary's.
///
/// Foundation's `ProcessInfo.processInfo.environment` copies every variable into a new dictionary each time it is
/// asked: about 0.35 million instructions natively, three times in a no-op re-apply (issue 16).
public struct EnvironmentLookup: Sendable {
    private let lookup: @Sendable (String) -> String?

    /// The value of `name`, nil when it is not set.
    public subscript(name: String) -> String? { lookup(name) }

    /// This process's environment, read when asked.
    public static let process = EnvironmentLookup { name in getenv(name).map { String(cString: $0) } }

    /// The variables of `values`.
    public init(_ values: [String: String]) { lookup = { values[$0] } }

    private init(lookup: @escaping @Sendable (String) -> String?) { self.lookup = lookup }
}
