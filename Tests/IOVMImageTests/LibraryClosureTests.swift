import Foundation
import Testing

@testable import IOVMImage

@Suite struct LibraryClosureTests {
    @Test func closureOfARealProgramHoldsLibcAndTheLoader() throws {
        let closure = try LibraryClosure(programs: ["/bin/ls"], sysroot: Sysroot("/"))
        let destinations = closure.libraries.map(\.destination)
        #expect(destinations.contains("/lib64/ld-linux-x86-64.so.2"))
        #expect(destinations.contains("/lib/x86_64-linux-gnu/libc.so.6"))
        // ls needs libselinux, which needs libpcre2: the closure follows libraries' own DT_NEEDED.
        let needed = Set(try ELFFile(contentsOf: "/bin/ls").needed)
        #expect(closure.libraries.count > needed.count)
        for library in closure.libraries { #expect(FileManager.default.fileExists(atPath: library.source)) }
    }

    @Test func linksAreFollowedInsideTheSysroot() throws {
        let root = FileManager.default.temporaryDirectory.appending(path: "iovm-sysroot-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/usr/lib/real", withIntermediateDirectories: true)
        try Data("x".utf8).write(to: URL(fileURLWithPath: root + "/usr/lib/real/file"))
        try FileManager.default.createSymbolicLink(atPath: root + "/lib", withDestinationPath: "usr/lib")
        try FileManager.default.createSymbolicLink(atPath: root + "/usr/lib/abs", withDestinationPath: "/usr/lib/real/file")
        let sysroot = Sysroot(root + "/")
        #expect(sysroot.resolve("/lib/real/file") == "/usr/lib/real/file")
        #expect(sysroot.resolve("/lib/abs") == "/usr/lib/real/file")
        #expect(sysroot.resolve("/lib/missing") == nil)
    }

    @Test func aMissingLibraryNamesWhoNeedsIt() throws {
        let root = FileManager.default.temporaryDirectory.appending(path: "iovm-sysroot-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/bin", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "/bin/ls", toPath: root + "/bin/ls")
        #expect {
            try LibraryClosure(programs: ["/bin/ls"], sysroot: Sysroot(root))
        } throws: { error in
            guard case ImageError.missingInSysroot(let path, _) = error else { return false }
            return path == "/lib64/ld-linux-x86-64.so.2"
        }
        #expect(throws: ImageError.missingInSysroot("/usr/sbin/xl", sysroot: root)) {
            try LibraryClosure(programs: ["/usr/sbin/xl"], sysroot: Sysroot(root))
        }
    }
}
