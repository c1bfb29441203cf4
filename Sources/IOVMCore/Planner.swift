public import IOVMWireFormat

/// Turns a topology document into a ``Plan``: checks it, derives the IOVMs of the
/// paper's configurations, assigns cores by the placement scheme and fills in
/// every domain's spec. Nothing on the host is touched.
public struct Planner: Sendable {
    /// The default memory of IOVMs and guests (the paper's 256 MB).
    public static let defaultMemoryMiB = 256
    /// Credit scheduler default weight.
    public static let defaultWeight = 256
    /// Pool-0, where every domain goes unless a placement makes a pool.
    public static let defaultPool = "Pool-0"

    /// Host to plan for when the document declares none (e.g. `--host-cores`, or what Xen reports).
    public var hostOverride: HostShape?

    /// Creates a planner.
    public init(hostOverride: HostShape? = nil) {
        self.hostOverride = hostOverride
    }

    /// Checks `document` and plans it; throws ``TopologyError/invalid(_:)`` listing every error found.
    public func plan(_ document: TopologyDocument) throws(TopologyError) -> Plan {
        var run = PlanningRun(document: document, hostOverride: hostOverride)
        return try run.plan()
    }
}

private let dom0Names: Set<String> = ["Domain-0", "dom0", "Dom0"]

/// One planning pass; collects diagnostics as it goes.
private struct PlanningRun {
    let document: TopologyDocument
    let hostOverride: HostShape?
    var diagnostics = DiagnosticCollector()

    init(document: TopologyDocument, hostOverride: HostShape?) {
        self.document = document
        self.hostOverride = hostOverride
    }

    /// An IOVM after configuration generation, before core assignment.
    struct IOVMDraft {
        var name: String
        var resources: DomainResources
        var nics: [PlacedNIC]
        var source: SourceLocation?
    }

    /// A guest after backend resolution.
    struct GuestDraft {
        var document: GuestDocument
        var backend: String?  // nil = dom0
        var nic: PCIAddress?
        var bridge: String
    }

    mutating func plan() throws(TopologyError) -> Plan {
        let top = document.source
        if document.schemaVersion != TopologyDocument.currentSchemaVersion {
            diagnostics.error("schema version \(document.schemaVersion) is not supported (this iovm reads version \(TopologyDocument.currentSchemaVersion))", at: top)
            throw .invalid(diagnostics.diagnostics)
        }
        checkName(document.name, what: "topology", at: top)
        checkVifScript(document.defaults)

        let host = resolveHost()
        let (iovms, dom0NICs) = generateIOVMs()
        let guests = resolveGuests(iovms: iovms, dom0NICs: dom0NICs)
        checkNames(iovms: iovms, guests: guests)

        var domains: [DomainSpec] = []
        for iovm in iovms { domains.append(iovmSpec(iovm, backs: guests.filter { $0.backend == iovm.name }.map(\.document.name))) }
        var macs: [String: String] = [:]
        for guest in guests {
            let spec = guestSpec(guest)
            for vif in spec.vifs {
                if let other = macs[vif.mac], other != spec.name {  // a repeated name is reported already
                    diagnostics.error("guest \(spec.name) has MAC \(vif.mac), which guest \(other) has already", at: spec.source)
                }
                macs[vif.mac] = spec.name
            }
            domains.append(spec)
        }

        var cpupools: [CPUPoolSpec] = []
        if let host {
            checkResources(domains, host: host)
            cpupools = place(&domains, host: host, iovms: iovms, guests: guests)
        }
        if diagnostics.hasErrors || host == nil { throw .invalid(diagnostics.diagnostics) }

        let iovmNames = domains.filter { $0.role == .iovm }.map(\.name)
        let guestNames = domains.filter { $0.role == .guest }.map(\.name)
        return Plan(
            formatVersion: Plan.currentFormatVersion,
            topology: document.name,
            source: top,
            declaredConfiguration: document.configuration.kind,
            configuration: effectiveConfiguration(iovms: iovms),
            placement: document.placement.kind,
            host: host!,
            cpupools: cpupools,
            domains: domains,
            stages: [iovmNames, guestNames].filter { !$0.isEmpty },
            warnings: diagnostics.warnings)
    }

