public import CPUSets
import FoundationEssentials
public import IOVMControl
public import IOVMCore
public import Logging
import Synchronization
import XenKit

#if canImport(Glibc)
    import Glibc
#endif

/// What ``LibvirtBackend`` asks of a libvirt connection: XenKit's ``LibvirtConnection``, or a recording fake in tests.
protocol LibvirtHost: Sendable {
    var uri: String { get }
    func hostCPUCount() throws(XenError) -> Int
    func nodeCPUHz() throws(XenError) -> UInt64
    func domains() throws(XenError) -> [LibvirtDomain]
    func domain(named name: String) throws(XenError) -> LibvirtDomain?
    func metadata(of name: String, namespace: String) throws(XenError) -> String?
    func xml(of name: String) throws(XenError) -> String
    func createDomain(xml: String, name: String, paused: Bool) throws(XenError) -> LibvirtDomain
    func destroyDomain(_ name: String) throws(XenError)
    func resumeDomain(_ name: String) throws(XenError)
    func attachDevice(_ name: String, xml: String) throws(XenError)
    func detachDevice(_ name: String, xml: String) throws(XenError)
    func vcpuAffinity(of name: String, vcpus: Int, cores: Int) throws(XenError) -> [CPUSet]
    func pinVCPU(_ name: String, vcpu: Int, to cpus: CPUSet, cores: Int) throws(XenError)
    func credit(of name: String) throws(XenError) -> (weight: Int?, cap: Int?)
    func scheduler(of name: String) throws(XenError) -> String
    func setCredit(of name: String, weight: Int?, cap: Int?) throws(XenError)
    func nodeDeviceXML(_ name: String) throws(XenError) -> String?
    func detachNodeDevice(_ name: String, driver: String) throws(XenError)
    func reattachNodeDevice(_ name: String) throws(XenError)
}

extension LibvirtConnection: LibvirtHost {}

/// A ``XenBackend`` over libvirt's libxl driver (`--connect xen+ssh://root@host/system`): a Xen host that
/// is not this dom0, managed as operators already manage it.
///
/// - Domains are transient (`virDomainCreateXML`) from ``PlanRenderer/libvirtXML(_:plan:uuid:)``; iovm's tag
///   is the `<metadata>` element in its namespace, part of the XML libvirt creates the domain from, so no
///   moment exists when a domain iovm made is untagged. A domain without it is never changed.
/// - The credit cap has no XML: it is set through `virDomainSetSchedulerParametersFlags` after every start.
/// - NICs go to pciback with `virNodeDeviceDetachFlags(…, "xen")` and back with `virNodeDeviceReAttach`.
/// - libvirt cannot read xenstore. An IOVM's `data/iovm/devd`, the vif backends' states and the record of
///   which NICs iovm detached are read and written through the host's ``RemoteDom0`` (``SSHXenStore``: the same
///   ssh access as a `xen+ssh://` URI); on another transport they are not available and the waits are refused.
/// - An IOVM's image (kernel and initrd from this machine's image store) is copied to the same paths on the host
///   when it lacks them; any other missing kernel or ramdisk is refused before anything is touched.
/// - No cpupools (the driver has none: such plans are refused before anything starts) and no rtds.
public final class LibvirtBackend: XenBackend, @unchecked Sendable {
    let host: any LibvirtHost
    /// The host's dom0 for what libvirt cannot do (xenstore, Xen's own domain list, pciback, files), when the transport
    /// reaches it (ssh); nil otherwise.
    let dom0: (any RemoteDom0)?
    /// The host's xenstore, when the transport reaches it.
    var store: (any TagStore)? { dom0 }
    let logger: Logger
    /// The plan the domains are created from (their XML needs it); set by ``prepare(_:)``.
    private let plans = Mutex<Void>(())
    nonisolated(unsafe) private var plan: Plan?

    /// Where iovm marks a NIC it detached (``NICMark``: its driver before, the topology): `/local/domain/0/iovm/nics/<key>`, as the
    /// libxl backend.
    static let nicRoot = "/local/domain/0/iovm/nics"

    /// Connects to `uri`; refuses a connection whose driver is not Xen's.
    public convenience init(uri: String, logger: Logger) throws {
        let connection = try LibvirtConnection(uri: uri)
        let driver = try connection.driverName()
        guard driver.lowercased() == "xen" else {
            throw XenError.failed(operation: "connect to \(uri)", detail: "its libvirt driver is \(driver), not Xen's libxl driver: iovm manages Xen hosts only")
        }
        self.init(host: connection, dom0: SSHXenStore(uri: uri), logger: logger)
    }

