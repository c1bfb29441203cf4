import Foundation
import Testing

/// Runs `Agents/iovm-counters-agent.sh` with /bin/sh over a fake sysfs, with fake
/// `xenstore-write`/`xenstore-rm` that record their arguments.
@Suite("In-IOVM counters agent")
struct AgentTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Agents/iovm-counters-agent.sh")

    /// A fake /sys/class/net: a PCI NIC, a netfront, a vif, an HVM -emu tap, a bridge and lo.
    static func makeSysfs(_ root: URL) throws {
        let files = FileManager.default
        func dir(_ path: String) throws { try files.createDirectory(at: root.appendingPathComponent(path), withIntermediateDirectories: true) }
        func link(_ path: String, _ target: String) throws { try files.createSymbolicLink(atPath: root.appendingPathComponent(path).path, withDestinationPath: target) }
        try dir("bus/pci"); try dir("bus/xen"); try dir("devices/0000:00:04.0"); try dir("devices/vif-0")
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

    static func run(_ root: URL, arguments: [String], writeScript: String) throws -> (status: Int32, stderr: String) {
        let write = root.appendingPathComponent("xenstore-write"), remove = root.appendingPathComponent("xenstore-rm")
        try writeScript.write(to: write, atomically: true, encoding: .utf8)
        try "#!/bin/sh\necho \"rm $*\" >> \"\(root.path)/calls\"\n".write(to: remove, atomically: true, encoding: .utf8)
        for file in [write, remove] { try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: file.path) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = [script.path] + arguments
        try "4242.17 8000.00\n".write(to: root.appendingPathComponent("uptime"), atomically: true, encoding: .utf8)
        process.environment = ["PATH": "/usr/bin:/bin", "SYSFS_NET": root.appendingPathComponent("net").path,
                               "PROC_UPTIME": root.appendingPathComponent("uptime").path,
                               "XENSTORE_WRITE": write.path, "XENSTORE_RM": remove.path]
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
        #expect(pairs["data/iovm/counters/eth0/kind"] == "nic")
        #expect(pairs["data/iovm/counters/eth0/rx_bytes"] == "1000")
        #expect(pairs["data/iovm/counters/eth0/tx_bytes"] == "1001")
        #expect(pairs["data/iovm/counters/eth0/rx_packets"] == "1002")
        #expect(pairs["data/iovm/counters/eth0/tx_packets"] == "1003")
        #expect(pairs["data/iovm/counters/vif7_0/kind"] == "vif")
        #expect(pairs["data/iovm/counters/vif7_0/name"] == "vif7.0")
        #expect(pairs["data/iovm/counters/vif7_0/rx_bytes"] == "3000")
        // xenstore refuses any other character in a path (seen in the lab: "could not write path .../vif3.0/kind").
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-/_@")
        #expect(pairs.keys.allSatisfy { $0.allSatisfy(allowed.contains) }, "\(pairs.keys.sorted())")
        #expect(pairs["data/iovm/agent/seq"] == "1")
        #expect(pairs["data/iovm/agent/uptime"] == "4242.17")
        #expect(pairs["data/iovm/agent/interval"] == "0")
        // Not counted: the netfront, the -emu tap, the bridge, lo.
        #expect(!pairs.keys.contains { $0.contains("/eth1/") || $0.contains("-emu") || $0.contains("xenbr0") || $0.contains("/lo/") })
        #expect(pairs.keys.allSatisfy { !$0.hasPrefix("/") })  // relative: the domain's own /local/domain/<domid>/
        #expect(lines.contains("2"))  // seq of the second write
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
