import Foundation
import IOVMMonitor
import Testing

@Suite("Counter sources")
struct CounterSourceTests {
    struct StoreError: Error {}

    /// A xenstore as a dictionary of full paths.
    static func store(_ values: [String: String]) -> (list: (String) throws(StoreError) -> [String]?, read: (String) throws(StoreError) -> String?) {
        let list = { (path: String) throws(StoreError) -> [String]? in
            let prefix = path + "/"
            let children = Set(values.keys.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count).split(separator: "/")[0]) })
            return children.isEmpty ? nil : children.sorted()
        }
        return (list, { (path: String) throws(StoreError) -> String? in values[path] })
    }

    @Test("reads the agent's layout: NICs, vifs with their guests, the counter width")
    func layout() throws {
        let root = "/local/domain/3/data/iovm/counters"
        let store = Self.store([
            "\(root)/eth0": "nic eth0 1000 2000 10 20",
            "\(root)/vif7_0": "vif vif7.0 2000 1000 5 6",
            "\(root)/half": "nic eth1 1000",  // torn or foreign: skipped
            "\(root)/odd": "tap tap0 1 1 1 1",  // unknown kind: skipped
            "/local/domain/3/data/iovm/agent/bits": "32",
            "/local/domain/3/data/iovm/agent/uptime": "812.50",
        ])
        let result = try CounterLayout.interfaces(domid: 3, list: store.list, read: store.read, guestName: { $0 == 7 ? "guest1" : nil })
        #expect(result.published)
        #expect(result.nics == [InterfaceCounters(name: "eth0", kind: .nic, rxBytes: 1000, txBytes: 2000, rxPackets: 10, txPackets: 20)])
        #expect(result.vifs == [InterfaceCounters(name: "vif7.0", kind: .vif, rxBytes: 2000, txBytes: 1000, rxPackets: 5, txPackets: 6, guest: "guest1")])
        #expect(result.width == .bits32)
        #expect(result.time == 812.5)
    }

    @Test("an interface value round-trips, and malformed values are refused")
    func values() {
        let eth = InterfaceCounters(name: "eth0", kind: .nic, rxBytes: 18_446_744_073_709_551_615, txBytes: 0, rxPackets: 7, txPackets: 8)
        #expect(CounterLayout.parse(CounterLayout.value(eth)) == eth)
        #expect(CounterLayout.parse("nic eth0 1 2 3") == nil)
        #expect(CounterLayout.parse("nic eth0 1 2 3 -4") == nil)
        #expect(CounterLayout.parse("bridge br0 1 2 3 4") == nil)
        #expect(CounterLayout.parse("") == nil)
    }

    @Test("a domain without the agent publishes nothing")
    func noAgent() throws {
        let store = Self.store([:])
        let result = try CounterLayout.interfaces(domid: 9, list: store.list, read: store.read)
        #expect(!result.published && result.nics.isEmpty && result.vifs.isEmpty && result.width == nil)
    }

    @Test("vif names give the guest's domid")
    func vifNames() {
        #expect(CounterLayout.vifDomid("vif12.0") == 12)
        #expect(CounterLayout.vifDomid("vif3.1-emu") == 3)
        #expect(CounterLayout.vifDomid("eth0") == nil)
        #expect(CounterLayout.countersPath(domid: 4) == "/local/domain/4/data/iovm/counters")
    }

    @Test("off Xen the real source refuses with a clear error")
    func realSourceOffXen() throws {
        guard !FileManager.default.fileExists(atPath: "/proc/xen"), !FileManager.default.fileExists(atPath: "/dev/xen") else { return }
        #expect(throws: (any Error).self) { _ = try XenCounterSource(selection: .publishing) }
    }
}
