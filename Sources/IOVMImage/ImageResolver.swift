import IOVMCore

/// Points the IOVMs that boot an iovm image at the store's files: works out each one's NIC drivers,
/// finds the image built for them, and fills in `kernel` and `ramdisk`. What cannot be resolved is
/// recorded on the domain (``ImageUse/problem``) with the command that fixes it.
public struct ImageResolver: Sendable {
    /// The store to look in.
    public var store: ImageStore
    /// The host's PCI-id → driver table (nil: none, so NICs must declare `driver:`).
    public var table: NICDriverTable?
    /// The vendor:device ids of a NIC on this host, nil when it is not here.
    public var ids: @Sendable (PCIAddress) -> String?
    /// The command that builds a missing image for these drivers, for the messages (`iovm image build lab.swift`).
    public var buildCommand: @Sendable ([String]) -> String

    /// A resolver over `store`.
    public init(
        store: ImageStore, table: NICDriverTable?, ids: @escaping @Sendable (PCIAddress) -> String?, buildCommand: @escaping @Sendable ([String]) -> String
    ) {
        self.store = store
        self.table = table
        self.ids = ids
        self.buildCommand = buildCommand
    }

    /// `plan` with every image IOVM's kernel and ramdisk from the store, or its problem recorded.
    public func resolve(_ plan: Plan) -> Plan {
        var plan = plan
        var listed: [StoredImageSummary]?  // the store's images, read once for all the IOVMs
        for index in plan.domains.indices {
            guard var image = plan.domains[index].image else { continue }
            var drivers: Set<String> = []
            var problems: [String] = []
            for nic in plan.domains[index].nics {
                if let declared = nic.driver {
                    drivers.insert(declared)
                } else if let found = ids(nic.pci) {
                    if let driver = table?.driver(for: found) {
                        drivers.insert(driver)
                    } else {
                        problems.append(
                            "NIC \(nic.pci) (\(found)) is driven by none of the drivers with an IOVM kernel fragment (supported: \(KernelConfig.nicDrivers.joined(separator: ", ")))"
                        )
                    }
                } else {
                    problems.append("NIC \(nic.pci) is not on this host: name its driver, NIC(\"\(nic.pci)\", driver: \"e1000\")")
                }
            }
            for driver in drivers where !KernelConfig.nicDrivers.contains(driver) {
                problems.append(ImageError.unknownDriver(driver, known: KernelConfig.nicDrivers).description)
            }
            image.nicDrivers = drivers.sorted()
            if problems.isEmpty {
                let images = listed ?? store.summaries()
                listed = images
                if let found = store.find(nicDrivers: drivers.sorted(), among: images) {
                    image.hash = found.manifest.hash
                    plan.domains[index].kernel = found.kernel
                    if plan.domains[index].ramdisk == nil { plan.domains[index].ramdisk = found.ramdisk }
                } else {
                    problems.append(ImageError.notBuilt(drivers: drivers.sorted(), store: store.root, command: buildCommand(drivers.sorted())).description)
                }
            }
            image.problem = problems.isEmpty ? nil : problems.joined(separator: "; ")
            plan.domains[index].image = image
        }
        return plan
    }
}
