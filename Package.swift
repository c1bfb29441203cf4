// swift-tools-version:6.1
// iovm: build I/O virtual machines (network driver domains) on Xen through libxl.

import Foundation
import PackageDescription

/// Release links of `iovm` take libstdc++ and libgcc from their static archives where this host's GCC has them
/// (issue 16, start-up): `Packaging/static-cxx/libstdc++.so` is a linker script for GCC's `libstdc++.a`, found before
/// the shared library by `-L`. The dynamic loader then maps libc and libm only: a third less time for
/// `iovm --version` natively. glibc stays shared: Xen's libraries and libvirt are loaded with dlopen, which a static
/// libc cannot serve safely. libvirt brings the shared libstdc++ along (through libxml2 and ICU): the two copies do not
/// meet, as iovm exports no C++ symbol and dlopen loads with RTLD_LOCAL. Without a `libstdc++.a` (no libstdc++-dev),
/// the link is as before; a build without `--static-swift-stdlib` links no `-lstdc++` of its own.
let staticCXXLinking: [String] = {
    let gcc = "/usr/lib/gcc"
    // GCC's own directories (<triple>/<version>/libstdc++.a), not a multilib's (…/32/libstdc++.a).
    let archives = (FileManager.default.enumerator(atPath: gcc)?.allObjects as? [String] ?? []).filter {
        $0.hasSuffix("/libstdc++.a") && $0.split(separator: "/").count == 3
    }
    guard !archives.isEmpty else { return [] }
    let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Packaging/static-cxx").path
    return ["-L", directory, "-Xclang-linker", "-static-libgcc"]
}()

