import CPUSets
import IOVMWireFormat

// Every domain's spec: kernel, memory, vCPUs, weights, disks, NICs, vifs.
extension PlanningRun {
    /// The kernel, ramdisk and command line a domain boots; for an IOVM that names no kernel, the iovm
    /// image instead (`image`): with `Defaults(iovmImage:)`, or when nothing, not even `kernel`, names one.
    func resolvedKernel(_ resources: DomainResources, role: DomainRole) -> (kernel: String?, ramdisk: String?, cmdline: String, image: String?) {
        let defaults = document.defaults
        switch role {
        case .iovm:
            let cmdline = resources.cmdline ?? defaults?.iovmCmdline ?? defaults?.cmdline ?? "console=hvc0"
            if let kernel = resources.kernel ?? defaults?.iovmKernel {
                return (kernel, resources.ramdisk ?? defaults?.iovmRamdisk ?? defaults?.ramdisk, cmdline, nil)
            }
            if let image = defaults?.iovmImage ?? (defaults?.kernel == nil ? Planner.defaultIOVMImage : nil) {
                // The image brings its own initramfs; only a ramdisk named for IOVMs replaces it.
                return (nil, resources.ramdisk ?? defaults?.iovmRamdisk, cmdline, image)
            }
            return (defaults?.kernel, resources.ramdisk ?? defaults?.iovmRamdisk ?? defaults?.ramdisk, cmdline, nil)
        case .guest:
            return (
                resources.kernel ?? defaults?.kernel, resources.ramdisk ?? defaults?.ramdisk,
                resources.cmdline ?? defaults?.cmdline ?? "console=hvc0", nil
            )
        }
    }

    mutating func commonSpec(name: String, role: DomainRole, resources: DomainResources, source: SourceLocation?) -> DomainSpec {
        let defaults = document.defaults
        let scheduling = document.scheduling
        let (kernel, ramdisk, cmdline, image) = resolvedKernel(resources, role: role)
        let what = role == .iovm ? "IOVM \(name)" : "guest \(name)"
        if let image, !Planner.iovmImages.contains(image) {
            diagnostics.emit(.unknownImage(image, of: what, at: defaults?.source ?? source))
        } else if kernel == nil && image == nil {
            diagnostics.emit(.noKernel(what, at: source))
        }
        checkText(kernel, field: "kernel", of: what, at: source)
        checkText(ramdisk, field: "ramdisk", of: what, at: source)
        for (field, path) in [("kernel", kernel), ("ramdisk", ramdisk)] {
            // libxl opens it from wherever the apply runs, and copies to other hosts keep the path: only an absolute one means one file.
            if let path, !path.hasPrefix("/") { diagnostics.emit(.relativePath(field, of: what, path: path, at: source)) }
        }
        checkText(cmdline, field: "cmdline", of: what, at: source)
        let memory =
            resources.memoryMiB ?? (role == .iovm ? defaults?.iovmMemoryMiB : defaults?.guestMemoryMiB)
            ?? (image == nil ? Planner.defaultMemoryMiB : Planner.defaultMinimalIOVMMemoryMiB)
        let vcpus = resources.vcpus ?? (role == .iovm ? defaults?.iovmVCPUs : defaults?.guestVCPUs) ?? 1
        let weight = resources.weight ?? (role == .iovm ? scheduling?.iovmWeight : scheduling?.guestWeight) ?? Planner.defaultWeight
        let cap = resources.cap ?? (role == .iovm ? scheduling?.iovmCap : scheduling?.guestCap) ?? 0
        if memory < 32 {
            diagnostics.emit(.tooLittleMemory(what, memory, at: source))
        } else if memory > Planner.maximumMemoryMiB {
            diagnostics.emit(.tooMuchMemory(what, memory, at: resources.memoryMiB == nil ? defaults?.source : source))
        } else if image != nil && memory < Planner.minimalImageFloorMiB {
            diagnostics.emit(.tooLittleMemoryForImage(what, memory, at: resources.memoryMiB == nil ? defaults?.source : source))
        }
        if vcpus < 1 {
            diagnostics.emit(.tooFewVCPUs(what, vcpus, at: source))
        } else if vcpus > Planner.maximumCores {
            diagnostics.emit(.tooManyVCPUs(what, vcpus, at: source))
        }
        if !Planner.weightRange.contains(weight) {
            diagnostics.emit(.weightOutOfRange(weight, of: what, at: resources.weight == nil ? scheduling?.source : source))
        }
        if cap < 0 || cap > 100 * min(max(vcpus, 1), Planner.maximumCores) {
            diagnostics.emit(.capOutOfRange(cap, of: what, vcpus: vcpus, at: resources.cap == nil ? scheduling?.source : source))
        }
        if role == .iovm && vcpus > 1 {
            diagnostics.emit(.smpIOVM(name, vcpus: vcpus, at: source))
        }
        var disks: [DiskSpec] = []
        for text in resources.disks ?? (role == .iovm ? defaults?.iovmDisks : defaults?.guestDisks) ?? [] {
            checkText(text, field: "disk", of: what, at: source)
            if let disk = DiskSpec(text) {
                if disks.contains(where: { $0.vdev == disk.vdev }) {
                    diagnostics.emit(.duplicateDisk(what, vdev: disk.vdev, at: source))
                }
                disks.append(disk)
            } else {
                diagnostics.emit(.malformedDisk(text, of: what, at: source))
            }
        }
        return DomainSpec(
            name: name, role: role, type: "pv", memoryMiB: memory, vcpus: max(vcpus, 1),
            kernel: kernel ?? "", ramdisk: ramdisk, cmdline: cmdline, disks: disks,
            driverDomain: role == .iovm, nics: [], vifs: [], hardAffinity: resources.cpus.map { CPUSet($0) },
            softAffinity: nil, cpupool: Planner.defaultPool, weight: weight, cap: cap, backs: [], source: source,
            image: image.map { ImageUse(kind: $0) })
    }

