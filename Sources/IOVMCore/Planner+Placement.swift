import CPUSets
import IOVMWireFormat

// Core assignment: the placement schemes of Table 2 (Sections 4.4-4.5).
extension PlanningRun {
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
            diagnostics.emit(.placementWithoutIOVMs(placement.kind.title, at: location))
            return []
        }
        if placement.dedicatedPool == true && placement.kind != .iovmAffinity {
            diagnostics.emit(.dedicatedPoolOutsideAffinity(at: location))
        }

        switch placement.kind {
        case .credit:
            return []

        case .coLocate:
            guard iovms.count <= available.count else {
                diagnostics.emit(.coLocateCores(iovms: iovms.count, available: available.count, reserved: reservedText, at: location))
                return []
            }
            for (index, iovm) in iovmNames.enumerated() {
                setAffinity(iovm, [available[index]])
                for guest in guestsOf(iovm) { setAffinity(guest, [available[index]]) }
            }
            for guest in guests where guest.backend == nil {
                diagnostics.emit(.coLocateDom0Guest(guest.document.name, at: guest.document.source))
            }
            return []

        case .separate:
            let needed = max(iovms.count, 2)
            guard needed <= available.count else {
                diagnostics.emit(.separateCores(iovms: iovms.count, needed: needed, available: available.count, reserved: reservedText, at: location))
                return []
            }
            if iovms.count == 1 {
                diagnostics.emit(.separateWithOneIOVM(at: location))
            }
            for (index, iovm) in iovmNames.enumerated() {
                setAffinity(iovm, [available[index]])
                let guestCore = available[(index + 1) % needed]
                for guest in guestsOf(iovm) { setAffinity(guest, [guestCore]) }
            }
            return []

        case .iovmAffinity:
            guard available.count >= 2 else {
                diagnostics.emit(.affinityCores(available: available.count, reserved: reservedText, at: location))
                return []
            }
            let iovmCore = available[0]
            let guestCores = Array(available.dropFirst())
            for iovm in iovmNames { setAffinity(iovm, [iovmCore]) }
            if guests.count > guestCores.count {
                diagnostics.emit(.affinityGuestsShare(guests: guests.count, cores: guestCores.count, at: location))
            }
            for (index, guest) in guests.enumerated() { setAffinity(guest.document.name, [guestCores[index % guestCores.count]]) }
            guard placement.dedicatedPool == true else { return [] }
            let poolName = placement.poolName ?? "iovm-pool"
            checkName(poolName, what: "cpupool", at: location)
            if poolName == Planner.defaultPool { diagnostics.emit(.dedicatedPoolIsPool0(at: location)) }
            for index in domains.indices where domains[index].role == .iovm { domains[index].cpupool = poolName }
            // The topology's scheduler; credit, the paper's, when it names none.
            return [CPUPoolSpec(name: poolName, scheduler: document.host?.scheduler ?? "credit", cpus: [iovmCore])]

        case .hybridPinned:
            guard iovms.count + 1 <= available.count else {
                diagnostics.emit(.hybridPinnedCores(iovms: iovms.count, available: available.count, reserved: reservedText, at: location))
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