    /// The host's CPU count and Pool-0's scheduler (Domain-0's), through libvirt.
    public static func hostFacts(uri: String) throws -> (cores: Int, scheduler: String) {
        let connection = try LibvirtConnection(uri: uri, readOnly: true)
        return (try connection.hostCPUCount(), try connection.scheduler(of: "Domain-0"))
    }

    init(host: any LibvirtHost, dom0: (any RemoteDom0)?, logger: Logger) {
        self.host = host
        self.dom0 = dom0
        self.logger = logger
    }

    /// Gives the backend the plan whose domains it will create (their XML is rendered from it). Refuses, before
    /// anything is touched, a kernel or ramdisk the host lacks that is not an IOVM image iovm can copy there.
    public func prepare(_ plan: Plan) throws {
        try PlanRenderer.checkLibvirt(plan)
        for spec in plan.domains where spec.image?.hash != nil {
            for path in Self.bootFiles(spec) where access(path, R_OK) != 0 {
                throw XenError.failed(operation: "create \(spec.name) on \(host.uri)", detail: "its image file \(path) cannot be read on this machine, to copy it there")
            }
        }
        if let dom0 {
            let missing = Set(try dom0.missingFiles(Array(Set(plan.domains.flatMap(Self.bootFiles))).sorted()))
            let lacking = plan.domains.filter { $0.image?.hash == nil }.flatMap { spec in Self.bootFiles(spec).filter(missing.contains).map { (spec.name, $0) } }
            if let (name, path) = lacking.first {
                throw XenError.failed(
                    operation: "create \(name) on \(host.uri)",
                    detail: "\(path) is not on \(dom0.target)\(lacking.count > 1 ? " (nor \(lacking.dropFirst().map(\.1).joined(separator: ", ")))" : ""): "
                        + "iovm copies only the IOVM images it built; put the others there first")
            }
        }
        plans.withLock { _ in self.plan = plan }
    }

    /// The files a domain boots from on the host: its kernel and ramdisk.
    static func bootFiles(_ spec: DomainSpec) -> [String] { [spec.kernel] + (spec.ramdisk.map { [$0] } ?? []) }

    /// Copies an IOVM's image files from this machine's image store to the same paths on the host when it lacks them.
    func copyImage(of spec: DomainSpec) throws {
        guard spec.image?.hash != nil, let dom0 else { return }
        let files = Self.bootFiles(spec)
        var sizes: [String: UInt64] = [:]
        for path in files { sizes[path] = FileBytes.size(path).map(UInt64.init) }
        for path in try dom0.missingFiles(files, sizes: sizes) {
            let started = Date()
            try dom0.copy(path)
            logger.notice("copied \(path) to \(dom0.target) for \(spec.name) in \(String(cFormat: "%.1f", Date().timeIntervalSince(started))) s")
        }
    }

    /// The node device name of a PCI address (`pci_0000_00_10_0`).
    static func nodeDevice(_ pci: PCIAddress) -> String {
        "pci_" + pci.description.map { $0 == ":" || $0 == "." ? "_" : $0 }.map(String.init).joined()
    }

    private func requireStore(_ what: String) throws -> any TagStore {
        guard let store else {
            throw XenError.failed(
                operation: what, detail: "libvirt cannot read xenstore, and \(host.uri) is not an ssh connection iovm can reach it through (use xen+ssh://)")
        }
        return store
    }

    // MARK: Observe

