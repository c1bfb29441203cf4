import Foundation
import Testing

/// Runs `Agents/iovm-init` (the minimal image's start-up) with busybox's shell, as in the image, over a fake
/// sysfs and command line, with the checked-in fake `ip` and `xenstore-write` (Tests/Fakes) recording calls.
@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: "/bin/busybox")))
struct IOVMInitScriptTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let script = repository.appending(path: "Agents/iovm-init").path
    static let fakes = repository.appending(path: "Tests/Fakes").path

    /// The calls the script made, given the PCI devices (BDF → class, interface) and the command line.
    static func run(devices: [(String, String, String?)], cmdline: String) throws -> [String] {
        let root = FileManager.default.temporaryDirectory.appending(path: "iovm-init-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        for (bdf, pciClass, interface) in devices {
            let device = root + "/sys/bus/pci/devices/" + bdf
            try FileManager.default.createDirectory(atPath: device, withIntermediateDirectories: true)
            try Data((pciClass + "\n").utf8).write(to: URL(fileURLWithPath: device + "/class"))
            if let interface { try FileManager.default.createDirectory(atPath: device + "/net/" + interface, withIntermediateDirectories: true) }
        }
        try Data((cmdline + "\n").utf8).write(to: URL(fileURLWithPath: root + "/cmdline"))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/busybox")
        process.arguments = ["sh", script]
        process.environment = [
            "PATH": "/usr/bin:/bin", "IOVM_INIT_MOUNTS": "0", "IOVM_SYSFS": root + "/sys", "IOVM_CMDLINE": root + "/cmdline",
            "IOVM_INIT_WAIT": "3", "IP": fakes + "/ip", "XENSTORE_WRITE": fakes + "/xenstore-write", "FAKE_CALLS": root + "/calls",
        ]
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let calls = (try? String(contentsOfFile: root + "/calls", encoding: .utf8)) ?? ""
        return calls.split(separator: "\n").map(String.init)
    }

    static let lab: [(String, String, String?)] = [
        ("0000:00:01.0", "0x060000", nil), ("0000:00:10.0", "0x020000", "eth0"), ("0000:00:11.0", "0x020000", "eth1"),
    ]

    @Test("each NIC goes into the bridge the command line names, custom names included")
    func bridgesFromTheCommandLine() throws {
        let calls = try Self.run(devices: Self.lab, cmdline: "console=hvc0 iovm.nics=0000:00:11.0=uplink0,0000:00:10.0=br0")
        // dom0 may add vifs from the first write on: it comes before the bridges.
        #expect(calls.first == "xenstore-write data/iovm/netback ready")
        #expect(
            Array(calls.filter { $0.hasPrefix("ip ") }.prefix(6)) == [
                "ip link add uplink0 type bridge stp_state 0 forward_delay 0", "ip link set dev eth1 master uplink0 up", "ip link set dev uplink0 up",
                "ip link add br0 type bridge stp_state 0 forward_delay 0", "ip link set dev eth0 master br0 up", "ip link set dev br0 up",
            ])
        #expect(calls.last?.hasPrefix("xenstore-write data/iovm/runtime iovm-minimal ") == true)
    }

    @Test("a BDF the IOVM sees under another address falls back to the NIC at the same position")
    func renumberedNIC() throws {
        let calls = try Self.run(devices: Self.lab, cmdline: "iovm.nics=0000:00:04.0=br0,0000:00:05.0=br1")
        #expect(calls.contains("ip link set dev eth0 master br0 up") && calls.contains("ip link set dev eth1 master br1 up"))
    }

    @Test("one BDF missing maps every entry by position: a BDF that exists but is another NIC's is not used twice")
    func mixedRenumbering() throws {
        // The host's 0000:00:01.0 and 0000:00:03.0 appear as 00:00.0 and 00:01.0 in the IOVM.
        let devices: [(String, String, String?)] = [("0000:00:00.0", "0x020000", "eth0"), ("0000:00:01.0", "0x020000", "eth1")]
        let calls = try Self.run(devices: devices, cmdline: "iovm.nics=0000:00:01.0=br0,0000:00:03.0=br1")
        #expect(calls.contains("ip link set dev eth0 master br0 up") && calls.contains("ip link set dev eth1 master br1 up"), "\(calls)")
    }

    @Test("without iovm.nics every NIC gets br0, br1, ... in PCI order")
    func defaultBridges() throws {
        let calls = try Self.run(devices: Self.lab, cmdline: "console=hvc0")
        #expect(calls.contains("ip link set dev eth0 master br0 up") && calls.contains("ip link set dev eth1 master br1 up"))
        #expect(!calls.contains { $0.contains("br2") })
    }
}
