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
