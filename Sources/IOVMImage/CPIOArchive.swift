/// A `newc` cpio archive, the format the kernel unpacks as an initramfs. Deterministic: every entry
/// is owned by root with mtime 0, and inodes count up in order, so the same files give the same bytes.
public struct CPIOArchive: Sendable {
    /// One entry.
    public enum Entry: Sendable, Equatable {
        /// A directory.
        case directory(String, mode: UInt32)
        /// A regular file.
        case file(String, mode: UInt32, contents: [UInt8])
        /// A symbolic link to `target`.
        case symlink(String, target: String)
        /// A character device node.
        case characterDevice(String, mode: UInt32, major: UInt32, minor: UInt32)

        /// The path inside the archive, without a leading slash.
        public var path: String {
            switch self {
            case .directory(let path, _), .file(let path, _, _), .symlink(let path, _), .characterDevice(let path, _, _, _): path
            }
        }
    }

    /// The entries, in the order they are written (a directory before what it holds).
    public private(set) var entries: [Entry] = []
    private var paths: Set<String> = []

    /// An empty archive.
    public init() {}

    /// Adds `entry`, and the directories above it that are not there yet; a path added twice keeps its first entry.
    public mutating func add(_ entry: Entry) {
        let path = Self.relative(entry.path)
        var parent = ""
        for component in path.split(separator: "/").dropLast() {
            parent += parent.isEmpty ? String(component) : "/" + component
            if !paths.contains(parent) {
                paths.insert(parent)
                entries.append(.directory(parent, mode: 0o755))
            }
        }
        guard !paths.contains(path) else { return }
        paths.insert(path)
        switch entry {
        case .directory(_, let mode): entries.append(.directory(path, mode: mode))
        case .file(_, let mode, let contents): entries.append(.file(path, mode: mode, contents: contents))
        case .symlink(_, let target): entries.append(.symlink(path, target: target))
        case .characterDevice(_, let mode, let major, let minor): entries.append(.characterDevice(path, mode: mode, major: major, minor: minor))
        }
    }

    /// Whether `path` is in the archive.
    public func contains(_ path: String) -> Bool { paths.contains(Self.relative(path)) }

    /// The archive's bytes, trailer included.
    public func bytes() -> [UInt8] {
        var out: [UInt8] = []
        var inode: UInt32 = 1
        for entry in entries {
            switch entry {
            case .directory(let path, let mode):
                Self.append(&out, path: path, mode: 0o040000 | mode, inode: inode, links: 2, data: [])
            case .file(let path, let mode, let contents):
                Self.append(&out, path: path, mode: 0o100000 | mode, inode: inode, links: 1, data: contents)
            case .symlink(let path, let target):
                Self.append(&out, path: path, mode: 0o120777, inode: inode, links: 1, data: Array(target.utf8))
            case .characterDevice(let path, let mode, let major, let minor):
                Self.append(&out, path: path, mode: 0o020000 | mode, inode: inode, links: 1, data: [], rdev: (major, minor))
            }
            inode += 1
        }
        Self.append(&out, path: "TRAILER!!!", mode: 0, inode: 0, links: 1, data: [])
        return out
    }

    private static func relative(_ path: String) -> String {
        String(path.drop(while: { $0 == "/" }))
    }

    private static func append(
        _ out: inout [UInt8], path: String, mode: UInt32, inode: UInt32, links: UInt32, data: [UInt8], rdev: (UInt32, UInt32) = (0, 0)
    ) {
        let name = Array(path.utf8) + [0]
        let fields: [UInt32] = [inode, mode, 0, 0, links, 0, UInt32(data.count), 0, 0, rdev.0, rdev.1, UInt32(name.count), 0]
        out += Array("070701".utf8)
        for field in fields {
            let hex = String(field, radix: 16, uppercase: true)
            out += Array((String(repeating: "0", count: 8 - hex.count) + hex).utf8)
        }
        out += name
        while out.count % 4 != 0 { out.append(0) }
        out += data
        while out.count % 4 != 0 { out.append(0) }
    }
}