    public func observe(nics: [PCIAddress]) throws -> ObservedHost {
        let cores = try host.hostCPUCount()
        let scheduler = (try? host.scheduler(of: "Domain-0")) ?? "unknown"
        var domains: [ObservedDomain] = []
        let listed = try host.domains()
        let batched = try dom0?.vifs(of: listed.compactMap(\.id).filter { $0 != 0 })
        for domain in listed {
            guard let domid = domain.id else { continue }  // defined but not running: not a Xen domain now
            let tag = domid == 0 ? nil : try tag(of: domain)
            let affinity = (try? host.vcpuAffinity(of: domain.name, vcpus: domain.vcpus, cores: cores)) ?? []
            let credit = try? host.credit(of: domain.name)
            let pci = domid == 0 ? [] : ((try? host.xml(of: domain.name)).map(Self.hostdevs) ?? [])
            domains.append(
                ObservedDomain(
                    domid: domid, name: domain.name, uuid: domain.uuid, vcpus: domain.vcpus, hardAffinity: affinity, weight: credit?.weight,
                    cap: credit?.cap, cpupool: Planner.defaultPool, pci: pci, tag: tag,
                    vifs: domid == 0 ? nil : batched?[domid],
                    shutdownReason: domain.state == 6 ? "crash" : domain.state == 5 ? "poweroff" : domain.state == 4 ? "shutdown" : nil,
                    paused: domain.state == 3))  // VIR_DOMAIN_PAUSED
        }
        // Domains libvirt did not start (xl's, another toolstack's) are invisible to it: seen from xenstore, untagged,
        // so a planned name one of them holds is a conflict before anything is touched.
        let known = Set(domains.map(\.domid))
        for (domid, name) in try dom0?.domainNames() ?? [:] where !known.contains(domid) {
            domains.append(
                ObservedDomain(
                    domid: domid, name: name.isEmpty ? "domid\(domid)" : name, uuid: "xen-domid-\(domid)", vcpus: 0, hardAffinity: [], weight: nil,
                    cap: nil, cpupool: Planner.defaultPool))
        }
        // The NICs' marks and the applied plans in one round trip.
        let records = try dom0?.records(under: [Self.nicRoot, LibXLBackend.appliedRoot]) ?? [:]
        var bindings: [NICBinding] = []
        for pci in nics {
            guard let xml = try host.nodeDeviceXML(Self.nodeDevice(pci)) else { continue }
            let driver = Self.driver(inNodeDeviceXML: xml)
            let mark = records[Self.nicRoot]?[LibXLBackend.key(pci)].map(NICMark.init(value:))
            bindings.append(
                NICBinding(
                    pci: pci, assignable: driver == "pciback" || driver == "xen-pciback", previousDriver: mark?.previousDriver,
                    madeAssignableByIOVM: mark != nil, driver: driver, madeAssignableFor: mark?.topology))
        }
        return ObservedHost(
            cores: cores, scheduler: scheduler, domains: domains, pools: [], nics: bindings,
            applied: LibXLBackend.applied(values: records[LibXLBackend.appliedRoot] ?? [:]))
    }

    /// iovm's tag of a libvirt domain, from its `<metadata>` (nil without iovm's element).
    func tag(of domain: LibvirtDomain) throws -> ManagedTag? {
        guard let text = try host.metadata(of: domain.name, namespace: PlanRenderer.libvirtNamespace) else { return nil }
        return Self.tag(fromMetadata: text, name: domain.name, uuid: domain.uuid)
    }

    /// A ``ManagedTag`` from iovm's metadata element (the UUID is the domain's own: the tag travels with it).
    static func tag(fromMetadata text: String, name: String, uuid: String) -> ManagedTag? {
        guard let topology = element("topology", in: text), let role = element("role", in: text).flatMap(DomainRole.init(rawValue:)) else { return nil }
        return ManagedTag(
            topology: topology, name: element("name", in: text) ?? name, role: role, uuid: uuid,
            specFingerprint: attribute("fingerprint", of: "spec", in: text) ?? "")
    }

    /// The text of `<name>` or `<prefix:name>` in `xml` (one level of entities undone).
    static func element(_ name: String, in xml: String) -> String? {
        guard let match = xml.firstMatch(of: try! Regex("<(?:[A-Za-z0-9_]+:)?\(name)(?:\\s[^>]*)?>([^<]*)</")) else { return nil }
        return unescape(String(match.output[1].substring ?? ""))
    }

    /// The value of `attribute` on the first `<element …>` or `<prefix:element …>` in `xml`.
    static func attribute(_ attribute: String, of element: String, in xml: String) -> String? {
        guard let match = xml.firstMatch(of: try! Regex("<(?:[A-Za-z0-9_]+:)?\(element)\\s[^>]*\(attribute)=['\"]([^'\"]*)['\"]")) else { return nil }
        return unescape(String(match.output[1].substring ?? ""))
    }

    static func unescape(_ text: String) -> String {
        text.replacing("&lt;", with: "<").replacing("&gt;", with: ">").replacing("&apos;", with: "'")
            .replacing("&quot;", with: "\"").replacing("&amp;", with: "&")
    }

