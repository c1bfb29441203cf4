public import CPUSets
import CVirtShim

/// A domain as libvirt lists it.
public struct LibvirtDomain: Sendable, Hashable {
    /// Its name.
    public var name: String
    /// Its Xen domid; nil when it is not running.
    public var id: UInt32?
    /// Its UUID, lowercase.
    public var uuid: String
    /// `virDomainState` (1 running, 2 blocked, 3 paused, 4 shutting down, 5 shut off, 6 crashed, 7 suspended).
    public var state: Int32
    /// Number of vCPUs.
    public var vcpus: Int
    /// Maximum memory in KiB.
    public var maxMemoryKiB: UInt64
    /// The CPU time it has used, in nanoseconds (Xen's count, as libxenstat reads it).
    public var cpuNanoseconds: UInt64

    /// Creates a description (what a stand-in for libvirt returns in tests).
    public init(name: String, id: UInt32?, uuid: String, state: Int32, vcpus: Int, maxMemoryKiB: UInt64, cpuNanoseconds: UInt64 = 0) {
        self.name = name
        self.id = id
        self.uuid = uuid
        self.state = state
        self.vcpus = vcpus
        self.maxMemoryKiB = maxMemoryKiB
        self.cpuNanoseconds = cpuNanoseconds
    }

    /// Whether libvirt says it stopped or crashed.
    public var stopped: Bool { state == 5 || state == 6 }
}

/// A connection to a libvirt daemon (`xen:///system`, `xen+ssh://root@host/system`, `test:///default`).
///
/// libvirt is loaded when the first connection opens (``LibvirtCalls/load()``), so commands that never
/// connect never load it. Domains are named by their libvirt name in every call. libvirt connections may
/// be shared by threads (libvirt serializes calls on one), hence `Sendable`.
public final class LibvirtConnection: @unchecked Sendable {
    /// The URI it was opened with.
    public let uri: String
    private let pointer: virConnectPtr

    /// Opens `uri`.
    /// - Throws: ``XenError/libvirt(code:name:operation:message:)`` (an unreachable host, failed
    ///   authentication, no such driver) or ``XenError/failed(operation:detail:)`` when libvirt cannot be loaded.
    public init(uri: String, readOnly: Bool = false) throws(XenError) {
        try LibvirtCalls.load()
        self.uri = uri
        pointer = try LibvirtCalls.pointer("virConnectOpenAuth", operation: "connect to \(uri)") { cvirt_connect_open(uri, readOnly ? 1 : 0) }
    }

    deinit { _ = cvirt_connect_close(pointer) }

    /// The hypervisor driver's name (`Xen` for the libxl driver, `TEST`, `QEMU`).
    public func driverName() throws(XenError) -> String {
        let name = try LibvirtCalls.pointer("virConnectGetType", operation: "ask \(uri) for its driver") { cvirt_connect_get_type(pointer) }
        return String(cString: name)
    }

    /// The host's name as libvirt reports it.
    public func hostname() throws(XenError) -> String {
        LibvirtCalls.take(try LibvirtCalls.pointer("virConnectGetHostname", operation: "ask \(uri) for its host name") { cvirt_connect_get_hostname(pointer) })
    }

    /// The daemon's libvirt version, `major.minor.micro`.
    public func libraryVersion() throws(XenError) -> String {
        var version: UInt = 0
        try LibvirtCalls.check("virConnectGetLibVersion", operation: "ask \(uri) for its version") { cvirt_connect_get_lib_version(pointer, &version) }
        return "\(version / 1_000_000).\(version / 1000 % 1000).\(version % 1000)"
    }

    /// The host's CPU count (`virNodeGetInfo`).
    public func hostCPUCount() throws(XenError) -> Int {
        Int(try LibvirtCalls.check("virNodeGetInfo", operation: "read the CPUs of \(uri)") { cvirt_node_cpus(pointer) })
    }

