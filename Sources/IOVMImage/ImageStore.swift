import FoundationEssentials
import IOVMCore
import IOVMWireFormat

#if canImport(Glibc)
    import Glibc
#endif

/// The images iovm has built, content-addressed: `<root>/<hash>/{vmlinux,bzImage,initrd.img,config,manifest.json}`.
/// A build writes into a temporary directory and renames it into place, so a half-written image is never found.
public struct ImageStore: Sendable {
    /// The store's directory.
    public let root: String

    /// The default store.
    public static let defaultRoot = "/var/lib/iovm/images"

    /// A store at `root`.
    public init(root: String) {
        var root = root
        while root.count > 1 && root.hasSuffix("/") { root.removeLast() }
        self.root = root
    }

    /// Every complete image in the store, newest first.
    public func images() -> [StoredImage] {
        listed(ImageManifest.self).map { StoredImage(directory: $0.directory, manifest: $0.manifest) }
    }

    /// Every complete image in the store as choosing one reads it (``ImageManifest/Summary``), newest first.
    public func summaries() -> [StoredImageSummary] {
        listed(ImageManifest.Summary.self).map { StoredImageSummary(directory: $0.directory, manifest: $0.manifest) }
    }

    /// Each directory whose manifest decodes as `Manifest` in the current format, newest first.
    private func listed<Manifest: ListedManifest>(_: Manifest.Type) -> [(directory: String, manifest: Manifest)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        var found: [(directory: String, manifest: Manifest)] = []
        for name in names where !name.hasPrefix(".") {
            let directory = root + "/" + name
            guard let data = FileManager.default.contents(atPath: directory + "/manifest.json"),
                let manifest = try? JSONDecoder().decode(Manifest.self, from: data),
                manifest.formatVersion == ImageManifest.currentFormatVersion
            else { continue }
            found.append((directory, manifest))
        }
        return found.sorted { ($0.manifest.builtAt, $0.directory) > ($1.manifest.builtAt, $1.directory) }
    }

    /// The image this iovm built, from its current fragments, with every driver of `nicDrivers` built in:
    /// the one with exactly those drivers, else the smallest set that holds them (`iovm image build FILE`
    /// builds one image for all the drivers of a topology's IOVMs), newest first.
    public func find(nicDrivers: [String]) -> StoredImageSummary? {
        find(nicDrivers: nicDrivers, among: summaries())
    }

    /// ``find(nicDrivers:)`` among `images` (this store's ``summaries()``, listed once for several lookups: each
    /// manifest is about 19 KB of JSON, read from disk).
    public func find(nicDrivers: [String], among images: [StoredImageSummary]) -> StoredImageSummary? {
        let needed = Set(nicDrivers)
        let candidates = images.filter { image in
            let manifest = image.manifest
            guard manifest.iovmVersion == IOVMVersion.current, needed.isSubset(of: manifest.nicDrivers),
                let fragment = try? KernelConfig.fragment(nicDrivers: manifest.nicDrivers)
            else { return false }
            return manifest.fragmentDigest == String(StableHash.fnv1a(fragment), radix: 16)
        }
        // Stable: among images with as few drivers, the newest (summaries() is newest first).
        return candidates.enumerated().min { ($0.element.manifest.nicDrivers.count, $0.offset) < ($1.element.manifest.nicDrivers.count, $1.offset) }?.element
    }

    /// What a build did.
    public struct BuildResult: Sendable {
        /// The image.
        public var image: StoredImage
        /// Whether it was already in the store.
        public var cached: Bool
    }

