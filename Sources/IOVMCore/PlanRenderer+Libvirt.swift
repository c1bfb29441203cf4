public import FoundationEssentials
import IOVMWireFormat

// libvirt domain XML for a plan's domains, for libvirt's libxl driver as Debian 12 ships it (libvirt 9.0).
// Each choice below names what libvirt's source showed (file: function); the schema is the one
// libvirt-clients installs (/usr/share/libvirt/schemas/domaincommon.rng), which `virt-xml-validate` checks.

/// Why a plan or a domain cannot be written as libvirt XML for the libxl driver.
public enum LibvirtRenderError: Error, Equatable, CustomStringConvertible {
    /// The plan needs cpupools: `pools` (name, scheduler, cores), the topology, and Pool-0's scheduler.
    case cpupools(topology: String, pools: [String], hostScheduler: String)
    /// A domain has an rtds reservation.
    case rtds(domain: String, reservation: String)
    /// A domain has a soft affinity.
    case softAffinity(domain: String, cpus: String)
    /// A domain is not PV.
    case notPV(domain: String, type: String)
    /// A domain names no kernel (an IOVM whose image is not resolved).
    case noKernel(domain: String)
    /// A value holds a character XML 1.0 cannot carry.
    case notXML(domain: String, field: String)

    /// Human-readable text.
    public var description: String {
        switch self {
        case .cpupools(let topology, let pools, let hostScheduler):
            "topology \(topology) needs cpupool \(pools.joined(separator: ", ")), and libvirt's libxl driver has no cpupools: "
                + "use Placement.iovmAffinity() without dedicatedPool (and no Host(scheduler:) other than the \(hostScheduler) Pool-0 runs), "
                + "or apply through libxl (iovm apply)"
        case .rtds(let domain, let reservation):
            "\(domain) has an rtds reservation (\(reservation)), and libvirt's libxl driver sets only credit's weight and cap: "
                + "plan it under credit, or apply through libxl (iovm apply)"
        case .softAffinity(let domain, let cpus):
            "\(domain) has a soft affinity (\(cpus)), and libvirt's libxl driver sets only hard affinity (<vcpupin>): apply through libxl (iovm apply)"
        case .notPV(let domain, let type): "\(domain) is a \(type) domain; iovm writes libvirt XML for PV domains only"
        case .noKernel(let domain):
            "\(domain) names no kernel (is its image resolved?), and libvirt's libxl driver would boot it with pygrub instead"
        case .notXML(let domain, let field): "\(domain)'s \(field) holds a control character that XML cannot carry"
        }
    }
}

extension Plan {
    /// A fingerprint of the whole plan (FNV-1a over its canonical JSON): what managed domains carry in their libvirt metadata.
    public var fingerprint: String {
        String(StableHash.fnv1a((try? JSONText.line(self)) ?? topology), radix: 16)
    }
}

extension PlanRenderer {
    /// The XML namespace of iovm's element in a managed domain's `<metadata>`.
    public static let libvirtNamespace = "https://iovm.dev/xmlns/libvirt/1"

    /// Every domain of `plan` as libvirt XML, `<domain>.xml`, in plan order; refuses (nothing rendered) what the
    /// libxl driver cannot do: see ``checkLibvirt(_:)``.
    public static func renderLibvirt(_ plan: Plan) throws(LibvirtRenderError) -> RenderedPlan {
        try checkLibvirt(plan)
        var files: [RenderedPlan.File] = []
        for domain in plan.domains {
            files.append(.init(path: "\(domain.name).xml", contents: try libvirtXML(domain, plan: plan)))
        }
        return RenderedPlan(files: files)
    }

    /// Refuses a plan the libxl driver cannot create: cpupools, rtds reservations, soft affinity, a domain not PV
    /// or without a kernel. The first problem found, plan-wide ones first.
    public static func checkLibvirt(_ plan: Plan) throws(LibvirtRenderError) {
        try checkPools(plan)
        for domain in plan.domains { try checkLibvirt(domain) }
    }

