extension Plan {
    /// Fingerprint of what an apply of this plan makes of the host: its cpupools and its domains (what each is made
    /// of, placement, weights, caps, pools).
    ///
    /// Where things were declared, warnings and the image store's location are left out: two plannings of the same
    /// topology give the same fingerprint from any path, in JSON or in Swift. An IOVM's image counts by its hash, so a
    /// new image built since is another plan. `iovm apply` records it for the topology; `iovm watch` recovers only with
    /// the plan last applied, so a recovery never undoes a newer apply.
    public var appliedFingerprint: String {
        var lines = ["iovm applied plan v1", "topology \(topology)"]
        for pool in cpupools { lines.append("pool \(pool.name) \(pool.scheduler) \(pool.cpus)") }
        for domain in domains {
            let boot = domain.image?.hash.map { "image \($0)" } ?? "kernel \(domain.kernel) ramdisk \(domain.ramdisk ?? "-")"
            lines.append(
                [
                    "domain \(domain.name) \(domain.role.rawValue) \(domain.type) \(domain.memoryMiB) MiB \(domain.vcpus) vcpus", boot,
                    "cmdline \(domain.cmdline)", "driver-domain \(domain.driverDomain)", "disks \(domain.disks.map(\.spec))",
                    "nics \(domain.nics.map { "\($0.pci)/\($0.bridge)/\($0.driver ?? "-")" })",
                    "vifs \(domain.vifs.map { "\($0.backend ?? "-")/\($0.bridge)/\($0.mac)/\($0.nic.map(\.description) ?? "-")/\($0.script ?? "-")" })",
                    "hard \(domain.hardAffinity.map(\.description) ?? "-") soft \(domain.softAffinity.map(\.description) ?? "-")",
                    "pool \(domain.cpupool) weight \(domain.weight) cap \(domain.cap) rtds \(domain.rtds.map(\.description) ?? "-")",
                    "backs \(domain.backs)",
                ].joined(separator: "; "))
        }
        return String(StableHash.fnv1a(lines.joined(separator: "\n")), radix: 16)
    }
}
