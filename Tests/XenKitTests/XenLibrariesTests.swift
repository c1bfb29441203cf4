import CXenShim
import Testing

@testable import XenKit

/// Xen's libraries behind CXenShim's trampolines: loaded on first use, every function of the table found.
@Suite("Xen's libraries, loaded on first use")
struct XenLibrariesTests {
    /// Every function XenFunctions.h lists exists in the library it names (a typo or a wrong library fails here,
    /// not at an operator's first call).
    @Test func everyFunctionOfTheTableResolves() throws {
        let resolved = try XenLibraries.resolveAll()
        #expect(resolved == 130, "the table lists \(resolved) functions; change this count with XenFunctions.h")
        for library in XenLibraries.Library.allCases {
            #expect(library.isLoaded, "\(library.file)")
        }
    }

    /// Calls through the trampolines reach the real functions, arguments and results intact.
    @Test func callsThroughTrampolinesReachLibxl() throws {
        try XenLibraries.load(.xenlight)
        var bitmap = libxl_bitmap()
        libxl_bitmap_init(&bitmap)
        #expect(cxenshim_bitmap_alloc(&bitmap, 16) == 0)
        libxl_bitmap_set(&bitmap, 3)
        libxl_bitmap_set(&bitmap, 11)
        #expect((0..<16).filter { libxl_bitmap_test(&bitmap, Int32($0)) != 0 } == [3, 11])
        libxl_bitmap_dispose(&bitmap)
        let name = libxl_scheduler_to_string(LIBXL_SCHEDULER_CREDIT2)
        #expect(name.map { String(cString: $0) } == "credit2")
    }

    /// The file and Debian package of each library, as an operator's error names them.
    @Test func eachLibraryNamesItsFileAndPackage() {
        #expect(XenLibraries.Library.xenlight.file == "libxenlight.so.4.17")
        #expect(XenLibraries.Library.xenlight.package == "libxenmisc4.17")
        #expect(XenLibraries.Library.xenstore.file == "libxenstore.so.4")
        #expect(XenLibraries.Library.xenstore.package == "libxenstore4")
        var buffer = [CChar](repeating: 0, count: 128)
        #expect(cxenshim_load(CXEN_LIBRARY_COUNT, &buffer, buffer.count) == -1)
        #expect(String(cString: buffer).hasPrefix("no such library"))
    }
}
