import IOVMWireFormat

// Checks of names, texts and resources that are not part of deriving anything.
extension PlanningRun {
    // MARK: Names and values

    mutating func checkName(_ name: String, what: String, at location: SourceLocation?) {
        let allowed = name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }
        // Names become file names (`render`) and console logs: no leading '-' or '.', so never "." or "..".
        if name.isEmpty || !allowed || name.first == "-" || name.first == "." || name.count > 64 {
            diagnostics.error(
                "\(what) name \"\(name)\" is not a valid domain name (use letters, digits, '_', '.', '-'; at most 64; not starting with '-' or '.')", at: location)
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
}
