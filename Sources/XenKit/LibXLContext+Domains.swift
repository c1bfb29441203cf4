import CLibXen
public import CPUSets
import CXenShim

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension LibXLContext {
    /// The hard affinity of each vCPU of domain `domid`, vCPU 0 first (`libxl_list_vcpu`).
    public func vcpuAffinities(of domid: UInt32) throws(XenError) -> [CPUSet] {
        try withUnsafeContext { ctx throws(XenError) in
            var count: Int32 = 0
            var cpus: Int32 = 0
            let list = try LibXLCalls.pointer("libxl_list_vcpu", operation: "libxl_list_vcpu(\(domid))", detail: "returned NULL") {
                libxl_list_vcpu(ctx, domid, &count, &cpus)
            }
            defer { libxl_vcpuinfo_list_free(list, count) }
            return (0..<Int(count)).map { index in CPUSet(list[index].cpumap) }
        }
    }

    /// Sets the hard affinity of vCPUs `0..<vcpus` of domain `domid` to `cpus`, live
    /// (`libxl_set_vcpuaffinity`, one call per vCPU); `nil` is every CPU of the host.
    public func setHardAffinity(of domid: UInt32, vcpus: Int, to cpus: CPUSet?) throws(XenError) {
        var bitmap = try makeCPUBitmap(cpus)
        defer { libxl_bitmap_dispose(&bitmap) }
        for vcpu in 0..<vcpus {
            try withUnsafeContext { ctx throws(XenError) in
                try LibXLCalls.check("libxl_set_vcpuaffinity", operation: "libxl_set_vcpuaffinity(\(domid), vcpu \(vcpu), \(cpus?.description ?? "all"))") {
                    libxl_set_vcpuaffinity(ctx, domid, UInt32(vcpu), &bitmap, nil)
                }
            }
        }
    }

    /// Sets the hard affinity of each of domain `domid`'s vCPUs, vCPU `i` to `perVCPU[i]` (`libxl_set_vcpuaffinity`
    /// per vCPU), live.
    public func setHardAffinities(of domid: UInt32, perVCPU: [CPUSet]) throws(XenError) {
        for (vcpu, cpus) in perVCPU.enumerated() {
            var bitmap = try makeCPUBitmap(cpus)
            defer { libxl_bitmap_dispose(&bitmap) }
            try withUnsafeContext { ctx throws(XenError) in
                try LibXLCalls.check("libxl_set_vcpuaffinity", operation: "libxl_set_vcpuaffinity(\(domid), vcpu \(vcpu), \(cpus))") {
                    libxl_set_vcpuaffinity(ctx, domid, UInt32(vcpu), &bitmap, nil)
                }
            }
        }
    }

    /// Domain `domid`'s scheduler weight and cap (`libxl_domain_sched_params_get`), and under rtds each vCPU's
    /// reservation (`libxl_vcpu_sched_params_get_all`).
    ///
    /// Xen's rtds answers the domain-wide query with its defaults (10 ms, 4 ms) and no extratime, whatever the
    /// domain's vCPUs run with; only the per-vCPU query reads them.
    public func schedule(of domid: UInt32) throws(XenError) -> DomainSchedule {
        try withUnsafeContext { ctx throws(XenError) in
            var params = libxl_domain_sched_params()
            libxl_domain_sched_params_init(&params)
            defer { libxl_domain_sched_params_dispose(&params) }
            try LibXLCalls.check("libxl_domain_sched_params_get", operation: "libxl_domain_sched_params_get(\(domid))") {
                libxl_domain_sched_params_get(ctx, domid, &params)
            }
            return try Self.schedule(from: params) { () throws(XenError) in try Self.rtdsReservations(ctx, domid: domid) }
        }
    }

    /// What ``schedule(of:)`` makes of libxl's domain-wide answer `params`: its weight and cap, and under rtds the
    /// reservations `perVCPU` reads, never `params`' period and budget (rtds' defaults, whatever the vCPUs run with).
    static func schedule(from params: libxl_domain_sched_params, perVCPU: () throws(XenError) -> [RTDSSchedule]) throws(XenError) -> DomainSchedule {
        guard params.sched == LIBXL_SCHEDULER_RTDS else { return DomainSchedule(weight: Int(params.weight), cap: Int(params.cap)) }
        return DomainSchedule(weight: Int(params.weight), cap: Int(params.cap), rtdsByVCPU: try perVCPU())
    }

    /// Each vCPU's rtds reservation, vCPU 0 first (`libxl_vcpu_sched_params_get_all`); the funnel's tests drive it
    /// with a forced result, which never reaches libxl.
    static func rtdsReservations(_ ctx: OpaquePointer, domid: UInt32) throws(XenError) -> [RTDSSchedule] {
        var params = libxl_vcpu_sched_params()
        libxl_vcpu_sched_params_init(&params)
        defer { libxl_vcpu_sched_params_dispose(&params) }
        try LibXLCalls.check("libxl_vcpu_sched_params_get_all", operation: "libxl_vcpu_sched_params_get_all(\(domid))") {
            libxl_vcpu_sched_params_get_all(ctx, domid, &params)
        }
        return rtdsReservations(from: params)
    }

    /// The reservations in libxl's per-vCPU answer `params`, in its order.
    static func rtdsReservations(from params: libxl_vcpu_sched_params) -> [RTDSSchedule] {
        guard let vcpus = params.vcpus else { return [] }
        return (0..<Int(params.num_vcpus)).map { index in
            RTDSSchedule(
                periodMicroseconds: Int(vcpus[index].period), budgetMicroseconds: Int(vcpus[index].budget), extratime: vcpus[index].extratime != 0)
        }
    }

    /// Domain `domid`'s scheduler parameters when the scheduler of its cpupool is known (`poolScheduler`, as xl spells
    /// it): under credit and credit2 one libxenctrl call (``XenControl/creditSchedule(of:scheduler:)``), where
    /// ``schedule(of:)`` first asks for the domain's info and its pool's, and reads the pool's name from xenstore.
    /// Under another scheduler, or when that call fails (the domain moved to another pool meanwhile), ``schedule(of:)``.
    public func schedule(of domid: UInt32, poolScheduler: String) throws(XenError) -> DomainSchedule {
        if poolScheduler == "credit" || poolScheduler == "credit2", let control = xenControl(),
            let schedule = try? control.creditSchedule(of: domid, scheduler: poolScheduler)
        {
            return schedule
        }
        return try schedule(of: domid)
    }

    /// Sets domain `domid`'s credit weight and cap, live (`libxl_domain_sched_params_set`).
    public func setSchedule(of domid: UInt32, to schedule: DomainSchedule) throws(XenError) {
        try withUnsafeContext { ctx throws(XenError) in
            var params = libxl_domain_sched_params()
            libxl_domain_sched_params_init(&params)
            defer { libxl_domain_sched_params_dispose(&params) }
            params.weight = Int32(schedule.weight)
            params.cap = Int32(schedule.cap)
            try LibXLCalls.check(
                "libxl_domain_sched_params_set", operation: "libxl_domain_sched_params_set(\(domid), weight \(schedule.weight), cap \(schedule.cap))"
            ) {
                libxl_domain_sched_params_set(ctx, domid, &params)
            }
        }
    }

    /// Sets the rtds reservation of every vCPU of domain `domid`, live (`libxl_vcpu_sched_params_set_all`: period,
    /// budget and extratime). The domain's cpupool must run rtds.
    ///
    /// Not `libxl_domain_sched_params_set`: Xen's rtds applies a domain-wide reservation's period and budget but
    /// drops its extratime, which only the per-vCPU call carries.
    ///
    /// - Throws: ``XenError/failed(operation:detail:)`` for a period or budget outside libxl's `int`
    ///   before calling libxl; ``XenError/libxl(code:operation:)`` when libxl refuses (another scheduler,
    ///   a budget longer than the period).
    public func setRTDSSchedule(of domid: UInt32, to schedule: RTDSSchedule) throws(XenError) {
        try withUnsafeContext { ctx throws(XenError) in try Self.setRTDSSchedule(ctx, domid: domid, to: schedule) }
    }

    /// The call of ``setRTDSSchedule(of:to:)`` on `ctx`; the funnel's tests drive it with a forced result,
    /// which never reaches libxl.
    static func setRTDSSchedule(_ ctx: OpaquePointer, domid: UInt32, to schedule: RTDSSchedule) throws(XenError) {
        let operation =
            "libxl_vcpu_sched_params_set_all(\(domid), rtds period \(schedule.periodMicroseconds) us, budget \(schedule.budgetMicroseconds) us, extratime \(schedule.extratime ? 1 : 0))"
        guard let period = Int32(exactly: schedule.periodMicroseconds), let budget = Int32(exactly: schedule.budgetMicroseconds) else {
            throw XenError.failed(operation: operation, detail: "period and budget must fit libxl's int")
        }
        var params = libxl_vcpu_sched_params()
        libxl_vcpu_sched_params_init(&params)
        defer { libxl_vcpu_sched_params_dispose(&params) }  // frees `vcpus`
        guard let vcpus = calloc(1, MemoryLayout<libxl_sched_params>.stride)?.bindMemory(to: libxl_sched_params.self, capacity: 1) else {
            throw XenError.failed(operation: operation, detail: "out of memory")
        }
        libxl_sched_params_init(vcpus)
        vcpus.pointee.period = period
        vcpus.pointee.budget = budget
        vcpus.pointee.extratime = schedule.extratime ? 1 : 0
        params.sched = LIBXL_SCHEDULER_RTDS
        params.num_vcpus = 1  // set_all: one entry, given to every vCPU
        params.vcpus = vcpus
        try LibXLCalls.check("libxl_vcpu_sched_params_set_all", operation: operation) {
            libxl_vcpu_sched_params_set_all(ctx, domid, &params)
        }
    }

    /// Sets each vCPU's rtds reservation, vCPU `i` to `perVCPU[i]` (`libxl_vcpu_sched_params_set`): how a rollback
    /// gives back reservations that differed between a domain's vCPUs, which ``setRTDSSchedule(of:to:)`` cannot.
    public func setRTDSSchedules(of domid: UInt32, perVCPU: [RTDSSchedule]) throws(XenError) {
        try withUnsafeContext { ctx throws(XenError) in try Self.setRTDSSchedules(ctx, domid: domid, perVCPU: perVCPU) }
    }

    /// The call of ``setRTDSSchedules(of:perVCPU:)`` on `ctx`; the funnel's tests drive it with a forced result,
    /// which never reaches libxl.
    static func setRTDSSchedules(_ ctx: OpaquePointer, domid: UInt32, perVCPU: [RTDSSchedule]) throws(XenError) {
        let listed = perVCPU.enumerated().map {
            "vCPU \($0.offset) \($0.element.periodMicroseconds)/\($0.element.budgetMicroseconds) us\($0.element.extratime ? " extratime" : "")"
        }
        let operation = "libxl_vcpu_sched_params_set(\(domid), rtds \(listed.joined(separator: ", ")))"
        guard !perVCPU.isEmpty else { throw XenError.failed(operation: operation, detail: "no vCPU's reservation given") }
        guard perVCPU.allSatisfy({ Int32(exactly: $0.periodMicroseconds) != nil && Int32(exactly: $0.budgetMicroseconds) != nil }) else {
            throw XenError.failed(operation: operation, detail: "period and budget must fit libxl's int")
        }
        var params = libxl_vcpu_sched_params()
        libxl_vcpu_sched_params_init(&params)
        defer { libxl_vcpu_sched_params_dispose(&params) }  // frees `vcpus`
        guard let vcpus = calloc(perVCPU.count, MemoryLayout<libxl_sched_params>.stride)?.bindMemory(to: libxl_sched_params.self, capacity: perVCPU.count) else {
            throw XenError.failed(operation: operation, detail: "out of memory")
        }
        for (index, schedule) in perVCPU.enumerated() {
            libxl_sched_params_init(vcpus + index)
            vcpus[index].vcpuid = Int32(index)
            vcpus[index].period = Int32(schedule.periodMicroseconds)
            vcpus[index].budget = Int32(schedule.budgetMicroseconds)
            vcpus[index].extratime = schedule.extratime ? 1 : 0
        }
        params.sched = LIBXL_SCHEDULER_RTDS
        params.num_vcpus = Int32(perVCPU.count)
        params.vcpus = vcpus
        try LibXLCalls.check("libxl_vcpu_sched_params_set", operation: operation) {
            libxl_vcpu_sched_params_set(ctx, domid, &params)
        }
    }

    /// Makes a PCI device assignable to domains: binds it to pciback, remembering its driver in
    /// libxl for ``removeAssignablePCI(_:)`` (`libxl_device_pci_assignable_add`, rebind 1).
    public func addAssignablePCI(_ address: PCIDeviceAddress) throws(XenError) {
        var device = Self.libxlPCI(address)
        defer { libxl_device_pci_dispose(&device) }
        try withUnsafeContext { ctx throws(XenError) in
            try LibXLCalls.check("libxl_device_pci_assignable_add", operation: "libxl_device_pci_assignable_add(\(address))") {
                libxl_device_pci_assignable_add(ctx, &device, 1)
            }
        }
    }

    /// Gives an assignable PCI device back to its previous driver (`libxl_device_pci_assignable_remove`, rebind 1).
    public func removeAssignablePCI(_ address: PCIDeviceAddress) throws(XenError) {
        var device = Self.libxlPCI(address)
        defer { libxl_device_pci_dispose(&device) }
        try withUnsafeContext { ctx throws(XenError) in
            try LibXLCalls.check("libxl_device_pci_assignable_remove", operation: "libxl_device_pci_assignable_remove(\(address))") {
                libxl_device_pci_assignable_remove(ctx, &device, 1)
            }
        }
    }

    /// A `libxl_device_pci` for `address`; the caller disposes it.
    static func libxlPCI(_ address: PCIDeviceAddress) -> libxl_device_pci {
        var device = libxl_device_pci()
        libxl_device_pci_init(&device)
        device.domain = Int32(address.domain)
        device.bus = address.bus
        device.dev = address.device
        device.func = address.function
        return device
    }

    /// Creates a domain, paused, from a libxl JSON config (`libxl_domain_config_from_json`, then
    /// `libxl_domain_create_new`) with UUID `uuid` (libxl keeps a zero one). Returns its domid.
    /// `name` is the config's domain name, for messages. A domain libxl leaves behind when
    /// creation fails part-way is destroyed before the error is thrown.
    public func createDomain(configJSON: String, uuid: String, name: String) throws(XenError) -> UInt32 {
        var config = libxl_domain_config()
        libxl_domain_config_init(&config)
        defer { libxl_domain_config_dispose(&config) }
        return try withUnsafeContext { ctx throws(XenError) in
            try LibXLCalls.check("libxl_domain_config_from_json", operation: "libxl_domain_config_from_json(\(name))") {
                libxl_domain_config_from_json(ctx, &config, configJSON)
            }
            guard libxl_uuid_from_string(&config.c_info.uuid, uuid) == 0 else {
                throw XenError.failed(operation: "libxl_uuid_from_string(\(uuid))", detail: "refused a UUID Foundation made")
            }
            var domid = cxenshim_invalid_domid()
            do throws(XenError) {
                try LibXLCalls.check("libxl_domain_create_new", operation: "libxl_domain_create_new(\(name))") {
                    libxl_domain_create_new(ctx, &config, &domid, nil, nil)
                }
            } catch {
                if domid != cxenshim_invalid_domid() {
                    _ = LibXLCalls.code("libxl_domain_destroy") { libxl_domain_destroy(ctx, domid, nil) }
                }
                throw error
            }
            return domid
        }
    }

    /// Unpauses domain `domid` (`libxl_domain_unpause`); `name` is for messages.
    public func unpauseDomain(_ domid: UInt32, name: String) throws(XenError) {
        try withUnsafeContext { ctx throws(XenError) in
            try LibXLCalls.check("libxl_domain_unpause", operation: "libxl_domain_unpause(\(name))") { libxl_domain_unpause(ctx, domid, nil) }
        }
    }

    /// Destroys domain `domid` (`libxl_domain_destroy`); `name` is for messages.
    public func destroyDomain(_ domid: UInt32, name: String) throws(XenError) {
        try withUnsafeContext { ctx throws(XenError) in
            try LibXLCalls.check("libxl_domain_destroy", operation: "libxl_domain_destroy(\(name))") { libxl_domain_destroy(ctx, domid, nil) }
        }
    }

    /// Domain `domid` as libxl describes it (`libxl_domain_info`), without its name.
    public func domainInfo(_ domid: UInt32) throws(XenError) -> DomainInfo {
        try withUnsafeContext { ctx throws(XenError) in
            var info = libxl_dominfo()
            libxl_dominfo_init(&info)
            defer { libxl_dominfo_dispose(&info) }
            try LibXLCalls.check("libxl_domain_info", operation: "libxl_domain_info(\(domid))") { libxl_domain_info(ctx, &info, domid) }
            return DomainInfo(info, name: nil)
        }
    }
}

