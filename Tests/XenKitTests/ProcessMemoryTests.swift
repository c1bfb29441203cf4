import Glibc
import Testing
import XenKit

/// A zero-initialized global: the linker puts it in `.bss`.
nonisolated(unsafe) private var zeroGlobal = 0

@Suite("The executable's zero-initialized data, mapped in one call")
struct ProcessMemoryTests {
    /// The kernel's release, as `major * 100 + minor` (`6.1.0-57-amd64` gives 601).
    static var kernelRelease: Int {
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let parts = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        return parts.count == 2 ? parts[0] * 100 + parts[1] : 0
    }

    @Test("every page of the range is resident after the call, and the range is whole pages")
    func populatesEveryPage() throws {
        guard Self.kernelRelease >= 514 else {
            #expect(ProcessMemory.populateZeroData() == nil, "MADV_POPULATE_WRITE is Linux 5.14's")
            return
        }
        let range = try #require(ProcessMemory.populateZeroData(), "this test binary has a .bss")
        let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
        #expect(range.lowerBound % page == 0 && range.count % Int(page) == 0 && !range.isEmpty)
        var resident = [UInt8](repeating: 0, count: range.count / Int(page))
        #expect(mincore(UnsafeMutableRawPointer(bitPattern: range.lowerBound), range.count, &resident) == 0)
        #expect(resident.allSatisfy { $0 & 1 == 1 }, "pages not resident: \(resident.filter { $0 & 1 == 0 }.count) of \(resident.count)")
        // It is this executable's zero-initialized data: a zero global of this module lies in it.
        let global = withUnsafeMutablePointer(to: &zeroGlobal) { UInt(bitPattern: $0) }
        #expect(range.contains(global), "\(String(global, radix: 16)) outside \(String(range.lowerBound, radix: 16))..<\(String(range.upperBound, radix: 16))")
        #expect(ProcessMemory.populateZeroData() == range)
    }
}
