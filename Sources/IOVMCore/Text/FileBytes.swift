public import FoundationEssentials
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// Reads files and pipes with swift-system, where Foundation's `FileHandle` is not at hand (it lives in
/// swift-corelibs-foundation, which iovm does not link: issue 16).
package enum FileBytes {
    /// At most `limit` bytes of `path` (a regular file or a pipe such as `<(iovm synth …)`), read to its
    /// end or to the limit; nil when it cannot be opened.
    package static func read(_ path: String, upTo limit: Int) -> Data? {
        guard let fd = try? FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec]) else { return nil }
        defer { try? fd.close() }
        return try? read(fd, upTo: limit)
    }

    /// At most `limit` bytes from `fd`, read to its end or to the limit.
    ///
    /// A regular file is read through a buffer of its size (and a byte, for the end); anything else through 64 KiB.
    /// A 64 KiB buffer for a 3 KB topology or a 0.5 KB cache entry was 16 fresh pages to zero, each a page fault
    /// (issue 16: a fault is costly in a PV dom0 under TCG).
    package static func read(_ fd: FileDescriptor, upTo limit: Int = .max) throws -> Data {
        var data = Data()
        var info = stat()
        let regular = fstat(fd.rawValue, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG && info.st_size > 0
        var chunk = [UInt8](repeating: 0, count: regular ? min(Int(info.st_size) + 1, 65536) : 65536)
        while data.count < limit {
            let wanted = min(chunk.count, limit - data.count)
            let count = try chunk.withUnsafeMutableBytes { try fd.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[..<wanted]), retryOnInterrupt: true) }
            if count == 0 { break }
            data.append(contentsOf: chunk[..<count])
        }
        return data
    }

    /// Writes `text` to standard error, whole, as ``TerminalText/visible(_:)`` shows it (a diagnostic or log line;
    /// errors writing it are ignored).
    package static func writeStandardError(_ text: String) {
        _ = try? FileDescriptor.standardError.writeAll(Array(TerminalText.visible(text).utf8))
    }

    /// Writes `text` to standard output, whole.
    package static func writeStandardOutput(_ text: String) throws {
        _ = try FileDescriptor.standardOutput.writeAll(Array(text.utf8))
    }

    /// The size in bytes of the file at `path`; nil when it cannot be read.
    ///
    /// FoundationEssentials' `attributesOfItem` gives the size as a `UInt` when swift-corelibs-foundation is not
    /// linked (the iovm binary), and as an `NSNumber` when it is (the test binaries): `as? Int` reads only the second,
    /// `as? any BinaryInteger` only the first.
    package static func size(_ path: String) -> Int? {
        guard let value = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] else { return nil }
        return (value as? any BinaryInteger).map { Int($0) } ?? (value as? Int)
    }

    /// A file operation's error as the C library words it (`No such file or directory`), else as Swift
    /// prints it.
    package static func reason(_ error: any Error) -> String {
        if let cocoa = error as? CocoaError, let posix = cocoa.underlying as? POSIXError { return String(cString: strerror(posix.code.rawValue)) }
        if let posix = error as? POSIXError { return String(cString: strerror(posix.code.rawValue)) }
        if let errno = error as? Errno { return String(cString: strerror(errno.rawValue)) }
        return "\(error)"
    }
}
