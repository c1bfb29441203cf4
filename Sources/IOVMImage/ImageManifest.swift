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

extension ImageManifest {
    /// What choosing an image for an IOVM reads of its manifest (``ImageStore/find(nicDrivers:)``).
    ///
    /// The rest (the runtime's files, the sizes, some 700 kernel symbols) is not decoded: a whole 19 KB manifest was
    /// 3.8 M instructions natively and about 12 ms of a no-op re-apply in dom0 under TCG (issue 16).
    public struct Summary: Decodable, Sendable, Equatable {
        /// Version of the JSON format.
        public var formatVersion: Int
        /// The content hash: the directory's name.
        public var hash: String
        /// NIC drivers built into the kernel.
        public var nicDrivers: [String]
        /// The iovm release that built it.
        public var iovmVersion: String
        /// FNV-1a of the kernel fragment, hex.
        public var fragmentDigest: String
        /// When it was built (ISO 8601).
        public var builtAt: String
    }

    /// Its ``Summary``.
    public var summary: Summary {
        Summary(formatVersion: formatVersion, hash: hash, nicDrivers: nicDrivers, iovmVersion: iovmVersion, fragmentDigest: fragmentDigest, builtAt: builtAt)
    }
}

/// A built image in a store, as choosing one reads it.
public struct StoredImageSummary: Sendable, Equatable {
    /// The image's directory.
    public var directory: String
    /// What its manifest says of it.
    public var manifest: ImageManifest.Summary
    /// The kernel `xl create` loads.
    public var kernel: String { directory + "/vmlinux" }
    /// The initramfs.
    public var ramdisk: String { directory + "/initrd.img" }

    /// The image in `directory`, whose manifest says `manifest`.
    public init(directory: String, manifest: ImageManifest.Summary) {
        self.directory = directory
        self.manifest = manifest
    }
}

/// The fields every form of a manifest has that listing a store reads.
protocol ListedManifest: Decodable {
    var formatVersion: Int { get }
    var builtAt: String { get }
}

extension ImageManifest: ListedManifest {}
extension ImageManifest.Summary: ListedManifest {}
