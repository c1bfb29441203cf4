import Foundation
import IOVMControl
import IOVMCore
import Logging
import Synchronization
import Testing
import XenKit

@testable import IOVMXen

/// dom0's bridges over a fake sysfs tree, a recording `ip` and an in-memory xenstore: what iovm reads, the
/// commands it runs, its tags, and what a failed step leaves.
@Suite("IPRouteDom0Network")
struct IPRouteDom0NetworkTests {
    /// Records `ip`'s arguments; answers `address show` with `addresses[interface]`; fails the calls it is told to.
    final class RecordingIP: Sendable {
        let calls = Mutex<[String]>([])
        let failing = Mutex<[String]>([])
        let addresses = Mutex<[String: String]>([:])

        func run(_ arguments: [String]) -> ProcessOutcome {
            let line = arguments.joined(separator: " ")
            calls.withLock { $0.append(line) }
            if failing.withLock({ $0.contains { line.hasPrefix($0) } }) { return ProcessOutcome(status: 2, output: "RTNETLINK answers: Operation not permitted\n") }
            if arguments.starts(with: ["-o", "address", "show", "dev"]) { return ProcessOutcome(status: 0, output: addresses.withLock { $0[arguments[4]] } ?? "") }
            return ProcessOutcome(status: 0, output: "")
        }
        var changes: [String] { calls.withLock { $0 }.filter { !$0.hasPrefix("-o address") } }
    }

    /// A /sys with NIC 0000:00:10.0 driven as `enp0s16`, NIC 0000:00:11.0 bound to pciback (no `net/`), and
    /// bridge `br-lan` with port `eth9`.
    func sysfs() throws -> String {
        let manager = FileManager.default
        let root = manager.temporaryDirectory.appending(path: "iovm-dom0net-\(UUID().uuidString)")
        for directory in [
            "bus/pci/devices/0000:00:10.0/net/enp0s16", "bus/pci/devices/0000:00:11.0", "class/net/enp0s16", "class/net/eth9",
            "class/net/br-lan/bridge", "class/net/br-lan/brif/eth9",
        ] {
            try manager.createDirectory(at: root.appending(path: directory), withIntermediateDirectories: true)
        }
        try manager.createSymbolicLink(atPath: root.appending(path: "class/net/eth9/master").path, withDestinationPath: "../br-lan")
        return root.path
    }

    func network(_ root: String, _ ip: RecordingIP, _ store: MemoryTagStore) -> IPRouteDom0Network {
        IPRouteDom0Network(
            root: root, openStore: { _ throws(XenError) in store }, ip: { ip.run($0) }, logger: Logger(label: "iovm.test"))
    }

    @Test func readsANICsInterfaceItsMasterAndAddresses() throws {
        let root = try sysfs()
        let ip = RecordingIP()
        ip.addresses.withLock {
            $0["enp0s16"] =
                "2: enp0s16    inet 10.0.2.15/24 brd 10.0.2.255 scope global enp0s16\\       valid_lft forever preferred_lft forever\n"
                + "2: enp0s16    inet6 fec0::5054:ff:fe12:3456/64 scope global dynamic mngtmpaddr \\       valid_lft 86376sec preferred_lft 14376sec\n"
        }
        let network = network(root, ip, MemoryTagStore())
        #expect(try network.interface(of: PCIAddress("0000:00:10.0")!) == Dom0Interface(name: "enp0s16", addresses: ["10.0.2.15/24", "fec0::5054:ff:fe12:3456/64"]))
        #expect(try network.interface(of: PCIAddress("0000:00:11.0")!) == nil)  // pciback: no net/
        #expect(try network.interface(of: PCIAddress("0000:00:12.0")!) == nil)  // not here
        #expect(try network.bridge(named: "br-lan") == ObservedBridge(name: "br-lan", ports: ["eth9"]))
        #expect(try network.bridge(named: "eth9") == ObservedBridge(name: "eth9", isBridge: false))
        #expect(try network.bridge(named: "xenbr0") == nil)
    }

    /// The lab's dom0 reaches the world through a virtio NIC, whose interface sysfs keeps below its virtio device: iovm
    /// must see it there, or it would pass dom0's own network through to an IOVM.
    @Test func findsAVirtioNICsInterfaceBelowItsVirtioDevice() throws {
        let root = try sysfs()
        try FileManager.default.createDirectory(
            atPath: "\(root)/bus/pci/devices/0000:00:07.0/virtio0/net/eth0", withIntermediateDirectories: true)
        let ip = RecordingIP()
        ip.addresses.withLock { $0["eth0"] = "2: eth0    inet 10.0.4.15/24 brd 10.0.4.255 scope global eth0\\ valid_lft forever\n" }
        let network = network(root, ip, MemoryTagStore())
        #expect(try network.interface(of: PCIAddress("0000:00:07.0")!) == Dom0Interface(name: "eth0", addresses: ["10.0.4.15/24"]))
    }