    private static func checkPools(_ plan: Plan) throws(LibvirtRenderError) {
        // libxl_conf.c, libxlMakeDomCreateInfo: c_info gets type, name, ssidref and uuid, never pool_name (nor
        // driver_domain), and the schema has no pool element: a domain would start in Pool-0.
        var pools = plan.cpupools.map { "\($0.name) (\($0.scheduler) on \($0.cpus))" }
        let listed = Set(plan.cpupools.map(\.name))
        for domain in plan.domains where domain.cpupool != Planner.defaultPool && !listed.contains(domain.cpupool) {
            pools.append(domain.cpupool)
        }
        if !pools.isEmpty { throw .cpupools(topology: plan.topology, pools: pools, hostScheduler: plan.host.scheduler) }
    }

    private static func checkLibvirt(_ domain: DomainSpec) throws(LibvirtRenderError) {
        guard domain.type == "pv" else { throw .notPV(domain: domain.name, type: domain.type) }
        // libxl_conf.c, libxlMakeDomBuildInfo: a PV domain without <kernel> (and without <bootloader>) gets pygrub.
        guard !domain.kernel.isEmpty else { throw .noKernel(domain: domain.name) }
        // libxl_driver.c, libxlDomainSetSchedulerParametersFlags: only the "weight" and "cap" fields are read, and only
        // when libxl_get_scheduler() (Pool-0's) is credit (credit2 too in later releases); rtds period and budget
        // cannot be set, and the schema's <cputune> has no element libxl_conf.c maps to them.
        if let rtds = domain.rtds { throw .rtds(domain: domain.name, reservation: rtds.description) }
        // libxl_conf.c, libxlSetVcpuAffinities: only b_info->vcpu_hard_affinity is filled; nothing sets a soft affinity.
        if let soft = domain.softAffinity { throw .softAffinity(domain: domain.name, cpus: soft.description) }
        var fields: [(String, String)] = [("name", domain.name), ("kernel", domain.kernel), ("cmdline", domain.cmdline)]
        if let ramdisk = domain.ramdisk { fields.append(("ramdisk", ramdisk)) }
        fields += domain.disks.map { ("disk", $0.spec) } + domain.vifs.flatMap { [("bridge", $0.bridge), ("vif script", $0.script ?? "")] }
        for (field, value) in fields where value.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\t" && $0 != "\n" && $0 != "\r" }) {
            throw .notXML(domain: domain.name, field: field)
        }
    }

    /// What the libxl driver leaves to be done around `domain`'s XML (each is also a comment in it).
    public static func libvirtNotes(_ domain: DomainSpec, plan: Plan) -> [String] {
        [driverDomainNote(domain), capNote(domain, plan: plan), passthroughNote(domain)].compactMap { $0 }
    }

    /// libxl_conf.c, libxlMakeDomCreateInfo sets no driver_domain, and libxl makes a domain's writable xenstore
    /// libxl/ directory (which `xl devd` inside an IOVM needs) only for driver_domain=1 (Xen's libxl_create.c,
    /// libxl__domain_make).
    private static func driverDomainNote(_ domain: DomainSpec) -> String? {
        guard domain.driverDomain else { return nil }
        return "\(domain.name): driver_domain=1 has no libvirt XML (libxlMakeDomCreateInfo never sets it): "
            + "its xenstore libxl/ directory must be made writable for xl devd after every start"
    }

    /// No XML carries the credit cap: libxl_conf.c, libxlMakeDomBuildInfo sets only sched_params.weight.
    private static func capNote(_ domain: DomainSpec, plan: Plan) -> String? {
        guard domain.cap > 0 else { return nil }
        return "\(domain.name): credit cap \(domain.cap) has no libvirt XML: set it after every start with "
            + "virDomainSetSchedulerParametersFlags (cap=\(domain.cap); virsh schedinfo \(domain.name) --live --set cap=\(domain.cap)), "
            + "which needs Pool-0 under credit (it runs \(plan.host.scheduler))"
    }

    private static func passthroughNote(_ domain: DomainSpec) -> String? {
        guard !domain.nics.isEmpty else { return nil }
        return "\(domain.name): its NICs (\(domain.pci.map(\.description).joined(separator: ", "))) are managed='no': "
            + "detach them to pciback (virsh nodedev-detach) before the first start; libvirt leaves them there when it stops"
    }

    /// The libvirt XML of one domain (`virsh -c xen:///system define FILE`), for libvirt's libxl driver.
    /// `uuid` is the UUID the caller chose for the domain (omitted when nil: libvirt picks one). Refuses a domain
    /// of a plan with cpupools, as ``checkLibvirt(_:)`` does.
    public static func libvirtXML(_ domain: DomainSpec, plan: Plan, uuid: UUID? = nil) throws(LibvirtRenderError) -> String {
        try checkPools(plan)
        try checkLibvirt(domain)
        var xml = XMLLines()
        let role = domain.role == .iovm ? "IOVM" : "guest"
        xml.comment(
            "iovm \(IOVMVersion.current): \(role) \(domain.name) of topology \(plan.topology) "
                + "(\(plan.configuration.title), \(plan.placement.title)), for libvirt's libxl driver")
        xml.open("domain", ["type": "xen"])
        xml.leaf("name", text: domain.name)
        if let uuid { xml.leaf("uuid", text: uuid.uuidString.lowercased()) }

        // Ownership: libvirt keeps a namespaced element under <metadata> as written (basictypes.rng: metadata,
        // customElement); iovm changes only domains that carry it.
        xml.open("metadata")
        xml.open("iovm:managed", ["xmlns:iovm": libvirtNamespace])
        xml.leaf("iovm:topology", text: plan.topology)
        xml.leaf("iovm:name", text: domain.name)
        xml.leaf("iovm:role", text: domain.role.rawValue)
        // What only a recreate changes (kernel, memory, vCPUs, NICs, vifs): apply compares it, as the libxl tag's.
        xml.leaf("iovm:spec", ["fingerprint": domain.specFingerprint])
        xml.leaf("iovm:plan", ["fingerprint": plan.fingerprint])
        if let uuid { xml.leaf("iovm:uuid", text: uuid.uuidString.lowercased()) }
        xml.close("iovm:managed")
        xml.close("metadata")

        // libxl_conf.c, libxlMakeDomBuildInfo: max_memkb and target_memkb from <memory> and <currentMemory>, in KiB,
        // rounded up to whole MiB (ours are whole MiB).
        let kib = String(domain.memoryMiB * 1024)
        xml.leaf("memory", ["unit": "KiB"], text: kib)
        xml.leaf("currentMemory", ["unit": "KiB"], text: kib)
        // No cpuset on <vcpu>: libxl_conf.c, libxlSetVcpuAffinities reads only each vCPU's own mask (<vcpupin>).
        xml.leaf("vcpu", text: String(domain.vcpus))

        xml.open("cputune")
        // libxl_conf.c, libxlMakeDomBuildInfo: sched_params.weight = cputune.shares (when given): the credit weight.
        xml.leaf("shares", text: String(domain.weight))
        if let cpus = domain.hardAffinity {
            // libxl_conf.c, libxlSetVcpuAffinities: vcpu_hard_affinity[i] from vCPU i's <vcpupin>; one per vCPU.
            for vcpu in 0..<domain.vcpus { xml.leaf("vcpupin", ["vcpu": String(vcpu), "cpuset": cpus.description]) }
        }
        if let note = capNote(domain, plan: plan) { xml.comment(note) }
        xml.close("cputune")

        // libxl_conf.c, libxlMakeDomBuildInfo, the PV branch: u.pv.kernel, u.pv.ramdisk and u.pv.cmdline from <os>'s
        // <kernel>, <initrd> and <cmdline>. The os type is "xen" (domaincommon.rng: ostypexen; "linux" is an old alias
        // libvirt rewrites to it), machine xenpv.
        xml.open("os")
        xml.leaf("type", ["arch": "x86_64", "machine": "xenpv"], text: "xen")
        xml.leaf("kernel", text: domain.kernel)
        if let ramdisk = domain.ramdisk { xml.leaf("initrd", text: ramdisk) }
        xml.leaf("cmdline", text: domain.cmdline)
        xml.close("os")

        // libxl_conf.c, libxlBuildDomainConfig: on_poweroff/on_reboot/on_crash through libxlActionFromVirLifecycle;
        // the same actions as the libxl JSON.
        xml.leaf("on_poweroff", text: "destroy")
        xml.leaf("on_reboot", text: "restart")
        xml.leaf("on_crash", text: "destroy")

        xml.open("devices")
        for disk in domain.disks { xml.disk(disk) }
        if !domain.nics.isEmpty {
            if let note = driverDomainNote(domain) { xml.comment(note) }
            xml.comment(
                "managed='no': src/hypervisor/virhostdev.c (virHostdevPreparePCIDevices) refuses an unmanaged NIC not bound to "
                    + "a stub driver (pciback), and reattaches to dom0 only managed ones when the domain stops (libxl_domain.c, libxlDomainCleanup)")
        }
        for nic in domain.nics {
            // libxl_conf.c, libxlMakePCI: domain, bus, slot and function of <source><address> become the libxl_device_pci.
            xml.open("hostdev", ["mode": "subsystem", "type": "pci", "managed": "no"])
            xml.open("source")
            xml.leaf(
                "address",
                [
                    "domain": hex(nic.pci.domain, digits: 4), "bus": hex(nic.pci.bus, digits: 2), "slot": hex(nic.pci.device, digits: 2),
                    "function": hex(nic.pci.function, digits: 1),
                ])
            xml.close("source")
            xml.close("hostdev")
        }
        for vif in domain.vifs {
            // libxl_conf.c, libxlMakeNic: bridge name from <source bridge>, backend_domname from <backenddomain name>,
            // script from <script path> (bridge and ethernet only); PV domains take only model 'netfront' (LIBXL_NIC_TYPE_VIF).
            xml.open("interface", ["type": "bridge"])
            xml.leaf("mac", ["address": vif.mac])
            xml.leaf("source", ["bridge": vif.bridge])
            if let backend = vif.backend { xml.leaf("backenddomain", ["name": backend]) }
            if let script = vif.script { xml.leaf("script", ["path": script]) }
            xml.leaf("model", ["type": "netfront"])
            xml.close("interface")
        }
        xml.open("console", ["type": "pty"])
        xml.leaf("target", ["type": "xen", "port": "0"])
        xml.close("console")
        xml.close("devices")
        xml.close("domain")
        return xml.text
    }
}