    // MARK: Host

    mutating func resolveHost() -> HostShape? {
        let declared = document.host
        let location = declared?.source ?? document.source
        guard let cores = hostOverride?.cores ?? declared?.cores else {
            diagnostics.error("no host shape: declare Host(cores:memory:) in the topology or pass --host-cores (on a Xen dom0 iovm reads it from Xen)", at: location)
            return nil
        }
        guard cores >= 1 else {
            diagnostics.error("the host has \(cores) cores; it needs at least 1", at: location)
            return nil
        }
        let memory = hostOverride?.memoryMiB ?? declared?.memoryMiB
        if let memory, memory <= 0 { diagnostics.error("host memory must be positive, not \(memory) MiB", at: location) }
        let reserved = declared?.reservedCores ?? hostOverride?.reservedCores.cores ?? []
        for core in reserved where !(0..<cores).contains(core) {
            diagnostics.error("reserved core \(core) does not exist: the host has cores 0-\(cores - 1)", at: location)
        }
        if Set(reserved).count >= cores {
            diagnostics.error("all \(cores) cores are reserved for dom0; placement needs at least one", at: location)
        }
        let scheduler = hostOverride?.scheduler ?? declared?.scheduler ?? "credit2"
        if !["credit", "credit2", "rtds", "null"].contains(scheduler) {
            diagnostics.error("unknown scheduler \"\(scheduler)\" (Xen offers credit, credit2, rtds, null)", at: location)
        }
        return HostShape(
            cores: cores, memoryMiB: memory,
            dom0MemoryMiB: hostOverride?.dom0MemoryMiB ?? declared?.dom0MemoryMiB,
            reservedCores: CPUSet(reserved.filter { (0..<cores).contains($0) }), scheduler: scheduler)
    }

    // MARK: Configurations (Section 2.1)

    mutating func parseNIC(_ nic: NICDocument, owner: String) -> PCIAddress? {
        guard let address = PCIAddress(nic.pci) else {
            diagnostics.error("NIC \"\(nic.pci)\" of \(owner) is not a PCI address (expected DDDD:BB:DD.F, e.g. 0000:03:00.0)", at: nic.source)
            return nil
        }
        return address
    }

