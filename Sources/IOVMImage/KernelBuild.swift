import FoundationEssentials
import IOVMCore
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// What a kernel build leaves for the image.
public struct KernelArtifacts: Sendable {
    /// The uncompressed ELF kernel (fast to load in `xl create`).
    public var vmlinux: String
    /// The compressed kernel (the size the paper compares).
    public var bzImage: String
    /// The expanded `.config`.
    public var config: String
    /// `uname -r` of the kernel.
    public var release: String
}

/// Builds a kernel from a configuration fragment; the real one runs Linux's make, tests use a fake.
public protocol KernelBuilding: Sendable {
    /// Source version recorded in the image hash (Debian's package version of the source).
    var sourceVersion: String { get throws(ImageError) }
    /// Builds a kernel whose configuration is `allnoconfig` plus `fragment`.
    func build(fragment: String, progress: @Sendable (String) -> Void) throws(ImageError) -> KernelArtifacts
}

/// Linux 6.1 from Debian's `linux-source-6.1`: `make allnoconfig KCONFIG_ALLCONFIG=<fragment>`, a check that
/// every requested symbol survived, then `make bzImage`, in an object directory kept per NIC driver set (so a
/// rebuild after a failure, a fragment change or a new runtime reuses the objects).
public struct LinuxKernelBuild: KernelBuilding {
    /// The source tarball (`/usr/src/linux-source-6.1.tar.xz`).
    public var tarball: String
    /// An already extracted tree to use instead of extracting the tarball.
    public var tree: String?
    /// Where the extracted source and the object directories live.
    public var buildDirectory: String
    /// make's `-j`.
    public var jobs: Int

    /// The default tarball of Debian 12's `linux-source-6.1`.
    public static let defaultTarball = "/usr/src/linux-source-6.1.tar.xz"

    /// A build of `tarball` (or `tree`) in `buildDirectory` with `jobs` parallel jobs.
    public init(tarball: String = defaultTarball, tree: String? = nil, buildDirectory: String, jobs: Int) {
        self.tarball = tarball
        self.tree = tree
        self.buildDirectory = buildDirectory
        self.jobs = max(1, jobs)
    }