/// `0x` and `value` in lowercase hex, zero-padded to `digits`.
private func hex(_ value: some BinaryInteger, digits: Int) -> String {
    let text = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, digits - text.count)) + text
}

/// Indented XML, one element per line, attributes in the order given, every value escaped.
private struct XMLLines {
    private var lines: [String] = []
    private var depth = 0

    var text: String { lines.joined(separator: "\n") + "\n" }

    mutating func open(_ name: String, _ attributes: KeyValuePairs<String, String> = [:]) {
        lines.append(indent + "<" + name + Self.attributes(attributes) + ">")
        depth += 1
    }

    mutating func close(_ name: String) {
        depth -= 1
        lines.append(indent + "</" + name + ">")
    }

    mutating func leaf(_ name: String, _ attributes: KeyValuePairs<String, String> = [:], text: String? = nil) {
        let start = indent + "<" + name + Self.attributes(attributes)
        lines.append(text.map { start + ">" + Self.escape($0) + "</" + name + ">" } ?? start + "/>")
    }

    /// `<!-- text -->`; a comment cannot hold "--".
    mutating func comment(_ text: String) {
        var body = text
        while body.contains("--") { body = body.replacing("--", with: "- -") }
        lines.append(indent + "<!-- " + body + " -->")
    }

    /// A DiskSpec as a Xen PV disk: libxl_conf.c, libxlMakeDisk: no <driver> is raw with the backend libxl picks
    /// (as xl does); driver 'qemu' is the qdisk backend for the other formats; <readonly/> clears readwrite.
    mutating func disk(_ disk: DiskSpec) {
        let block = disk.target.hasPrefix("/dev/")
        open("disk", ["type": block ? "block" : "file", "device": "disk"])
        if disk.format != "raw" { leaf("driver", ["name": "qemu", "type": disk.format]) }
        if block { leaf("source", ["dev": disk.target]) } else { leaf("source", ["file": disk.target]) }
        leaf("target", ["dev": disk.vdev, "bus": "xen"])
        if !disk.readWrite { leaf("readonly") }
        close("disk")
    }

    private var indent: String { String(repeating: "  ", count: depth) }

    private static func attributes(_ attributes: KeyValuePairs<String, String>) -> String {
        attributes.map { " \($0.key)='\(escape($0.value))'" }.joined()
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "'": out += "&apos;"
            case "\"": out += "&quot;"
            default: out.append(character)
            }
        }
        return out
    }
}
