/// `manifest.json` of a built image: what went in, how big it came out, how long it took.
public struct ImageManifest: Codable, Sendable, Equatable {
    /// Version of this JSON format.
    public static let currentFormatVersion = 1

    /// One file of the runtime.
    public struct File: Codable, Sendable, Equatable {
        /// Path in the image.
        public var path: String
        /// Bytes.
        public var size: Int
        /// Where it came from: a path in the sysroot, `Agents/<name>`, or `iovm` for generated files.
        public var from: String
    }

    /// Sizes in bytes.
    public struct Sizes: Codable, Sendable, Equatable {
        /// The uncompressed ELF kernel `xl create` loads.
        public var vmlinux: Int
        /// The compressed kernel.
        public var bzImage: Int
        /// The initramfs file: an uncompressed cpio in images built with `iovm-image 2` among the hash's inputs
        /// (session 33), gzip before.
        public var initrd: Int
        /// The initramfs unpacked (what it takes in the IOVM's RAM).
        public var initrdUnpacked: Int
    }

    /// Version of this JSON format.
    public var formatVersion: Int
    /// The content hash: the directory's name.
    public var hash: String
    /// `minimal`.
    public var kind: String
    /// NIC drivers built into the kernel.
    public var nicDrivers: [String]
    /// The iovm release that built it.
    public var iovmVersion: String
    /// FNV-1a of the kernel fragment, hex: with `nicDrivers` and `iovmVersion`, how `plan` finds the image.
    public var fragmentDigest: String
    /// The kernel source (Debian's package version).
    public var kernelSource: String
    /// `uname -r` of the kernel.
    public var kernelRelease: String
    /// Debian package versions of the runtime's parts, as the sysroot's dpkg database has them.
    public var packages: [String: String]
    /// The sysroot the runtime came from.
    public var sysroot: String
    /// The runtime's files.
    public var files: [File]
    /// Sizes.
    public var sizes: Sizes
    /// Seconds the build took.
    public var buildSeconds: Double
    /// When it was built (ISO 8601).
    public var builtAt: String
    /// The kernel symbols set to y.
    public var enabledSymbols: [String]
}

/// A built image in a store.
public struct StoredImage: Sendable, Equatable {
    /// The image's directory.
    public var directory: String
    /// Its manifest.
    public var manifest: ImageManifest
    /// The kernel `xl create` loads.
    public var kernel: String { directory + "/vmlinux" }
    /// The initramfs.
    public var ramdisk: String { directory + "/initrd.img" }
}
