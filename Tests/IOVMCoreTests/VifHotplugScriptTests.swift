import Foundation
import Testing

/// Runs `Agents/iovm-vif` (the IOVM's vif hotplug script) with /bin/sh and fake `xenstore-read`,
/// `xenstore-write` and `ip` (Tests/Fakes) that record their arguments, as `xl devd` would call it.
@Suite("IOVM vif hotplug script")
struct VifHotplugScriptTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Agents/iovm-vif")
    /// Checked-in fake `xenstore-read`, `xenstore-write` and `ip` (Tests/Fakes).
    static let fakes = script.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Tests/Fakes")

    struct Run {
        var status: Int32
        /// Every process the script started, one line each: `<tool> <arguments>`.
        var calls: [String]
        var stderr: String
        var log: String
    }

    /// `bridge`: what `xenstore-read .../bridge` prints (nil: it fails). `ipError`: `ip` fails printing it.
    static func run(
        _ arguments: [String], bridge: String? = "br1", ipError: String? = nil,
        environment: [String: String] = ["XENBUS_PATH": "backend/vif/7/0", "vif": "vif7.0"]
    ) throws -> Run {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("iovm-vif-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let calls = root.appendingPathComponent("calls").path
        try "12.50 99.00\n".write(to: root.appendingPathComponent("uptime"), atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = [script.path] + arguments
        var fakes: [String: String] = [
            "PATH": "/usr/bin:/bin", "XENSTORE_READ": Self.fakes.appendingPathComponent("xenstore-read").path,
            "XENSTORE_WRITE": Self.fakes.appendingPathComponent("xenstore-write").path, "IP": Self.fakes.appendingPathComponent("ip").path,
            "PROC_UPTIME": root.appendingPathComponent("uptime").path, "IOVM_VIF_LOG": root.appendingPathComponent("log").path,
            "IOVM_VIF_TMP": root.path, "FAKE_CALLS": calls,
        ]
        if let bridge { fakes["FAKE_BRIDGE"] = bridge }
        if let ipError { fakes["FAKE_IP_ERROR"] = ipError }
        process.environment = environment.merging(fakes) { $1 }
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        process.waitUntilExit()
        let recorded = (try? String(contentsOfFile: calls, encoding: .utf8)) ?? ""
        return Run(
            status: process.terminationStatus, calls: recorded.split(separator: "\n").map(String.init),
            stderr: String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
            log: (try? String(contentsOf: root.appendingPathComponent("log"), encoding: .utf8)) ?? "")
    }

    @Test("online: three processes put the vif in its bridge, up, then write hotplug-status connected with the timing")
    func online() throws {
        let run = try Self.run(["online", "type_if=vif"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(
            run.calls == [
                "xenstore-read backend/vif/7/0/bridge",
                "ip link set dev vif7.0 master br1 up",
                "xenstore-write backend/vif/7/0/iovm-hotplug online 12.50 12.50 backend/vif/7/0/hotplug-status connected",
            ])
        #expect(run.log.contains("iovm-vif online backend/vif/7/0 vif7.0: in br1"))
    }

    @Test("without libxl's vif variable the interface name comes from XENBUS_PATH")
    func vifNameFromPath() throws {
        let run = try Self.run(["online", "type_if=vif"], environment: ["XENBUS_PATH": "backend/vif/12/3"])
        #expect(run.status == 0)
        #expect(run.calls.contains("ip link set dev vif12.3 master br1 up"))
    }

    @Test("no bridge in xenstore: hotplug-status error with the reason, and ip is never run")
    func noBridge() throws {
        let run = try Self.run(["online", "type_if=vif"], bridge: nil)
        #expect(run.status == 1)
        #expect(run.calls.count == 2)
        #expect(run.calls.last == "xenstore-write backend/vif/7/0/hotplug-error no bridge in backend/vif/7/0/bridge backend/vif/7/0/hotplug-status error")
    }

    @Test("a failing ip link set: hotplug-error carries ip's own message")
    func ipFails() throws {
        let run = try Self.run(["online", "type_if=vif"], ipError: "Cannot find device \"br1\"")
        #expect(run.status == 1)
        let write = try #require(run.calls.last)
        #expect(write.hasPrefix("xenstore-write backend/vif/7/0/hotplug-error ip link set dev vif7.0 master br1 up: Cannot find device \"br1\""))
        #expect(write.hasSuffix("backend/vif/7/0/hotplug-status error"))
    }

    @Test("offline takes the vif out of its bridge and down, writes nothing, and never fails")
    func offline() throws {
        let run = try Self.run(["offline", "type_if=vif"], ipError: "Cannot find device \"vif7.0\"")
        #expect(run.status == 0)
        #expect(run.calls == ["ip link set dev vif7.0 nomaster down"])
    }

    @Test("add and remove (udev's words) do nothing; anything else is a usage error")
    func otherCommands() throws {
        #expect(try Self.run(["add"]).calls.isEmpty)
        #expect(try Self.run(["remove"]).status == 0)
        let bad = try Self.run(["restart"])
        #expect(bad.status == 64)
        #expect(bad.calls.isEmpty)
        #expect(try Self.run(["online"], environment: [:]).status == 64)
    }
}
