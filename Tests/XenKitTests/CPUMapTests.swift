import CLibXen
import Testing

@testable import XenKit

@Suite("CPUMap")
struct CPUMapTests {
    @Test(arguments: [
        ("0-3", Set([0, 1, 2, 3]), "0-3"),
        ("2,3", Set([2, 3]), "2,3"),
        ("3", Set([3]), "3"),
        ("0-7,^3", Set([0, 1, 2, 4, 5, 6, 7]), "0-2,4-7"),
        ("^3,2-4", Set([2, 3, 4]), "2-4"),  // applied left to right, like xl
        (" 1 , 5-6 ", Set([1, 5, 6]), "1,5,6"),
        ("0-1,1-2", Set([0, 1, 2]), "0-2"),
        ("", Set<Int>(), ""),
    ])
    func parsesAndFormats(text: String, cpus: Set<Int>, formatted: String) throws {
        let map = try CPUMap(parsing: text)
        #expect(map.explicitCPUs == cpus)
        #expect(!map.isAll)
        #expect(map.description == formatted)
        #expect(try CPUMap(parsing: map.description) == map)
        #expect(CPUMap(cpus) == map)
    }

    @Test func formatsSetsAsXlDoes() {
        #expect(CPUMap([0, 1, 2, 3]).description == "0-3")
        #expect(CPUMap([3, 2]).description == "2,3")
        #expect(([0, 2, 4, 5, 6, 9] as CPUMap).description == "0,2,4-6,9")
    }

    @Test func allAndExclusions() throws {
        let all = try CPUMap(parsing: "all")
        #expect(all == .all)
        #expect(all.isAll)
        #expect(all.explicitCPUs == nil)
        #expect(all.description == "all")
        #expect(all.resolved(cpuCount: 4) == [0, 1, 2, 3])

        let allButZero = try CPUMap(parsing: "all,^0")
        #expect(allButZero.isAll)
        #expect(allButZero.excludedCPUs == [0])
        #expect(allButZero.description == "all,^0")
        #expect(allButZero.resolved(cpuCount: 4) == [1, 2, 3])
        #expect(!allButZero.contains(0) && allButZero.contains(3))
        #expect(try CPUMap(parsing: allButZero.description) == allButZero)

        #expect(try CPUMap(parsing: "all,^0-1,^3").description == "all,^0,^1,^3")
        #expect(try CPUMap(parsing: "all,^0-5").description == "all,^0-5")
        #expect(try CPUMap(parsing: "1,all") == .all)
    }

    @Test(arguments: ["3-1", "a", "1-", "-1", "1--2", "1,,2", ",", "0x3", "1.5", "nodes:0", "99999", "2-3-4", "^"])
    func rejectsBadInput(text: String) {
        #expect(throws: XenError.self) { try CPUMap(parsing: text) }
        do {
            _ = try CPUMap(parsing: text)
        } catch {
            guard case .invalidCPUMap(let echoed, let reason) = error else {
                Issue.record("wrong error \(error)")
                return
            }
            #expect(echoed == text)
            #expect(!reason.isEmpty)
            #expect(error.description.contains("invalid CPU list \"\(text)\""))
        }
    }

    @Test func roundTripsThroughLibXLBitmap() throws {
        let map: CPUMap = [0, 2, 3, 9]
        let back = try map.withLibXLBitmap { bitmap throws(XenError) -> CPUMap in
            #expect(bitmap.pointee.size == 2)  // 10 bits -> 2 bytes
            #expect(libxl_bitmap_count_set(bitmap) == 4)
            #expect(libxl_bitmap_test(bitmap, 2) == 1)
            #expect(libxl_bitmap_test(bitmap, 1) == 0)
            return CPUMap(bitmap.pointee)
        }
        #expect(back == map)

        let sized = try CPUMap([1]).withLibXLBitmap(cpuCount: 64) { bitmap throws(XenError) in
            (bitmap.pointee.size, libxl_bitmap_count_set(bitmap))
        }
        #expect(sized.0 == 8 && sized.1 == 1)
    }

    @Test func allNeedsACPUCountForABitmap() throws {
        #expect(throws: XenError.self) { try CPUMap.all.withLibXLBitmap { _ throws(XenError) in () } }
        let cpus = try CPUMap(parsing: "all,^1").withLibXLBitmap(cpuCount: 4) { bitmap throws(XenError) in
            CPUMap(bitmap.pointee)
        }
        #expect(cpus == [0, 2, 3])
        // A CPU beyond the host's count is an error, not a silently dropped bit.
        #expect(throws: XenError.self) { try CPUMap([7]).makeLibXLBitmap(cpuCount: 4) }
    }

    @Test func readsABitmapBuiltByLibxl() throws {
        // Built with libxl's own calls (no ctx needed for set/test), read by CPUMap.
        var bitmap = try CPUMap.empty.makeLibXLBitmap(cpuCount: 16)
        defer { libxl_bitmap_dispose(&bitmap) }
        libxl_bitmap_set(&bitmap, 5)
        libxl_bitmap_set(&bitmap, 6)
        libxl_bitmap_set(&bitmap, 7)
        libxl_bitmap_set(&bitmap, 15)
        #expect(CPUMap(bitmap).description == "5-7,15")
    }
}
