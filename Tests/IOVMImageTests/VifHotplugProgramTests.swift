import Foundation
import IOVMCore
import Testing

@testable import IOVMImage

/// Compiles `Agents/iovm-vif.c` (the minimal IOVM's vif hotplug program) as `iovm image build` does and runs it over a
/// directory standing for xenstore (`IOVM_VIF_STORE`), its link changes printed: the contract of the shell script
/// `Agents/iovm-vif` (``VifHotplugScriptTests`` in IOVMCoreTests), which the stock IOVM runs.
@Suite("Static vif hotplug program (Agents/iovm-vif.c)")
struct VifHotplugProgramTests {
    static let program = CompiledAgent.path("iovm-vif.c")

    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
        /// The store after the run: key → value.
        var store: [String: String]
        var log: String
    }

    /// Runs the program with `arguments` over a store holding `store`; `environment` replaces the usual one.
    static func run(
        _ arguments: [String], store: [String: String] = ["backend/vif/7/0/bridge": "br1"], environment: [String: String]? = nil,
        linkError: String? = nil
    ) throws -> Run {
        let root = FileManager.default.temporaryDirectory.appending(path: "iovm-vif-store-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        for (key, value) in store {
            let path = root + "/store/" + key
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try value.write(toFile: path, atomically: true, encoding: .utf8)
        }
        try FileManager.default.createDirectory(atPath: root + "/store", withIntermediateDirectories: true)
        try "4242.17 8000.00\n".write(toFile: root + "/uptime", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try program.get())
        process.arguments = arguments
        var env = environment ?? ["XENBUS_PATH": "backend/vif/7/0", "vif": "vif7.0"]
        env["PATH"] = "/usr/bin:/bin"
        env["IOVM_VIF_STORE"] = root + "/store"
        env["PROC_UPTIME"] = root + "/uptime"
        env["IOVM_VIF_LOG"] = root + "/iovm-vif.log"
        if let linkError { env["IOVM_VIF_LINK_ERROR"] = linkError }
        process.environment = env
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        var after: [String: String] = [:]
        if let walker = FileManager.default.enumerator(atPath: root + "/store") {
            for case let key as String in walker {
                var directory: ObjCBool = false
                if FileManager.default.fileExists(atPath: root + "/store/" + key, isDirectory: &directory), !directory.boolValue {
                    after[key] = try String(contentsOfFile: root + "/store/" + key, encoding: .utf8)
                }
            }
        }
        let log = (try? String(contentsOfFile: root + "/iovm-vif.log", encoding: .utf8)) ?? ""
        return Run(status: process.terminationStatus, stdout: stdout, stderr: stderr, store: after, log: log)
    }

    @Test("online: the vif goes into its bridge and up, then iovm-hotplug and hotplug-status connected are written")
    func online() throws {
        let run = try Self.run(["online", "type_if=vif"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout == "link vif7.0 master br1 up\n")
        #expect(run.store["backend/vif/7/0/hotplug-status"] == "connected")
        #expect(run.store["backend/vif/7/0/iovm-hotplug"] == "online 4242.17 4242.17")
        #expect(run.store["backend/vif/7/0/hotplug-error"] == nil)
        #expect(run.log == "4242.17 iovm-vif online backend/vif/7/0 vif7.0: in br1 (4242.17-4242.17 s)\n", "\(run.log)")
    }

    @Test("without libxl's vif variable the interface name comes from XENBUS_PATH")
    func vifFromPath() throws {
        let run = try Self.run(["online"], store: ["backend/vif/12/3/bridge": "br1"], environment: ["XENBUS_PATH": "backend/vif/12/3"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout == "link vif12.3 master br1 up\n")
        #expect(run.store["backend/vif/12/3/hotplug-status"] == "connected")
    }

    @Test("no bridge in xenstore: hotplug-error with the reason, then hotplug-status error; no link change")
    func noBridge() throws {
        let run = try Self.run(["online"], store: [:])
        #expect(run.status == 1)
        #expect(run.stdout.isEmpty)
        #expect(run.store["backend/vif/7/0/hotplug-error"] == "no bridge in backend/vif/7/0/bridge")
        #expect(run.store["backend/vif/7/0/hotplug-status"] == "error")
        #expect(run.store["backend/vif/7/0/iovm-hotplug"] == nil)
    }

    @Test("a failing link change: hotplug-error carries the kernel's reason in ip's words")
    func linkFails() throws {
        let run = try Self.run(["online"], linkError: "Cannot find device \"br1\"")
        #expect(run.status == 1)
        #expect(run.store["backend/vif/7/0/hotplug-error"] == "ip link set dev vif7.0 master br1 up: Cannot find device \"br1\"")
        #expect(run.store["backend/vif/7/0/hotplug-status"] == "error")
        #expect(run.log.contains("iovm-vif online backend/vif/7/0 vif7.0: error: ip link set dev vif7.0 master br1 up"))
    }

    @Test("offline takes the vif out of its bridge and down, writes nothing, and never fails")
    func offline() throws {
        let run = try Self.run(["offline"])
        #expect(run.status == 0)
        #expect(run.stdout == "link vif7.0 nomaster down\n")
        #expect(run.store == ["backend/vif/7/0/bridge": "br1"])
        let failing = try Self.run(["offline"], linkError: "Cannot find device \"vif7.0\"")
        #expect(failing.status == 0)
    }

    @Test("add and remove (udev's words) do nothing; anything else, or no XENBUS_PATH, is a usage error")
    func usage() throws {
        let add = try Self.run(["add"])
        #expect(add.status == 0 && add.stdout.isEmpty && add.store == ["backend/vif/7/0/bridge": "br1"])
        #expect(try Self.run(["remove"]).status == 0)
        let bad = try Self.run(["bogus"])
        #expect(bad.status == 64 && bad.stdout.isEmpty && bad.stderr.contains("usage:"))
        #expect(try Self.run([]).status == 64)
        let unset = try Self.run(["online"], environment: [:])
        #expect(unset.status == 64 && unset.stderr.contains("XENBUS_PATH is not set"))
    }

    @Test("the image's /etc/xen/scripts/iovm-vif is the compiled program, not the shell script")
    func inTheImage() throws {
        let runtime = MinimalRuntime(
            sysroot: Sysroot("/"), programs: [], countersAgent: Array("agent".utf8), vifHotplug: Array("\u{7F}ELF program".utf8))
        let (archive, files) = try runtime.archive()
        let entry = try #require(files.first { $0.path == "/etc/xen/scripts/iovm-vif" })
        #expect(entry.from == "Agents/iovm-vif.c (cc -static)" && entry.size == 12)
        #expect(archive.bytes().count > 0)
    }
}
