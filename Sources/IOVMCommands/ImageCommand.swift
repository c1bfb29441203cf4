import ArgumentParser
import FoundationEssentials
import IOVMCore
import IOVMImage

/// `iovm image`: the minimal IOVM image (kernel + runtime) that IOVMs boot.
struct ImageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "Build and list the minimal IOVM images (paper Section 3: a uniprocessor kernel and a runtime in RAM).",
        subcommands: [ImageBuildCommand.self, ImageListCommand.self, ImageLoadAgentCommand.self])
}

/// `iovm image build [FILE] [--nic-driver D ...]`.
struct ImageBuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build the minimal IOVM image for the topology's NIC drivers (or --nic-driver) into the image store.",
        discussion: """
            The kernel is Debian's linux-source-6.1 with allnoconfig plus Kernels/ fragments (no SMP, no modules, \
            no bridge netfilter). The runtime is an initramfs with busybox (init, syslogd, sh), xl devd and the \
            xenstore tools with their exact library closure, iproute2's ip and tc, and iovm's agents. \
            Output: STORE/<hash>/{vmlinux,bzImage,initrd.img,config,manifest.json}; the hash covers the fragment, \
            the kernel source version, the runtime's files and the iovm version, so a second build with the same \
            inputs only finds the first.
            """)

    @Argument(help: "Topology file whose IOVMs' NICs choose the drivers.", completion: .file(extensions: ["swift", "json"]))
    var file: String?

    @Option(name: .long, help: "NIC driver to build in (repeat for several).", completion: .list(["e1000", "e1000e", "igb", "ixgbe", "virtio"]))
    var nicDriver: [String] = []

    @Option(name: .long, help: "The image store (default $IOVM_IMAGES, else /var/lib/iovm/images).", completion: .directory)
    var out: String?

    @Option(name: .long, help: "Take the runtime's programs from this Debian root (default /).", completion: .directory)
    var sysroot: String = "/"

    @Option(name: .customLong("kernel-source"), help: "Linux source tarball.", completion: .file())
    var kernelSource: String = LinuxKernelBuild.defaultTarball

    @Option(name: .customLong("kernel-tree"), help: "An extracted Linux 6.1 tree to use instead of extracting the tarball.", completion: .directory)
    var kernelTree: String?

    @Option(name: .customLong("build-dir"), help: "Where the kernel is extracted and compiled (default /var/cache/iovm/kernel).", completion: .directory)
    var buildDirectory: String = "/var/cache/iovm/kernel"

    @Option(name: .long, help: "Parallel make jobs (default: the number of CPUs).")
    var jobs: Int?

    @Flag(help: "Print the manifest as JSON on stdout.")
    var json = false

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        try requireNonEmptyPaths([
            "the topology file": file, "--out": out, "--sysroot": sysroot, "--kernel-source": kernelSource, "--kernel-tree": kernelTree,
            "--build-dir": buildDirectory,
        ])
    }

    func run() throws {
        try reportingErrors {
            var drivers = nicDriver
            if let file {
                guard nicDriver.isEmpty else { throw ValidationError("give a topology FILE or --nic-driver, not both") }
                var options = try TopologyOptions.parse([file])
                options.images = out
                var plan = try options.plan(logger: global.logger("iovm.image"))
                // The drivers of the IOVMs that boot the image: declared, else from the NICs' PCI ids here.
                plan.domains.removeAll { $0.role == .iovm && $0.image == nil }
                do {
                    drivers = try KernelConfig.nicDrivers(for: plan, table: NICDriverTable.installed(), ids: { HostAccess.pciIDs($0) })
                } catch let error as KernelConfig.Error {
                    printError(relativeToWorkingDirectory("\(error.location.map { "\($0): " } ?? "")error: \(error)"))
                    throw ExitCode(invalidTopologyExitCode)
                }
                guard !drivers.isEmpty else {
                    printError("iovm: error: no IOVM of \(plan.topology) boots the minimal image with a NIC: nothing to build")
                    throw ExitCode.failure
                }
            }
            if drivers.isEmpty { throw ValidationError("give a topology FILE or --nic-driver (\(KernelConfig.nicDrivers.joined(separator: ", ")))") }
            for driver in drivers where !KernelConfig.nicDrivers.contains(driver) {
                printError("iovm: error: \(ImageError.unknownDriver(driver, known: KernelConfig.nicDrivers))")
                throw ExitCode(invalidTopologyExitCode)
            }
            let store = ImageStore(root: TopologyOptions.imageRoot(out))
            let kernel = LinuxKernelBuild(
                tarball: kernelSource, tree: kernelTree, buildDirectory: buildDirectory,
                jobs: jobs ?? ProcessInfo.processInfo.activeProcessorCount)
            printError("building the minimal IOVM image for \(drivers.joined(separator: "+")) into \(store.root)")
            let result: ImageStore.BuildResult
            do {
                let compiler = AgentCompiler()
                let runtime = MinimalRuntime(
                    sysroot: Sysroot(sysroot), countersAgent: try compiler.compile("iovm-counters.c"), vifHotplug: try compiler.compile("iovm-vif.c"))
                result = try store.build(nicDrivers: drivers, runtime: runtime, kernel: kernel, progress: { printError($0) })
            } catch {
                printError("iovm: error: \(error)")
                throw ExitCode.failure
            }
            let manifest = result.image.manifest
            if json {
                print(try jsonText(manifest))
            } else {
                printText(result.image.directory)
            }
            printError(
                "\(result.cached ? "found" : "built") image \(manifest.hash): bzImage \(formatMiB(manifest.sizes.bzImage)), vmlinux \(formatMiB(manifest.sizes.vmlinux)), "
                    + "initrd \(formatMiB(manifest.sizes.initrd)) (\(formatMiB(manifest.sizes.initrdUnpacked)) unpacked), kernel \(manifest.kernelRelease)"
                    + (result.cached ? "" : String(cFormat: ", in %.0f s", manifest.buildSeconds)))
        }
    }
}

