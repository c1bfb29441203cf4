import IOVMWireFormat

// Checks of names, texts and resources that are not part of deriving anything.
extension PlanningRun {
    // MARK: Names and values

    mutating func checkName(_ name: String, what: String, at location: SourceLocation?) {
        let allowed = name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }
        // Names become file names (`render`) and console logs: no leading '-' or '.', so never "." or "..".
        if name.isEmpty || !allowed || name.first == "-" || name.first == "." || name.count > 64 {
            diagnostics.emit(.invalidName(name, what: what, at: location))
        } else if dom0Names.contains(name) {
            diagnostics.emit(.dom0Name(name, what: what, at: location))
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
                diagnostics.emit(.duplicateName(name, first: first, at: location))
            } else {
                seen[name] = location
            }
        }
    }

    mutating func checkText(_ value: String?, field: String, of domain: String, at location: SourceLocation?) {
        guard let value else { return }
        // By Unicode scalar, not Character: "\r\n", or a quote with a combining mark after it, is one Character.
        // A tab passes: xl.cfg's strings carry it.
        if value.unicodeScalars.contains(where: { "\"'\\".unicodeScalars.contains($0) || ($0.properties.generalCategory == .control && $0 != "\t") }) {
            diagnostics.emit(.textXLCannotCarry(field, of: domain, value: value, at: location))
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
            diagnostics.emit(.invalidVifScript(script, at: defaults?.source))
        }
    }

    mutating func checkBridge(_ bridge: String, of domain: String, at location: SourceLocation?) {
        let ok =
            !bridge.isEmpty && bridge.count <= 15
            && bridge.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }
        if !ok { diagnostics.emit(.invalidBridge(bridge, of: domain, at: location)) }
    }

    mutating func checkResources(_ domains: [DomainSpec], host: HostShape) {
        for domain in domains {
            let what = "\(domain.role == .iovm ? "IOVM" : "guest") \(domain.name)"
            if domain.vcpus > host.cores {
                diagnostics.emit(.moreVCPUsThanCores(what, vcpus: domain.vcpus, cores: host.cores, at: domain.source))
            }
            if let pinned = domain.hardAffinity {
                if pinned.cores.isEmpty {
                    diagnostics.emit(.pinnedToNoCore(what, at: domain.source))
                }
                for core in pinned.cores where !(0..<host.cores).contains(core) {
                    diagnostics.emit(.pinnedToMissingCore(what, core: core, cores: host.cores, at: domain.source))
                }
                for core in pinned.cores where host.reservedCores.contains(core) {
                    diagnostics.emit(.pinnedToReservedCore(what, core: core, at: domain.source))
                }
            }
        }
        // A figure out of range has its own error already; the total would only repeat it (and overflow).
        let inRange = (0...Planner.maximumMemoryMiB)
        if let memory = host.memoryMiB, inRange.contains(memory), inRange.contains(host.dom0MemoryMiB ?? 0),
            domains.allSatisfy({ inRange.contains($0.memoryMiB) })
        {
            // At most 64 TiB each: the sum of any number of them fits in an Int.
            let domainsTotal = domains.reduce(0) { $0 + $1.memoryMiB }
            let dom0 = host.dom0MemoryMiB ?? 0
            if domainsTotal > memory - dom0 {
                diagnostics.emit(.memoryOvercommitted(needed: domainsTotal, dom0: dom0, host: memory, at: document.host?.source ?? document.source))
            }
        }
    }
}