    /// The host CPUs' nominal frequency in Hz (`virNodeGetInfo`'s MHz: Xen's `cpu_khz`, as libxenstat's `cpu_hz`
    /// to the MHz).
    public func nodeCPUHz() throws(XenError) -> UInt64 {
        let mhz = try LibvirtCalls.check("virNodeGetInfo", operation: "read the CPU frequency of \(uri)") { cvirt_node_mhz(pointer) }
        guard mhz > 0 else { throw XenError.failed(operation: "read the CPU frequency of \(uri)", detail: "libvirt reports \(mhz) MHz") }
        return UInt64(mhz) * 1_000_000
    }

    // MARK: Domains

    /// Every domain libvirt knows on this connection (with the libxl driver: Domain-0 and the domains
    /// libvirt itself started; not those xl or libxl made).
    public func domains() throws(XenError) -> [LibvirtDomain] {
        var list: UnsafeMutablePointer<virDomainPtr?>?
        let count = try LibvirtCalls.check("virConnectListAllDomains", operation: "list the domains of \(uri)") { cvirt_list_domains(pointer, &list) }
        defer { cvirt_free_domains(list, count) }
        var domains: [LibvirtDomain] = []
        for index in 0..<Int(count) {
            guard let domain = list?[index] else { continue }
            // A domain that vanished between the list and its info is left out.
            if let info = try? describe(domain) { domains.append(info) }
        }
        return domains
    }

    /// The domain named `name`, or nil when libvirt has none.
    public func domain(named name: String) throws(XenError) -> LibvirtDomain? {
        guard let handle = try lookup(name, mustExist: false) else { return nil }
        defer { _ = cvirt_domain_free(handle) }
        return try describe(handle)
    }

    /// iovm's element of `name`'s `<metadata>` in namespace `namespace` (the XML text), or nil when it has none.
    public func metadata(of name: String, namespace: String) throws(XenError) -> String? {
        try withDomain(name) { (handle) throws(XenError) in
            try LibvirtCalls.optional("virDomainGetMetadata", absent: [.noDomainMetadata], operation: "read the metadata of \(name) on \(uri)") {
                cvirt_domain_metadata(handle, namespace)
            }.map(LibvirtCalls.take)
        }
    }

    /// The live XML of `name`.
    public func xml(of name: String) throws(XenError) -> String {
        try withDomain(name) { (handle) throws(XenError) in
            LibvirtCalls.take(try LibvirtCalls.pointer("virDomainGetXMLDesc", operation: "read the XML of \(name) on \(uri)") { cvirt_domain_xml(handle, 0) })
        }
    }

    /// Starts a transient domain from `xml` (`virDomainCreateXML`: it exists while it runs, and carries its
    /// `<metadata>` from the first moment).
    public func createDomain(xml: String, name: String, paused: Bool = false) throws(XenError) -> LibvirtDomain {
        let handle = try LibvirtCalls.pointer("virDomainCreateXML", operation: "create \(name) on \(uri)") {
            cvirt_domain_create_xml(pointer, xml, paused ? 1 : 0)  // VIR_DOMAIN_START_PAUSED
        }
        defer { _ = cvirt_domain_free(handle) }
        return try describe(handle)
    }

    /// Destroys `name` (stops it at once; a transient domain is gone after).
    public func destroyDomain(_ name: String) throws(XenError) {
        try withDomain(name) { (handle) throws(XenError) in
            try LibvirtCalls.check("virDomainDestroy", operation: "destroy \(name) on \(uri)") { cvirt_domain_destroy(handle) }
        }
    }

    /// Unpauses `name`.
    public func resumeDomain(_ name: String) throws(XenError) {
        try withDomain(name) { (handle) throws(XenError) in
            try LibvirtCalls.check("virDomainResume", operation: "resume \(name) on \(uri)") { cvirt_domain_resume(handle) }
        }
    }

