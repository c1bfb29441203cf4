import Foundation
import IOVMCore
import Testing

@testable import IOVMImage

/// Compiles `Agents/iovm-counters.c` with the host's cc (as `iovm image build` does) and runs it with `-p`
/// (writes printed, not sent to xenstore) over a fake sysfs, and over the host's own interfaces.
@Suite("Static counters agent (Agents/iovm-counters.c)")
struct CountersAgentTests {
    static let program = CompiledAgent.path("iovm-counters.c")

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
        try writeNetDev(root)
    }

    /// The fake /proc/net/dev at `root/net-dev`, from the statistics files of the fake sysfs at `root/net`, as the kernel
    /// prints it: two header lines, then per interface its rx bytes, packets and 6 more, its tx bytes, packets and 6 more.
    /// Written again after each change to the fake sysfs.
    static func writeNetDev(_ root: String) throws {
        var text = "Inter-|   Receive                                                |  Transmit\n"
        text += " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
        for name in try FileManager.default.contentsOfDirectory(atPath: root + "/net").sorted() {
            func stat(_ counter: String) -> String {
                ((try? String(contentsOfFile: root + "/net/\(name)/statistics/\(counter)", encoding: .utf8)) ?? "0")
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            }
            // The kernel's field widths (net/core/net-procfs.c): a line is about 110 bytes with small numbers.
            let fields =
                [stat("rx_bytes"), stat("rx_packets"), "0", "0", "0", "0", "0", "0", stat("tx_bytes"), stat("tx_packets")]
                + ["0", "0", "0", "0", "0", "0"]
            let widths = [7, 7, 4, 4, 4, 5, 10, 9, 8, 7, 4, 4, 4, 5, 7, 10]
            let padded = zip(fields, widths).map { String(repeating: " ", count: max(0, $1 - $0.count)) + $0 }
            text += String(repeating: " ", count: max(0, 6 - name.count)) + name + ": " + padded.joined(separator: " ") + "\n"
        }
        // In place, as procfs makes the text again under the same inode: the agent reads the file it keeps open.
        try text.write(toFile: root + "/net-dev", atomically: false, encoding: .utf8)
    }

    /// A fake /proc/interrupts of two CPUs at `root/interrupts`: netback's names for vif7.0 (multi-queue, split and one
    /// channel), vif9.0 (before multi-queue, split) and vif9.1 (before multi-queue, one channel); vif7.10's channel that
    /// is not vif7.1's; a NIC's and a shared line that name no vif of netback's; lines with no IRQ number.
    static func makeInterrupts(_ root: String) throws {
        let text = """
                       CPU0       CPU1
              1:         10          0   IO-APIC   1-edge      i8042
             72:        100         20  xen-dyn-lateeoi    -event     vif7.0-q0-tx
             73:        300          4  xen-dyn-lateeoi    -event     vif7.0-q0-rx
             74:         50          0  xen-dyn-lateeoi    -event     vif7.0-q1
             75:          7          0  xen-dyn-lateeoi    -event     vif7.10-q0-tx
             76:          3          0  xen-dyn    -event     vif9.0-tx
             77:          2          1  xen-dyn    -event     vif9.0-rx
             78:         11          1  xen-dyn    -event     vif9.1
             79:       1000          0  xen-dyn-lateeoi    -event     eth0-q0, vif7.0-emu
             80:        500        500  xen-dyn    -event     xen-netback-ctrl
            NMI:          0          0   Non-maskable interrupts
            ERR:          0

            """
        try text.write(toFile: root + "/interrupts", atomically: true, encoding: .utf8)
    }

    /// Adds interface `name` to the fake sysfs at `root`, its counters `base`, `base + 1`, ...
    static func addInterface(_ root: String, _ name: String, base: Int) throws {
        try FileManager.default.createDirectory(atPath: root + "/net/\(name)/statistics", withIntermediateDirectories: true)
        for (offset, counter) in ["rx_bytes", "tx_bytes", "rx_packets", "tx_packets"].enumerated() {
            try "\(base + offset)\n".write(toFile: root + "/net/\(name)/statistics/\(counter)", atomically: true, encoding: .utf8)
        }
        try "\(95000 + base)\n".write(toFile: root + "/net/\(name)/ifindex", atomically: true, encoding: .utf8)
        try writeNetDev(root)
    }

    /// Starts the agent with `arguments` and `-p`; `onLine` sees each printed line as it comes. Over a fake sysfs the
    /// interrupts are `interrupts` (none when nil), never the machine's.
    static func run(
        _ arguments: [String], sysfs: String?, uptime: String?, interrupts: String? = nil, onLine: (String) -> Void = { _ in }
    ) throws -> (status: Int32, lines: [String]) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try program.get())
        process.arguments = ["-p"] + arguments
        var environment = ["PATH": "/usr/bin:/bin"]
        if let sysfs {
            environment["SYSFS_NET"] = sysfs
            environment["PROC_NET_DEV"] = (sysfs as NSString).deletingLastPathComponent + "/net-dev"
            environment["PROC_INTERRUPTS"] = interrupts ?? sysfs + "/no-interrupts"
        }
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
        let firstSample = try #require(result.lines.firstIndex { $0.hasPrefix("data/iovm/sample=") })
        let first = Self.pairs(result.lines[...firstSample])
        #expect(first["data/iovm/counters/eth0"] == "nic eth0 1000 1001 1002 1003")
        #expect(first["data/iovm/counters/vif7_0"] == "vif vif7.0 3000 3001 3002 3003")
        #expect(first["data/iovm/agent/interval"] == "0.01")
        #expect(first["data/iovm/agent/uptime"] == "4242.17")
        #expect(first["data/iovm/agent/bits"] == "64" || first["data/iovm/agent/bits"] == "32")
        // Not counted: the netfront, the -emu tap, the bridge, lo.
        #expect(first.keys.filter { $0.hasPrefix("data/iovm/counters/") }.sorted() == ["data/iovm/counters/eth0", "data/iovm/counters/vif7_0"])
        // Period 2 moved nothing: its sample says it, alone.
        #expect(result.lines.last?.hasPrefix("data/iovm/sample=iovm-sample 1\\nseq 2\\n") == true, "\(result.lines)")
        #expect(!result.lines.contains { $0.hasPrefix("rm ") })
        // No /proc/interrupts: no notifications, and nothing else changes.
        #expect(!result.lines.contains { $0.hasPrefix("data/iovm/notifications/") })
    }

    @Test("publishes each vif's notifications: its event channels' interrupts over its queues, tx and rx, and every CPU")
    func notifications() throws {
        let root = FileManager.default.temporaryDirectory.appending(path: "counters-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Self.makeSysfs(root)
        try Self.makeInterrupts(root)
        for (index, name) in ["vif7.1", "vif9.0", "vif9.1"].enumerated() { try Self.addInterface(root, name, base: 10_000 * (index + 1)) }
        let result = try Self.run(["-i", "0.01", "-n", "2"], sysfs: root + "/net", uptime: root + "/uptime", interrupts: root + "/interrupts")
        #expect(result.status == 0)
        let firstEnd = try #require(result.lines.firstIndex(of: "data/iovm/agent/seq=1"))
        let first = Self.pairs(result.lines[...firstEnd])
        let published = first.filter { $0.key.hasPrefix("data/iovm/notifications/") }
        #expect(
            published == [
                "data/iovm/notifications/vif7_0": "vif7.0 474",  // 100 + 20 + 300 + 4 + 50: q0-tx, q0-rx, q1 (one channel)
                "data/iovm/notifications/vif9_0": "vif9.0 6",  // 3 + 2 + 1: -tx, -rx
                "data/iovm/notifications/vif9_1": "vif9.1 12",  // 11 + 1
            ])
        // vif7.1 has no channel (vif7.10-q0-tx is not its): no key, but its counters; the counters are as before.
        #expect(first["data/iovm/counters/vif7_1"] == "vif vif7.1 10000 10001 10002 10003")
        #expect(first["data/iovm/counters/vif7_0"] == "vif vif7.0 3000 3001 3002 3003")
        #expect(first["data/iovm/counters/eth0"] == "nic eth0 1000 1001 1002 1003")
        // The same transaction as the counters: before the period's agent keys.
        let index = try #require(result.lines.firstIndex(of: "data/iovm/notifications/vif7_0=vif7.0 474"))
        #expect(index < firstEnd)
        // The second period: the same count is not written again; its sample still says it.
        let second = Array(result.lines[(firstEnd + 1)...].drop { !$0.hasPrefix("data/iovm/sample=") }.dropFirst())
        #expect(!second.contains { $0.hasPrefix("data/iovm/notifications/") }, "\(second)")
        #expect(Self.pairs(second)["data/iovm/sample"]?.contains("\\nn vif7_0 vif7.0 474\\n") == true, "\(second)")
    }

    /// `iovm monitor` reads `data/iovm/sample` in one request; it must say what the keys say, in the same transaction.
    @Test("publishes everything again in one node, data/iovm/sample, after the keys of its period")
    func sample() throws {
        let root = FileManager.default.temporaryDirectory.appending(path: "counters-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Self.makeSysfs(root)
        try Self.makeInterrupts(root)
        let result = try Self.run(["-i", "0.01", "-n", "2"], sysfs: root + "/net", uptime: root + "/uptime", interrupts: root + "/interrupts")
        #expect(result.status == 0)
        let firstSample = try #require(result.lines.firstIndex { $0.hasPrefix("data/iovm/sample=") })
        let period = Self.pairs(result.lines[...firstSample])
        let text = try #require(period["data/iovm/sample"]).replacingOccurrences(of: "\\n", with: "\n")
        let lines = text.split(separator: "\n").map(String.init)
        #expect(Array(lines.prefix(5)) == ["iovm-sample 1", "seq 1", "interval 0.01", "uptime 4242.17", "bits \(period["data/iovm/agent/bits"] ?? "?")"])
        // Every key of the period, once, with its value.
        var expected: [String] = []
        for (key, value) in period {
            if key.hasPrefix("data/iovm/counters/") { expected.append("c \(key.dropFirst("data/iovm/counters/".count)) \(value)") }
            if key.hasPrefix("data/iovm/notifications/") { expected.append("n \(key.dropFirst("data/iovm/notifications/".count)) \(value)") }
        }
        #expect(lines.dropFirst(5).sorted() == expected.sorted())
        #expect(lines.contains("c eth0 nic eth0 1000 1001 1002 1003") && lines.contains("n vif7_0 vif7.0 474"), "\(lines)")
        #expect(text.hasSuffix("\n"))
    }

    @Test("an interface that goes away is removed in the next period")
    func removesGoneInterfaces() throws {
        let root = FileManager.default.temporaryDirectory.appending(path: "counters-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Self.makeSysfs(root)
        try Self.makeInterrupts(root)
        try Self.addInterface(root, "vif9.1", base: 10_000)
        // The guest is destroyed (its vif and its channels disappear) once the first period is out; the second comes 2 s later.
        let result = try Self.run(["-i", "2", "-n", "2"], sysfs: root + "/net", uptime: root + "/uptime", interrupts: root + "/interrupts") { line in
            if line == "data/iovm/agent/seq=1" {
                try? FileManager.default.removeItem(atPath: root + "/net/vif7.0")
                try? Self.writeNetDev(root)
                let interrupts = (try? String(contentsOfFile: root + "/interrupts", encoding: .utf8)) ?? ""
                let kept = interrupts.split(separator: "\n").filter { !$0.contains("vif7.0-q") }.joined(separator: "\n") + "\n"
                try? kept.write(toFile: root + "/interrupts", atomically: true, encoding: .utf8)
            }
        }
        #expect(result.status == 0)
        let firstEnd = try #require(result.lines.firstIndex(of: "data/iovm/agent/seq=1"))
        #expect(result.lines[..<firstEnd].contains("data/iovm/notifications/vif7_0=vif7.0 474"))
        let rest = Array(result.lines[(firstEnd + 1)...])
        #expect(rest.contains("rm data/iovm/counters/vif7_0"), "\(rest)")
        #expect(rest.contains("rm data/iovm/notifications/vif7_0"), "\(rest)")
        #expect(!rest.contains { $0.hasPrefix("data/iovm/counters/vif7_0=") || $0.hasPrefix("data/iovm/notifications/vif7_0=") })
        // What stays, unchanged, keeps its keys (not written again) and is in the second sample; vif7.0 is not.
        let sample = try #require(Self.pairs(rest)["data/iovm/sample"]).replacingOccurrences(of: "\\n", with: "\n")
        #expect(sample.contains("\nc eth0 nic eth0 ") && sample.contains("\nn vif9_1 vif9.1 12\n") && !sample.contains("vif7_0"), "\(sample)")
        #expect(rest.filter { $0.hasPrefix("rm ") }.count == 2)
    }

    /// An idle IOVM's period writes only what changed (issue 16: each xenstore request costs the IOVM CPU).
    @Test("a key is written again when its value changed, read from /proc/net/dev kept open; unchanged keys every 60 periods")
    func writesWhatChanged() throws {
        let root = FileManager.default.temporaryDirectory.appending(path: "counters-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Self.makeSysfs(root)
        // Changed in place (the same inode, as sysfs makes a value again): the agent's open file must see it.
        let result = try Self.run(["-i", "0.5", "-n", "2"], sysfs: root + "/net", uptime: root + "/uptime") { line in
            if line == "data/iovm/agent/seq=1" {
                try? "777\n".write(toFile: root + "/net/eth0/statistics/rx_bytes", atomically: false, encoding: .utf8)
                try? Self.writeNetDev(root)
            }
        }
        #expect(result.status == 0)
        let firstSample = try #require(result.lines.firstIndex { $0.hasPrefix("data/iovm/sample=") })
        let second = Array(result.lines[(firstSample + 2)...])  // after period 1's commit
        // What changed comes with the clock that dates it (the uptime file did not move), in one transaction.
        #expect(
            second.filter { !$0.hasPrefix("data/iovm/sample=") } == [
                "transaction", "data/iovm/counters/eth0=nic eth0 777 1001 1002 1003", "data/iovm/agent/seq=2", "commit",
            ])
        #expect(Self.pairs(second)["data/iovm/sample"]?.contains("\\nc vif7_0 vif vif7.0 3000 3001 3002 3003\\n") == true, "\(second)")

        let long = try Self.run(["-i", "0.001", "-n", "62"], sysfs: root + "/net", uptime: root + "/uptime")
        #expect(long.status == 0)
        // Nothing moves: periods 1 and 61 write every key; the 60 others only the sample, without a transaction.
        #expect(long.lines.filter { $0.hasPrefix("data/iovm/agent/seq=") } == ["data/iovm/agent/seq=1", "data/iovm/agent/seq=61"])
        #expect(long.lines.filter { $0.hasPrefix("data/iovm/counters/vif7_0=") }.count == 2, "periods 1 and 61")
        #expect(long.lines.filter { $0.hasPrefix("data/iovm/agent/interval=") }.count == 2)
        #expect(long.lines.filter { $0.hasPrefix("data/iovm/sample=") }.count == 62)
        #expect(long.lines.filter { $0 == "transaction" }.count == 2 && long.lines.filter { $0 == "commit" }.count == 2)
        #expect(long.lines.count == 2 * 9 + 60, "\(long.lines.count) lines")
    }

    /// Issue 16: an idle IOVM's agent costs one xenstore request per period, and reads /proc/interrupts only when a vif moved.
    @Test("an idle period writes the sample alone; /proc/interrupts is read again when a vif's counters move")
    func idlePeriods() throws {
        let root = FileManager.default.temporaryDirectory.appending(path: "counters-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Self.makeSysfs(root)
        try Self.makeInterrupts(root)
        func bumpInterrupts() {
            let text = (try? String(contentsOfFile: root + "/interrupts", encoding: .utf8)) ?? ""
            try? text.replacingOccurrences(of: "\n 80:", with: "\n 81:        900          0  xen-dyn    -event     vif7.0-q2\n 80:")
                .write(toFile: root + "/interrupts", atomically: true, encoding: .utf8)
        }
        // After period 1: 900 more notifications for vif7.0, and the uptime moves; its counters do not (period 2).
        // After period 2: vif7.0 receives a packet (period 3).
        let result = try Self.run(["-i", "0.5", "-n", "3"], sysfs: root + "/net", uptime: root + "/uptime", interrupts: root + "/interrupts") { line in
            if line == "data/iovm/agent/seq=1" {
                bumpInterrupts()
                try? "4243.17 8000.00\n".write(toFile: root + "/uptime", atomically: true, encoding: .utf8)
            }
            if line.hasPrefix("data/iovm/sample=iovm-sample 1\\nseq 2\\n") {
                try? "3003\n".write(toFile: root + "/net/vif7.0/statistics/rx_packets", atomically: false, encoding: .utf8)
                try? Self.writeNetDev(root)
            }
        }
        #expect(result.status == 0)
        let firstEnd = try #require(result.lines.firstIndex(of: "commit"))
        // Period 2: one line, the sample, no transaction; the interrupts file was not read again (vif7.0 still 474).
        let secondSample = try #require(result.lines.first { $0.hasPrefix("data/iovm/sample=iovm-sample 1\\nseq 2\\n") })
        let secondIndex = try #require(result.lines.firstIndex(of: secondSample))
        #expect(secondIndex == firstEnd + 1, "\(result.lines)")
        #expect(secondSample.contains("\\nuptime 4243.17\\n") && secondSample.contains("\\nn vif7_0 vif7.0 474\\n"), "\(secondSample)")
        // Period 3: vif7.0 moved, so its counters, its notifications (474 + 900) and the clock, in a transaction.
        let third = Array(result.lines[(secondIndex + 1)...])
        #expect(third.first == "transaction" && third.last == "commit", "\(third)")
        let pairs = Self.pairs(third)
        #expect(pairs["data/iovm/counters/vif7_0"] == "vif vif7.0 3000 3001 3003 3003")
        #expect(pairs["data/iovm/notifications/vif7_0"] == "vif7.0 1374")
        #expect(pairs["data/iovm/agent/seq"] == "3" && pairs["data/iovm/agent/uptime"] == "4243.17")
        #expect(pairs["data/iovm/sample"]?.contains("\\nn vif7_0 vif7.0 1374\\n") == true)
        #expect(result.lines.filter { $0 == "transaction" }.count == 2, "periods 1 and 3")
    }

    /// /proc/net/dev is a seq_file: a read returns a page at most. The agent reads on while a read came back full.
    @Test("forty vifs: every one counted from a /proc/net/dev of more than one page")
    func manyInterfaces() throws {
        let root = FileManager.default.temporaryDirectory.appending(path: "counters-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Self.makeSysfs(root)
        for guest in 10..<50 { try Self.addInterface(root, "vif\(guest).0", base: 100 * guest) }
        let size = try #require(try FileManager.default.attributesOfItem(atPath: root + "/net-dev")[.size] as? Int)
        #expect(size > 4096, "\(size) bytes")
        let result = try Self.run(["-i", "0.01", "-n", "1"], sysfs: root + "/net", uptime: root + "/uptime")
        #expect(result.status == 0)
        let counters = Self.pairs(result.lines).filter { $0.key.hasPrefix("data/iovm/counters/") }
        #expect(counters.count == 42, "\(counters.keys.sorted())")
        #expect(counters["data/iovm/counters/vif49_0"] == "vif vif49.0 4900 4901 4902 4903")
        #expect(Self.pairs(result.lines)["data/iovm/sample"]?.contains("\\nc vif49_0 vif vif49.0 4900 4901 4902 4903\\n") == true)
    }

    /// Runs two periods of the agent over the fake sysfs; once the first is out, interface `name` is made again under its
    /// name (without a device, its counters `base`, `base + 1`, ...). The old one is kept elsewhere (its files still
    /// readable), so the new one cannot reuse its inode.
    static func runMadeAgain(_ name: String, base: Int) throws -> (status: Int32, lines: [String]) {
        let root = FileManager.default.temporaryDirectory.appending(path: "counters-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try makeSysfs(root)
        try FileManager.default.createDirectory(atPath: root + "/staging/net", withIntermediateDirectories: true)
        try addInterface(root + "/staging", name, base: base)
        return try run(["-i", "0.5", "-n", "2"], sysfs: root + "/net", uptime: root + "/uptime") { line in
            if line == "data/iovm/agent/seq=1" {
                try? FileManager.default.moveItem(atPath: root + "/net/\(name)", toPath: root + "/old-\(name)")
                try? FileManager.default.moveItem(atPath: root + "/staging/net/\(name)", toPath: root + "/net/\(name)")
                try? writeNetDev(root)
            }
        }
    }

    @Test("an interface made again under the same name (a vif re-attached) is read afresh")
    func interfaceMadeAgain() throws {
        let result = try Self.runMadeAgain("vif7.0", base: 50_000)
        #expect(result.status == 0)
        let firstSample = try #require(result.lines.firstIndex { $0.hasPrefix("data/iovm/sample=") })
        #expect(result.lines[..<firstSample].contains("data/iovm/counters/vif7_0=vif vif7.0 3000 3001 3002 3003"))
        let second = Self.pairs(result.lines[(firstSample + 1)...])
        #expect(second["data/iovm/counters/vif7_0"] == "vif vif7.0 50000 50001 50002 50003", "\(second)")
    }

    /// Runs `script` with sh in a new network and mount namespace (its own /sys mounted, so /sys/class/net is the
    /// namespace's); nil when this machine does not allow it (not root, no unshare(1) or no ip(8)).
    static func inNetworkNamespace(_ script: String, environment: [String: String] = [:]) throws -> (status: Int32, output: String)? {
        let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].contains { FileManager.default.isExecutableFile(atPath: $0) }
        guard getuid() == 0, ip, FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare") else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        process.arguments = ["-nm", "sh", "-c", "mount -t sysfs sysfs /sys || exit 99\n" + script]
        process.environment = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"].merging(environment) { $1 }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        if process.terminationStatus == 99 || text.contains("unshare failed") { return nil }
        return (process.terminationStatus, text)
    }

    @Test("sixty vifs in a network namespace: every one counted from the kernel's /proc/net/dev, a seq_file read a page at a time")
    func kernelNetDevPages() throws {
        // 60 veth pairs: 121 interfaces, about 15 KB of /proc/net/dev. One read of that seq_file returns a page at most
        // (an agent that read once counted 15 of the 60). On the last ten pairs, on the last page, vif<i>.0 sends i - 50
        // UDP datagrams to a neighbour set by hand (no ARP; with IPv6 off nothing else moves a counter): distinct
        // counters, compared with sysfs after the period.
        let script = """
            for i in $(seq 1 60); do echo "link add vif$i.0 type veth peer name p$i"; done | ip -batch - || exit 98
            for f in all default; do echo 1 >/proc/sys/net/ipv6/conf/$f/disable_ipv6; done 2>/dev/null
            for i in $(seq 51 60); do
              ip addr add 10.0.$i.1/24 dev vif$i.0 && ip link set vif$i.0 up && ip link set p$i up \\
                && ip neigh add 10.0.$i.2 lladdr 02:00:00:00:00:01 dev vif$i.0 nud permanent || exit 96
            done
            bash -c 'for i in $(seq 51 60); do for k in $(seq $((i - 50))); do echo x >/dev/udp/10.0.$i.2/9; done; done' || exit 95
            sleep 0.5
            echo "net-dev $(wc -c </proc/net/dev) bytes"
            "$AGENT" -p -n 1 || exit 97
            for i in $(seq 1 60); do
              d=/sys/class/net/vif$i.0/statistics
              echo "sysfs vif$i.0 $(cat $d/rx_bytes) $(cat $d/tx_bytes) $(cat $d/rx_packets) $(cat $d/tx_packets)"
            done
            """
        guard let run = try Self.inNetworkNamespace(script, environment: ["AGENT": try Self.program.get()]) else {
            print("counters agent: no network namespace on this machine (root and unshare -nm needed): the kernel's paging not tried")
            return
        }
        #expect(run.status == 0, "\(run.output)")
        let lines = run.output.split(separator: "\n").map(String.init)
        let netDev = lines.first { $0.hasPrefix("net-dev ") } ?? "?"
        let counted = lines.filter { $0.hasPrefix("data/iovm/counters/vif") }
        print("counters agent: \(counted.count) of 60 vifs counted from a /proc/net/dev of \(netDev.dropFirst(8))")
        #expect(counted.count == 60, "\(run.output)")
        for line in lines where line.hasPrefix("sysfs ") {
            let fields = line.split(separator: " ")
            let name = fields[1]
            let key = name.replacingOccurrences(of: ".", with: "_")
            #expect(counted.contains("data/iovm/counters/\(key)=vif \(name) \(fields[2...].joined(separator: " "))"), "\(line)")
        }
        #expect(Int(netDev.split(separator: " ").dropFirst().first ?? "") ?? 0 > 8192, "\(netDev): not past two pages")
        // The compared counters say something: the ten pairs that carried traffic have ten different tx counts.
        let moved = lines.filter { $0.hasPrefix("sysfs vif") && Int($0.split(separator: " ")[1].dropFirst(3).prefix { $0 != "." }) ?? 0 > 50 }
        let txPackets = Set(moved.compactMap { $0.split(separator: " ").last.flatMap { Int($0) } }.filter { $0 > 0 })
        #expect(txPackets.count == 10, "\(moved)")
    }

    @Test("a netdev made again under a NIC's name with counters gone back is listed afresh: no longer a NIC, its keys go")
    func countersWentBack() throws {
        // The same name, no device (a virtual netdev, not counted), counters below eth0's: /proc/net/dev names the same
        // interfaces, so only the counters going back tell the agent to list /sys/class/net again.
        let result = try Self.runMadeAgain("eth0", base: 10)
        #expect(result.status == 0)
        let firstEnd = try #require(result.lines.firstIndex(of: "data/iovm/agent/seq=1"))
        #expect(result.lines[..<firstEnd].contains("data/iovm/counters/eth0=nic eth0 1000 1001 1002 1003"))
        let rest = Array(result.lines[(firstEnd + 1)...])
        #expect(rest.contains("rm data/iovm/counters/eth0"), "\(rest)")
        #expect(!rest.contains { $0.hasPrefix("data/iovm/counters/eth0=") }, "\(rest)")
    }

    @Test("a NIC's tx comes from its root qdisc (rtnetlink), as `tc -s qdisc show` prints it, and the uptime is /proc/uptime's, on this machine")
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
        func uptime() throws -> Double {
            let text = try String(contentsOfFile: "/proc/uptime", encoding: .utf8)
            return try #require(Double(text.split(separator: " ").first ?? ""))
        }
        func sysfsRx() -> [String: UInt64] {
            var rx: [String: UInt64] = [:]
            for name in (try? FileManager.default.contentsOfDirectory(atPath: "/sys/class/net")) ?? [] {
                let text = (try? String(contentsOfFile: "/sys/class/net/\(name)/statistics/rx_bytes", encoding: .utf8)) ?? ""
                if let value = UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines)) { rx[name] = value }
            }
            return rx
        }
        let before = try rootQdiscs()
        let sysfsBefore = sysfsRx()
        let earliest = try uptime()
        let result = try Self.run(["-n", "1"], sysfs: nil, uptime: nil)
        let latest = try uptime()
        let sysfsAfter = sysfsRx()
        let after = try rootQdiscs()
        #expect(result.status == 0)
        // Without PROC_UPTIME the agent reads CLOCK_BOOTTIME: what /proc/uptime shows (to its 0.01 s). /proc/uptime
        // truncates to hundredths and the agent rounds, so compare whole hundredths: `latest + 0.01` in Double can fall
        // below the agent's figure one hundredth up (20882.78 + 0.01 < 20882.79 failed a CI run).
        let published = try #require(Double(Self.pairs(result.lines)["data/iovm/agent/uptime"] ?? ""))
        func hundredths(_ seconds: Double) -> Int { Int((seconds * 100).rounded()) }
        #expect(
            hundredths(earliest) - 1 <= hundredths(published) && hundredths(published) <= hundredths(latest) + 1,
            "\(earliest) <= \(published) <= \(latest)")
        // Every counter from /proc/net/dev, as sysfs shows it: rx between the readings of sysfs before and after.
        for (_, value) in Self.pairs(result.lines) where value.hasPrefix("nic ") || value.hasPrefix("vif ") {
            let fields = value.split(separator: " ")
            guard fields.count == 6, let low = sysfsBefore[String(fields[1])], let high = sysfsAfter[String(fields[1])] else { continue }
            let rx = try #require(UInt64(fields[2]))
            #expect(low <= rx && rx <= high, "\(fields[1]): agent rx_bytes \(rx), sysfs \(low)...\(high)")
        }
        let nics = Self.pairs(result.lines).filter { $0.key.hasPrefix("data/iovm/counters/") && $0.value.hasPrefix("nic ") }
        var compared = 0
        for (_, value) in nics {
            let fields = value.split(separator: " ")
            guard fields.count == 6, let low = before[String(fields[1])], let high = after[String(fields[1])] else { continue }
            let tx = try #require(UInt64(fields[3]))
            #expect(low <= tx && tx <= high, "\(fields[1]): agent tx \(tx), tc \(low)...\(high)")
            compared += 1
        }
        print("counters agent: compared \(compared) NIC(s) with a root qdisc against tc: \(nics.values.sorted())")
    }
}