    /// The PCI addresses of a domain XML's `<hostdev type='pci'>` sources.
    static func hostdevs(_ xml: String) -> [PCIAddress] {
        xml.split(separator: "<hostdev").dropFirst().compactMap { block -> PCIAddress? in
            let body = block.components(separatedBy: "</hostdev>")[0]
            guard body.contains("type='pci'") || body.contains("type=\"pci\"") else { return nil }
            /// An `<address>` attribute, `0x10` or `16`, as a number.
            func number<T: FixedWidthInteger>(_ name: String) -> T? {
                guard let text = attribute(name, of: "address", in: body) else { return nil }
                return text.hasPrefix("0x") ? T(text.dropFirst(2), radix: 16) : T(text)
            }
            guard let domain: UInt16 = number("domain"), let bus: UInt8 = number("bus"), let slot: UInt8 = number("slot"),
                let function: UInt8 = number("function")
            else { return nil }
            return PCIAddress(domain: domain, bus: bus, device: slot, function: function)
        }
    }

    /// The driver a node device XML names (`<driver><name>e1000</name></driver>`), nil when unbound.
    static func driver(inNodeDeviceXML xml: String) -> String? {
        guard let range = xml.firstRange(of: "<driver>"), let end = xml[range.upperBound...].firstRange(of: "</driver>") else { return nil }
        return element("name", in: String(xml[range.lowerBound..<end.upperBound]))
    }

    /// `vendor:device` (`8086:100e`) from a PCI node device's XML (`<vendor id='0x8086'>`, `<product id='0x100e'>`).
    static func pciIDs(inNodeDeviceXML xml: String) -> String? {
        guard let vendor = attribute("id", of: "vendor", in: xml), let product = attribute("id", of: "product", in: xml) else { return nil }
        let strip = { (text: String) in text.hasPrefix("0x") ? String(text.dropFirst(2)) : text }
        return "\(strip(vendor)):\(strip(product))"
    }

    /// The vendor:device ids of a PCI device of the host at `uri`, through libvirt; nil when it has none there.
    public static func pciIDs(_ pci: PCIAddress, uri: String) -> String? {
        guard let connection = try? LibvirtConnection(uri: uri, readOnly: true), let xml = (try? connection.nodeDeviceXML(nodeDevice(pci))) ?? nil else {
            return nil
        }
        return pciIDs(inNodeDeviceXML: xml)
    }

    public func managedDomain(_ nameOrID: String) throws -> ManagedDomain? {
        try managedDomains([nameOrID], withCap: true)[0]
    }

    /// One domain listing through libvirt for all of `namesOrIDs`; each credit cap is read only `withCap`.
    public func managedDomains(_ namesOrIDs: [String], withCap: Bool) throws -> [ManagedDomain?] {
        let domains = try host.domains()
        return try namesOrIDs.map { nameOrID in
            guard let domain = domains.first(where: { $0.name == nameOrID || $0.id.map(String.init) == nameOrID }), let domid = domain.id else {
                return nil
            }
            guard try tag(of: domain) != nil else {
                throw XenError.failed(operation: "change \(domain.name) (\(domid)) on \(host.uri)", detail: "iovm did not create it; iovm never changes it")
            }
            return ManagedDomain(domid: domid, name: domain.name, vcpus: domain.vcpus, cap: withCap ? try? host.credit(of: domain.name).cap : nil)
        }
    }

    // MARK: Pools: the libxl driver has none

    public func createPool(_ pool: CPUPoolSpec, topology: String) throws {
        throw XenError.failed(operation: "create cpupool \(pool.name) on \(host.uri)", detail: "libvirt's libxl driver has no cpupools")
    }

    public func destroyPool(named name: String) throws {
        throw XenError.failed(operation: "destroy cpupool \(name) on \(host.uri)", detail: "libvirt's libxl driver has no cpupools")
    }

    // MARK: NICs

    public func makeAssignable(_ pci: PCIAddress, for topology: String?) throws {
        let device = Self.nodeDevice(pci)
        let previous = try host.nodeDeviceXML(device).flatMap(Self.driver(inNodeDeviceXML:)) ?? ""
        try requireStore("record the driver of \(pci) before detaching it").write("\(Self.nicRoot)/\(LibXLBackend.key(pci))", NICMark(driver: previous, topology: topology).value)
        do {
            try host.detachNodeDevice(device, driver: "xen")
        } catch {
            try? store?.remove("\(Self.nicRoot)/\(LibXLBackend.key(pci))")
            throw error
        }
    }

