import IOVMWireFormat

// The paper's configurations (Section 2.1) as generators of IOVMs, and the guests' backends.
extension PlanningRun {
    // MARK: Configurations (Section 2.1)

    mutating func parseNIC(_ nic: NICDocument, owner: String) -> PCIAddress? {
        guard let address = PCIAddress(nic.pci) else {
            diagnostics.emit(.notAPCIAddress(nic.pci, of: owner, at: nic.source))
            return nil
        }
        if let driver = nic.driver, !KernelConfig.nicDrivers.contains(driver) {
            diagnostics.emit(.unknownNICDriver(driver, nic: nic.pci, known: KernelConfig.nicDrivers, at: nic.source))
        }
        return address
    }

    mutating func generateIOVMs() -> (iovms: [IOVMDraft], dom0NICs: [PlacedNIC]) {
        let configuration = document.configuration
        var claimed: [PCIAddress: String] = [:]

        func claim(_ address: PCIAddress, by owner: String, at location: SourceLocation?, into diagnostics: inout DiagnosticCollector) -> Bool {
            if let first = claimed[address] {
                diagnostics.emit(.nicClaimedTwice(address, first: first, second: owner, at: location))
                return false
            }
            claimed[address] = owner
            return true
        }

        if configuration.kind == .explicit {
            for nic in document.nics {
                diagnostics.emit(.unplacedNIC(nic.pci, at: nic.source))
            }
            var iovms: [IOVMDraft] = []
            for iovm in document.iovms {
                var nics: [PlacedNIC] = []
                for (index, nic) in iovm.nics.enumerated() {
                    guard let address = parseNIC(nic, owner: "IOVM \(iovm.name)") else { continue }
                    guard claim(address, by: "IOVM \(iovm.name)", at: nic.source, into: &diagnostics) else { continue }
                    nics.append(PlacedNIC(pci: address, bridge: nic.bridge ?? "br\(index)", driver: nic.driver, source: nic.source))
                }
                if iovm.nics.isEmpty {
                    diagnostics.emit(.iovmWithoutNIC(iovm.name, at: iovm.source))
                }
                iovms.append(IOVMDraft(name: iovm.name, resources: iovm.resources, nics: nics, source: iovm.source))
            }
            return (iovms, [])
        }

        for iovm in document.iovms {
            diagnostics.emit(.iovmBesideGenerator(iovm.name, configuration: configuration.kind.rawValue, at: iovm.source))
        }
        var nics: [PlacedNIC] = []
        for nic in document.nics {
            guard let address = parseNIC(nic, owner: "the topology") else { continue }
            guard claim(address, by: "the \(configuration.kind.title) configuration", at: nic.source, into: &diagnostics) else { continue }
            nics.append(PlacedNIC(pci: address, bridge: nic.bridge ?? "", driver: nic.driver, source: nic.source))
        }
        if nics.isEmpty && configuration.kind != .centralized {
            diagnostics.emit(.generatorWithoutNICs(configuration.kind.rawValue, at: configuration.source))
            return ([], [])
        }

        var groups: [[PlacedNIC]]
        switch configuration.kind {
        case .explicit: groups = []  // handled above
        case .centralized:
            let dom0NICs = nics.enumerated().map { index, nic in
                PlacedNIC(pci: nic.pci, bridge: nic.bridge.isEmpty ? "xenbr\(index)" : nic.bridge, driver: nic.driver, source: nic.source)
            }
            return ([], dom0NICs)
        case .monolithic:
            groups = [nics]
        case .multipleSmall:
            groups = nics.map { [$0] }
        case .hybrid:
            let count = configuration.groups ?? 0
            guard count >= 1 && count <= nics.count else {
                diagnostics.emit(.hybridGroupCount(count, nics: nics.count, at: configuration.source))
                return ([], [])
            }
            if count == 1 {
                diagnostics.emit(.hybridIsMonolithic(at: configuration.source))
            } else if count == nics.count {
                diagnostics.emit(.hybridIsMultipleSmall(at: configuration.source))
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
                name: "iovm\(firstGeneratedIOVM + index)",
                resources: DomainResources(),
                nics: group.enumerated().map { slot, nic in
                    PlacedNIC(pci: nic.pci, bridge: nic.bridge.isEmpty ? "br\(slot)" : nic.bridge, driver: nic.driver, source: nic.source)
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
                    diagnostics.emit(.guestNICNotAPCIAddress(guest.name, text, at: guest.source))
                    continue
                }
                guard owner[address] != nil else {
                    diagnostics.emit(.guestNICUnknown(guest.name, address, generated: generated, at: guest.source))
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
                    diagnostics.emit(.unknownBackend(guest.name, named, known: iovms.map(\.name), at: guest.source))
                    continue
                }
                if let address = nicAddress, owner[address]?.iovm != backend {
                    diagnostics.emit(
                        .nicOfAnotherBackend(guest.name, address, owner: owner[address]?.iovm ?? "Domain-0", backend: backend ?? "Domain-0", at: guest.source))
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
                diagnostics.emit(.noBackend(guest.name, iovms: iovms.count, at: guest.source))
                continue
            }
            if centralized && backend != nil {
                diagnostics.emit(.backendInCentralized(guest.name, backend!, at: guest.source))
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
