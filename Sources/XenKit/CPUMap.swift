import CLibXen
import CXenShim

/// A set of physical CPUs, as in xl.cfg's `cpus=` and `xl vcpu-pin`: `"3"`, `"2,3"`, `"0-3"`,
/// `"all"`, `"0-7,^3"`, `"all,^0"`.
///
/// The value is pure Swift; it becomes a `libxl_bitmap` only at the libxl boundary
/// (``withLibXLBitmap(cpuCount:_:)``, ``init(_:)``). A map that starts from `all` means "every CPU
/// of the host" and is resolved against a CPU count only when converted.
public struct CPUMap: Hashable, Sendable, CustomStringConvertible, ExpressibleByArrayLiteral {
    private enum Kind: Hashable, Sendable {
        /// Exactly these CPUs.
        case only(Set<Int>)
        /// Every CPU of the host except these.
        case allExcept(Set<Int>)
    }

    private var kind: Kind

    /// The largest CPU index accepted (Xen's NR_CPUS is at most 4096 on x86).
    public static let maximumCPUIndex = 16383

    /// Every CPU of the host (`"all"`).
    public static let all = CPUMap(kind: .allExcept([]))

    /// No CPU at all (formats as `""`).
    public static let empty = CPUMap(kind: .only([]))

    private init(kind: Kind) {
        self.kind = kind
    }

    /// Exactly the given CPU indices.
    ///
    /// - Precondition: every index is in `0...CPUMap.maximumCPUIndex`.
    public init<S: Sequence>(_ cpus: S) where S.Element == Int {
        let set = Set(cpus)
        precondition(
            set.allSatisfy { (0...Self.maximumCPUIndex).contains($0) },
            "CPU indices must be in 0...\(Self.maximumCPUIndex)")
        self.kind = .only(set)
    }

    /// Exactly the given CPU indices (`[2, 3]`).
    public init(arrayLiteral elements: Int...) {
        self.init(elements)
    }