    mutating func iovmSpec(_ iovm: IOVMDraft, backs: [String]) -> DomainSpec {
        var spec = commonSpec(name: iovm.name, role: .iovm, resources: iovm.resources, source: iovm.source)
        spec.nics = iovm.nics
        for nic in iovm.nics { checkBridge(nic.bridge, of: "IOVM \(iovm.name)", at: nic.source) }
        if spec.image != nil && !iovm.nics.isEmpty {
            // The image is generic: each IOVM learns its NIC-to-bridge map from its command line.
            spec.cmdline += " iovm.nics=" + iovm.nics.map { "\($0.pci)=\($0.bridge)" }.joined(separator: ",")
        }
        spec.backs = backs
        return spec
    }

    /// The guest's spec; its MAC, when the document gives none, is its ``stableMAC(for:)`` unless `taken` has it: then
    /// that of `name#1`, `name#2`, … (23 bits: two of a few thousand guests share one often enough).
    mutating func guestSpec(_ guest: GuestDraft, avoiding taken: Set<String> = []) -> DomainSpec {
        let document = guest.document
        var spec = commonSpec(name: document.name, role: .guest, resources: document.resources, source: document.source)
        var mac = document.mac?.lowercased() ?? stableMAC(for: document.name)
        if document.mac == nil {
            var attempt = 0
            while taken.contains(mac) && attempt < 1000 {
                attempt += 1
                mac = stableMAC(for: "\(document.name)#\(attempt)")
            }
        }
        let hexDigits = "0123456789abcdef"
        let octets = mac.split(separator: ":", omittingEmptySubsequences: false)
        let wellFormed = octets.count == 6 && octets.allSatisfy { $0.count == 2 && $0.allSatisfy { hexDigits.contains($0) } }
        if !wellFormed {
            diagnostics.emit(.malformedMAC(document.mac ?? mac, guest: document.name, at: document.source))
        } else if let first = UInt8(octets[0], radix: 16), first & 1 == 1 {
            diagnostics.emit(.multicastMAC(mac, guest: document.name, at: document.source))
        } else if octets.allSatisfy({ $0 == "00" }) {
            diagnostics.emit(.zeroMAC(guest: document.name, at: document.source))
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
}