    mutating func generateIOVMs() -> (iovms: [IOVMDraft], dom0NICs: [PlacedNIC]) {
        let configuration = document.configuration
        var claimed: [PCIAddress: String] = [:]

        func claim(_ address: PCIAddress, by owner: String, at location: SourceLocation?, into diagnostics: inout DiagnosticCollector) -> Bool {
            if let first = claimed[address] {
                diagnostics.error("NIC \(address) is claimed twice: by \(first) and by \(owner)", at: location)
                return false
            }
            claimed[address] = owner
            return true
        }

        if configuration.kind == .explicit {
            for nic in document.nics {
                diagnostics.error(
                    "NIC \(nic.pci) is declared outside any IOVM and no Configuration generator places it: move it into IOVM(\"…\") { NIC(…) } or add Configuration.monolithic(), .multipleSmall() or .hybrid(groups:)",
                    at: nic.source)
            }
            var iovms: [IOVMDraft] = []
            for iovm in document.iovms {
                var nics: [PlacedNIC] = []
                for (index, nic) in iovm.nics.enumerated() {
                    guard let address = parseNIC(nic, owner: "IOVM \(iovm.name)") else { continue }
                    guard claim(address, by: "IOVM \(iovm.name)", at: nic.source, into: &diagnostics) else { continue }
                    nics.append(PlacedNIC(pci: address, bridge: nic.bridge ?? "br\(index)", source: nic.source))
                }
                if iovm.nics.isEmpty {
                    diagnostics.warning("IOVM \(iovm.name) owns no NIC: its guests reach only each other", at: iovm.source)
                }
                iovms.append(IOVMDraft(name: iovm.name, resources: iovm.resources, nics: nics, source: iovm.source))
            }
            return (iovms, [])
        }

        for iovm in document.iovms {
            diagnostics.error(
                "IOVM \(iovm.name) is declared by hand, but Configuration.\(configuration.kind.rawValue) derives the IOVMs from the NICs: declare NIC(…) at the top level, or drop the Configuration line",
                at: iovm.source)
        }
        var nics: [PlacedNIC] = []
        for nic in document.nics {
            guard let address = parseNIC(nic, owner: "the topology") else { continue }
            guard claim(address, by: "the \(configuration.kind.title) configuration", at: nic.source, into: &diagnostics) else { continue }
            nics.append(PlacedNIC(pci: address, bridge: nic.bridge ?? "", source: nic.source))
        }
        if nics.isEmpty && configuration.kind != .centralized {
            diagnostics.error("Configuration.\(configuration.kind.rawValue) needs at least one NIC(…) to build IOVMs from", at: configuration.source)
            return ([], [])
        }

        var groups: [[PlacedNIC]]
        switch configuration.kind {
        case .explicit: groups = []  // handled above
        case .centralized:
            let dom0NICs = nics.enumerated().map { index, nic in
                PlacedNIC(pci: nic.pci, bridge: nic.bridge.isEmpty ? "xenbr\(index)" : nic.bridge, source: nic.source)
            }
            return ([], dom0NICs)
        case .monolithic:
            groups = [nics]
        case .multipleSmall:
            groups = nics.map { [$0] }
        case .hybrid:
            let count = configuration.groups ?? 0
            guard count >= 1 && count <= nics.count else {
                diagnostics.error(
                    "Configuration.hybrid(groups: \(count)) needs between 1 and \(nics.count) groups for \(nics.count) NIC\(nics.count == 1 ? "" : "s")", at: configuration.source)
                return ([], [])
            }
            if count == 1 {
                diagnostics.warning("hybrid with 1 group is the Monolithic configuration", at: configuration.source)
            } else if count == nics.count {
                diagnostics.warning("hybrid with one group per NIC is the Multiple Small IOVMs configuration", at: configuration.source)
            }
            groups = []
            var start = 0
            for group in 0..<count {
                let size = nics.count / count + (group < nics.count % count ? 1 : 0)
                groups.append(Array(nics[start..<start + size]))
                start += size
            }
        }
        let iovms = groups.enumerated().map { index, group in
            IOVMDraft(
                name: "iovm\(index)",
                resources: DomainResources(),
                nics: group.enumerated().map { slot, nic in
                    PlacedNIC(pci: nic.pci, bridge: nic.bridge.isEmpty ? "br\(slot)" : nic.bridge, source: nic.source)
                },
                source: configuration.source)
        }
        return (iovms, [])
    }

    func effectiveConfiguration(iovms: [IOVMDraft]) -> ConfigurationKind {
        guard document.configuration.kind == .explicit else { return document.configuration.kind }
        if iovms.isEmpty { return .centralized }
        if iovms.count == 1 { return .monolithic }
        if iovms.allSatisfy({ $0.nics.count <= 1 }) { return .multipleSmall }
        return .hybrid
    }

    // MARK: Guests