    @Test func readsTheInterfacesOfTheDefaultRoutes() throws {
        #expect(
            IPRouteDom0Network.devices(
                inRouteOutput: "default via 10.0.3.2 dev eth0 \ndefault via 10.9.0.1 dev wlan0 proto dhcp src 10.9.0.7 metric 600 \n")
                == ["eth0", "wlan0"])
        #expect(IPRouteDom0Network.devices(inRouteOutput: "default via fe80::1 dev enp0s16 proto ra metric 1024 expires 1798sec pref medium\n") == ["enp0s16"])
        #expect(IPRouteDom0Network.devices(inRouteOutput: "").isEmpty)
    }

    @Test func makesATaggedBridgeWithTheNICsInterface() throws {
        let root = try sysfs()
        let ip = RecordingIP()
        let store = MemoryTagStore()
        let network = network(root, ip, store)
        #expect(try network.createBridge("xen.br0", on: PCIAddress("0000:00:10.0")!, topology: "central") == "enp0s16")
        #expect(
            ip.changes == [
                "link add name xen.br0 type bridge stp_state 0 forward_delay 0", "link set dev enp0s16 master xen.br0", "link set dev enp0s16 up",
                "link set dev xen.br0 up",
            ])
        #expect(store.values == ["/local/domain/0/iovm/bridges/xen@br0": "central"])
        #expect(try network.managedBridges() == ["xen.br0": "central"])
    }

    @Test func loadsTheDriverOfANICBoundToNone() throws {
        let root = try sysfs()
        let device = "\(root)/bus/pci/devices/0000:00:12.0"
        try FileManager.default.createDirectory(atPath: device, withIntermediateDirectories: true)
        try "pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00\n".write(toFile: "\(device)/modalias", atomically: false, encoding: .utf8)
        try "".write(toFile: "\(root)/bus/pci/drivers_probe", atomically: false, encoding: .utf8)
        let loaded = Mutex<[String]>([])
        let ip = RecordingIP()
        let network = IPRouteDom0Network(
            root: root, openStore: { _ throws(XenError) in MemoryTagStore() }, ip: { ip.run($0) },
            modprobe: { arguments in
                // The driver binds the NIC and registers its interface.
                loaded.withLock { $0.append(arguments.joined(separator: " ")) }
                try FileManager.default.createDirectory(atPath: "\(device)/net/eth2", withIntermediateDirectories: true)
                return ProcessOutcome(status: 0, output: "")
            }, logger: Logger(label: "iovm.test"))
        #expect(try network.createBridge("xenbr2", on: PCIAddress("0000:00:12.0")!, topology: "central") == "eth2")
        #expect(loaded.withLock { $0 } == ["-q pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00"])
        #expect(try String(contentsOfFile: "\(root)/bus/pci/drivers_probe", encoding: .utf8) == "0000:00:12.0")  // probed: no driver link yet
        #expect(ip.changes.first == "link add name xenbr2 type bridge stp_state 0 forward_delay 0")
    }

    @Test func aFailedStepRemovesTheBridgeAndItsTag() throws {
        let root = try sysfs()
        let ip = RecordingIP()
        ip.failing.withLock { $0.append("link set dev enp0s16 master") }
        let store = MemoryTagStore()
        #expect(throws: XenError.self) { try network(root, ip, store).createBridge("xenbr0", on: PCIAddress("0000:00:10.0")!, topology: "central") }
        #expect(ip.changes == ["link add name xenbr0 type bridge stp_state 0 forward_delay 0", "link set dev enp0s16 master xenbr0", "link delete dev xenbr0"])
        #expect(store.values.isEmpty)
    }

    @Test func refusesAnInterfaceDom0UsesOrAnotherBridgeHolds() throws {
        let root = try sysfs()
        let ip = RecordingIP()
        ip.addresses.withLock { $0["enp0s16"] = "2: enp0s16    inet 10.0.2.15/24 scope global enp0s16\n" }
        let store = MemoryTagStore()
        #expect(throws: XenError.self) { try network(root, ip, store).createBridge("xenbr0", on: PCIAddress("0000:00:10.0")!, topology: "central") }
        // br-lan exists and is not iovm's.
        ip.addresses.withLock { $0 = [:] }
        #expect(throws: XenError.self) { try network(root, ip, store).createBridge("br-lan", on: PCIAddress("0000:00:10.0")!, topology: "central") }
        #expect(throws: XenError.self) { try network(root, ip, store).createBridge("xenbr0", on: PCIAddress("0000:00:11.0")!, topology: "central") }
        #expect(ip.changes.isEmpty)
        #expect(store.values.isEmpty)
    }

    @Test func removesOnlyABridgeItMade() throws {
        let root = try sysfs()
        let ip = RecordingIP()
        let store = MemoryTagStore()
        let network = network(root, ip, store)
        #expect(throws: XenError.self) { try network.removeBridge(named: "br-lan") }
        #expect(ip.changes.isEmpty)

        try store.write("/local/domain/0/iovm/bridges/br-lan", "central")
        try network.removeBridge(named: "br-lan")
        #expect(ip.changes == ["link delete dev br-lan"])
        #expect(store.values.isEmpty)

        // Gone already: only its tag is removed.
        try store.write("/local/domain/0/iovm/bridges/xenbr0", "central")
        try network.removeBridge(named: "xenbr0")
        #expect(ip.changes == ["link delete dev br-lan"])
        #expect(store.values.isEmpty)
    }
}