extension LibXLContext {
    /// Adds a vif to running domain `domid` from a libxl JSON `libxl_device_nic`
    /// (`libxl_device_nic_from_json`, then `libxl_device_nic_add`): libxl writes the frontend and the
    /// backend (in the domain its `backend_domname` names), whose `xl devd` then runs the hotplug script.
    /// `name` is the domain's name, for messages.
    public func addNIC(to domid: UInt32, configJSON: String, name: String) throws(XenError) {
        var nic = libxl_device_nic()
        libxl_device_nic_init(&nic)
        defer { libxl_device_nic_dispose(&nic) }
        try withUnsafeContext { ctx throws(XenError) in
            try LibXLCalls.check("libxl_device_nic_from_json", operation: "libxl_device_nic_from_json(\(name))") {
                libxl_device_nic_from_json(ctx, &nic, configJSON)
            }
            try LibXLCalls.check("libxl_device_nic_add", operation: "libxl_device_nic_add(\(name), vif \(nic.devid))") {
                libxl_device_nic_add(ctx, domid, &nic, nil)
            }
        }
    }

    /// Removes vif `devid` of domain `domid`, whose backend is (or was) domain `backendDomid`
    /// (`libxl_device_nic_remove`; when it fails, `libxl_device_nic_destroy`, which does not wait for the
    /// backend). When the backend's directory is gone with its domain, libxl cleans up the frontend only.
    /// `name` is the domain's name, for messages.
    public func removeNIC(devid: Int, of domid: UInt32, backendDomid: UInt32, name: String) throws(XenError) {
        var nic = libxl_device_nic()
        libxl_device_nic_init(&nic)
        defer { libxl_device_nic_dispose(&nic) }
        nic.devid = Int32(devid)
        nic.backend_domid = backendDomid
        try withUnsafeContext { ctx throws(XenError) in
            do throws(XenError) {
                try LibXLCalls.check("libxl_device_nic_remove", operation: "libxl_device_nic_remove(\(name), vif \(devid))") {
                    libxl_device_nic_remove(ctx, domid, &nic, nil)
                }
            } catch {
                try LibXLCalls.check("libxl_device_nic_destroy", operation: "libxl_device_nic_destroy(\(name), vif \(devid))") {
                    libxl_device_nic_destroy(ctx, domid, &nic, nil)
                }
            }
        }
    }
}
