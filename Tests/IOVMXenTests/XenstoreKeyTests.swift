import IOVMCore
import Testing

@testable import IOVMXen

/// Tags in xenstore need path elements with letters, digits and `-/_@` only (a `:` or `.` is refused).
@Suite("xenstore keys")
struct XenstoreKeyTests {
    @Test func pciAddressesBecomeXenstoreSafeKeys() throws {
        #expect(LibXLBackend.key(try #require(PCIAddress("0000:00:10.0"))) == "0000_00_10_0")
        #expect(LibXLBackend.key(try #require(PCIAddress("1:0a:1f.7"))) == "0001_0a_1f_7")
        #expect(LibXLBackend.key(pool: "iovm.pool") == "iovm_pool")
    }
}
