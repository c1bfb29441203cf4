import IOVMWireFormat

// The paper's configurations (Section 2.1) as generators of IOVMs, and the guests' backends.
extension PlanningRun {
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
}
