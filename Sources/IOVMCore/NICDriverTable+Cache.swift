public import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// The table of a `modules.alias` file, kept in iovm's cache beside the file's identity.
///
/// Scanning the kernel's 1.3 MB file cost every plan and apply 8-10 ms in dom0 under TCG, a no-op re-apply's too
/// (issue 16); the kept table is a few hundred bytes.
extension NICDriverTable {
    /// The format of a kept table; another is scanned again.
    static let cacheFormat = "iovm NIC driver table 1"

    /// The table of the `modules.alias` file at `path`, as kept in `directory`, or scanned and kept there.
    ///
    /// The entry holds the file's device, inode, size and modification time, the modules that have a fragment and the
    /// ids known without an alias: a kernel package that replaces the file, or an iovm with other fragments, scans it
    /// again. A change to how alias lines are read must change ``cacheFormat``. A cache that cannot
    /// be read or written costs the scan, nothing else. nil when the file cannot be read.
    package static func cached(file path: String, in directory: URL?) -> NICDriverTable? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        guard let directory else { return scanning(file: path) }
        let key = cacheKey(file: path, info)
        let entry = directory.appending(path: "nic-drivers/\(TopologyLoader.fnv1a(path))")
        if let kept = FileBytes.read(entry.path, upTo: 1 << 16), let table = NICDriverTable(kept: kept, key: key) { return table }
        guard let table = scanning(file: path) else { return nil }
        try? FileManager.default.createDirectory(at: entry.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? Data(table.kept(key: key).utf8).write(to: entry, options: .atomic)
        return table
    }

    /// What names the file and this iovm's fragments in an entry: its first lines.
    static func cacheKey(file path: String, _ info: stat) -> String {
        let pairs = { (table: [String: String]) in table.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") }
        return "\(cacheFormat)\nfile \(path)\nstat \(info.st_dev) \(info.st_ino) \(info.st_size) \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)\n"
            + "modules \(pairs(Self.modules))\nknown \(pairs(Self.known))\n"
    }

    /// The entry's text: `key`, then a line `ids fragment` per driver.
    func kept(key: String) -> String {
        key + drivers.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)\n" }.joined()
    }

    /// The table an entry keeps, or nil when its key is not `key` or a line is not `ids fragment`.
    ///
    /// Read as bytes: splitting the few hundred lines as `String`s cost more than the scan it spares.
    init?(kept: Data, key: String) {
        var key = key
        let drivers: [String: String]? = key.withUTF8 { key in
            kept.withUnsafeBytes { raw -> [String: String]? in
                let bytes = raw.bindMemory(to: UInt8.self)
                guard bytes.count >= key.count, let base = bytes.baseAddress, memcmp(base, key.baseAddress!, key.count) == 0 else { return nil }
                var drivers: [String: String] = [:]
                drivers.reserveCapacity(bytes.count / 16)
                var start = key.count
                while start < bytes.count {
                    // `vvvv:dddd fragment\n`
                    guard let newline = memchr(base + start, 0x0A, bytes.count - start) else { return nil }
                    let end = UnsafeRawPointer(newline) - UnsafeRawPointer(base)
                    guard end > start + 10, bytes[start + 4] == UInt8(ascii: ":"), bytes[start + 9] == UInt8(ascii: " "),
                        memchr(base + start + 10, 0x20, end - start - 10) == nil
                    else { return nil }
                    drivers[String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<(start + 9)]), as: UTF8.self)] =
                        String(decoding: UnsafeBufferPointer(rebasing: bytes[(start + 10)..<end]), as: UTF8.self)
                    start = end + 1
                }
                return drivers
            }
        }
        guard let drivers else { return nil }
        self.init(drivers: drivers)
    }
}
