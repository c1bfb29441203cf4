import Foundation
import IOVMCore
import Testing

@testable import IOVMImage

/// Compiles `Agents/iovm-counters.c` with the host's cc (as `iovm image build` does) and runs it with `-p`
/// (writes printed, not sent to xenstore) over a fake sysfs, and over the host's own interfaces.
@Suite("Static counters agent (Agents/iovm-counters.c)")
struct CountersAgentTests {
    static let program: Result<String, any Error> = {
        do {
            let bytes = try AgentCompiler().compile("iovm-counters.c")
            let path = FileManager.default.temporaryDirectory.appending(path: "iovm-counters-\(getpid())").path
            guard FileManager.default.createFile(atPath: path, contents: Data(bytes), attributes: [.posixPermissions: 0o755]) else {
                return .failure(ImageError.cannotWrite(path, why: "createFile failed"))
            }
            return .success(path)
        } catch { return .failure(error) }
    }()

    /// A fake /sys/class/net: a PCI NIC, a netfront, a vif, an HVM -emu tap, a bridge and lo.
    static func makeSysfs(_ root: String) throws {
        let files = FileManager.default
        func dir(_ path: String) throws { try files.createDirectory(atPath: root + "/" + path, withIntermediateDirectories: true) }
        func link(_ path: String, _ target: String) throws { try files.createSymbolicLink(atPath: root + "/" + path, withDestinationPath: target) }
        try dir("bus/pci")
        try dir("bus/xen")
        try dir("devices/0000:00:04.0")
        try dir("devices/vif-0")
        try link("devices/0000:00:04.0/subsystem", "../../bus/pci")
        try link("devices/vif-0/subsystem", "../../bus/xen")
        for (index, name) in ["eth0", "eth1", "vif7.0", "vif8.0-emu", "xenbr0", "lo"].enumerated() {
            try dir("net/\(name)/statistics")
            for (offset, counter) in ["rx_bytes", "tx_bytes", "rx_packets", "tx_packets"].enumerated() {
                try "\(1000 * (index + 1) + offset)\n".write(toFile: root + "/net/\(name)/statistics/\(counter)", atomically: true, encoding: .utf8)
            }
            // No host interface has these indexes: the qdisc dump of the machine running the test never matches.
            try "\(90000 + index)\n".write(toFile: root + "/net/\(name)/ifindex", atomically: true, encoding: .utf8)
        }
        try link("net/eth0/device", "../../devices/0000:00:04.0")
        try link("net/eth1/device", "../../devices/vif-0")  // a netfront: not a physical NIC
        try "4242.17 8000.00\n".write(toFile: root + "/uptime", atomically: true, encoding: .utf8)
    }

