import Foundation
import IOVMCore
import Synchronization
import Testing

@testable import IOVMImage

/// A kernel "build" that writes small files and counts how often it ran.
final class FakeKernel: KernelBuilding {
    let directory: String
    let version: String
    let builds = Mutex(0)
    init(directory: String, version: String = "linux-source-6.1 6.1.999-1") {
        self.directory = directory
        self.version = version
    }
    var sourceVersion: String { version }
    func build(fragment: String, progress: @Sendable (String) -> Void) throws(ImageError) -> KernelArtifacts {
        builds.withLock { $0 += 1 }
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let config = fragment.split(separator: "\n").filter { $0.hasPrefix("CONFIG_") }.joined(separator: "\n") + "\n"
        for (name, text) in [("vmlinux", "ELF kernel"), ("bzImage", "bz"), ("config", config)] {
            FileManager.default.createFile(atPath: directory + "/" + name, contents: Data(text.utf8))
        }
        return KernelArtifacts(vmlinux: directory + "/vmlinux", bzImage: directory + "/bzImage", config: directory + "/config", release: "6.1.999-iovm")
    }
}

@Suite struct ImageStoreTests {
    static let programs = [MinimalRuntime.Program(destination: "/bin/busybox", source: "/bin/busybox"), .init(destination: "/bin/ls", source: "/bin/ls")]

    func temporary() -> String {
        FileManager.default.temporaryDirectory.appending(path: "iovm-images-\(UUID().uuidString)").path
    }

    @Test func buildsOnceThenFindsTheSameImage() throws {
        let root = temporary()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = ImageStore(root: root + "/images")
        let kernel = FakeKernel(directory: root + "/kernel")
        let runtime = MinimalRuntime(sysroot: Sysroot("/"), programs: Self.programs, countersAgent: Array("agent".utf8), vifHotplug: Array("vif".utf8))
        let first = try store.build(nicDrivers: ["e1000"], runtime: runtime, kernel: kernel, progress: { _ in })
        #expect(!first.cached)
        #expect(first.image.directory == store.root + "/" + first.image.manifest.hash)
        for name in ["vmlinux", "bzImage", "initrd.img", "config", "manifest.json"] {
            #expect(FileManager.default.fileExists(atPath: first.image.directory + "/" + name), "\(name)")
        }
        let manifest = first.image.manifest
        #expect(manifest.nicDrivers == ["e1000"] && manifest.kernelRelease == "6.1.999-iovm" && manifest.kernelSource == kernel.version)
        #expect(manifest.enabledSymbols.contains("E1000") && manifest.enabledSymbols.contains("XEN_NETDEV_BACKEND"))
        #expect(manifest.files.contains { $0.path == "/etc/iovm/rc" && $0.from == "Agents/iovm-init" })
        #expect(manifest.files.contains { $0.path == "/lib/x86_64-linux-gnu/libc.so.6" })
        // The initramfs is a plain cpio ("070701", newc): libxc copies it into the IOVM without unzipping it in dom0.
        #expect(manifest.sizes.initrd > 0 && manifest.sizes.initrdUnpacked == manifest.sizes.initrd)
        let initrd = try #require(FileManager.default.contents(atPath: first.image.directory + "/initrd.img"))
        #expect(String(decoding: initrd.prefix(6), as: UTF8.self) == "070701")

        let started = Date()
        let second = try store.build(nicDrivers: ["e1000"], runtime: runtime, kernel: kernel, progress: { _ in })
        let seconds = Date().timeIntervalSince(started)
        print("image cache hit took \(String(format: "%.3f", seconds)) s (goal < 1 s)")
        #expect(second.cached && second.image.manifest.hash == manifest.hash)
        #expect(kernel.builds.withLock { $0 } == 1)
        #expect(store.find(nicDrivers: ["e1000"])?.manifest.hash == manifest.hash)
        #expect(store.find(nicDrivers: ["igb"]) == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.root).filter { $0.hasPrefix(".tmp") }.isEmpty)
    }

    @Test func everyInputChangesTheHash() throws {
        let root = temporary()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = ImageStore(root: root + "/images")
        let runtime = MinimalRuntime(sysroot: Sysroot("/"), programs: Self.programs, countersAgent: Array("agent".utf8), vifHotplug: Array("vif".utf8))
        let base = try store.build(nicDrivers: ["e1000"], runtime: runtime, kernel: FakeKernel(directory: root + "/k1"), progress: { _ in })
        let otherDriver = try store.build(nicDrivers: ["e1000", "igb"], runtime: runtime, kernel: FakeKernel(directory: root + "/k2"), progress: { _ in })
        let otherSource = try store.build(
            nicDrivers: ["e1000"], runtime: runtime, kernel: FakeKernel(directory: root + "/k3", version: "linux-source-6.1 6.1.1000-1"), progress: { _ in })
        let otherRuntime = try store.build(
            nicDrivers: ["e1000"], runtime: MinimalRuntime(sysroot: Sysroot("/"), programs: [Self.programs[0]], countersAgent: Array("agent".utf8), vifHotplug: Array("vif".utf8)),
            kernel: FakeKernel(directory: root + "/k4"),
            progress: { _ in })
        let hashes = [base, otherDriver, otherSource, otherRuntime].map(\.image.manifest.hash)
        #expect(Set(hashes).count == 4)
        #expect([base, otherDriver, otherSource, otherRuntime].allSatisfy { !$0.cached })
    }

