import CLibXen
import CPUSets
import Testing

@testable import XenKit

@Suite("CPUSet as a libxl_bitmap")
struct CPUSetBitmapTests {
    @Test func roundTripsThroughLibXLBitmap() throws {
        let set: CPUSet = [0, 2, 3, 9]
        let back = try set.withLibXLBitmap { bitmap throws(XenError) -> CPUSet in
            #expect(bitmap.pointee.size == 2)  // 10 bits -> 2 bytes
            #expect(libxl_bitmap_count_set(bitmap) == 4)
            #expect(libxl_bitmap_test(bitmap, 2) == 1)
            #expect(libxl_bitmap_test(bitmap, 1) == 0)
            return CPUSet(bitmap.pointee)
        }
        #expect(back == set)

        let sized = try CPUSet([1]).withLibXLBitmap(cpuCount: 64) { bitmap throws(XenError) in
            (bitmap.pointee.size, libxl_bitmap_count_set(bitmap))
        }
        #expect(sized.0 == 8 && sized.1 == 1)
    }

    @Test func refusesCPUsABitmapCannotHold() throws {
        // A CPU beyond the host's count is an error, not a silently dropped bit.
        // Refused as such before libxenlight is loaded (not some other XenError, such as a library that does not load).
        func refused(_ body: () throws(XenError) -> libxl_bitmap) -> Bool {
            do {
                var bitmap = try body()
                libxl_bitmap_dispose(&bitmap)
                return false
            } catch {
                if case .invalidCPUMap = error { return true }
                return false
            }
        }
        #expect(refused { () throws(XenError) in try CPUSet([7]).makeLibXLBitmap(cpuCount: 4) })
        #expect(refused { () throws(XenError) in try CPUSet([-1]).makeLibXLBitmap() })
        #expect(refused { () throws(XenError) in try CPUSet([CPUSet.maximumCPUIndex + 1]).makeLibXLBitmap() })
    }

    @Test func readsABitmapBuiltByLibxl() throws {
        // Built with libxl's own calls (no ctx needed for set/test), read by CPUSet.
        var bitmap = try CPUSet([]).makeLibXLBitmap(cpuCount: 16)
        defer { libxl_bitmap_dispose(&bitmap) }
        libxl_bitmap_set(&bitmap, 5)
        libxl_bitmap_set(&bitmap, 6)
        libxl_bitmap_set(&bitmap, 7)
        libxl_bitmap_set(&bitmap, 15)
        #expect(CPUSet(bitmap).description == "5-7,15")
    }
}