    /// Parses an xl-style CPU list: comma-separated items, each `N`, `N-M` or `all`, each
    /// optionally prefixed with `^` to remove it, applied left to right like xl does.
    ///
    /// `""` is the empty map. xl's `nodes:` items are not supported.
    ///
    /// - Throws: ``XenError/invalidCPUMap(_:reason:)`` naming the offending item.
    public init(parsing text: String) throws(XenError) {
        var kind = Kind.only([])
        let trimmed = text.trimmingSpaces()
        if trimmed.isEmpty {
            self.kind = kind
            return
        }
        for rawItem in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
            var item = Substring(String(rawItem).trimmingSpaces())
            guard !item.isEmpty else {
                throw XenError.invalidCPUMap(text, reason: "empty item")
            }
            let remove = item.first == "^"
            if remove { item = item.dropFirst() }
            if item == "all" {
                kind = remove ? .only([]) : .allExcept([])
                continue
            }
            if item.hasPrefix("nodes:") || item.hasPrefix("node:") {
                throw XenError.invalidCPUMap(text, reason: "NUMA node items (\(item)) are not supported")
            }
            let range = try Self.parseRange(item, in: text)
            switch (kind, remove) {
            case (.only(let set), false): kind = .only(set.union(range))
            case (.only(let set), true): kind = .only(set.subtracting(range))
            case (.allExcept(let excluded), false): kind = .allExcept(excluded.subtracting(range))
            case (.allExcept(let excluded), true): kind = .allExcept(excluded.union(range))
            }
        }
        self.kind = kind
    }

    private static func parseRange(_ item: Substring, in text: String) throws(XenError) -> ClosedRange<Int> {
        let bounds = item.split(separator: "-", omittingEmptySubsequences: false)
        guard bounds.count == 1 || bounds.count == 2 else {
            throw XenError.invalidCPUMap(text, reason: "\"\(item)\" is not N or N-M")
        }
        var numbers: [Int] = []
        for bound in bounds {
            guard !bound.isEmpty, bound.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(bound) else {
                throw XenError.invalidCPUMap(text, reason: "\"\(item)\" is not N or N-M")
            }
            guard value <= maximumCPUIndex else {
                throw XenError.invalidCPUMap(text, reason: "CPU \(bound) is above \(maximumCPUIndex)")
            }
            numbers.append(value)
        }
        let low = numbers[0]
        let high = numbers.last!
        guard low <= high else {
            throw XenError.invalidCPUMap(text, reason: "range \"\(item)\" is backwards")
        }
        return low...high
    }

    /// Reads the set bits of a `libxl_bitmap` (every bit of `size * 8`).
    init(_ bitmap: libxl_bitmap) {
        var copy = bitmap
        var set = Set<Int>()
        let bits = Int(bitmap.size) * 8
        if bitmap.map != nil {
            for bit in 0..<min(bits, Self.maximumCPUIndex + 1) where libxl_bitmap_test(&copy, Int32(bit)) != 0 {
                set.insert(bit)
            }
        }
        self.kind = .only(set)
    }

    /// Whether the map starts from `all` (its CPUs depend on the host's CPU count).
    public var isAll: Bool {
        if case .allExcept = kind { return true }
        return false
    }

    /// The CPUs of an explicit map; `nil` for a map that starts from `all`.
    public var explicitCPUs: Set<Int>? {
        if case .only(let set) = kind { return set }
        return nil
    }

    /// The CPUs a map that starts from `all` leaves out (`"all,^0"` → `[0]`); empty otherwise.
    public var excludedCPUs: Set<Int> {
        if case .allExcept(let set) = kind { return set }
        return []
    }

    /// Whether `cpu` is in the map (for `all` maps: not excluded).
    public func contains(_ cpu: Int) -> Bool {
        switch kind {
        case .only(let set): return set.contains(cpu)
        case .allExcept(let excluded): return cpu >= 0 && !excluded.contains(cpu)
        }
    }

    /// The concrete CPUs on a host with `cpuCount` CPUs (indices `0..<cpuCount`).
    public func resolved(cpuCount: Int) -> Set<Int> {
        switch kind {
        case .only(let set): return set.filter { $0 < cpuCount }
        case .allExcept(let excluded): return Set(0..<max(cpuCount, 0)).subtracting(excluded)
        }
    }

    /// The xl form: ascending, runs of three or more as `N-M`, others comma-separated
    /// (`{0,1,2,3}` → `"0-3"`, `{2,3}` → `"2,3"`); `"all"` / `"all,^0"`; `""` when empty.
    public var description: String {
        switch kind {
        case .only(let set):
            return Self.formatRuns(set, prefix: "").joined(separator: ",")
        case .allExcept(let excluded):
            return (["all"] + Self.formatRuns(excluded, prefix: "^")).joined(separator: ",")
        }
    }

    private static func formatRuns(_ set: Set<Int>, prefix: String) -> [String] {
        var items: [String] = []
        let sorted = set.sorted()
        var index = 0
        while index < sorted.count {
            var end = index
            while end + 1 < sorted.count, sorted[end + 1] == sorted[end] + 1 { end += 1 }
            if end - index >= 2 {
                items.append("\(prefix)\(sorted[index])-\(sorted[end])")
            } else {
                for i in index...end { items.append("\(prefix)\(sorted[i])") }
            }
            index = end + 1
        }
        return items
    }

    /// Lends the map as a `libxl_bitmap` of `cpuCount` bits, disposed when `body` returns.
    ///
    /// `cpuCount` is required for a map that starts from `all` (use
    /// ``LibXLContext/maxCPUs()``); for an explicit map it defaults to the highest CPU + 1.
    ///
    /// - Throws: ``XenError/invalidCPUMap(_:reason:)`` if `cpuCount` is missing for an `all` map
    ///   or smaller than a CPU in the map, or ``XenError/errno(_:operation:)`` if allocation fails;
    ///   and whatever `body` throws.
    func withLibXLBitmap<R>(
        cpuCount: Int? = nil,
        _ body: (UnsafePointer<libxl_bitmap>) throws(XenError) -> R
    ) throws(XenError) -> R {
        var bitmap = try makeLibXLBitmap(cpuCount: cpuCount)
        defer { libxl_bitmap_dispose(&bitmap) }
        return try body(&bitmap)
    }

    /// A new `libxl_bitmap` (malloc'd) holding the map; the caller owns it and must call
    /// `libxl_bitmap_dispose`. See ``withLibXLBitmap(cpuCount:_:)`` for `cpuCount`.
    func makeLibXLBitmap(cpuCount: Int? = nil) throws(XenError) -> libxl_bitmap {
        let bits: Int
        let members: Set<Int>
        switch kind {
        case .only(let set):
            let needed = (set.max() ?? -1) + 1
            if let cpuCount, cpuCount < needed {
                throw XenError.invalidCPUMap(description, reason: "CPU \(needed - 1) is not below the host's \(cpuCount) CPUs")
            }
            bits = max(cpuCount ?? needed, 1)
            members = set
        case .allExcept:
            guard let cpuCount, cpuCount > 0 else {
                throw XenError.invalidCPUMap(description, reason: "\"all\" needs the host's CPU count to become a bitmap")
            }
            bits = cpuCount
            members = resolved(cpuCount: cpuCount)
        }
        var bitmap = libxl_bitmap()
        libxl_bitmap_init(&bitmap)
        let rc = cxenshim_bitmap_alloc(&bitmap, Int32(bits))
        if rc != 0 {
            throw XenError.errno(.init(rawValue: rc), operation: "libxl_bitmap allocation of \(bits) bits")
        }
        for cpu in members { libxl_bitmap_set(&bitmap, Int32(cpu)) }
        return bitmap
    }
}

extension String {
    func trimmingSpaces() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first == " " || first == "\t" { scalars = scalars.dropFirst() }
        while let last = scalars.last, last == " " || last == "\t" { scalars = scalars.dropLast() }
        return String(scalars)
    }
}