    @Test("an image with more drivers serves an IOVM that needs fewer; the smallest such image wins")
    func supersetImages() throws {
        let root = temporary()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = ImageStore(root: root + "/images")
        let runtime = MinimalRuntime(sysroot: Sysroot("/"), programs: Self.programs, countersAgent: Array("agent".utf8), vifHotplug: Array("vif".utf8))
        let both = try store.build(nicDrivers: ["igb", "e1000"], runtime: runtime, kernel: FakeKernel(directory: root + "/k1"), progress: { _ in })
        #expect(both.image.manifest.nicDrivers == ["e1000", "igb"])
        #expect(store.find(nicDrivers: ["e1000"])?.manifest.hash == both.image.manifest.hash)
        #expect(store.find(nicDrivers: ["igb"])?.manifest.hash == both.image.manifest.hash)
        #expect(store.find(nicDrivers: [])?.manifest.hash == both.image.manifest.hash)  // an IOVM without a NIC
        #expect(store.find(nicDrivers: ["ixgbe"]) == nil)
        let one = try store.build(nicDrivers: ["e1000"], runtime: runtime, kernel: FakeKernel(directory: root + "/k2"), progress: { _ in })
        #expect(store.find(nicDrivers: ["e1000"])?.manifest.hash == one.image.manifest.hash)
        #expect(store.find(nicDrivers: ["igb"])?.manifest.hash == both.image.manifest.hash)
        // Choosing reads the manifests' summaries: the same images, in the same order, saying the same.
        let images = store.images()
        #expect(images.count == 2)
        #expect(store.summaries() == images.map { StoredImageSummary(directory: $0.directory, manifest: $0.manifest.summary) })
        #expect(store.find(nicDrivers: ["e1000"])?.kernel == one.image.kernel && store.find(nicDrivers: ["igb"])?.ramdisk == both.image.ramdisk)
    }

    @Test func aHalfWrittenImageIsNeverFound() throws {
        let root = temporary()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = ImageStore(root: root)
        try FileManager.default.createDirectory(atPath: root + "/.tmp-1-2", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/0123456789abcdef", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: root + "/0123456789abcdef/vmlinux", contents: Data())
        #expect(store.images().isEmpty)
        #expect(store.find(nicDrivers: ["e1000"]) == nil)
    }

    @Test func aFailedKernelBuildLeavesNothingBehind() throws {
        struct Failing: KernelBuilding {
            var sourceVersion: String { "v" }
            func build(fragment: String, progress: @Sendable (String) -> Void) throws(ImageError) -> KernelArtifacts {
                throw .stepFailed("make bzImage", status: 2, logTail: "error: boom", log: "/x/build.log")
            }
        }
        let root = temporary()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = ImageStore(root: root)
        #expect(throws: ImageError.self) {
            try store.build(
                nicDrivers: ["e1000"], runtime: MinimalRuntime(sysroot: Sysroot("/"), programs: Self.programs, countersAgent: Array("agent".utf8), vifHotplug: Array("vif".utf8)),
                kernel: Failing(),
                progress: { _ in })
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: root).isEmpty)
    }

    @Test func anUnknownDriverIsRefusedWithTheSupportedList() {
        #expect(throws: ImageError.unknownDriver("tulip", known: KernelConfig.nicDrivers)) {
            try ImageStore(root: temporary()).build(
                nicDrivers: ["tulip"], runtime: MinimalRuntime(sysroot: Sysroot("/"), programs: Self.programs, countersAgent: Array("agent".utf8), vifHotplug: Array("vif".utf8)),
                kernel: FakeKernel(directory: temporary()),
                progress: { _ in })
        }
    }

    @Test func missingSymbolsAreNamed() {
        let fragment = "CONFIG_XEN=y\nCONFIG_E1000=y\n# CONFIG_SMP is not set\nCONFIG_NR=4\n"
        let config = "CONFIG_XEN=y\n# CONFIG_E1000 is not set\nCONFIG_NR=8\n"
        #expect(LinuxKernelBuild.missingSymbols(fragment: fragment, config: config) == ["E1000", "NR"])
        #expect(LinuxKernelBuild.enabledSymbols(config: "CONFIG_B=y\nCONFIG_A=y\nCONFIG_C=m\n") == ["A", "B"])
    }

    @Test func aMissingKernelSourceSaysToRunSetup() {
        let build = LinuxKernelBuild(tarball: "/nonexistent/linux-source-6.1.tar.xz", buildDirectory: temporary(), jobs: 1)
        #expect(throws: ImageError.kernelSourceMissing("/nonexistent/linux-source-6.1.tar.xz")) { _ = try build.sourceVersion }
        #expect(ImageError.kernelSourceMissing("/x").description.contains("scripts/setup"))
    }
}