    mutating func resolveGuests(iovms: [IOVMDraft], dom0NICs: [PlacedNIC]) -> [GuestDraft] {
        let generated = document.configuration.kind != .explicit
        let centralized = document.configuration.kind == .centralized
        var owner: [PCIAddress: (iovm: String?, nic: PlacedNIC)] = [:]
        var orderedNICs: [(iovm: String?, nic: PlacedNIC)] = []
        for iovm in iovms {
            for nic in iovm.nics {
                owner[nic.pci] = (iovm.name, nic)
                orderedNICs.append((iovm.name, nic))
            }
        }
        for nic in dom0NICs {
            owner[nic.pci] = (nil, nic)
            orderedNICs.append((nil, nic))
        }
        let iovmNames = Set(iovms.map(\.name))

        var drafts: [GuestDraft] = []
        for (index, guest) in document.guests.enumerated() {
            var nicAddress: PCIAddress?
            if let text = guest.nic {
                guard let address = PCIAddress(text) else {
                    diagnostics.error("guest \(guest.name) names NIC \"\(text)\", which is not a PCI address (expected DDDD:BB:DD.F)", at: guest.source)
                    continue
                }
                guard owner[address] != nil else {
                    diagnostics.error("guest \(guest.name) uses NIC \(address), which no \(generated ? "NIC(…) declaration" : "IOVM") in the topology has", at: guest.source)
                    continue
                }
                nicAddress = address
            }

            var backend: String?
            if let named = guest.backend {
                if dom0Names.contains(named) {
                    backend = nil
                } else if iovmNames.contains(named) {
                    backend = named
                } else {
                    let known = iovms.map(\.name)
                    let hint = known.isEmpty ? "the topology has no IOVMs" : "known IOVMs: \(known.joined(separator: ", "))"
                    diagnostics.error("guest \(guest.name) is backed by unknown IOVM \"\(named)\" (\(hint))", at: guest.source)
                    continue
                }
                if let address = nicAddress, owner[address]?.iovm != backend {
                    diagnostics.error(
                        "guest \(guest.name) uses NIC \(address), but that NIC belongs to \(owner[address]?.iovm ?? "Domain-0"), not to its backend \(backend ?? "Domain-0")",
                        at: guest.source)
                    continue
                }
            } else if let address = nicAddress {
                backend = owner[address]?.iovm
            } else if generated {
                if let pick = orderedNICs.isEmpty ? nil : orderedNICs[index % orderedNICs.count] {
                    backend = pick.iovm
                    nicAddress = pick.nic.pci
                } else {
                    backend = nil  // centralized without NICs: dom0's default bridge
                }
            } else if iovms.count == 1 {
                backend = iovms[0].name
            } else {
                diagnostics.error(
                    "guest \(guest.name) names no backend: say Guest(\"\(guest.name)\", backend: \"<IOVM>\") or nic: \"<PCI address>\" (the topology has \(iovms.count) IOVMs)",
                    at: guest.source)
                continue
            }
            if centralized && backend != nil {
                diagnostics.error("guest \(guest.name) names backend \(backend!), but the centralized configuration has dom0 as its only driver domain", at: guest.source)
                continue
            }

            let bridge: String
            if let explicit = guest.bridge {
                bridge = explicit
            } else if let address = nicAddress, let nic = owner[address]?.nic {
                bridge = nic.bridge
            } else if let name = backend, let first = iovms.first(where: { $0.name == name })?.nics.first {
                bridge = first.bridge
                nicAddress = first.pci
            } else {
                bridge = backend == nil ? "xenbr0" : "br0"
            }
            drafts.append(GuestDraft(document: guest, backend: backend, nic: nicAddress, bridge: bridge))
        }
        return drafts
    }

    // MARK: Names and values

