/// An xl CPU list that does not parse; its text is `invalid CPU list "<text>": <reason>`.
public struct CPUListError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The list as given.
    public var text: String
    /// What is wrong with it.
    public var reason: String

    /// An error about `text`.
    public init(_ text: String, reason: String) {
        self.text = text
        self.reason = reason
    }

    /// `invalid CPU list "<text>": <reason>`.
    public var description: String {
        "invalid CPU list \"\(text)\": \(reason)"
    }
}

extension CPUSet {
    /// Parses an xl-style CPU list: comma-separated items, each `N`, `N-M` or `all`, each optionally
    /// prefixed with `^` to remove it, applied left to right like xl does (`"3"`, `"2,3"`, `"0-7,^3"`).
    ///
    /// A list that ends up relative to `all` (`"all"`, `"all,^0"`) names every CPU of a host, so it
    /// is resolved against `cpuCount` (the CPUs below it); without a count it gives `nil`. `""` is
    /// the empty set. xl's `nodes:` items are not supported.
    ///
    /// - Throws: ``CPUListError`` naming the offending item.
    public init?(xlList text: String, cpuCount: Int? = nil) throws(CPUListError) {
        var base: Set<Int>? = []  // nil: every CPU (the list started from `all`) but `excluded`
        var excluded = Set<Int>()
        let trimmed = text.trimmingSpaces()
        for rawItem in trimmed.isEmpty ? [] : trimmed.split(separator: ",", omittingEmptySubsequences: false) {
            var item = Substring(String(rawItem).trimmingSpaces())
            guard !item.isEmpty else { throw CPUListError(text, reason: "empty item") }
            let remove = item.first == "^"
            if remove { item = item.dropFirst() }
            if item == "all" {
                (base, excluded) = remove ? ([], []) : (nil, [])
                continue
            }
            if item.hasPrefix("nodes:") || item.hasPrefix("node:") {
                throw CPUListError(text, reason: "NUMA node items (\(item)) are not supported")
            }
            let range = try Self.parseRange(item, in: text)
            switch (base, remove) {
            case (let set?, false): base = set.union(range)
            case (let set?, true): base = set.subtracting(range)
            case (nil, false): excluded.subtract(range)
            case (nil, true): excluded.formUnion(range)
            }
        }
        if let base {
            self.init(base)
        } else if let cpuCount {
            self.init(Set(0..<max(cpuCount, 0)).subtracting(excluded))
        } else {
            return nil
        }
    }

    /// The CPUs of one `N` or `N-M` item (its `^` already removed) of the list `text`.
    private static func parseRange(_ item: Substring, in text: String) throws(CPUListError) -> ClosedRange<Int> {
        let bounds = item.split(separator: "-", omittingEmptySubsequences: false)
        guard bounds.count == 1 || bounds.count == 2 else {
            throw CPUListError(text, reason: "\"\(item)\" is not N or N-M")
        }
        var numbers: [Int] = []
        for bound in bounds {
            guard !bound.isEmpty, bound.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(bound) else {
                throw CPUListError(text, reason: "\"\(item)\" is not N or N-M")
            }
            guard value <= maximumCPUIndex else {
                throw CPUListError(text, reason: "CPU \(bound) is above \(maximumCPUIndex)")
            }
            numbers.append(value)
        }
        let low = numbers[0]
        let high = numbers[numbers.count - 1]
        guard low <= high else {
            throw CPUListError(text, reason: "range \"\(item)\" is backwards")
        }
        return low...high
    }
}

extension String {
    /// The string without leading and trailing spaces and tabs.
    fileprivate func trimmingSpaces() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first == " " || first == "\t" { scalars = scalars.dropFirst() }
        while let last = scalars.last, last == " " || last == "\t" { scalars = scalars.dropLast() }
        return String(scalars)
    }
}
