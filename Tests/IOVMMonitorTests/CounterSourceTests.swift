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
        // A width the caller already knows is not read again.
        var paths: [String] = []
        let known = try CounterLayout.interfaces(
            domid: 3, list: store.list,
            read: { (path: String) throws(StoreError) -> String? in
                paths.append(path)
                return try store.read(path)
            }, width: .bits64)
        #expect(known.width == .bits64 && known.nics == result.nics)
        #expect(!paths.contains { $0.hasSuffix("/agent/bits") } && paths.contains { $0.hasSuffix("/agent/uptime") })
    }

    @Test("the one-node sample reads as the per-key layout does; another format or torn lines are not taken")
    func sample() throws {
        let root = "/local/domain/3/data/iovm"
        let keys = Self.store([
            "\(root)/counters/vif7_0": "vif vif7.0 2000 1000 5 6",
            "\(root)/counters/eth0": "nic eth0 1000 2000 10 20",
            "\(root)/counters/vif7_1": "vif vif7.1 3000 1000 5 6",
            "\(root)/notifications/vif7_0": "vif7.0 474",
            "\(root)/agent/bits": "32",
            "\(root)/agent/uptime": "812.50",
        ])
        let perKey = try CounterLayout.interfaces(domid: 3, list: keys.list, read: keys.read, guestName: { $0 == 7 ? "guest1" : nil })
        let text = """
            iovm-sample 1
            seq 9
            interval 1
            uptime 812.50
            bits 32
            c vif7_0 vif vif7.0 2000 1000 5 6
            c eth0 nic eth0 1000 2000 10 20
            c half nic eth1 1000
            c vif7_1 vif vif7.1 3000 1000 5 6
            n vif7_0 vif7.0 474
            n odd
            later something a newer agent adds

            """
        let sample = try #require(CounterLayout.parseSample(text, guestName: { $0 == 7 ? "guest1" : nil }))
        #expect(sample.nics == perKey.nics && sample.vifs == perKey.vifs, "\(sample)")
        #expect(sample.vifs.first?.notifications == 474 && sample.vifs.last?.notifications == nil)
        #expect(sample.width == .bits32 && sample.time == 812.5)
        #expect(CounterLayout.parseSample("iovm-sample 2\nc eth0 nic eth0 1 2 3 4\n") == nil)
        #expect(CounterLayout.parseSample("") == nil)
        // The readers' one conversion: what interfaces(...) returns for the keys; a width known before stands only
        // when the sample names none.
        let published = try #require(CounterLayout.published(sample: text, guestName: { $0 == 7 ? "guest1" : nil }, width: .bits64))
        #expect(published.published && published.nics == perKey.nics && published.vifs == perKey.vifs)
        #expect(published.width == .bits32 && published.time == 812.5)
        let noBits = text.replacingOccurrences(of: "bits 32\n", with: "")
        #expect(CounterLayout.published(sample: noBits, width: .bits64)?.width == .bits64)
        #expect(CounterLayout.published(sample: noBits)?.width == nil)
        #expect(CounterLayout.published(sample: "not a sample") == nil)
    }

    @Test("a vif's notifications come from data/iovm/notifications, by interface name; absent or malformed: nil")
    func notifications() throws {
        let root = "/local/domain/3/data/iovm"
        let store = Self.store([
            "\(root)/counters/eth0": "nic eth0 1000 2000 10 20",
            "\(root)/counters/vif7_0": "vif vif7.0 2000 1000 5 6",
            "\(root)/counters/vif7_1": "vif vif7.1 2000 1000 5 6",
            "\(root)/counters/vif8_0": "vif vif8.0 2000 1000 5 6",
            "\(root)/notifications/vif7_0": "vif7.0 474",
            "\(root)/notifications/vif7_1": "vif7.1 -3",  // malformed: unknown
            "\(root)/notifications/vif9_0": "vif9.0 12",  // no such vif counted: ignored
            "\(root)/notifications/eth0": "eth0",  // torn: ignored
        ])
        let result = try CounterLayout.interfaces(domid: 3, list: store.list, read: store.read)
        #expect(result.vifs.map(\.name) == ["vif7.0", "vif7.1", "vif8.0"])
        #expect(result.vifs.map(\.notifications) == [474, nil, nil])
        #expect(result.nics.map(\.notifications) == [nil])
        // An agent that publishes none (the shell agent, an older static one): every vif's is nil, the rest as before.
        let old = Self.store(["\(root)/counters/vif7_0": "vif vif7.0 2000 1000 5 6"])
        let before = try CounterLayout.interfaces(domid: 3, list: old.list, read: old.read)
        #expect(before.vifs == [InterfaceCounters(name: "vif7.0", kind: .vif, rxBytes: 2000, txBytes: 1000, rxPackets: 5, txPackets: 6)])
        #expect(CounterLayout.notificationsPath(domid: 3) == "/local/domain/3/data/iovm/notifications")
    }

    @Test("a notifications value round-trips; later fields are ignored, malformed values refused")
    func notificationValues() throws {
        let parsed = try #require(CounterLayout.parseNotifications(CounterLayout.notificationsValue(name: "vif7.0", count: 18_446_744_073_709_551_615)))
        #expect(parsed.name == "vif7.0" && parsed.count == 18_446_744_073_709_551_615)
        #expect(CounterLayout.parseNotifications("vif7.0 12 5 7")?.count == 12)
        #expect(CounterLayout.parseNotifications(" vif7.0  12\n")?.count == 12)
        #expect(CounterLayout.parseNotifications("vif7.0") == nil)
        #expect(CounterLayout.parseNotifications("vif7.0 x") == nil)
        #expect(CounterLayout.parseNotifications("vif7.0 -1") == nil)
        #expect(CounterLayout.parseNotifications("") == nil)
    }

    @Test("a sample recorded before notifications decodes with none; one with them round-trips")
    func sampleCoding() throws {
        let old = #"{"kind":"vif","name":"vif7.0","rxBytes":1,"txBytes":2}"#
        let decoded = try JSONDecoder().decode(InterfaceCounters.self, from: Data(old.utf8))
        #expect(decoded.notifications == nil)
        #expect(try JSONLines.line(decoded).contains("notifications") == false)
        let vif = InterfaceCounters(name: "vif7.0", kind: .vif, rxBytes: 1, txBytes: 2, rxPackets: 3, txPackets: 4, notifications: 9)
        #expect(try JSONDecoder().decode(InterfaceCounters.self, from: Data(try JSONLines.line(vif).utf8)) == vif)
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

@Suite("Domain names cached by domid")
struct DomainNameCacheTests {
    /// A host's names and a record of the domids asked.
    final class Host {
        var names: [UInt32: String]
        var asked: [UInt32] = []
        init(_ names: [UInt32: String]) { self.names = names }
        func read(_ domid: UInt32) -> String? {
            asked.append(domid)
            return names[domid]
        }
    }

    @Test("names are read once; a new domid, or 10 s, reads all again; a nameless domain is asked until it has one; gone domids are forgotten")
    func cache() {
        let host = Host([0: "Domain-0", 1: "iovm0", 2: "guest1"])
        var cache = DomainNameCache()
        #expect(cache.update([0, 1, 2], now: 1, read: host.read) == [0: "Domain-0", 1: "iovm0", 2: "guest1"])
        #expect(host.asked == [0, 1, 2])
        host.asked = []
        #expect(cache.update([0, 1, 2], now: 1, read: host.read).count == 3)
        #expect(host.asked.isEmpty)
        // iovm0 renamed and a new iovm0 created as domain 3: every name is read again.
        host.names = [0: "Domain-0", 1: "iovm0-old", 2: "guest1", 4: "iovm0"]
        #expect(cache.update([0, 1, 2, 4], now: 2, read: host.read) == [0: "Domain-0", 1: "iovm0-old", 2: "guest1", 4: "iovm0"])
        #expect(host.asked == [0, 1, 2, 4])
        host.asked = []
        // Domain 5 is being created and has no name yet: asked at every update, and only it.
        #expect(cache.update([0, 1, 2, 4, 5], now: 3, read: host.read)[5] == nil)
        host.asked = []
        #expect(cache.update([0, 1, 2, 4, 5], now: 3, read: host.read)[5] == nil)
        #expect(host.asked == [5])
        host.names[5] = "iovm1"
        #expect(cache.update([0, 1, 2, 4, 5], now: 3, read: host.read)[5] == "iovm1")
        host.asked = []
        // Domain 1 destroyed: forgotten without a read.
        #expect(cache.update([0, 2, 4, 5], now: 4, read: host.read) == [0: "Domain-0", 2: "guest1", 4: "iovm0", 5: "iovm1"])
        #expect(host.asked.isEmpty)
        // Renamed in place (no new domid): seen at the next refresh, 10 s after the last full read (at 3 s, domid 5 new).
        host.names[4] = "iovm0-renamed"
        #expect(cache.update([0, 2, 4, 5], now: 12.9, read: host.read)[4] == "iovm0")
        #expect(host.asked.isEmpty)
        #expect(cache.update([0, 2, 4, 5], now: 13, read: host.read)[4] == "iovm0-renamed")
        #expect(host.asked == [0, 2, 4, 5])
    }
}
