import CXenShim

/// The executable's own memory at start-up (issue 16).
///
/// iovm's zero-initialized data is some 800 KB: the Swift runtime's caches of type metadata and of conformances,
/// spread over about 200 pages. A command touches a page at a time, each first read mapping the shared zero page and
/// each first write a page of its own: two page faults a page, some 140 in a no-op apply. Under TCG in a PV dom0 a
/// fault costs 0.12-0.19 ms, where mapping all 200 pages in one system call costs 7-12 ms (`lab/files/fault.c`).
///
/// `getrusage` counts each page mapped so as a minor fault too: a process's fault count rises by some 60 though its
/// time falls.
public enum ProcessMemory {
    /// Maps every page of the executable's zero-initialized data now, in one `madvise(MADV_POPULATE_WRITE)`.
    ///
    /// - Returns: the addresses mapped, or nil where that cannot be done (Linux before 5.14, or an executable without
    ///   such data); then each page is mapped when first touched, as without this call.
    @discardableResult
    public static func populateZeroData() -> Range<UInt>? {
        var start: UInt = 0
        var length = 0
        guard cxenshim_populate_zero_data(&start, &length) == 0 else { return nil }
        return start..<start + UInt(length)
    }
}