    public func markNIC(_ pci: PCIAddress, for topology: String?) throws {
        try NICMark.rewrite("\(Self.nicRoot)/\(LibXLBackend.key(pci))", for: topology, in: try requireStore("record \(pci) as topology \(topology ?? "-")'s"))
    }

    /// Records it where a libxl apply does, in the host's xenstore (over ssh): the NIC marks' rules then hold across
    /// both toolstacks. A host iovm reaches through libvirt alone records nothing.
    public func recordApplied(topology: String, fingerprint: String?) throws {
        guard let store else { return }
        try LibXLBackend.recordApplied(topology: topology, fingerprint: fingerprint, in: store)
    }

    public func nicsMarked(for topology: String) throws -> [PCIAddress] {
        guard let dom0 else { return [] }
        return NICMark.nics(markedFor: topology, among: try dom0.records(under: [Self.nicRoot])[Self.nicRoot] ?? [:])
    }

    public func releaseNIC(_ pci: PCIAddress) throws {
        // Never released while a domain holds it.
        for domain in try host.domains() where domain.id != nil && domain.id != 0 {
            if let xml = try? host.xml(of: domain.name), Self.hostdevs(xml).contains(pci) {
                throw XenError.failed(operation: "give \(pci) back to dom0 on \(host.uri)", detail: "\(domain.name) holds it")
            }
        }
        // A domain libvirt does not know may hold it too: libxl marks each assignment in xenstore.
        if let store, let holder = try store.read(LibXLBackend.libxlAssignmentPath(pci)).flatMap({ UInt32($0.trimmingWhitespace()) }),
            try dom0?.domainNames()[holder] != nil
        {
            throw XenError.failed(operation: "give \(pci) back to dom0 on \(host.uri)", detail: "domain \(holder) holds it")
        }
        let device = Self.nodeDevice(pci)
        try host.reattachNodeDevice(device)
        if let xml = try host.nodeDeviceXML(device), let driver = Self.driver(inNodeDeviceXML: xml), driver.hasSuffix("pciback"), let dom0 {
            try dom0.releaseFromPciback(pci)
            logger.info("\(pci): libvirt reattached it but pciback kept it; given back to dom0's drivers")
        }
        try store?.remove("\(Self.nicRoot)/\(LibXLBackend.key(pci))")
    }

    // MARK: Domains

    public func createDomain(_ spec: DomainSpec, libxlJSON: String, tag: ManagedTag) throws -> UInt32 {
        guard let plan = plans.withLock({ _ in self.plan }) else {
            throw XenError.failed(operation: "create \(spec.name) on \(host.uri)", detail: "no plan was given to the libvirt backend (prepare)")
        }
        let xml = try PlanRenderer.libvirtXML(spec, plan: plan)
        try copyImage(of: spec)
        // A driver domain starts paused: its xenstore libxl/ directory, which `xl devd` in it needs and which libxl makes
        // only for driver_domain=1 (libvirt never sets it), is made first, through the host's xenstore.
        let paused = spec.driverDomain && dom0 != nil
        let created = try host.createDomain(xml: xml, name: spec.name, paused: paused)
        guard let domid = created.id else {
            throw XenError.failed(operation: "create \(spec.name) on \(host.uri)", detail: "libvirt created it but it does not run")
        }
        do {
            if paused, let dom0 {
                try dom0.makeDriverDomainNodes(domid)
                try host.resumeDomain(spec.name)
            }
            if spec.cap > 0 { try host.setCredit(of: spec.name, weight: nil, cap: spec.cap) }
        } catch {
            try? host.destroyDomain(spec.name)
            throw error
        }
        logger.info("created \(spec.name) as domain \(domid) on \(host.uri)")
        return domid
    }

    public func removeStaleRecords() throws {}

