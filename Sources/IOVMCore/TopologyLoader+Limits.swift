public import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// What a topology file may use while it runs: it is code, so a loop, a huge document or a fork
/// bomb must end in a clear error within seconds and leave iovm responsive.
public struct EvaluationLimits: Sendable, Equatable {
    /// Seconds of CPU time (`RLIMIT_CPU`: SIGXCPU past it, SIGKILL a second later).
    public var cpuSeconds: Int = 20
    /// Seconds of wall time before the whole process group is killed.
    public var wallSeconds: Double = 60
    /// Bytes of address space (`RLIMIT_AS`): allocations past it fail.
    public var addressSpaceBytes: Int = 2 << 30
    /// Processes the unprivileged user may have (`RLIMIT_NPROC`, counted per user: a fork bomb stops there).
    public var processes: Int = 64
    /// Bytes any file it writes may reach (`RLIMIT_FSIZE`): the document on fd 3 and its output.
    public var fileBytes: Int = 16 << 20

    /// The defaults.
    public init() {}

    /// `prlimit` arguments that apply these limits to the command after them.
    func prlimitArguments() -> [String] {
        ["--cpu=\(cpuSeconds):\(cpuSeconds + 1)", "--as=\(addressSpaceBytes)", "--nproc=\(processes)", "--fsize=\(fileBytes)", "--core=0"]
    }

    /// Why a run that ended with `status` (128 + signal when killed) stopped, when a limit explains it
    /// (a SIGKILL that is not the wall-time limit's is RLIMIT_CPU's hard limit).
    func explain(status: Int32) -> String? {
        switch status - 128 {
        case SIGXCPU, SIGKILL: "it used more than \(cpuSeconds) s of CPU time and was stopped"
        case SIGXFSZ: "it wrote more than \(fileBytes >> 20) MiB (its document or its output) and was stopped"
        default: nil
        }
    }
}

/// Limits on JSON topology documents, applied before decoding.
public enum DocumentLimits {
    /// The largest document read.
    public static let maximumBytes = 16 << 20
    /// The deepest nesting of objects and arrays (a topology document needs 5).
    public static let maximumDepth = 32

    /// Nil when `data` is within the limits, else why not.
    public static func violation(_ data: Data) -> String? {
        if data.count > maximumBytes { return "the document is \(data.count) bytes, more than the \(maximumBytes >> 20) MiB allowed" }
        var depth = 0
        var inString = false
        var escaped = false
        for byte in data {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                if depth > maximumDepth { return "the document nests objects and arrays more than \(maximumDepth) deep" }
            case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
            default: break
            }
        }
        return nil
    }
}
