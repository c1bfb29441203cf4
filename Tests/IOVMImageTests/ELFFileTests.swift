import Foundation
import Testing

@testable import IOVMImage

@Suite struct ELFFileTests {
    @Test func readsInterpreterAndNeededLibrariesOfARealProgram() throws {
        let elf = try ELFFile(contentsOf: "/bin/ls")
        #expect(elf.interpreter == "/lib64/ld-linux-x86-64.so.2")
        #expect(elf.needed.contains("libc.so.6"))
    }

    @Test func staticProgramNeedsNothing() throws {
        let elf = try ELFFile(contentsOf: "/bin/busybox")
        #expect(elf.interpreter == nil)
        #expect(elf.needed.isEmpty)
    }

    @Test func refusesAScript() {
        #expect(throws: ImageError.self) { try ELFFile(bytes: Array("#!/bin/sh\necho hi\n".utf8) + [UInt8](repeating: 0, count: 64), path: "x.sh") }
    }
}

@Suite struct ELFFileHostileTests {
    @Test("offsets near the top of the address space are errors, not traps")
    func hugeOffsets() throws {
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: "/bin/ls")))
        // e_phoff = 0xffff_ffff_ffff_fff0
        for index in 0..<8 { bytes[0x20 + index] = index == 0 ? 0xf0 : 0xff }
        #expect(throws: ImageError.self) { try ELFFile(bytes: bytes, path: "hostile") }
    }
}
