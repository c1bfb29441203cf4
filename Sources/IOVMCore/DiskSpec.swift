/// A virtual disk in xl's positional syntax: `[phy:|file:]TARGET,VDEV,ACCESS` or `TARGET,FORMAT,VDEV,ACCESS`.
public struct DiskSpec: Sendable, Codable, Equatable, CustomStringConvertible {
    /// The text as written.
    public var spec: String
    /// Device or file in dom0 (or the backend domain).
    public var target: String
    /// Disk image format (`raw`, `qcow2`, …).
    public var format: String
    /// Device name in the guest (`xvda`).
    public var vdev: String
    /// Whether the guest may write.
    public var readWrite: Bool

    /// Parses `spec`; nil when it is not one of the positional forms above.
    public init?(_ spec: String) {
        let parts = spec.split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmingWhitespace() }
        var target: String
        var format = "raw"
        let vdev: String
        let access: String
        switch parts.count {
        case 3: (target, vdev, access) = (parts[0], parts[1], parts[2])
        case 4: (target, format, vdev, access) = (parts[0], parts[1].isEmpty ? "raw" : parts[1], parts[2], parts[3])
        default: return nil
        }
        // The old `phy:`/`file:` prefixes name no backend: libxl picks one, as xl does.
        for prefix in ["phy:", "file:"] where target.hasPrefix(prefix) { target.removeFirst(prefix.count) }
        let accessModes = ["r": false, "ro": false, "w": true, "rw": true]
        guard !target.isEmpty, target.hasPrefix("/"), !vdev.isEmpty, vdev.allSatisfy({ $0.isLetter || $0.isNumber }),
            let readWrite = accessModes[access.isEmpty ? "rw" : access],
            ["raw", "qcow", "qcow2", "vhd", "qed"].contains(format)
        else { return nil }
        self.spec = spec
        self.target = target
        self.format = format
        self.vdev = vdev
        self.readWrite = readWrite
    }

    /// The text as written.
    public var description: String { spec }
}
