import CLibXen
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// Reads Xen's hypervisor file system (hypfs, `xenhypfs cat`): build facts such as `/buildinfo/config`, the
/// hypervisor's Kconfig, which says the schedulers Xen was built with.
public enum XenHypervisorFS {
    /// The text of the hypfs node `path` (compressed nodes come back decompressed).
    ///
    /// - Throws: ``XenError`` when hypfs cannot be opened (no privcmd, or a Xen without hypfs) or has no `path`.
    public static func read(_ path: String) throws(XenError) -> String {
        try XenLibraries.load(.xenhypfs)
        let handle = try LibXLCalls.pointer("xenhypfs_open", operation: "xenhypfs_open", detail: "Xen's hypervisor file system cannot be opened") {
            xenhypfs_open(nil, 0)
        }
        defer { xenhypfs_close(handle) }
        let text = try LibXLCalls.pointer("xenhypfs_read", operation: "xenhypfs_read \(path)", detail: "no such node, or Xen without hypfs") {
            xenhypfs_read(handle, path)
        }
        defer { free(text) }
        return String(cString: text)
    }
}