    mutating func checkName(_ name: String, what: String, at location: SourceLocation?) {
        let allowed = name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }
        if name.isEmpty || !allowed || name.first == "-" || name.count > 64 {
            diagnostics.error("\(what) name \"\(name)\" is not a valid domain name (use letters, digits, '_', '.', '-'; at most 64; not starting with '-')", at: location)
        } else if dom0Names.contains(name) {
            diagnostics.error("\(what) name \"\(name)\" is dom0's", at: location)
        }
    }

    mutating func checkNames(iovms: [IOVMDraft], guests: [GuestDraft]) {
        var seen: [String: SourceLocation?] = [:]
        let all: [(String, String, SourceLocation?)] =
            iovms.map { ("IOVM", $0.name, $0.source) } + guests.map { ("guest", $0.document.name, $0.document.source) }
        for (what, name, location) in all {
            if document.configuration.kind == .explicit || what == "guest" {
                checkName(name, what: what, at: location)
            }
            if let first = seen[name] {
                let place = first.map { " (first declared at \($0))" } ?? ""
                diagnostics.error("duplicate domain name \"\(name)\"\(place)", at: location)
            } else {
                seen[name] = location
            }
        }
    }

    mutating func checkText(_ value: String?, field: String, of domain: String, at location: SourceLocation?) {
        guard let value else { return }
        if value.contains(where: { "\"'\\\n\r".contains($0) }) {
            diagnostics.error("\(field) of \(domain) contains a quote, backslash or newline, which xl.cfg cannot carry: \(value.debugDescription)", at: location)
        }
    }

    /// A hotplug script is a plain file name (in the backend's `/etc/xen/scripts`) or an absolute path:
    /// it goes into xl's comma-separated vif spec and libxl runs it as is.
    mutating func checkVifScript(_ defaults: DefaultsDocument?) {
        guard let script = defaults?.vifScript else { return }
        let characters = script.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_.-/+".contains($0)) }
        let components = script.split(separator: "/", omittingEmptySubsequences: false).dropFirst(script.hasPrefix("/") ? 1 : 0)
        let ok =
            characters && !script.isEmpty && !script.hasSuffix("/")
            && (script.hasPrefix("/") || !script.contains("/")) && !components.contains("..") && !components.contains("")
        if !ok {
            diagnostics.error(
                "vifScript \(script.debugDescription) is not a script name (e.g. \"vif-bridge\") or an absolute path in the IOVM (e.g. \"/etc/xen/scripts/iovm-vif\"): letters, digits, '_', '.', '-', '+' and '/' only, no '..'",
                at: defaults?.source)
        }
    }

    mutating func checkBridge(_ bridge: String, of domain: String, at location: SourceLocation?) {
        let ok =
            !bridge.isEmpty && bridge.count <= 15
            && bridge.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }
        if !ok { diagnostics.error("bridge \"\(bridge)\" of \(domain) is not a Linux interface name (1-15 of letters, digits, '_', '.', '-')", at: location) }
    }

    func resolvedKernel(_ resources: DomainResources, role: DomainRole) -> (kernel: String?, ramdisk: String?, cmdline: String) {
        let defaults = document.defaults
        switch role {
        case .iovm:
            return (
                resources.kernel ?? defaults?.iovmKernel ?? defaults?.kernel,
                resources.ramdisk ?? defaults?.iovmRamdisk ?? defaults?.ramdisk,
                resources.cmdline ?? defaults?.iovmCmdline ?? defaults?.cmdline ?? "console=hvc0"
            )
        case .guest:
            return (
                resources.kernel ?? defaults?.kernel, resources.ramdisk ?? defaults?.ramdisk,
                resources.cmdline ?? defaults?.cmdline ?? "console=hvc0"
            )
        }
    }

    mutating func commonSpec(name: String, role: DomainRole, resources: DomainResources, source: SourceLocation?) -> DomainSpec {
        let defaults = document.defaults
        let scheduling = document.scheduling
        let (kernel, ramdisk, cmdline) = resolvedKernel(resources, role: role)
        let what = role == .iovm ? "IOVM \(name)" : "guest \(name)"
        if kernel == nil {
            diagnostics.error("\(what) has no kernel: give kernel: or Defaults(kernel:)", at: source)
        }
        checkText(kernel, field: "kernel", of: what, at: source)
        checkText(ramdisk, field: "ramdisk", of: what, at: source)
        checkText(cmdline, field: "cmdline", of: what, at: source)
        let memory = resources.memoryMiB ?? (role == .iovm ? defaults?.iovmMemoryMiB : defaults?.guestMemoryMiB) ?? Planner.defaultMemoryMiB
        let vcpus = resources.vcpus ?? (role == .iovm ? defaults?.iovmVCPUs : defaults?.guestVCPUs) ?? 1
        let weight = resources.weight ?? (role == .iovm ? scheduling?.iovmWeight : scheduling?.guestWeight) ?? Planner.defaultWeight
        let cap = resources.cap ?? (role == .iovm ? scheduling?.iovmCap : scheduling?.guestCap) ?? 0
        if memory < 32 {
            diagnostics.error("\(what) has \(memory) MiB of memory; a PV Linux domain needs at least 32", at: source)
        }
        if vcpus < 1 {
            diagnostics.error("\(what) has \(vcpus) vCPUs; it needs at least 1", at: source)
        }
        if !(1...65535).contains(weight) {
            diagnostics.error("credit weight \(weight) of \(what) is out of range 1-65535", at: resources.weight == nil ? scheduling?.source : source)
        }
        if cap < 0 || cap > 100 * max(vcpus, 1) {
            diagnostics.error(
                "credit cap \(cap) of \(what) is out of range 0-\(100 * max(vcpus, 1)) (percent of one pCPU per vCPU)", at: resources.cap == nil ? scheduling?.source : source)
        }
        if role == .iovm && vcpus > 1 {
            diagnostics.warning("IOVM \(name) has \(vcpus) vCPUs; the paper's IOVMs run a uniprocessor kernel because SMP Linux forwarded less efficiently", at: source)
        }
        var disks: [DiskSpec] = []
        for text in resources.disks ?? (role == .iovm ? defaults?.iovmDisks : defaults?.guestDisks) ?? [] {
            checkText(text, field: "disk", of: what, at: source)
            if let disk = DiskSpec(text) {
                if disks.contains(where: { $0.vdev == disk.vdev }) {
                    diagnostics.error("\(what) has two disks named \(disk.vdev)", at: source)
                }
                disks.append(disk)
            } else {
                diagnostics.error("disk \"\(text)\" of \(what) is not [phy:|file:]/PATH,VDEV,ACCESS or /PATH,FORMAT,VDEV,ACCESS (e.g. phy:/dev/vdb,xvda,r)", at: source)
            }
        }
        return DomainSpec(
            name: name, role: role, type: "pv", memoryMiB: memory, vcpus: max(vcpus, 1),
            kernel: kernel ?? "", ramdisk: ramdisk, cmdline: cmdline, disks: disks,
            driverDomain: role == .iovm, nics: [], vifs: [], hardAffinity: resources.cpus.map { CPUSet($0) },
            softAffinity: nil, cpupool: Planner.defaultPool, weight: weight, cap: cap, backs: [], source: source)
    }

    mutating func iovmSpec(_ iovm: IOVMDraft, backs: [String]) -> DomainSpec {
        var spec = commonSpec(name: iovm.name, role: .iovm, resources: iovm.resources, source: iovm.source)
        spec.nics = iovm.nics
        for nic in iovm.nics { checkBridge(nic.bridge, of: "IOVM \(iovm.name)", at: nic.source) }
        spec.backs = backs
        return spec
    }

    mutating func guestSpec(_ guest: GuestDraft) -> DomainSpec {
        let document = guest.document
        var spec = commonSpec(name: document.name, role: .guest, resources: document.resources, source: document.source)
        let mac = document.mac?.lowercased() ?? stableMAC(for: document.name)
        let hexDigits = "0123456789abcdef"
        let octets = mac.split(separator: ":", omittingEmptySubsequences: false)
        let wellFormed = octets.count == 6 && octets.allSatisfy { $0.count == 2 && $0.allSatisfy { hexDigits.contains($0) } }
        if !wellFormed {
            diagnostics.error("MAC \"\(document.mac ?? mac)\" of guest \(document.name) is not six hex octets like 00:16:3e:12:34:56", at: document.source)
        } else if let first = UInt8(octets[0], radix: 16), first & 1 == 1 {
            diagnostics.error("MAC \(mac) of guest \(document.name) is a multicast address", at: document.source)
        }
        checkBridge(guest.bridge, of: "guest \(document.name)", at: document.source)
        // An IOVM runs iovm's lean hotplug script unless the topology names another; dom0 keeps libxl's default.
        let script = self.document.defaults?.vifScript ?? (guest.backend == nil ? nil : VifSpec.iovmScript)
        spec.vifs = [VifSpec(backend: guest.backend, bridge: guest.bridge, mac: mac, nic: guest.nic, script: script)]
        return spec
    }

    /// A MAC in Xen's 00:16:3e range that stays the same for the same topology and guest.
    func stableMAC(for guest: String) -> String {
        let hash = StableHash.fnv1a("\(document.name)/\(guest)")
        let bytes = [UInt8(truncatingIfNeeded: hash >> 16) & 0x7f, UInt8(truncatingIfNeeded: hash >> 8), UInt8(truncatingIfNeeded: hash)]
        return (["00", "16", "3e"] + bytes.map { hex(Int($0), 2) }).joined(separator: ":")
    }

    mutating func checkResources(_ domains: [DomainSpec], host: HostShape) {
        for domain in domains {
            let what = "\(domain.role == .iovm ? "IOVM" : "guest") \(domain.name)"
            if domain.vcpus > host.cores {
                diagnostics.error("\(what) has \(domain.vcpus) vCPUs, more than the host's \(host.cores) cores", at: domain.source)
            }
            if let pinned = domain.hardAffinity {
                if pinned.cores.isEmpty {
                    diagnostics.error("\(what) is pinned to no core (cpus: [])", at: domain.source)
                }
                for core in pinned.cores where !(0..<host.cores).contains(core) {
                    diagnostics.error("\(what) is pinned to core \(core), but the host has cores 0-\(host.cores - 1)", at: domain.source)
                }
                for core in pinned.cores where host.reservedCores.contains(core) {
                    diagnostics.warning("\(what) is pinned to core \(core), which is reserved for dom0", at: domain.source)
                }
            }
        }
        if let memory = host.memoryMiB {
            let domainsTotal = domains.reduce(0) { $0 + $1.memoryMiB }
            let dom0 = host.dom0MemoryMiB ?? 0
            if domainsTotal + dom0 > memory {
                let dom0Text = dom0 > 0 ? " plus \(dom0) MiB for dom0" : ""
                diagnostics.error("the domains need \(domainsTotal) MiB\(dom0Text), more than the host's \(memory) MiB", at: document.host?.source ?? document.source)
            }
        }
    }

    // MARK: Placement (Table 2, Sections 4.4-4.5)

    /// Assigns hard affinity by the placement scheme and returns the cpupools it needs.
    mutating func place(_ domains: inout [DomainSpec], host: HostShape, iovms: [IOVMDraft], guests: [GuestDraft]) -> [CPUPoolSpec] {
        let placement = document.placement
        let location = placement.source ?? document.source
        // Cores iovm may pin to, highest first: the paper pins its IOVMs to cores 3 and 2 and leaves core 0, where dom0 usually runs, to the rest.
        let available = (0..<host.cores).reversed().filter { !host.reservedCores.contains($0) }
        let iovmNames = iovms.map(\.name)
        let reservedText = host.reservedCores.cores.isEmpty ? "" : " (\(host.reservedCores.cores.count) reserved for dom0)"

        func setAffinity(_ name: String, _ cores: [Int]) {
            guard let index = domains.firstIndex(where: { $0.name == name }) else { return }
            if domains[index].hardAffinity == nil { domains[index].hardAffinity = CPUSet(cores) }
        }
        func guestsOf(_ iovm: String) -> [String] {
            guests.filter { $0.backend == iovm }.map(\.document.name)
        }

        if placement.kind != .credit && iovms.isEmpty {
            diagnostics.error(
                "placement \(placement.kind.title) assigns IOVMs to cores, but this topology has none (in the centralized configuration dom0 is the driver domain, and iovm never pins dom0): use Placement.credit()",
                at: location)
            return []
        }
        if placement.dedicatedPool == true && placement.kind != .iovmAffinity {
            diagnostics.error("dedicatedPool applies to Placement.iovmAffinity only", at: location)
        }

        switch placement.kind {
        case .credit:
            return []

        case .coLocate:
            guard iovms.count <= available.count else {
                diagnostics.error(
                    "co-locate puts each IOVM and its guests on a core of their own: \(iovms.count) IOVMs need \(iovms.count) cores, the host has \(available.count)\(reservedText)",
                    at: location)
                return []
            }
            for (index, iovm) in iovmNames.enumerated() {
                setAffinity(iovm, [available[index]])
                for guest in guestsOf(iovm) { setAffinity(guest, [available[index]]) }
            }
            for guest in guests where guest.backend == nil {
                diagnostics.warning("guest \(guest.document.name) is backed by dom0, which co-locate does not pin: it stays unpinned", at: guest.document.source)
            }
            return []

        case .separate:
            let needed = max(iovms.count, 2)
            guard needed <= available.count else {
                diagnostics.error(
                    "separate puts each guest on a different core from its IOVM: \(iovms.count) IOVM\(iovms.count == 1 ? "" : "s") need \(needed) cores, the host has \(available.count)\(reservedText)",
                    at: location)
                return []
            }
            if iovms.count == 1 {
                diagnostics.warning("with one IOVM, separate cannot put a guest with a different IOVM: its guests go to a core of their own", at: location)
            }
            for (index, iovm) in iovmNames.enumerated() {
                setAffinity(iovm, [available[index]])
                let guestCore = available[(index + 1) % needed]
                for guest in guestsOf(iovm) { setAffinity(guest, [guestCore]) }
            }
            return []

        case .iovmAffinity:
            guard available.count >= 2 else {
                diagnostics.error(
                    "IOVM-affinity puts all IOVMs on one core and the guests on the others: it needs 2 cores, the host has \(available.count)\(reservedText)", at: location)
                return []
            }
            let iovmCore = available[0]
            let guestCores = Array(available.dropFirst())
            for iovm in iovmNames { setAffinity(iovm, [iovmCore]) }
            if guests.count > guestCores.count {
                diagnostics.warning("IOVM-affinity gives each guest a core of its own, but \(guests.count) guests share \(guestCores.count) cores", at: location)
            }
            for (index, guest) in guests.enumerated() { setAffinity(guest.document.name, [guestCores[index % guestCores.count]]) }
            guard placement.dedicatedPool == true else { return [] }
            let poolName = placement.poolName ?? "iovm-pool"
            checkName(poolName, what: "cpupool", at: location)
            if poolName == Planner.defaultPool { diagnostics.error("the dedicated cpupool cannot be Pool-0", at: location) }
            for index in domains.indices where domains[index].role == .iovm { domains[index].cpupool = poolName }
            return [CPUPoolSpec(name: poolName, scheduler: "credit", cpus: [iovmCore])]

        case .hybridPinned:
            guard iovms.count + 1 <= available.count else {
                diagnostics.error(
                    "hybrid pinning gives each IOVM a core of its own and leaves the guests at least one: \(iovms.count) IOVMs need \(iovms.count + 1) cores, the host has \(available.count)\(reservedText)",
                    at: location)
                return []
            }
            let iovmCores = Array(available.prefix(iovms.count))
            for (index, iovm) in iovmNames.enumerated() { setAffinity(iovm, [iovmCores[index]]) }
            let rest = available.dropFirst(iovms.count)
            for guest in guests { setAffinity(guest.document.name, Array(rest)) }
            return []
        }
    }
}