/// `iovm image list`.
struct ImageListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the images in the store.")

    @Option(name: .long, help: "The image store (default $IOVM_IMAGES, else /var/lib/iovm/images).", completion: .directory)
    var out: String?

    @Flag(help: "Print the manifests as JSON.")
    var json = false

    func validate() throws {
        try requireNonEmptyPaths(["--out": out])
    }

    func run() throws {
        let images = ImageStore(root: TopologyOptions.imageRoot(out)).images()
        if json {
            print(try jsonText(images.map(\.manifest)))
            return
        }
        var rows = [["HASH", "NIC DRIVERS", "KERNEL", "BZIMAGE", "INITRD", "IOVM", "BUILT"]]
        for image in images {
            let manifest = image.manifest
            rows.append([
                manifest.hash, manifest.nicDrivers.joined(separator: "+"), manifest.kernelRelease, formatMiB(manifest.sizes.bzImage),
                formatMiB(manifest.sizes.initrd), manifest.iovmVersion, manifest.builtAt,
            ])
        }
        printText(images.isEmpty ? "no images in \(TopologyOptions.imageRoot(out))" : TextTable.render(rows), terminator: images.isEmpty ? "\n" : "")
    }
}

/// `iovm image load-agent --out FILE`: the guests' load agent as a static program.
struct ImageLoadAgentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load-agent",
        abstract: "Write the guests' load agent (Agents/iovm-load.c, compiled static with the host's cc) to FILE.",
        discussion: """
            `iovm experiment` drives iperf3 inside each guest through xenstore (data/iovm/load/); the agent runs it. \
            Put FILE in the guest's image (the lab's guests have it at /usr/lib/iovm/iovm-load) and start it at boot \
            in the background; it needs /dev/xen/xenbus and iperf3 (-b PATH, default /usr/bin/iperf3).
            """)

    @Option(name: .long, help: "Where to write the program.", completion: .file())
    var out: String

    func validate() throws {
        try requireNonEmptyPaths(["--out": out])
    }

    func run() throws {
        try reportingErrors {
            let program = try AgentCompiler().compile("iovm-load.c")
            do {
                try Data(program).write(to: URL(fileURLWithPath: out), options: .atomic)
                try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: out)
            } catch {
                throw ImageError.cannotWrite(out, why: FileBytes.reason(error))
            }
            printError("wrote \(out) (\(program.count) bytes, static)")
        }
    }
}
