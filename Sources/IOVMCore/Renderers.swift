public import FoundationEssentials
import IOVMWireFormat

/// Files rendered for one plan: xl.cfg per domain, libxl JSON per domain, cpupool configs.
public struct RenderedPlan: Sendable {
    /// One rendered file.
    public struct File: Sendable, Equatable {
        /// Path relative to the output directory.
        public var path: String
        /// Contents.
        public var contents: String
    }
    /// All files, in plan order.
    public var files: [File]

    /// The file at `path`.
    public func file(_ path: String) -> File? { files.first { $0.path == path } }

    /// Writes every file below `directory`, creating it if needed.
    public func write(to directory: URL) throws {
        let manager = FileManager.default
        for file in files {
            let url = directory.appending(path: file.path)
            try manager.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(file.contents.utf8).write(to: url, options: .atomic)
        }
    }
}

/// Errors from rendering.
public enum RenderError: Error, CustomStringConvertible {
    /// A template is missing from Templates/.
    case missingTemplate(String)
    /// A template does not parse.
    case badTemplate(String, String)

    /// Human-readable text.
    public var description: String {
        switch self {
        case .missingTemplate(let name): "template \(name) is not among the embedded Templates/"
        case .badTemplate(let name, let reason): "template \(name) does not parse: \(reason)"
        }
    }
}

/// Renders a ``Plan`` into xl.cfg files (from `Templates/`, Mustache templates) and libxl JSON domain configs.
public struct PlanRenderer: Sendable {
    private let library: [String: TextTemplate]

    /// Loads the templates embedded from `Templates/`.
    public init() throws {
        var library: [String: TextTemplate] = [:]
        for (key, text) in EmbeddedResources.files where key.hasPrefix("Templates/") && key.hasSuffix(".mustache") {
            let name = String(key.dropFirst("Templates/".count).dropLast(".mustache".count))
            do {
                library[name] = try TextTemplate(text)
            } catch {
                throw RenderError.badTemplate(name, "\(error)")
            }
        }
        self.library = library
    }

    /// Renders every file of `plan`: `<domain>.cfg`, `<domain>.json`, `cpupool-<pool>.cfg`, `plan.json`.
    public func render(_ plan: Plan) throws -> RenderedPlan {
        var files: [RenderedPlan.File] = []
        for pool in plan.cpupools {
            files.append(
                .init(
                    path: "cpupool-\(pool.name).cfg",
                    contents: try render(
                        template: "cpupool.cfg",
                        [
                            "name": pool.name, "scheduler": pool.scheduler, "topology": plan.topology, "version": IOVMVersion.current,
                            "cpuList": pool.cpus.cores.map { "\"\($0)\"" }.joined(separator: ", "),
                        ])))
        }
        for domain in plan.domains {
            files.append(.init(path: "\(domain.name).cfg", contents: try xlConfig(domain, plan: plan)))
            files.append(.init(path: "\(domain.name).json", contents: try Self.libxlJSON(domain)))
        }
        files.append(.init(path: "plan.json", contents: try JSONText.pretty(plan) + "\n"))
        return RenderedPlan(files: files)
    }

    /// The libxl domain config of one domain, as JSON for `libxl_domain_config_from_json`.
    public static func libxlJSON(_ domain: DomainSpec) throws -> String {
        try LibXLDomainConfig(domain).jsonString()
    }

    /// ``libxlJSON(_:)`` of every domain of `plan`, by name: what ``IOVMControl`` apply takes.
    public static func libxlJSON(of plan: Plan) throws -> [String: String] {
        var json: [String: String] = [:]
        for domain in plan.domains { json[domain.name] = try libxlJSON(domain) }
        return json
    }

    /// One vif of a domain as a libxl `libxl_device_nic`, as JSON for `libxl_device_nic_from_json`:
    /// what re-attaches vif `devid` of a running guest to its (new) backend, with the same MAC and bridge.
    public static func libxlNICJSON(_ vif: VifSpec, devid: Int) throws -> String {
        try JSONText.pretty(LibXLDomainConfig.NIC(vif, devid: devid)) + "\n"
    }

    /// The xl.cfg text of one domain.
    public func xlConfig(_ domain: DomainSpec, plan: Plan) throws -> String {
        var context: [String: any Sendable] = [
            "name": domain.name,
            "roleTitle": domain.role == .iovm ? "IOVM" : "Guest",
            "topology": plan.topology,
            "configuration": plan.configuration.title,
            "placement": plan.placement.title,
            "version": IOVMVersion.current,
            "source": domain.source?.description ?? plan.source?.description ?? "a JSON topology",
            "kernel": domain.kernel,
            "cmdline": domain.cmdline,
            "memory": domain.memoryMiB,
            "vcpus": domain.vcpus,
            "weight": domain.weight,
            "cap": domain.cap,
            "driverDomain": domain.driverDomain,
        ]
        if let ramdisk = domain.ramdisk { context["ramdisk"] = ramdisk }
        if let image = domain.image { context["image"] = image.summary }
        if let cpus = domain.hardAffinity { context["cpus"] = cpus.description }
        if let soft = domain.softAffinity { context["cpusSoft"] = soft.description }
        if domain.cpupool != Planner.defaultPool { context["pool"] = domain.cpupool }
        if !domain.disks.isEmpty { context["diskList"] = domain.disks.map { "'\($0.spec)'" }.joined(separator: ", ") }
        if !domain.nics.isEmpty { context["pciList"] = domain.pci.map { "'\($0)'" }.joined(separator: ", ") }
        if !domain.vifs.isEmpty {
            context["vifList"] = domain.vifs.map { vif in
                var parts = ["mac=\(vif.mac)", "bridge=\(vif.bridge)"]
                if let backend = vif.backend { parts.append("backend=\(backend)") }
                if let script = vif.script { parts.append("script=\(script)") }
                return "'" + parts.joined(separator: ",") + "'"
            }.joined(separator: ", ")
        }
        return try render(template: "xl-domain.cfg", context)
    }