    /// Attaches a device (`<interface>…`) to running `name`.
    public func attachDevice(_ name: String, xml: String) throws(XenError) {
        try withDomain(name) { (handle) throws(XenError) in
            try LibvirtCalls.check("virDomainAttachDeviceFlags", operation: "attach a device to \(name) on \(uri)") {
                cvirt_domain_attach_device(handle, xml, 0)  // VIR_DOMAIN_AFFECT_CURRENT: live for a running domain
            }
        }
    }

    /// Detaches a device from running `name`.
    public func detachDevice(_ name: String, xml: String) throws(XenError) {
        try withDomain(name) { (handle) throws(XenError) in
            try LibvirtCalls.check("virDomainDetachDeviceFlags", operation: "detach a device from \(name) on \(uri)") {
                cvirt_domain_detach_device(handle, xml, 0)
            }
        }
    }

    /// Each vCPU's hard affinity, on a host of `cores` CPUs.
    public func vcpuAffinity(of name: String, vcpus: Int, cores: Int) throws(XenError) -> [CPUSet] {
        let length = max(1, (cores + 7) / 8)
        var maps = [UInt8](repeating: 0, count: vcpus * length)
        let count = try withDomain(name) { (handle) throws(XenError) in
            try LibvirtCalls.check("virDomainGetVcpuPinInfo", operation: "read the vCPU affinity of \(name) on \(uri)") {
                cvirt_domain_vcpu_pin_info(handle, Int32(vcpus), &maps, Int32(length), 0)
            }
        }
        return (0..<Int(count)).map { vcpu in
            CPUSet((0..<cores).filter { maps[vcpu * length + $0 / 8] & (1 << UInt8($0 % 8)) != 0 })
        }
    }

    /// Pins vCPU `vcpu` of running `name` to `cpus` (on a host of `cores` CPUs).
    public func pinVCPU(_ name: String, vcpu: Int, to cpus: CPUSet, cores: Int) throws(XenError) {
        var map = [UInt8](repeating: 0, count: max(1, (cores + 7) / 8))
        for core in cpus.cores where core < cores { map[core / 8] |= 1 << UInt8(core % 8) }
        try withDomain(name) { (handle) throws(XenError) in
            try LibvirtCalls.check("virDomainPinVcpuFlags", operation: "pin vCPU \(vcpu) of \(name) to \(cpus) on \(uri)") {
                cvirt_domain_pin_vcpu(handle, UInt32(vcpu), &map, Int32(map.count), 0)
            }
        }
    }

    /// The credit scheduler's weight and cap of running `name` (nil for a field the scheduler lacks).
    public func credit(of name: String) throws(XenError) -> (weight: Int?, cap: Int?) {
        var weight: Int32 = -1
        var cap: Int32 = -1
        try withDomain(name) { (handle) throws(XenError) in
            try LibvirtCalls.check("virDomainGetSchedulerParameters", operation: "read the scheduling of \(name) on \(uri)") {
                cvirt_domain_get_credit(handle, &weight, &cap, 0)
            }
        }
        return (weight < 0 ? nil : Int(weight), cap < 0 ? nil : Int(cap))
    }

    /// The scheduler `name` runs under (`credit`, `credit2`; for Domain-0: Pool-0's).
    public func scheduler(of name: String) throws(XenError) -> String {
        try withDomain(name) { (handle) throws(XenError) in
            LibvirtCalls.take(try LibvirtCalls.pointer("virDomainGetSchedulerType", operation: "read the scheduler of \(name) on \(uri)") { cvirt_domain_scheduler_type(handle) })
        }
    }

    /// Sets the credit weight and/or cap of running `name` live (nil leaves a field alone).
    public func setCredit(of name: String, weight: Int?, cap: Int?) throws(XenError) {
        try withDomain(name) { (handle) throws(XenError) in
            try LibvirtCalls.check("virDomainSetSchedulerParametersFlags", operation: "set the credit weight and cap of \(name) on \(uri)") {
                cvirt_domain_set_credit(handle, Int32(weight ?? -1), Int32(cap ?? -1), 0)
            }
        }
    }