let package = Package(
    name: "iovm",
    products: [
        .executable(name: "iovm", targets: ["iovm"]),
        // The library that topology files import, like PackageDescription for Package.swift.
        // Static, so a compiled topology runs anywhere (as `nobody`) without finding a .so.
        .library(name: "IOVMDescription", type: .static, targets: ["IOVMDescription"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // MARK: Topology DSL and its wire format
        .target(name: "IOVMWireFormat"),
        .target(name: "IOVMDescription", dependencies: ["IOVMWireFormat"]),

        // MARK: The one CPU-set value (xl's `cpus=` lists), shared by the planner and XenKit
        .target(name: "CPUSets"),

        // MARK: Model, validation, planner, renderers, topology loader
        .target(
            name: "IOVMCore",
            dependencies: [
                "CPUSets", "IOVMWireFormat",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ],
            plugins: ["EmbedResources"]
        ),

        // MARK: Xen C libraries (libxl, libxenstat, libxenstore, libxlutil) and their Swift layer
        // Headers only: nothing links Xen's libraries. CXenShim's trampolines dlopen each on the first call of one of
        // its functions (issue 16: a command that never talks to Xen starts without libxenlight and its dependencies).
        .systemLibrary(
            name: "CLibXen",
            providers: [.apt(["libxen-dev"])]
        ),
        .target(name: "CXenShim", dependencies: ["CLibXen"]),
        // libvirt (libvirt-dev's headers), loaded with dlopen when a command connects: never linked.
        .target(name: "CVirtShim"),
        .target(
            name: "XenKit",
            dependencies: [
                "CLibXen", "CXenShim", "CPUSets", "CVirtShim",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),

        // MARK: Apply: reconcile a plan with the host through one privileged seam
        .target(
            name: "IOVMControl",
            dependencies: ["CPUSets", "IOVMCore", .product(name: "Logging", package: "swift-log")]
        ),

        // MARK: The real backend: libxl, xenstore and sysfs behind IOVMControl's XenBackend
        .target(
            name: "IOVMXen",
            dependencies: [
                "CPUSets", "IOVMControl", "IOVMCore", "IOVMMonitor", "IOVMWireFormat", "XenKit",
                .product(name: "Logging", package: "swift-log"), .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),

        // MARK: Monitoring: samples, efficiency (bits/Hz), reports, Prometheus exposition
        .target(
            name: "IOVMMonitor",
            dependencies: [
                "IOVMCore", "IOVMWireFormat", "XenKit",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // MARK: The IOVM itself: the minimal kernel and runtime, built into a content-addressed store
        .target(name: "IOVMImage", dependencies: ["IOVMCore", "IOVMWireFormat", .product(name: "SystemPackage", package: "swift-system")]),

        // MARK: Command line
        .target(
            name: "IOVMCommands",
            dependencies: [
                "CPUSets", "IOVMCore", "IOVMControl", "IOVMXen", "IOVMWireFormat", "XenKit", "IOVMMonitor", "IOVMImage",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                // `iovm watch` runs as a service: graceful shutdown on SIGTERM/SIGINT.
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Release links (issue 16, start-up and size): a non-PIE executable skips ~82,000 relative
        // relocations and ~230 page faults at every start; --no-export-dynamic undoes the
        // -export-dynamic of the static stdlib's link args (nothing dlopens Swift code into iovm),
        // shrinking .dynsym; -s strips symbols and debug info (87 MB -> 60 MB on disk).
        .executableTarget(
            name: "iovm",
            dependencies: ["IOVMCommands"],
            linkerSettings: [
                .unsafeFlags(["-Xclang-linker", "-no-pie", "-Xlinker", "--no-export-dynamic", "-Xlinker", "-s"] + staticCXXLinking, .when(configuration: .release))
            ]
        ),

        // MARK: Build tooling: embeds Templates/, Kernels/ and Agents/ into IOVMCore
        .executableTarget(name: "EmbedResourcesTool"),
        .plugin(name: "EmbedResources", capability: .buildTool(), dependencies: ["EmbedResourcesTool"]),

        // MARK: Test support: libxlutil's xl.cfg parser (XLConfigFile), which only tests use
        .target(
            name: "XenKitTestSupport",
            dependencies: ["XenKit", "CLibXen", .product(name: "SystemPackage", package: "swift-system")],
            path: "Tests/XenKitTestSupport",
            linkerSettings: [.linkedLibrary("xlutil")]
        ),

        // MARK: Tests (the fast unit suite; the lab suite lives in lab/)
        .testTarget(name: "CPUSetsTests", dependencies: ["CPUSets"]),
        .testTarget(name: "IOVMCoreTests", dependencies: ["IOVMCore", "IOVMDescription", "IOVMWireFormat", "XenKitTestSupport", "CLibXen"]),
        .testTarget(name: "XenKitTests", dependencies: ["CPUSets", "XenKit", "XenKitTestSupport", "CXenShim"]),
        .testTarget(
            name: "IOVMCommandsTests",
            dependencies: [
                "CPUSets", "IOVMCommands", "IOVMControl", "IOVMCore", "IOVMMonitor", "IOVMWireFormat", "IOVMXen", .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(name: "IOVMMonitorTests", dependencies: ["IOVMMonitor", "IOVMCore", "IOVMDescription", "IOVMWireFormat"]),
        .testTarget(
            name: "IOVMXenTests",
            dependencies: [
                "CPUSets", "IOVMXen", "IOVMControl", "IOVMCore", "IOVMMonitor", "IOVMWireFormat", "XenKit", .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "IOVMImageTests", dependencies: ["IOVMImage", "IOVMCore", "IOVMWireFormat"]),
        .testTarget(name: "IOVMControlTests", dependencies: ["CPUSets", "IOVMControl", "IOVMCore", "IOVMDescription", "IOVMWireFormat"]),
    ],
    swiftLanguageModes: [.v6]
)

// Release builds of iovm's own modules reach concrete generic types' metadata through their accessors, not through
// mangled names (issue 16, start-up). A mangled name such as `KeyedDecodingContainer<TopologyDocument.CodingKeys>` is
// demangled at its first use, and each conformance it needs is looked for among the binary's 5,700 conformance
// records: about 0.25 M instructions per type, for each Codable type decoded and each generic collection first made.
// The accessors are handed their witness tables by the compiler. Natively, an apply up to libxl's opening went from
// 18.9 to 14.3 M instructions (callgrind) and `iovm --version` from 8.4 to 8.1 M; the binary grew by 94 KB.
for target in package.targets where target.type == .regular || target.type == .executable {
    target.swiftSettings =
        (target.swiftSettings ?? []) + [
            .unsafeFlags(["-Xfrontend", "-disable-concrete-type-metadata-mangled-name-accessors"], .when(configuration: .release))
        ]
}
