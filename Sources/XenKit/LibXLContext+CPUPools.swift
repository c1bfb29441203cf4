import CLibXen
public import CPUSets

extension LibXLContext {
    /// How error messages name a cpupool known only by id (Pool-0 is always id 0).
    static func poolLabel(_ id: UInt32) -> String {
        id == 0 ? "Pool-0" : "pool \(id)"
    }

    /// Every cpupool (`libxl_list_cpupool`), Pool-0 first.
    public func cpuPools() throws(XenError) -> [CPUPoolInfo] {
        try withUnsafeContext { ctx throws(XenError) in
            var count: Int32 = 0
            let list = try LibXLCalls.pointer("libxl_list_cpupool", operation: "libxl_list_cpupool", detail: "returned NULL") {
                libxl_list_cpupool(ctx, &count)
            }
            defer { libxl_cpupoolinfo_list_free(list, count) }
            return (0..<Int(count)).map { index in
                let info = list[index]
                return CPUPoolInfo(
                    id: info.poolid, name: info.pool_name.map { String(cString: $0) } ?? "pool\(info.poolid)",
                    scheduler: libxl_scheduler_to_string(info.sched).map { String(cString: $0) } ?? "unknown",
                    cpus: CPUSet(info.cpumap))
            }
        }
    }

    /// Takes `cpu` out of cpupool `poolID` (`libxl_cpupool_cpuremove`).
    public func removeCPU(_ cpu: Int, fromPool poolID: UInt32) throws(XenError) {
        try withUnsafeContext { ctx throws(XenError) in
            try LibXLCalls.check("libxl_cpupool_cpuremove", operation: "libxl_cpupool_cpuremove(\(Self.poolLabel(poolID)), \(cpu))") {
                libxl_cpupool_cpuremove(ctx, poolID, Int32(cpu))
            }
        }
    }

    /// Gives `cpu`, which must be free (in no pool), to cpupool `poolID` (`libxl_cpupool_cpuadd`).
    public func addCPU(_ cpu: Int, toPool poolID: UInt32) throws(XenError) {
        try withUnsafeContext { ctx throws(XenError) in
            try LibXLCalls.check("libxl_cpupool_cpuadd", operation: "libxl_cpupool_cpuadd(\(Self.poolLabel(poolID)), \(cpu))") {
                libxl_cpupool_cpuadd(ctx, poolID, Int32(cpu))
            }
        }
    }

    /// Creates cpupool `name` running `scheduler` (xl's spelling) on `cpus`, which must be free
    /// (`libxl_cpupool_create` with a fresh UUID). Returns the new pool's id.
    ///
    /// - Throws: ``XenError/failed(operation:detail:)`` for a scheduler libxl does not know;
    ///   ``XenError/libxl(code:name:operation:)`` when libxl refuses the pool.
    public func createCPUPool(name: String, scheduler: String, cpus: CPUSet) throws(XenError) -> UInt32 {
        var sched = libxl_scheduler(rawValue: 0)
        guard libxl_scheduler_from_string(scheduler, &sched) == 0 else {
            throw XenError.failed(operation: "libxl_scheduler_from_string", detail: "unknown scheduler \(scheduler)")
        }
        var bitmap = try makeCPUBitmap(cpus)
        defer { libxl_bitmap_dispose(&bitmap) }
        let schedCopy = sched
        let bitmapCopy = bitmap
        return try withUnsafeContext { ctx throws(XenError) in
            var uuid = libxl_uuid()
            libxl_uuid_generate(&uuid)
            var poolid = UInt32(LIBXL_CPUPOOL_POOLID_ANY)
            try LibXLCalls.check("libxl_cpupool_create", operation: "libxl_cpupool_create(\(name))") {
                libxl_cpupool_create(ctx, name, schedCopy, bitmapCopy, &uuid, &poolid)
            }
            return poolid
        }
    }

    /// Destroys an empty cpupool (`libxl_cpupool_destroy`); its CPUs become free.
    public func destroyCPUPool(_ pool: CPUPoolInfo) throws(XenError) {
        try withUnsafeContext { ctx throws(XenError) in
            try LibXLCalls.check("libxl_cpupool_destroy", operation: "libxl_cpupool_destroy(\(pool.name))") {
                libxl_cpupool_destroy(ctx, pool.id)
            }
        }
    }

    /// Moves domain `domid` into the cpupool called `poolName`, live (`libxl_name_to_cpupoolid`,
    /// then `libxl_cpupool_movedomain`).
    public func moveDomain(_ domid: UInt32, toPoolNamed poolName: String) throws(XenError) {
        try withUnsafeContext { ctx throws(XenError) in
            var poolid: UInt32 = 0
            try LibXLCalls.check("libxl_name_to_cpupoolid", operation: "libxl_name_to_cpupoolid(\(poolName))") {
                libxl_name_to_cpupoolid(ctx, poolName, &poolid)
            }
            try LibXLCalls.check("libxl_cpupool_movedomain", operation: "libxl_cpupool_movedomain(\(poolName), \(domid))") {
                libxl_cpupool_movedomain(ctx, poolid, domid)
            }
        }
    }
}