    /// Builds the minimal image for `nicDrivers` from `runtime` and `kernel`, unless the store has it.
    public func build(
        nicDrivers: [String], runtime: MinimalRuntime, kernel: any KernelBuilding, progress: @Sendable (String) -> Void
    ) throws(ImageError) -> BuildResult {
        let sysroot = runtime.sysroot
        let started = Date()
        let drivers = Array(Set(nicDrivers)).sorted()
        let fragment: String
        do { fragment = try KernelConfig.fragment(nicDrivers: drivers) } catch { throw .unknownDriver(drivers.joined(separator: ","), known: KernelConfig.nicDrivers) }
        let sourceVersion = try kernel.sourceVersion
        let (archive, files) = try runtime.archive()
        let cpio = archive.bytes()

        try makeDirectory(root)
        let temporary = root + "/.tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try makeDirectory(temporary)
        var keepTemporary = false
        defer { if !keepTemporary { try? FileManager.default.removeItem(atPath: temporary) } }
        try write(Data(cpio), to: temporary + "/initrd.cpio")
        try write(Data(fragment.utf8), to: temporary + "/fragment.config")
        let digests = try sha256([temporary + "/initrd.cpio", temporary + "/fragment.config"])
        let inputs = """
            iovm-image 2
            iovm \(IOVMVersion.current)
            kind minimal
            nic-drivers \(drivers.joined(separator: " "))
            kernel-source \(sourceVersion)
            fragment \(digests[1])
            runtime \(digests[0])

            """
        try write(Data(inputs.utf8), to: temporary + "/inputs")
        let hash = String(try sha256([temporary + "/inputs"])[0].prefix(16))
        let directory = root + "/" + hash
        if let existing = images().first(where: { $0.directory == directory }) {
            progress("image \(hash) is already built (\(directory))")
            return BuildResult(image: existing, cached: true)
        }
        progress("runtime: \(files.count) files, \(formatMiB(cpio.count)) unpacked, from \(sysroot.root.isEmpty ? "/" : sysroot.root)")

        let artifacts = try kernel.build(fragment: fragment, progress: progress)
        try copy(artifacts.vmlinux, to: temporary + "/vmlinux")
        try copy(artifacts.bzImage, to: temporary + "/bzImage")
        try copy(artifacts.config, to: temporary + "/config")
        // Uncompressed: libxc unzips a gzip ramdisk in dom0 before it copies it into the domain, which then gets the same
        // cpio either way; xl create of the lab's IOVM took 1.05 s from a plain cpio against 1.25 s from gzip (session 33,
        // medians of 5 under TCG). Hence `iovm-image 2` in the inputs above: `iovm-image 1` images were gzip, and stay usable.
        try moveItem(temporary + "/initrd.cpio", to: temporary + "/initrd.img")
        try? FileManager.default.removeItem(atPath: temporary + "/inputs")

        let config = (try? String(contentsOfFile: temporary + "/config", encoding: .utf8)) ?? ""
        let packages = sysroot.packageVersions(["busybox-static", "xen-utils-4.17", "xenstore-utils", "iproute2", "libc6", "libxenmisc4.17", "libyajl2"])
        let manifest = ImageManifest(
            formatVersion: ImageManifest.currentFormatVersion, hash: hash, kind: "minimal", nicDrivers: drivers,
            iovmVersion: IOVMVersion.current, fragmentDigest: String(StableHash.fnv1a(fragment), radix: 16),
            kernelSource: sourceVersion, kernelRelease: artifacts.release, packages: packages,
            sysroot: sysroot.root.isEmpty ? "/" : sysroot.root, files: files,
            sizes: ImageManifest.Sizes(
                vmlinux: size(temporary + "/vmlinux"), bzImage: size(temporary + "/bzImage"), initrd: size(temporary + "/initrd.img"),
                initrdUnpacked: cpio.count),
            buildSeconds: (Date().timeIntervalSince(started) * 10).rounded() / 10,
            builtAt: Date().formatted(.iso8601),
            enabledSymbols: LinuxKernelBuild.enabledSymbols(config: config))
        let json: String
        do { json = try JSONText.pretty(manifest) } catch { throw .cannotWrite(temporary + "/manifest.json", why: "\(error)") }
        try write(Data((json + "\n").utf8), to: temporary + "/manifest.json")
        do {
            try FileManager.default.moveItem(atPath: temporary, toPath: directory)
        } catch {
            // Another build of the same inputs finished first: keep its image.
            if let existing = images().first(where: { $0.directory == directory }) { return BuildResult(image: existing, cached: true) }
            throw .cannotWrite(directory, why: "\(error)")
        }
        keepTemporary = true
        return BuildResult(image: StoredImage(directory: directory, manifest: manifest), cached: false)
    }

    private func write(_ data: Data, to path: String) throws(ImageError) {
        do { try data.write(to: URL(fileURLWithPath: path)) } catch { throw .cannotWrite(path, why: "\(error)") }
    }

    private func copy(_ source: String, to destination: String) throws(ImageError) {
        do { try FileManager.default.copyItem(atPath: source, toPath: destination) } catch { throw .cannotWrite(destination, why: "\(error)") }
    }

    private func moveItem(_ source: String, to destination: String) throws(ImageError) {
        do { try FileManager.default.moveItem(atPath: source, toPath: destination) } catch { throw .cannotWrite(destination, why: "\(error)") }
    }

    private func size(_ path: String) -> Int {
        FileBytes.size(path) ?? 0
    }

    private func sha256(_ paths: [String]) throws(ImageError) -> [String] {
        let outcome = try runTool("sha256sum", paths)
        let digests = outcome.output.split(separator: "\n").map { String($0.prefix(64)) }
        guard outcome.succeeded, digests.count == paths.count else {
            throw .stepFailed("sha256sum", status: outcome.status, logTail: outcome.output, log: paths.joined(separator: " "))
        }
        return digests
    }

    private func runTool(_ name: String, _ arguments: [String]) throws(ImageError) -> ProcessOutcome {
        let path = ["/usr/bin/", "/bin/"].map { $0 + name }.first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/bin/" + name
        do {
            return try ProcessRunner.run(path, arguments, environment: ["PATH": "/usr/bin:/bin", "LC_ALL": "C"], timeout: 600)
        } catch {
            throw .stepFailed(name, status: 127, logTail: error.description, log: path)
        }
    }
}

/// `12.3 MiB`.
public func formatMiB(_ bytes: Int) -> String {
    String(cFormat: "%.1f MiB", Double(bytes) / 1_048_576)
}