    private func render(template name: String, _ context: [String: any Sendable]) throws -> String {
        guard let template = library[name] else { throw RenderError.missingTemplate(name) }
        return template.render(context)
    }
}

/// A domain's config in the JSON shape of libxl's `libxl_domain_config` (libxl_types.idl, Xen 4.17),
/// as `libxl_domain_config_from_json` reads it and `xl create -n` prints it.
struct LibXLDomainConfig: Encodable {
    struct CreateInfo: Encodable {
        var type = "pv"
        var name: String
        var driver_domain: String?
        var pool_name: String?
    }
    struct SchedParams: Encodable {
        var weight: Int
        var cap: Int
        /// rtds: microseconds (absent under credit and credit2, so their configs stay as they were).
        var period: Int? = nil
        var budget: Int? = nil
        var extratime: Int? = nil
    }
    struct BuildInfo: Encodable {
        var max_vcpus: Int
        var avail_vcpus: [Int]
        var vcpu_hard_affinity: [[Int]]?
        var vcpu_soft_affinity: [[Int]]?
        var max_memkb: Int
        var target_memkb: Int
        var sched_params: SchedParams
        var kernel: String
        var cmdline: String
        var ramdisk: String?
        var typePV: [String: String] = [:]
        enum CodingKeys: String, CodingKey {
            case max_vcpus, avail_vcpus, vcpu_hard_affinity, vcpu_soft_affinity, max_memkb, target_memkb
            case sched_params, kernel, cmdline, ramdisk
            case typePV = "type.pv"
        }
    }
    struct NIC: Encodable {
        var backend_domname: String?
        var bridge: String
        var mac: String
        var script: String?
        var nictype = "vif"
        /// Set only for a vif added to a running domain (`libxl_device_nic_add`), where it keeps the old one's.
        var devid: Int? = nil

        init(_ vif: VifSpec, devid: Int? = nil) {
            backend_domname = vif.backend
            bridge = vif.bridge
            mac = vif.mac
            script = vif.script
            self.devid = devid
        }
    }
    struct Disk: Encodable {
        var pdev_path: String
        var vdev: String
        var format: String
        var readwrite: Int
    }
    struct PCI: Encodable {
        var domain: Int
        var bus: Int
        var dev: Int
        var `func`: Int
    }

    var c_info: CreateInfo
    var b_info: BuildInfo
    var disks: [Disk]
    var nics: [NIC]
    var pcidevs: [PCI]
    var on_poweroff = "destroy"
    var on_reboot = "restart"
    var on_crash = "destroy"

    init(_ domain: DomainSpec) {
        let kib = domain.memoryMiB * 1024
        c_info = CreateInfo(
            name: domain.name, driver_domain: domain.driverDomain ? "True" : nil,
            pool_name: domain.cpupool == Planner.defaultPool ? nil : domain.cpupool)
        b_info = BuildInfo(
            max_vcpus: domain.vcpus,
            avail_vcpus: Array(0..<domain.vcpus),
            vcpu_hard_affinity: domain.hardAffinity.map { cpus in Array(repeating: cpus.cores, count: domain.vcpus) },
            vcpu_soft_affinity: domain.softAffinity.map { cpus in Array(repeating: cpus.cores, count: domain.vcpus) },
            max_memkb: kib, target_memkb: kib,
            sched_params: SchedParams(
                weight: domain.weight, cap: domain.cap, period: domain.rtds?.periodMicroseconds, budget: domain.rtds?.budgetMicroseconds,
                extratime: domain.rtds.map { $0.extratime ? 1 : 0 }),
            kernel: domain.kernel, cmdline: domain.cmdline, ramdisk: domain.ramdisk)
        disks = domain.disks.map { Disk(pdev_path: $0.target, vdev: $0.vdev, format: $0.format, readwrite: $0.readWrite ? 1 : 0) }
        nics = domain.vifs.map { NIC($0) }
        pcidevs = domain.pci.map { PCI(domain: Int($0.domain), bus: Int($0.bus), dev: Int($0.device), func: Int($0.function)) }
    }

    func jsonString() throws -> String {
        try JSONText.pretty(self) + "\n"
    }
}
