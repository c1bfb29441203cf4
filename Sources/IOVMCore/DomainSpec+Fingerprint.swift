extension DomainSpec {
    /// Fingerprint of the parts that only a new domain can change.
    public var specFingerprint: String {
        var text = "\(type)|\(memoryMiB)|\(vcpus)|\(kernel)|\(ramdisk ?? "")|\(cmdline)|\(driverDomain)|" + disks.map(\.spec).joined(separator: ";")
        text += "|" + pci.map(\.description).joined(separator: ",")
        text += "|" + vifs.map { "\($0.backend ?? "0")/\($0.bridge)/\($0.mac)" }.joined(separator: ",")
        return String(StableHash.fnv1a(text), radix: 16)
    }
}
