import CLibXen
import CPUSets
import CXenShim

extension CPUSet {
    /// Reads the set bits of a `libxl_bitmap` (every bit of `size * 8`, up to ``CPUSet/maximumCPUIndex``).
    init(_ bitmap: libxl_bitmap) {
        var copy = bitmap
        var set = Set<Int>()
        let bits = Int(bitmap.size) * 8
        if bitmap.map != nil {
            for bit in 0..<min(bits, Self.maximumCPUIndex + 1) where libxl_bitmap_test(&copy, Int32(bit)) != 0 {
                set.insert(bit)
            }
        }
        self.init(set)
    }

    /// The first core outside `0...maximumCPUIndex`, which no `libxl_bitmap` can hold.
    var firstInvalidCore: Int? {
        cores.first { !(0...Self.maximumCPUIndex).contains($0) }
    }

    /// Lends the set as a `libxl_bitmap` of `cpuCount` bits (default: the highest CPU + 1),
    /// disposed when `body` returns.
    ///
    /// - Throws: ``XenError/invalidCPUMap(_:reason:)`` if a CPU is not below `cpuCount` or outside
    ///   `0...CPUSet.maximumCPUIndex`, or ``XenError/errno(_:operation:)`` if allocation fails; and
    ///   whatever `body` throws.
    func withLibXLBitmap<R>(
        cpuCount: Int? = nil,
        _ body: (UnsafePointer<libxl_bitmap>) throws(XenError) -> R
    ) throws(XenError) -> R {
        var bitmap = try makeLibXLBitmap(cpuCount: cpuCount)
        defer { libxl_bitmap_dispose(&bitmap) }
        return try body(&bitmap)
    }

    /// A new `libxl_bitmap` (malloc'd) holding the set; the caller owns it and must call
    /// `libxl_bitmap_dispose`. See ``withLibXLBitmap(cpuCount:_:)`` for `cpuCount`.
    func makeLibXLBitmap(cpuCount: Int? = nil) throws(XenError) -> libxl_bitmap {
        if let invalid = firstInvalidCore {
            throw XenError.invalidCPUMap(description, reason: "CPU \(invalid) is not in 0...\(Self.maximumCPUIndex)")
        }
        let needed = (cores.last ?? -1) + 1
        if let cpuCount, cpuCount < needed {
            throw XenError.invalidCPUMap(description, reason: "CPU \(needed - 1) is not below the host's \(cpuCount) CPUs")
        }
        let bits = max(cpuCount ?? needed, 1)
        // Its callers hold a context, which loaded libxenlight; a test may not: a typed error, not the stub's abort.
        try XenLibraries.load(.xenlight)
        var bitmap = libxl_bitmap()
        libxl_bitmap_init(&bitmap)
        let rc = cxenshim_bitmap_alloc(&bitmap, Int32(bits))
        if rc != 0 {
            throw XenError.errno(.init(rawValue: rc), operation: "libxl_bitmap allocation of \(bits) bits")
        }
        for cpu in cores { libxl_bitmap_set(&bitmap, Int32(cpu)) }
        return bitmap
    }
}