    public func waitForDriverDomain(domid: UInt32, timeout: Double) throws {
        let store = try requireStore("wait for driver domain \(domid)")
        let path = "/local/domain/\(domid)/\(LibXLBackend.devdReadyKey)"
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let value = try store.read(path), !value.isEmpty { return }
            usleep(500_000)
        }
        throw XenError.failed(operation: "wait for driver domain \(domid) on \(host.uri)", detail: "\(path) was not written within \(Int(timeout)) s")
    }

    public func waitForGuestNetwork(domid: UInt32, timeout: Double) throws {
        let store = try requireStore("wait for the vifs of domain \(domid)")
        let deadline = Date().addingTimeInterval(timeout)
        var waiting: [String] = []
        repeat {
            let vifs = try dom0?.vifs(of: [domid])[domid] ?? LibXLBackend.vifs(of: domid, store: store)
            if let broken = vifs.first(where: { $0.hotplugStatus == "error" }) {
                throw XenError.failed(operation: "connect vif \(broken.devid) of domain \(domid) on \(host.uri)", detail: "the backend's hotplug script failed")
            }
            waiting = vifs.filter { $0.backendState != "4" }.map { "vif \($0.devid): backend state \($0.backendState ?? "none")" }
            if waiting.isEmpty { return }
            usleep(500_000)
        } while Date() < deadline
        throw XenError.failed(
            operation: "connect the vifs of domain \(domid) on \(host.uri)", detail: "not connected after \(Int(timeout)) s: \(waiting.joined(separator: "; "))")
    }

    /// The libvirt name of running domain `domid`.
    private func name(of domid: UInt32) throws -> String? {
        try host.domains().first { $0.id == domid }?.name
    }

    public func destroyDomain(domid: UInt32) throws {
        guard let domain = try host.domains().first(where: { $0.id == domid }) else {
            logger.info("domain \(domid) is gone already on \(host.uri)")
            return
        }
        guard try tag(of: domain) != nil else {
            throw XenError.failed(operation: "destroy \(domain.name) (\(domid)) on \(host.uri)", detail: "iovm did not create it; refusing")
        }
        try host.destroyDomain(domain.name)
    }

    public func reattachVif(domid: UInt32, devid: Int, staleBackend: UInt32?, to vif: VifSpec) throws {
        guard let name = try name(of: domid) else { throw XenError.failed(operation: "re-attach a vif of domain \(domid)", detail: "it does not run") }
        let device = Self.interfaceXML(vif)
        try? host.detachDevice(name, xml: device)
        try host.attachDevice(name, xml: device)
        logger.info("re-attached \(name)'s vif to \(vif.backend ?? "Domain-0") (mac \(vif.mac), bridge \(vif.bridge)) on \(host.uri)")
    }

    /// A guest vif as a libvirt `<interface>` (as in the domain XML).
    static func interfaceXML(_ vif: VifSpec) -> String {
        var xml = "<interface type='bridge'><mac address='\(vif.mac)'/><source bridge='\(vif.bridge)'/>"
        if let backend = vif.backend { xml += "<backenddomain name='\(backend)'/>" }
        if let script = vif.script { xml += "<script path='\(script)'/>" }
        return xml + "<model type='netfront'/></interface>"
    }

    // MARK: Live changes

    public func setAffinity(domid: UInt32, vcpus: Int, hard: CPUSet?) throws {
        guard let name = try name(of: domid) else { throw XenError.failed(operation: "pin domain \(domid) on \(host.uri)", detail: "it does not run") }
        let cores = try host.hostCPUCount()
        let cpus = hard ?? CPUSet(0..<cores)
        for vcpu in 0..<vcpus { try host.pinVCPU(name, vcpu: vcpu, to: cpus, cores: cores) }
    }

    public func setSchedule(domid: UInt32, weight: Int, cap: Int) throws {
        guard let name = try name(of: domid) else { throw XenError.failed(operation: "weigh domain \(domid) on \(host.uri)", detail: "it does not run") }
        try host.setCredit(of: name, weight: weight, cap: cap)
    }

    public func setRTDS(domid: UInt32, to parameters: RTDSParameters) throws {
        throw XenError.failed(operation: "set an rtds reservation on \(host.uri)", detail: "libvirt's libxl driver sets only credit's weight and cap")
    }

    public func setAffinity(domid: UInt32, perVCPU: [CPUSet]) throws {
        guard let name = try name(of: domid) else { throw XenError.failed(operation: "pin domain \(domid) on \(host.uri)", detail: "it does not run") }
        let cores = try host.hostCPUCount()
        for (vcpu, cpus) in perVCPU.enumerated() { try host.pinVCPU(name, vcpu: vcpu, to: cpus, cores: cores) }
    }

    public func setRTDS(domid: UInt32, perVCPU: [RTDSParameters]) throws {
        throw XenError.failed(operation: "set rtds reservations on \(host.uri)", detail: "libvirt's libxl driver sets only credit's weight and cap")
    }

    public func moveToPool(domid: UInt32, pool: String) throws {
        throw XenError.failed(operation: "move domain \(domid) to cpupool \(pool) on \(host.uri)", detail: "libvirt's libxl driver has no cpupools")
    }
}

