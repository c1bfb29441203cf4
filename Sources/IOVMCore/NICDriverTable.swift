public import FoundationEssentials
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// Which IOVM kernel fragment (`Kernels/nic/<driver>.config`) drives a NIC, by its PCI vendor:device
/// ids, as the kernel's own `modules.alias` says.
///
/// The Intel drivers match exact device ids (`alias pci:v00008086d0000100Esv*… e1000`). virtio-net has
/// no PCI alias of its own (virtio_pci binds any 1af4 device, then virtio_net the network type), so
/// its two PCI ids, legacy 1af4:1000 and modern 1af4:1041, are known here.
public struct NICDriverTable: Sendable, Equatable {
    /// `vvvv:dddd` (lowercase hex) → fragment name.
    public private(set) var drivers: [String: String]

    /// The kernel modules that have a fragment, and the fragment each maps to.
    static let modules = ["e1000": "e1000", "e1000e": "e1000e", "igb": "igb", "ixgbe": "ixgbe"]

    /// A table from `modules.alias` text; only drivers with a fragment are kept.
    ///
    /// Scans the UTF-8 bytes: a kernel's file has some 26,000 lines (1.3 MB), and splitting it into
    /// `Substring`s cost every `plan` and `apply` 0.1 s of CPU natively and over a second in dom0 under TCG.
    public init(modulesAlias: String) {
        var text = modulesAlias
        self = text.withUTF8 { NICDriverTable(aliasBytes: $0) }
    }

    init(aliasBytes bytes: UnsafeBufferPointer<UInt8>) {
        drivers = Self.known
        add(lines: bytes)
    }

    /// A table of `drivers` as they are (one kept in the cache).
    init(drivers: [String: String]) { self.drivers = drivers }

    /// The ids no alias line names (virtio, above).
    static let known = ["1af4:1000": "virtio", "1af4:1041": "virtio"]

    /// Adds the entries of the lines in `bytes` (the last may lack its newline).
    ///
    /// The newlines are found with `memchr`: a byte loop in Swift cost a no-op re-apply tens of milliseconds in dom0
    /// under TCG (issue 16).
    private mutating func add(lines bytes: UnsafeBufferPointer<UInt8>) {
        guard let base = bytes.baseAddress else { return }
        var start = 0
        while start < bytes.count {
            var end = bytes.count
            if let newline = memchr(base + start, 0x0A, bytes.count - start) { end = UnsafeRawPointer(newline) - UnsafeRawPointer(base) }
            if let (ids, fragment) = Self.entry(UnsafeBufferPointer(rebasing: bytes[start..<end])) { drivers[ids] = fragment }
            start = end + 1
        }
    }

    /// The table of the `modules.alias` file at `path`, read in chunks of `chunk` bytes; nil when it cannot be read.
    ///
    /// One 64 KiB buffer rather than the whole 1.3 MB file: in a PV dom0 each page of a fresh buffer is a page fault
    /// that Xen serves, and under TCG the whole file cost a no-op re-apply up to a tenth of its time (issue 16).
    package static func scanning(file path: String, chunk: Int = 65536) -> NICDriverTable? {
        guard let fd = try? FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec]) else { return nil }
        defer { try? fd.close() }
        var table = NICDriverTable(aliasBytes: UnsafeBufferPointer(start: nil, count: 0))
        let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(chunk, 2))
        defer { buffer.deallocate() }
        let newline = UInt8(ascii: "\n")
        var kept = 0  // an unfinished line, at the buffer's start
        var skipping = false  // inside a line longer than the buffer (no alias line is one): dropped up to its newline
        while true {
            guard let count = try? fd.read(into: UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buffer[kept...])), retryOnInterrupt: true) else { return nil }
            let end = kept + count
            if count == 0 {
                if !skipping { table.add(lines: UnsafeBufferPointer(rebasing: buffer[..<end])) }
                return table
            }
            guard let last = buffer[..<end].lastIndex(of: newline) else {
                if end == buffer.count { (kept, skipping) = (0, true) } else { kept = end }
                continue
            }
            var start = 0
            if skipping {
                start = buffer[..<end].firstIndex(of: newline)! + 1
                skipping = false
            }
            if start <= last { table.add(lines: UnsafeBufferPointer(rebasing: buffer[start...last])) }
            kept = end - (last + 1)
            if kept > 0 { UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(from: buffer.baseAddress! + last + 1, byteCount: kept) }
        }
    }

    /// The start of an exact PCI alias line.
    private static let aliasPrefix = Array("alias pci:v".utf8)

    /// The kernel modules of ``modules``, as bytes: a line's module is compared with these before anything else.
    private static let moduleBytes: [(name: [UInt8], fragment: String)] = modules.sorted { $0.key < $1.key }.map { (Array($0.key.utf8), $0.value) }

    /// `alias pci:v00008086d0000100Esv*sd*bc*sc*i* e1000` → ("8086:100e", "e1000") when the module
    /// has a fragment and the vendor and device ids are exact (no `*`).
    private static func entry(_ line: UnsafeBufferPointer<UInt8>) -> (String, String)? {
        // "alias pci:v" + 8 vendor digits + "d" + 8 device digits + "sv" ... " " + module
        // Most lines are not exact PCI aliases: `memcmp` turns them away before any Swift loop runs.
        guard line.count > aliasPrefix.count + 19, let base = line.baseAddress,
            aliasPrefix.withUnsafeBytes({ memcmp(base, $0.baseAddress!, $0.count) }) == 0,
            let last = line.lastIndex(of: UInt8(ascii: " "))
        else { return nil }
        let module = UnsafeBufferPointer(rebasing: line[(last + 1)...])
        // Most PCI aliases are of modules without a fragment: they go before any String is made.
        guard let fragment = moduleBytes.first(where: { $0.name.count == module.count && $0.name.elementsEqual(module) })?.fragment else { return nil }
        let vendor = line[11..<19]
        let device = line[20..<28]
        guard line[19] == UInt8(ascii: "d"), line[28] == UInt8(ascii: "s"), line[29] == UInt8(ascii: "v"),
            !vendor.contains(UInt8(ascii: "*")), !device.contains(UInt8(ascii: "*")),
            let space = line.firstIndex(of: UInt8(ascii: " ")),
            space == 5, last > 29, !line[(space + 1)..<last].contains(UInt8(ascii: " "))
        else { return nil }
        let hex = { (digits: Slice<UnsafeBufferPointer<UInt8>>) in String(decoding: digits.suffix(4), as: UTF8.self).lowercased() }
        return ("\(hex(vendor)):\(hex(device))", fragment)
    }

    /// The table of the running kernel (`/lib/modules/$(uname -r)/modules.alias`), or of the newest
    /// installed one; nil when none is readable. Kept in `cacheDirectory` (``cached(file:in:)``) when one is given.
    public static func installed(
        root: String = "/lib/modules", cacheDirectory: URL? = TopologyLoader.cacheDirectory()
    ) -> NICDriverTable? {
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if let table = cached(file: "\(root)/\(release)/modules.alias", in: cacheDirectory) { return table }
        // Not the running kernel's: the newest installed one's (the directory is listed only then).
        for version in ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).sorted(by: >) where version != release {
            if let table = cached(file: "\(root)/\(version)/modules.alias", in: cacheDirectory) { return table }
        }
        return nil
    }

    /// The fragment for `ids` (`8086:100e`, any case), nil when no fragment's driver claims it.
    public func driver(for ids: String) -> String? { drivers[ids.lowercased()] }
}