    /// Starts the agent with `arguments` and `-p`; `onLine` sees each printed line as it comes.
    static func run(_ arguments: [String], sysfs: String?, uptime: String?, onLine: (String) -> Void = { _ in }) throws -> (status: Int32, lines: [String]) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try program.get())
        process.arguments = ["-p"] + arguments
        var environment = ["PATH": "/usr/bin:/bin"]
        if let sysfs { environment["SYSFS_NET"] = sysfs }
        if let uptime { environment["PROC_UPTIME"] = uptime }
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        var lines: [String] = []
        var pending = ""
        while true {
            let data = output.fileHandleForReading.availableData
            if data.isEmpty { break }
            pending += String(decoding: data, as: UTF8.self)
            while let newline = pending.firstIndex(of: "\n") {
                let line = String(pending[..<newline])
                pending = String(pending[pending.index(after: newline)...])
                lines.append(line)
                onLine(line)
            }
        }
        process.waitUntilExit()
        return (process.terminationStatus, lines)
    }

    static func pairs(_ lines: some Sequence<String>) -> [String: String] {
        var pairs: [String: String] = [:]
        for line in lines { if let equals = line.firstIndex(of: "=") { pairs[String(line[..<equals])] = String(line[line.index(after: equals)...]) } }
        return pairs
    }

    @Test("publishes every counter of the physical NICs and vifs under the shell agent's keys and values")
    func writes() throws {
        let root = FileManager.default.temporaryDirectory.appending(path: "counters-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Self.makeSysfs(root)
        let result = try Self.run(["-i", "0.01", "-n", "2"], sysfs: root + "/net", uptime: root + "/uptime")
        #expect(result.status == 0)
        let firstEnd = try #require(result.lines.firstIndex(of: "data/iovm/agent/seq=1"))
        let first = Self.pairs(result.lines[...firstEnd] + result.lines[firstEnd...].prefix { !$0.hasPrefix("data/iovm/counters/") })
        #expect(first["data/iovm/counters/eth0"] == "nic eth0 1000 1001 1002 1003")
        #expect(first["data/iovm/counters/vif7_0"] == "vif vif7.0 3000 3001 3002 3003")
        #expect(first["data/iovm/agent/interval"] == "0.01")
        #expect(first["data/iovm/agent/uptime"] == "4242.17")
        #expect(first["data/iovm/agent/bits"] == "64" || first["data/iovm/agent/bits"] == "32")
        // Not counted: the netfront, the -emu tap, the bridge, lo.
        #expect(first.keys.filter { $0.hasPrefix("data/iovm/counters/") }.sorted() == ["data/iovm/counters/eth0", "data/iovm/counters/vif7_0"])
        #expect(result.lines.contains("data/iovm/agent/seq=2"))
        #expect(!result.lines.contains { $0.hasPrefix("rm ") })
    }

    @Test("an interface that goes away is removed in the next period")
    func removesGoneInterfaces() throws {
        let root = FileManager.default.temporaryDirectory.appending(path: "counters-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Self.makeSysfs(root)
        // The guest is destroyed (its vif disappears) once the first period is out; the second comes 2 s later.
        let result = try Self.run(["-i", "2", "-n", "2"], sysfs: root + "/net", uptime: root + "/uptime") { line in
            if line == "data/iovm/agent/seq=1" { try? FileManager.default.removeItem(atPath: root + "/net/vif7.0") }
        }
        #expect(result.status == 0)
        let second = try #require(result.lines.firstIndex(of: "data/iovm/agent/seq=1")).advanced(by: 1)
        let rest = Array(result.lines[second...])
        #expect(rest.contains("rm data/iovm/counters/vif7_0"), "\(rest)")
        #expect(!rest.contains { $0.hasPrefix("data/iovm/counters/vif7_0=") })
        #expect(rest.contains { $0.hasPrefix("data/iovm/counters/eth0=") })
    }

    @Test("a NIC's tx comes from its root qdisc (rtnetlink), as `tc -s qdisc show` prints it, on this machine's interfaces")
    func qdiscTxOnThisHost() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/tc") || FileManager.default.isExecutableFile(atPath: "/sbin/tc") else {
            Issue.record("no tc on this machine to compare with (iproute2)")
            return
        }
        let tc = FileManager.default.isExecutableFile(atPath: "/usr/sbin/tc") ? "/usr/sbin/tc" : "/sbin/tc"
        func rootQdiscs() throws -> [String: UInt64] {
            let outcome = try ProcessRunner.run(tc, ["-s", "qdisc", "show"], environment: ["LC_ALL": "C"], timeout: 30)
            var sent: [String: UInt64] = [:]
            var device: String?
            for line in outcome.output.split(separator: "\n") {
                let words = line.split(separator: " ")
                if words.first == "qdisc" {
                    device = words.contains("root") && words[1] != "noqueue" ? words.firstIndex(of: "dev").map { String(words[$0 + 1]) } : nil
                } else if words.first == "Sent", let device, words.count > 1, let bytes = UInt64(words[1]) {
                    sent[device] = bytes
                }
            }
            return sent
        }
        let before = try rootQdiscs()
        let result = try Self.run(["-n", "1"], sysfs: nil, uptime: nil)
        let after = try rootQdiscs()
        #expect(result.status == 0)
        let published = Self.pairs(result.lines).filter { $0.key.hasPrefix("data/iovm/counters/") && $0.value.hasPrefix("nic ") }
        var compared = 0
        for (_, value) in published {
            let fields = value.split(separator: " ")
            guard fields.count == 6, let low = before[String(fields[1])], let high = after[String(fields[1])] else { continue }
            let tx = try #require(UInt64(fields[3]))
            #expect(low <= tx && tx <= high, "\(fields[1]): agent tx \(tx), tc \(low)...\(high)")
            compared += 1
        }
        print("counters agent: compared \(compared) NIC(s) with a root qdisc against tc: \(published.values.sorted())")
    }
}