    /// Debian's version of `linux-source-6.1` for the tarball; for a given tree, its own Makefile version
    /// (the tree may be anything, so the package's version would not describe it).
    public var sourceVersion: String {
        get throws(ImageError) {
            if tree == nil, !FileManager.default.fileExists(atPath: tarball) { throw .kernelSourceMissing(tarball) }
            if tree == nil, let version = Sysroot("/").packageVersions(["linux-source-6.1"])["linux-source-6.1"] {
                return "linux-source-6.1 \(version)"
            }
            if let tree {
                guard let makefile = try? String(contentsOfFile: tree + "/Makefile", encoding: .utf8) else { throw .kernelSourceMissing(tree + "/Makefile") }
                let fields = makefile.split(separator: "\n").prefix(6).compactMap { line -> String? in
                    let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingWhitespace() }
                    return parts.count == 2 && ["VERSION", "PATCHLEVEL", "SUBLEVEL"].contains(parts[0]) ? parts[1] : nil
                }
                return "linux \(fields.joined(separator: ".")) (tree)"
            }
            return "tarball \(tarball) \(FileBytes.size(tarball) ?? 0)"
        }
    }

    /// Extracts (once), configures, checks and compiles.
    public func build(fragment: String, progress: @Sendable (String) -> Void) throws(ImageError) -> KernelArtifacts {
        let files = FileManager.default
        try makeDirectory(buildDirectory)
        let source = try sourceTree(progress: progress)
        // One object directory per driver set (the fragment's first line names them): a changed fragment
        // rebuilds only what its symbols touch.
        let key = fragment.split(separator: "\n", maxSplits: 1).first.map(String.init) ?? fragment
        let out = buildDirectory + "/out-" + String(StableHash.fnv1a(key), radix: 16)
        try makeDirectory(out)
        let fragmentPath = out + "/iovm-fragment.config"
        do { try fragment.write(toFile: fragmentPath, atomically: true, encoding: .utf8) } catch { throw .cannotWrite(fragmentPath, why: "\(error)") }

        progress("kernel: make allnoconfig + the IOVM fragment (\(out)/.config)")
        try run(
            "make allnoconfig", ["make", "-C", source, "O=" + out, "ARCH=x86_64", "allnoconfig", "KCONFIG_ALLCONFIG=" + fragmentPath],
            log: out + "/config.log", progress: { _ in })
        let config = out + "/.config"
        let expanded = (try? String(contentsOfFile: config, encoding: .utf8)) ?? ""
        let missing = Self.missingSymbols(fragment: fragment, config: expanded)
        guard missing.isEmpty else { throw .symbolsMissing(missing, config: config) }

        let started = Date()
        var compiled = 0
        var lastReport = Date()
        progress("kernel: compiling with make -j\(jobs) (\(out)/build.log)")
        try run(
            "make bzImage", ["make", "-C", source, "O=" + out, "ARCH=x86_64", "-j\(jobs)", "bzImage"], log: out + "/build.log",
            progress: { line in
                if line.hasPrefix("  CC ") || line.hasPrefix("  AS ") { compiled += 1 }
                let stage = line.hasPrefix("  LD      vmlinux") || line.hasPrefix("  BUILD   arch/x86/boot/bzImage") || line.hasPrefix("Kernel: ")
                if stage || Date().timeIntervalSince(lastReport) >= 15 {
                    lastReport = Date()
                    let elapsed = Int(Date().timeIntervalSince(started))
                    progress(
                        "kernel: \(compiled) files compiled, \(elapsed / 60)m\(String(cFormat: "%02ld", elapsed % 60))s"
                            + (stage ? ": " + line.trimmingWhitespace() : ""))
                }
            })
        let release = (try? String(contentsOfFile: out + "/include/config/kernel.release", encoding: .utf8))?.trimmingWhitespace() ?? "?"
        for path in [out + "/vmlinux", out + "/arch/x86/boot/bzImage"] where !files.fileExists(atPath: path) {
            throw .stepFailed("make bzImage", status: 0, logTail: "\(path) is missing after a successful make", log: out + "/build.log")
        }
        return KernelArtifacts(vmlinux: out + "/vmlinux", bzImage: out + "/arch/x86/boot/bzImage", config: config, release: release)
    }

    /// `CONFIG_X=y|m|value` lines of `fragment` whose symbol has another value, or none, in `config`.
    public static func missingSymbols(fragment: String, config: String) -> [String] {
        var values: [String: String] = [:]
        for line in config.split(separator: "\n") where line.hasPrefix("CONFIG_") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { values[String(parts[0])] = String(parts[1]) }
        }
        var missing: [String] = []
        for line in fragment.split(separator: "\n") where line.hasPrefix("CONFIG_") {
            let parts = line.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let symbol = String(parts[0])
            if values[symbol] != String(parts[1]) { missing.append(String(symbol.dropFirst("CONFIG_".count))) }
        }
        return missing
    }

    /// The symbols set to y in `config`, without the `CONFIG_` prefix.
    public static func enabledSymbols(config: String) -> [String] {
        config.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("CONFIG_"), line.hasSuffix("=y") else { return nil }
            return String(line.dropFirst("CONFIG_".count).dropLast(2))
        }.sorted()
    }

    private func sourceTree(progress: @Sendable (String) -> Void) throws(ImageError) -> String {
        if let tree { return tree }
        guard FileManager.default.fileExists(atPath: tarball) else { throw .kernelSourceMissing(tarball) }
        let version = try sourceVersion
        let directory = buildDirectory + "/source-" + String(StableHash.fnv1a(version), radix: 16)
        let tree = directory + "/linux-source-6.1"
        if FileManager.default.fileExists(atPath: tree + "/Makefile") { return tree }
        progress("kernel: extracting \(tarball) into \(directory) (once per source version)")
        let temporary = directory + ".tmp-\(getpid())"
        try? FileManager.default.removeItem(atPath: temporary)
        try makeDirectory(temporary)
        try run("tar -xf \(tarball)", ["tar", "-xf", tarball, "-C", temporary], log: temporary + ".log", progress: { _ in })
        try? FileManager.default.removeItem(atPath: directory)
        do { try FileManager.default.moveItem(atPath: temporary, toPath: directory) } catch { throw .cannotWrite(directory, why: "\(error)") }
        guard FileManager.default.fileExists(atPath: tree + "/Makefile") else { throw .kernelSourceMissing(tree + "/Makefile") }
        return tree
    }
}

func makeDirectory(_ path: String) throws(ImageError) {
    do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch { throw .cannotWrite(path, why: "\(error)") }
}

/// Runs `arguments` (looked up on PATH) with stdout and stderr into `log`, handing each new line to `progress`.
func run(_ step: String, _ arguments: [String], log: String, progress: (String) -> Void) throws(ImageError) {
    _ = FileManager.default.createFile(atPath: log, contents: nil)
    guard let reader = try? FileDescriptor.open(FilePath(log), .readOnly, options: [.closeOnExec]) else { throw .cannotWrite(log, why: "cannot open") }
    defer { try? reader.close() }
    let process: ChildProcess
    do {
        process = try ProcessRunner.spawn("/usr/bin/env", arguments, environment: ProcessInfo.processInfo.environment, log: log)
    } catch {
        throw .stepFailed(step, status: 127, logTail: "\(error)", log: log)
    }
    var pending = ""
    func drain() {
        guard let data = try? FileBytes.read(reader), !data.isEmpty else { return }
        pending += String(decoding: data, as: UTF8.self)
        while let newline = pending.firstIndex(of: "\n") {
            progress(String(pending[..<newline]))
            pending = String(pending[pending.index(after: newline)...])
        }
    }
    var outcome = process.poll()
    while outcome == nil {
        drain()
        PThread.sleep(seconds: 0.2)
        outcome = process.poll()
    }
    drain()
    let status = outcome?.status ?? 127
    guard status == 0 else {
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        let tail = text.split(separator: "\n", omittingEmptySubsequences: false).suffix(25).joined(separator: "\n")
        throw .stepFailed(step, status: status, logTail: tail, log: log)
    }
}