/// dom0's network on a libvirt host: iovm makes no bridges there (the centralized baseline runs through libxl only).
public struct RemoteDom0Network: Dom0Network {
    /// The host.
    public let uri: String

    /// The network of the host at `uri`.
    public init(uri: String) { self.uri = uri }

    public func interface(of pci: PCIAddress) throws -> Dom0Interface? { nil }
    public func bridge(named name: String) throws -> ObservedBridge? { nil }
    public func managedBridges() throws -> [String: String] { [:] }
    public func defaultRouteInterfaces() throws -> Set<String> { [] }
    public func createBridge(_ name: String, on pci: PCIAddress, topology: String) throws -> String {
        throw XenError.failed(
            operation: "make dom0 bridge \(name) on \(uri)", detail: "iovm makes dom0's bridges (the centralized configuration) only through libxl (iovm apply without --connect)")
    }
    public func removeBridge(named name: String) throws {}
}

extension FileHostLock {
    /// This machine's lock for the libvirt host at `uri`: `/run/lock/iovm-<hash of the URI>.lock`.
    public static func path(for uri: String) -> String {
        "/run/lock/iovm-\(String(StableHash.fnv1a(uri), radix: 16)).lock"
    }
}

extension LibvirtBackend {
    /// `iovm doctor --connect URI`: can iovm drive the Xen host behind `uri` through libvirt, and can `plan` run there?
    public static func doctorChecks(uri: String, plan: Plan?) -> [DoctorCheck] {
        var checks: [DoctorCheck] = []
        let connection: LibvirtConnection
        do {
            connection = try LibvirtConnection(uri: uri)
            let version = (try? connection.libraryVersion()) ?? "?"
            let name = (try? connection.hostname()) ?? "?"
            checks.append(DoctorCheck("libvirt", .ok, "connected to \(uri): host \(name), libvirt \(version)"))
        } catch {
            return [DoctorCheck("libvirt", .failed, "\(error)")]
        }
        let driver = (try? connection.driverName()) ?? "unknown"
        guard driver.lowercased() == "xen" else {
            return checks + [DoctorCheck("libvirt driver", .failed, "\(uri) runs libvirt's \(driver) driver, not Xen's libxl driver")]
        }
        checks.append(DoctorCheck("libvirt driver", .ok, "libxl (Xen)"))
        if let cores = try? connection.hostCPUCount(), let scheduler = try? connection.scheduler(of: "Domain-0") {
            checks.append(DoctorCheck("host", .ok, "\(cores) CPUs; Pool-0 runs \(scheduler)"))
        }
        if let store = SSHXenStore(uri: uri) {
            do {
                let name = try store.read("/local/domain/0/name") ?? "nothing"
                checks.append(DoctorCheck("xenstore", .ok, "reached over ssh (\(store.target)): /local/domain/0/name is \(name)"))
            } catch {
                checks.append(DoctorCheck("xenstore", .failed, "over ssh: \(error)"))
            }
        } else {
            checks.append(
                DoctorCheck(
                    "xenstore", .failed,
                    "libvirt cannot read xenstore and \(uri) is not xen+ssh://: iovm cannot wait for an IOVM's xl devd or a vif's backend state"))
        }
        guard let plan else { return checks }
        do {
            try PlanRenderer.checkLibvirt(plan)
            checks.append(DoctorCheck("plan", .ok, "\(plan.topology): every domain has libvirt XML for the libxl driver"))
        } catch {
            checks.append(DoctorCheck("plan", .failed, "\(error)"))
        }
        for pci in plan.hostNICs {
            switch Result(catching: { try connection.nodeDeviceXML(nodeDevice(pci)) }) {
            case .success(let xml?):
                checks.append(DoctorCheck("NIC \(pci)", .ok, "\(nodeDevice(pci)), driver \(Self.driver(inNodeDeviceXML: xml) ?? "none")"))
            case .success(nil):
                checks.append(DoctorCheck("NIC \(pci)", .failed, "\(uri) has no node device \(nodeDevice(pci))"))
            case .failure(let error):
                checks.append(DoctorCheck("NIC \(pci)", .failed, "\(error)"))
            }
        }
        return checks
    }
}
