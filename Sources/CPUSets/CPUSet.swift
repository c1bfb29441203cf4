/// A set of physical CPU (core) indices, as xl's `cpus=` and `xl vcpu-pin` take them: the one CPU-set
/// value of iovm, from the planner's placements down to XenKit's `libxl_bitmap`s.
public struct CPUSet: Sendable, Hashable, Codable, CustomStringConvertible, ExpressibleByArrayLiteral {
    /// The largest CPU index an xl list may name (Xen's NR_CPUS is at most 4096 on x86).
    public static let maximumCPUIndex = 16383

    /// The cores, ascending.
    public let cores: [Int]

    /// Creates a set from any core indices (sorted and deduplicated).
    public init<S: Sequence>(_ cores: S) where S.Element == Int {
        self.cores = Array(Set(cores)).sorted()
    }

    /// `[2, 3]` is cores 2 and 3.
    public init(arrayLiteral elements: Int...) { self.init(elements) }

    /// xl syntax with ranges: `"0-1"`, `"3"`, `"0,2-3"`; `""` when empty.
    public var description: String {
        var parts: [String] = []
        var index = 0
        while index < cores.count {
            var end = index
            while end + 1 < cores.count && cores[end + 1] == cores[end] + 1 { end += 1 }
            parts.append(end == index ? "\(cores[index])" : "\(cores[index])-\(cores[end])")
            index = end + 1
        }
        return parts.joined(separator: ",")
    }

    /// Whether the set has no core.
    public var isEmpty: Bool { cores.isEmpty }

    /// Whether a core is in the set.
    public func contains(_ core: Int) -> Bool { cores.contains(core) }

    /// Encodes as an array of core indices.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(cores)
    }

    /// Decodes from an array of core indices.
    public init(from decoder: any Decoder) throws {
        self.init(try decoder.singleValueContainer().decode([Int].self))
    }
}
