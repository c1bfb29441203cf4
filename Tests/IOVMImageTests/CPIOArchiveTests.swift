import Foundation
import Testing

@testable import IOVMImage

@Suite struct CPIOArchiveTests {
    /// Parses newc headers back: (path, mode, size) per entry, trailer included.
    static func entries(_ bytes: [UInt8]) -> [(path: String, mode: UInt32, size: Int)] {
        var out: [(String, UInt32, Int)] = []
        var at = 0
        func field(_ index: Int) -> Int { Int(String(decoding: bytes[(at + 6 + index * 8)..<(at + 14 + index * 8)], as: UTF8.self), radix: 16) ?? -1 }
        while at + 110 <= bytes.count {
            #expect(String(decoding: bytes[at..<(at + 6)], as: UTF8.self) == "070701")
            let mode = UInt32(field(1))
            let size = field(6)
            let nameSize = field(11)
            let name = String(decoding: bytes[(at + 110)..<(at + 110 + nameSize - 1)], as: UTF8.self)
            out.append((name, mode, size))
            at += 110 + nameSize
            at = (at + 3) / 4 * 4
            at += size
            at = (at + 3) / 4 * 4
            if name == "TRAILER!!!" { break }
        }
        #expect(at == bytes.count)
        return out
    }

    @Test func parentsComeFirstAndTheTrailerLast() {
        var archive = CPIOArchive()
        archive.add(.file("/usr/lib/iovm/agent", mode: 0o755, contents: Array("#!/bin/sh\n".utf8)))
        archive.add(.symlink("/init", target: "/bin/busybox"))
        archive.add(.characterDevice("/dev/console", mode: 0o600, major: 5, minor: 1))
        let parsed = Self.entries(archive.bytes())
        #expect(parsed.map(\.path) == ["usr", "usr/lib", "usr/lib/iovm", "usr/lib/iovm/agent", "init", "dev", "dev/console", "TRAILER!!!"])
        #expect(parsed[3].mode == 0o100755 && parsed[3].size == 10)
        #expect(parsed[4].mode == 0o120777 && parsed[4].size == "/bin/busybox".utf8.count)
        #expect(parsed[6].mode == 0o020600)
    }

    @Test func samePathTwiceKeepsTheFirstAndBytesAreDeterministic() {
        var one = CPIOArchive()
        one.add(.file("/etc/a", mode: 0o644, contents: [1, 2, 3]))
        one.add(.file("/etc/a", mode: 0o644, contents: [9]))
        var two = CPIOArchive()
        two.add(.file("/etc/a", mode: 0o644, contents: [1, 2, 3]))
        #expect(one.bytes() == two.bytes())
        #expect(Self.entries(one.bytes()).filter { $0.path == "etc/a" }.map(\.size) == [3])
    }

    @Test("GNU cpio lists what the archive holds", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/cpio")))
    func gnuCpioReadsIt() throws {
        var archive = CPIOArchive()
        archive.add(.file("/bin/hello", mode: 0o755, contents: Array("hi\n".utf8)))
        archive.add(.symlink("/sbin/hello", target: "/bin/hello"))
        let file = FileManager.default.temporaryDirectory.appending(path: "iovm-cpio-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(archive.bytes()).write(to: file)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/cpio")
        process.arguments = ["-t", "--quiet", "-F", file.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let listing = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(listing.split(separator: "\n") == ["bin", "bin/hello", "sbin", "sbin/hello"])
    }
}
