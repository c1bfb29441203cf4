import Testing
import XenKit

@testable import IOVMMonitor

/// ``XenCounterSource/read()`` against a host the test plays (``XenCounterHost``): when it reads an agent's sample, and
/// what it does when the samples' watches fail, a guest is renamed or an IOVM goes.
@Suite struct XenCounterSourceTests {
    /// A xenstore and a domain list in memory that counts the reads of each path, and fires watches as xenstored does:
    /// once when set, then at every write at or under the watched path.
    final class PlayedHost: XenCounterHost {
        var values: [String: String] = [:]
        var domids: [UInt32] = []
        var dying: Set<UInt32> = []
        var reads: [String: Int] = [:]
        var transactions = 0
        /// Reads of an agent's keys (not its sample) made outside a transaction's own read.
        var keyReadsOutside: [String] = []
        var watchesOpened = 0
        var watches: PlayedWatches?

        func cpuHz() throws(XenError) -> UInt64 { 2_000_000_000 }
        func domains() throws(XenError) -> [DomainRuntime] {
            domids.map { DomainRuntime(domid: $0, cpuNanoseconds: 1_000_000, onlineVCPUs: 1, dying: dying.contains($0)) }
        }
        func read(_ path: String) throws(XenError) -> String? {
            if path.contains("/data/iovm/"), !path.hasSuffix("/sample") { keyReadsOutside.append(path) }
            return value(path)
        }
        /// The value at `path`, counted.
        func value(_ path: String) -> String? {
            reads[path, default: 0] += 1
            return values[path]
        }
        func directory(_ path: String) throws(XenError) -> [String]? {
            let prefix = path + "/"
            let children = Set(values.keys.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count).prefix { $0 != "/" }) })
            return children.isEmpty ? nil : children.sorted()
        }
        func inTransaction<R>(
            _ body: (_ list: (String) throws(XenError) -> [String]?, _ read: (String) throws(XenError) -> String?) throws(XenError) -> R
        ) throws(XenError) -> R {
            transactions += 1
            return try body({ (path) throws(XenError) in try self.directory(path) }, { (path) throws(XenError) in self.value(path) })
        }
        func openWatches() throws(XenError) -> any SampleWatchConnection {
            watchesOpened += 1
            let opened = PlayedWatches()
            watches = opened
            return opened
        }

        /// Writes `value` at `path`, firing the watches on it.
        func write(_ path: String, _ value: String) {
            values[path] = value
            watches?.changed(path)
        }
    }

    final class PlayedWatches: SampleWatchConnection {
        var watched: [String: String] = [:]
        var queued: [XenStoreClient.WatchEvent] = []
        var unwatched: [String] = []
        /// Once set, every call fails as a lost connection does.
        var broken = false

        func watch(_ path: String, token: String) throws(XenError) {
            if broken { throw XenError.failed(operation: "xs_watch", detail: "connection lost") }
            watched[path] = token
            queued.append(.init(path: path, token: token))
        }
        func unwatch(_ path: String, token: String) throws(XenError) {
            watched[path] = nil
            unwatched.append(path)
        }
        func nextWatchEvent(timeout: Double) throws(XenError) -> XenStoreClient.WatchEvent? {
            if broken { throw XenError.failed(operation: "xs_check_watch", detail: "connection lost") }
            return queued.isEmpty ? nil : queued.removeFirst()
        }
        func changed(_ path: String) {
            for (watchedPath, token) in watched where path == watchedPath || path.hasPrefix(watchedPath + "/") {
                queued.append(.init(path: path, token: token))
            }
        }
    }

    static let sample7 = CounterLayout.samplePath(domid: 7)

    /// A host with IOVM iovm0 (7), whose agent published counter value `value` at uptime `value`, and guest1 (9).
    static func host() -> PlayedHost {
        let host = PlayedHost()
        host.domids = [7, 9]
        host.values = ["/local/domain/7/name": "iovm0", "/local/domain/9/name": "guest1"]
        host.values[sample7] = sample(1)
        return host
    }

    /// The agent's sample at uptime `value`, every counter `value`: a NIC and guest 9's vif.
    static func sample(_ value: Int) -> String {
        "iovm-sample 1\nseq \(value)\ninterval 1\nuptime \(value).00\nbits 64\nc eth0 nic eth0 \(value) \(value) \(value) \(value)\n"
            + "c vif9_0 vif vif9.0 \(value) \(value) \(value) \(value)\n"
    }

    /// A clock the test moves.
    final class Clock {
        var now = 100.0
    }

    static func source(_ host: PlayedHost, _ clock: Clock) throws -> XenCounterSource {
        try XenCounterSource(host: host, selection: .named(["iovm0"]), clock: { clock.now })
    }

    static func counters(_ reading: CounterReading) -> (nic: UInt64?, vif: UInt64?, guest: String?, time: Double?) {
        let iovm = reading.iovms.first
        return (iovm?.nics.first?.rxBytes, iovm?.vifs.first?.rxBytes, iovm?.vifs.first?.guest, iovm?.counterTime)
    }

    @Test("at 10 Hz over a 1 Hz agent, each sample is read once per write, and each write is seen at the next tick")
    func readsOncePerWrite() throws {
        let host = Self.host()
        let clock = Clock()
        let source = try Self.source(host, clock)
        var written = 1
        for tick in 0..<100 {
            if tick % 10 == 5 {
                written += 1
                host.write(Self.sample7, Self.sample(written))
            }
            let seen = Self.counters(try source.read())
            #expect(seen.nic == UInt64(written) && seen.vif == UInt64(written) && seen.time == Double(written), "tick \(tick): \(seen)")
            #expect(seen.guest == "guest1")
            clock.now += 0.1
        }
        // The first read, the watch's first event, then one per write (10): not 100.
        #expect(host.reads[Self.sample7] == 2 + 10, "\(host.reads[Self.sample7] ?? 0)")
        #expect(host.watchesOpened == 1 && host.watches?.watched == [Self.sample7: "7"])
        #expect(source.sampleWatchFailures == 0)
    }

    @Test("when the watches' connection fails, every tick reads; it is opened again 30 s on, and the failure counted")
    func failedWatchesReadEveryTick() throws {
        let host = Self.host()
        let clock = Clock()
        let source = try Self.source(host, clock)
        _ = try source.read()
        _ = try source.read()
        let settled = host.reads[Self.sample7] ?? 0
        _ = try source.read()
        #expect(host.reads[Self.sample7] == settled, "kept while the watch stands")
        host.watches?.broken = true
        for _ in 0..<10 {
            _ = try source.read()
            clock.now += 1
        }
        #expect(host.reads[Self.sample7] == settled + 10, "one read per tick while the watches are down")
        #expect(source.sampleWatchFailures == 1 && host.watchesOpened == 1)
        // Past the retry, the watches are opened again and the sample is kept again.
        clock.now += SampleCache.retrySeconds
        host.write(Self.sample7, Self.sample(5))
        #expect(Self.counters(try source.read()).nic == 5)
        #expect(host.watchesOpened == 2)
        _ = try source.read()  // the new watch's first event
        let again = host.reads[Self.sample7] ?? 0
        for _ in 0..<5 { #expect(Self.counters(try source.read()).nic == 5) }
        #expect(host.reads[Self.sample7] == again)
    }

    @Test("an agent without a sample is read per key in one transaction a tick; .publishing skips the dying and the silent")
    func perKeyInOneTransaction() throws {
        let host = PlayedHost()
        host.domids = [7, 9, 11]
        host.dying = [11]
        host.values = ["/local/domain/7/name": "iovm0", "/local/domain/9/name": "guest1", "/local/domain/11/name": "iovm1"]
        for domid: UInt32 in [7, 11] {
            let root = "/local/domain/\(domid)/data/iovm"
            host.values["\(root)/counters/eth0"] = "nic eth0 5 5 5 5"
            host.values["\(root)/counters/vif9_0"] = "vif vif9.0 6 6 6 6"
            host.values["\(root)/agent/uptime"] = "3.00"
            host.values["\(root)/agent/bits"] = "64"
        }
        let source = try XenCounterSource(host: host, selection: .publishing, clock: { 100 })
        for tick in 1...3 {
            let reading = try source.read()
            #expect(reading.iovms.map(\.domid) == [7], "the dying 11 and the silent guest 9 are not IOVMs read")
            #expect(Self.counters(reading).nic == 5 && Self.counters(reading).vif == 6 && Self.counters(reading).guest == "guest1")
            #expect(host.transactions == tick)
        }
        #expect(host.keyReadsOutside.isEmpty, "\(host.keyReadsOutside)")
        #expect(host.watchesOpened == 0, "no sample: nothing to watch")
    }

    @Test("a guest renamed: the kept sample, which named its vif's guest as it was, is read again")
    func renamedGuest() throws {
        let host = Self.host()
        let clock = Clock()
        let source = try Self.source(host, clock)
        for _ in 0..<3 { #expect(Self.counters(try source.read()).guest == "guest1") }
        let before = host.reads[Self.sample7] ?? 0
        host.values["/local/domain/9/name"] = "guest1-renamed"
        clock.now += DomainNameCache().refreshSeconds  // the names are read again
        #expect(Self.counters(try source.read()).guest == "guest1-renamed")
        #expect(host.reads[Self.sample7] == before + 1)
    }

    @Test("an IOVM gone has its sample's watch removed; back under a new domid, it is read and watched afresh")
    func goneIOVM() throws {
        let host = Self.host()
        let clock = Clock()
        let source = try Self.source(host, clock)
        _ = try source.read()
        _ = try source.read()
        host.domids = [9]
        #expect(try source.read().iovms.isEmpty)
        #expect(host.watches?.unwatched == [Self.sample7] && host.watches?.watched.isEmpty == true)
        host.domids = [9, 11]
        host.values["/local/domain/11/name"] = "iovm0"
        host.values[CounterLayout.samplePath(domid: 11)] = Self.sample(3)
        let back = try source.read()
        #expect(back.iovms.map(\.domid) == [11] && Self.counters(back).nic == 3)
        #expect(host.watches?.watched[CounterLayout.samplePath(domid: 11)] == "11")
    }
}
