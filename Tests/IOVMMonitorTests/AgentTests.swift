import Foundation
import Testing

/// Runs `Agents/iovm-counters-agent.sh` with /bin/sh over a fake sysfs, with fake
/// `xenstore-write`/`xenstore-rm` that record their arguments.
@Suite("In-IOVM counters agent")
struct AgentTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Agents/iovm-counters-agent.sh")
    /// Checked-in fake tools that run the bodies a test writes (Tests/Fakes/dispatch).
    static let dispatch = script.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Tests/Fakes/dispatch")

    /// A fake /sys/class/net: a PCI NIC, a netfront, a vif, an HVM -emu tap, a bridge and lo.
    static func makeSysfs(_ root: URL) throws {
        let files = FileManager.default
        func dir(_ path: String) throws { try files.createDirectory(at: root.appendingPathComponent(path), withIntermediateDirectories: true) }
        func link(_ path: String, _ target: String) throws { try files.createSymbolicLink(atPath: root.appendingPathComponent(path).path, withDestinationPath: target) }
        try dir("bus/pci")
        try dir("bus/xen")
        try dir("devices/0000:00:04.0")
        try dir("devices/vif-0")
        try link("devices/0000:00:04.0/subsystem", "../../bus/pci")
        try link("devices/vif-0/subsystem", "../../bus/xen")
        for (index, name) in ["eth0", "eth1", "vif7.0", "vif8.0-emu", "xenbr0", "lo"].enumerated() {
            try dir("net/\(name)/statistics")
            for (offset, counter) in ["rx_bytes", "tx_bytes", "rx_packets", "tx_packets"].enumerated() {
                try "\(1000 * (index + 1) + offset)\n".write(to: root.appendingPathComponent("net/\(name)/statistics/\(counter)"), atomically: true, encoding: .utf8)
            }
        }
        try link("net/eth0/device", "../../devices/0000:00:04.0")
        try link("net/eth1/device", "../../devices/vif-0")  // a netfront: not a physical NIC
    }

    /// `tcOutput`: what the fake `tc -s qdisc show` prints (nil: it fails, as when tc is missing).
    /// `uptimes`: /proc/uptime's first field before the agent starts and after `tc` ran (the fake tc rewrites it).
    static func run(
        _ root: URL, arguments: [String], writeScript: String, tcOutput: String? = nil,
        uptimes: (before: String, afterTC: String)? = nil
    ) throws -> (status: Int32, stderr: String) {
        // The bodies are plain files; the executables that run them are checked in (Tests/Fakes/dispatch).
        let bodies = root.appendingPathComponent("bodies")
        try FileManager.default.createDirectory(at: bodies, withIntermediateDirectories: true)
        try writeScript.write(to: bodies.appendingPathComponent("xenstore-write"), atomically: true, encoding: .utf8)
        try "echo \"rm $*\" >> \"\(root.path)/calls\"\n".write(to: bodies.appendingPathComponent("xenstore-rm"), atomically: true, encoding: .utf8)
        if let tcOutput {
            try tcOutput.write(to: root.appendingPathComponent("tc.out"), atomically: true, encoding: .utf8)
            let tick = uptimes.map { "echo \"\($0.afterTC) 8000.00\" > \"\(root.path)/uptime\"\n" } ?? ""
            try "[ \"$*\" = \"-s qdisc show\" ] || exit 2\ncat \"\(root.path)/tc.out\"\n\(tick)".write(
                to: bodies.appendingPathComponent("tc"), atomically: true, encoding: .utf8)
        } else {
            try "exit 127\n".write(to: bodies.appendingPathComponent("tc"), atomically: true, encoding: .utf8)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = [script.path] + arguments
        try "\(uptimes?.before ?? "4242.17") 8000.00\n".write(to: root.appendingPathComponent("uptime"), atomically: true, encoding: .utf8)
        process.environment = [
            "PATH": "/usr/bin:/bin", "SYSFS_NET": root.appendingPathComponent("net").path,
            "PROC_UPTIME": root.appendingPathComponent("uptime").path,
            "XENSTORE_WRITE": Self.dispatch.appendingPathComponent("xenstore-write").path,
            "XENSTORE_RM": Self.dispatch.appendingPathComponent("xenstore-rm").path, "TC": Self.dispatch.appendingPathComponent("tc").path,
            "FAKE_BODIES": bodies.path,
        ]
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }

    @Test("one xenstore-write per interval with every counter of the physical NICs and vifs, as relative paths")
    func writes() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("agent-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        try Self.makeSysfs(root)
        let record = "#!/bin/sh\n{ echo \"write $#\"; for a; do echo \"$a\"; done; } >> \"\(root.path)/calls\"\n"
        let result = try Self.run(root, arguments: ["-i", "0", "-n", "2"], writeScript: record)
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let lines = try String(contentsOf: root.appendingPathComponent("calls"), encoding: .utf8).split(separator: "\n").map(String.init)
        let calls = lines.indices.filter { lines[$0].hasPrefix("write ") }
        #expect(calls.count == 2)  // one call per interval
        let first = Array(lines[(calls[0] + 1)..<calls[1]])
        #expect(lines[calls[0]] == "write \(first.count)")
        var pairs: [String: String] = [:]
        for index in stride(from: 0, to: first.count, by: 2) { pairs[first[index]] = first[index + 1] }
        // One value per interface: kind, real name, rx/tx bytes, rx/tx packets.
        #expect(pairs["data/iovm/counters/eth0"] == "nic eth0 1000 1001 1002 1003")
        #expect(pairs["data/iovm/counters/vif7_0"] == "vif vif7.0 3000 3001 3002 3003")
        // xenstore refuses any other character in a path (seen in the lab: "could not write path .../vif3.0/kind").
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-/_@")
        #expect(pairs.keys.allSatisfy { $0.allSatisfy(allowed.contains) }, "\(pairs.keys.sorted())")
        #expect(pairs["data/iovm/agent/seq"] == "1")
        #expect(pairs["data/iovm/agent/uptime"] == "4242.17")
        #expect(pairs["data/iovm/agent/interval"] == "0")
        // Not counted: the netfront, the -emu tap, the bridge, lo.
        #expect(!pairs.keys.contains { $0.hasSuffix("/eth1") || $0.contains("-emu") || $0.contains("xenbr0") || $0.hasSuffix("/lo") })
        #expect(pairs.keys.filter { $0.hasPrefix("data/iovm/counters/") }.sorted() == ["data/iovm/counters/eth0", "data/iovm/counters/vif7_0"])
        #expect(pairs.keys.allSatisfy { !$0.hasPrefix("/") })  // relative: the domain's own /local/domain/<domid>/
        #expect(lines.contains("2"))  // seq of the second write
    }

    @Test("a NIC's tx comes from its root qdisc when it has one (exact per-segment headers); vifs and noqueue keep sysfs")
    func qdiscTx() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("agent-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        try Self.makeSysfs(root)
        let record = "#!/bin/sh\n{ echo \"write $#\"; for a; do echo \"$a\"; done; } >> \"\(root.path)/calls\"\n"
        let tc = """
            qdisc noqueue 0: dev lo root refcnt 2
             Sent 0 bytes 0 pkt (dropped 0, overlimits 0 requeues 0)
            qdisc mq 0: dev eth0 root
             Sent 987654321 bytes 654321 pkt (dropped 3, overlimits 0 requeues 7)
             backlog 0b 0p requeues 7
            qdisc pfifo_fast 0: dev eth0 parent :1 bands 3 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1
             Sent 987654321 bytes 654321 pkt (dropped 3, overlimits 0 requeues 7)
            qdisc noqueue 0: dev vif7.0 root refcnt 2
             Sent 0 bytes 0 pkt (dropped 0, overlimits 0 requeues 0)

            """
        // The clock moves from 4242.01 to 4242.09 while the counters are read: stamped with the midpoint.
        let result = try Self.run(root, arguments: ["-i", "0", "-n", "1"], writeScript: record, tcOutput: tc, uptimes: ("4242.01", "4242.09"))
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let lines = try String(contentsOf: root.appendingPathComponent("calls"), encoding: .utf8).split(separator: "\n").map(String.init)
        var pairs: [String: String] = [:]
        for index in stride(from: 1, to: lines.count - 1, by: 2) { pairs[lines[index]] = lines[index + 1] }
        #expect(pairs["data/iovm/counters/eth0"] == "nic eth0 1000 987654321 1002 654321")
        #expect(pairs["data/iovm/counters/vif7_0"] == "vif vif7.0 3000 3001 3002 3003")
        #expect(pairs["data/iovm/agent/uptime"] == "4242.05")
    }

    @Test("an interface that goes away is removed from xenstore")
    func removesGoneInterfaces() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("agent-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        try Self.makeSysfs(root)
        // The fake xenstore-write destroys the guest (its vif disappears) after the first write.
        let write = "#!/bin/sh\necho \"write $#\" >> \"\(root.path)/calls\"\nrm -rf \"\(root.path)/net/vif7.0\"\n"
        let result = try Self.run(root, arguments: ["-i", "0", "-n", "2"], writeScript: write)
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let calls = try String(contentsOf: root.appendingPathComponent("calls"), encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(calls.filter { $0.hasPrefix("rm ") } == ["rm data/iovm/counters/vif7_0"])
    }

    @Test("the script is plain POSIX sh (busybox ash and dash parse it)")
    func parses() throws {
        for shell in ["/bin/sh", "/usr/bin/busybox"] where FileManager.default.isExecutableFile(atPath: shell) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: shell)
            process.arguments = (shell.hasSuffix("busybox") ? ["sh"] : []) + ["-n", Self.script.path]
            try process.run()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "\(shell) -n")
        }
    }
}
