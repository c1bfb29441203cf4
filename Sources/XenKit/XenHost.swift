#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Cheap checks of whether this kernel runs under Xen, made before touching the C libraries so
/// that a non-Xen machine gets a clear ``XenError/notXenDom0(reason:)`` and no libxl log noise.
public enum XenHost {
    /// Throws ``XenError/notXenDom0(reason:)`` unless this kernel runs under Xen as dom0.
    ///
    /// Checks, in order: `/proc/xen` or `/dev/xen` exists; when xenfs is mounted,
    /// `/proc/xen/capabilities` contains `control_d` (a domU's is empty); a privcmd device
    /// (`/dev/xen/privcmd` or `/proc/xen/privcmd`) exists.
    public static func requireDom0() throws(XenError) {
        try requireXen()
        if let capabilities = readSmallFile("/proc/xen/capabilities"),
            !capabilities.contains("control_d")
        {
            throw XenError.notXenDom0(reason: "/proc/xen/capabilities has no control_d: this is a Xen guest, not dom0")
        }
        guard exists("/dev/xen/privcmd") || exists("/proc/xen/privcmd") else {
            throw XenError.notXenDom0(reason: "no /dev/xen/privcmd or /proc/xen/privcmd")
        }
    }

    /// Throws ``XenError/notXenDom0(reason:)`` unless this kernel runs under Xen at all (dom0 or a
    /// guest such as a driver domain): `/proc/xen` or `/dev/xen` must exist.
    public static func requireXen() throws(XenError) {
        guard exists("/proc/xen") || exists("/dev/xen") else {
            throw XenError.notXenDom0(reason: "no /proc/xen and no /dev/xen: this kernel is not running under Xen")
        }
    }

    static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 4096)
        let count = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count >= 0 else { return nil }
        return String(decoding: bytes[0..<count], as: UTF8.self)
    }
}