    // MARK: Node devices

    /// The XML of node device `name` (`pci_0000_00_10_0`), or nil when the host has none.
    public func nodeDeviceXML(_ name: String) throws(XenError) -> String? {
        guard
            let device = try LibvirtCalls.optional(
                "virNodeDeviceLookupByName", absent: [.noNodeDevice], operation: "find \(name) on \(uri)",
                {
                    cvirt_nodedev_lookup(pointer, name)
                })
        else { return nil }
        defer { _ = cvirt_nodedev_free(device) }
        return LibvirtCalls.take(try LibvirtCalls.pointer("virNodeDeviceGetXMLDesc", operation: "read \(name) on \(uri)") { cvirt_nodedev_xml(device) })
    }

    /// Detaches node device `name` from its host driver to `driver`'s stub (`xen`: pciback).
    public func detachNodeDevice(_ name: String, driver: String) throws(XenError) {
        try withNodeDevice(name) { (device) throws(XenError) in
            try LibvirtCalls.check("virNodeDeviceDetachFlags", operation: "detach \(name) to \(driver) on \(uri)") { cvirt_nodedev_detach(device, driver) }
        }
    }

    /// Gives node device `name` back to its host driver.
    public func reattachNodeDevice(_ name: String) throws(XenError) {
        try withNodeDevice(name) { (device) throws(XenError) in
            try LibvirtCalls.check("virNodeDeviceReAttach", operation: "reattach \(name) on \(uri)") { cvirt_nodedev_reattach(device) }
        }
    }

    // MARK: Handles

    private func lookup(_ name: String, mustExist: Bool) throws(XenError) -> virDomainPtr? {
        if mustExist {
            return try LibvirtCalls.pointer("virDomainLookupByName", operation: "find domain \(name) on \(uri)") { cvirt_domain_lookup_name(pointer, name) }
        }
        return try LibvirtCalls.optional("virDomainLookupByName", absent: [.noDomain], operation: "find domain \(name) on \(uri)") {
            cvirt_domain_lookup_name(pointer, name)
        }
    }

    private func withDomain<T>(_ name: String, _ body: (virDomainPtr) throws(XenError) -> T) throws(XenError) -> T {
        let handle = try lookup(name, mustExist: true)!
        defer { _ = cvirt_domain_free(handle) }
        return try body(handle)
    }

    private func withNodeDevice<T>(_ name: String, _ body: (virNodeDevicePtr) throws(XenError) -> T) throws(XenError) -> T {
        let device = try LibvirtCalls.pointer("virNodeDeviceLookupByName", operation: "find \(name) on \(uri)") { cvirt_nodedev_lookup(pointer, name) }
        defer { _ = cvirt_nodedev_free(device) }
        return try body(device)
    }

    private func describe(_ handle: virDomainPtr) throws(XenError) -> LibvirtDomain {
        let name = String(cString: try LibvirtCalls.pointer("virDomainGetName", operation: "name a domain of \(uri)") { cvirt_domain_name(handle) })
        var uuid = [CChar](repeating: 0, count: 64)
        try LibvirtCalls.check("virDomainGetUUIDString", operation: "read the UUID of \(name) on \(uri)") { cvirt_domain_uuid(handle, &uuid) }
        var state: Int32 = 0
        var vcpus: UInt32 = 0
        var memory: UInt = 0
        var cpu: UInt64 = 0
        try LibvirtCalls.check("virDomainGetInfo", operation: "read \(name) on \(uri)") { cvirt_domain_info(handle, &state, &vcpus, &memory, &cpu) }
        let id = cvirt_domain_id(handle)
        return LibvirtDomain(
            name: name, id: id < 0 ? nil : UInt32(id), uuid: String(decoding: uuid.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).lowercased(),
            state: state, vcpus: Int(vcpus), maxMemoryKiB: UInt64(memory), cpuNanoseconds: cpu)
    }
}
