import Dispatch
import FoundationEssentials
import XenKit

/// What one read of the counters returns: the nominal CPU frequency and the IOVMs found.
public struct CounterReading: Sendable, Hashable {
    /// Nominal CPU frequency in Hz.
    public var cpuHz: UInt64
    /// The IOVMs found, with their counters.
    public var iovms: [IOVMSample]
    /// For a replayed reading: when it was recorded (seconds since the recorded run started), used
    /// instead of the sampler's clock so rates stay those of the recording.
    public var recordedElapsed: Double?
    /// For a replayed reading: its recorded wall-clock time.
    public var recordedTime: Double?

    /// Creates a reading.
    public init(cpuHz: UInt64, iovms: [IOVMSample], recordedElapsed: Double? = nil, recordedTime: Double? = nil) {
        self.cpuHz = cpuHz
        self.iovms = iovms
        self.recordedElapsed = recordedElapsed
        self.recordedTime = recordedTime
    }
}

/// Which domains to watch as IOVMs.
public enum IOVMSelection: Sendable, Hashable {
    /// These domains by name (a plan's IOVMs; `Domain-0` for the centralized configuration).
    case named([String])
    /// Every domain that publishes `data/iovm/counters` (the agent runs in it).
    case publishing
}

/// The seam between the sampler and the host: where CPU time and traffic counters come from.
///
/// ``XenCounterSource`` is the real one (libxenctrl for CPU time and Hz, libxenstore for the
/// counters the in-IOVM agent publishes); unit tests use `FakeCounterSource`, named as a fake.
public protocol CounterSource {
    /// Reads every watched IOVM now. An IOVM that does not exist is simply absent.
    func read() throws -> CounterReading
}

/// The xenstore layout the in-IOVM agent (`Agents/iovm-counters-agent.sh`) writes, relative to
/// the IOVM's own `/local/domain/<domid>/`:
///
/// ```
/// data/iovm/counters/<key>     "<kind> <ifname> <rx_bytes> <tx_bytes> <rx_packets> <tx_packets>"
///                              <key>: ifname with '.' as '_'; <kind>: nic | vif; the numbers from
///                              /sys/class/net/<ifname>/statistics/
/// data/iovm/agent/bits         the kernel's long width (32 or 64), when known
/// data/iovm/agent/uptime       the IOVM's uptime at the write: rates are computed over it
/// data/iovm/agent/seq          incremented on every write (the static agent: written with the counters they date;
///                              while only the clock moves it writes the sample alone, so a reader that wants rates
///                              reads the sample when there is one)
/// data/iovm/agent/interval     the agent's interval in seconds
/// data/iovm/notifications/<key>  "<ifname> <count>": a vif's event-channel interrupts in the IOVM's
///                              /proc/interrupts (all its queues, tx and rx, all CPUs); only the static
///                              agent (`Agents/iovm-counters.c`) writes them, in the counters' transaction
/// data/iovm/sample             all of the above in one node (only the static agent, in the keys' transaction):
///                              "iovm-sample 1", "seq <n>", "interval <s>", "uptime <u>", "bits <b>", then
///                              "c <key> <counters value>" per interface and "n <key> <notifications value>"
///                              per vif, one per line; removed when it would pass 3072 bytes
/// ```
///
/// A reader of `data/iovm/sample` needs one xenstore request per IOVM, and an idle IOVM's static agent one request per
/// period to write it. Without it, one value per interface
/// costs one request per interface (plus the directories and the agent keys), all inside one transaction so they
/// come from the same write.
public enum CounterLayout {
    /// The counters directory of domain `domid`.
    public static func countersPath(domid: UInt32) -> String { "/local/domain/\(domid)/data/iovm/counters" }
    /// The vifs' notifications directory of domain `domid`.
    public static func notificationsPath(domid: UInt32) -> String { "/local/domain/\(domid)/data/iovm/notifications" }
    /// The agent's metadata directory of domain `domid`.
    public static func agentPath(domid: UInt32) -> String { "/local/domain/\(domid)/data/iovm/agent" }
    /// The one-node sample of domain `domid`.
    public static func samplePath(domid: UInt32) -> String { "/local/domain/\(domid)/data/iovm/sample" }

    /// Parses a one-node sample (`data/iovm/sample`): its interfaces, as ``interfaces(domid:list:read:guestName:width:)``
    /// returns them, and the agent's width and uptime. nil when it is not one (another format version, no header).
    /// Lines that do not parse are skipped, as values that do not parse are.
    public static func parseSample(_ text: String, guestName: (UInt32) -> String? = { _ in nil }) -> (
        nics: [InterfaceCounters], vifs: [InterfaceCounters], width: CounterWidth?, time: Double?
    )? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        guard lines.first == "iovm-sample 1" else { return nil }
        var counters: [(key: Substring, value: InterfaceCounters)] = []
        var notifications: [String: UInt64] = [:]
        var width: CounterWidth?
        var time: Double?
        for line in lines.dropFirst() {
            guard let space = line.firstIndex(of: " ") else { continue }
            let tag = line[..<space]
            let rest = line[line.index(after: space)...]
            switch tag {
            case "c", "n":
                guard let gap = rest.firstIndex(of: " ") else { continue }
                let value = String(rest[rest.index(after: gap)...])
                if tag == "c" {
                    if let parsed = parse(value) { counters.append((rest[..<gap], parsed)) }
                } else if let parsed = parseNotifications(value) {
                    notifications[parsed.name] = parsed.count
                }
            case "bits": width = UInt64(rest).flatMap { CounterWidth(rawValue: Int($0)) }
            case "uptime": time = Double(rest)
            default: continue
            }
        }
        var nics: [InterfaceCounters] = []
        var vifs: [InterfaceCounters] = []
        // In key order, as the per-key layout is read.
        for (_, value) in counters.sorted(by: { $0.key < $1.key }) {
            var interface = value
            if interface.kind == .vif {
                interface.guest = vifDomid(interface.name).flatMap(guestName)
                interface.notifications = notifications[interface.name]
                vifs.append(interface)
            } else {
                nics.append(interface)
            }
        }
        return (nics, vifs, width, time)
    }

    /// What a domain's agent published: whether it did, its interfaces, its long width and its clock (`agent/uptime`).
    public typealias Published = (published: Bool, nics: [InterfaceCounters], vifs: [InterfaceCounters], width: CounterWidth?, time: Double?)

    /// A one-node sample as ``interfaces(domid:list:read:guestName:width:)`` returns the keys: every reader's one
    /// conversion. A `width` known before stands when the sample names none. nil when `text` is not a sample.
    public static func published(sample text: String, guestName: (UInt32) -> String? = { _ in nil }, width knownWidth: CounterWidth? = nil)
        -> Published?
    {
        guard let sample = parseSample(text, guestName: guestName) else { return nil }
        return (true, sample.nics, sample.vifs, sample.width ?? knownWidth, sample.time)
    }

    /// Parses one interface's value, `"<kind> <ifname> <rx_bytes> <tx_bytes> <rx_packets> <tx_packets>"`;
    /// nil for anything else (an unknown kind, a value being replaced by an older agent, foreign keys).
    public static func parse(_ value: String) -> InterfaceCounters? {
        let fields = value.split(whereSeparator: \.isWhitespace)
        guard fields.count == 6, let kind = InterfaceKind(rawValue: String(fields[0])) else { return nil }
        let numbers = fields[2...].compactMap { UInt64($0) }
        guard numbers.count == 4 else { return nil }
        return InterfaceCounters(
            name: String(fields[1]), kind: kind, rxBytes: numbers[0], txBytes: numbers[1],
            rxPackets: numbers[2], txPackets: numbers[3])
    }

    /// The value the agent writes for `counters` (the inverse of ``parse(_:)``, for tests and fakes).
    public static func value(_ counters: InterfaceCounters) -> String {
        "\(counters.kind.rawValue) \(counters.name) \(counters.rxBytes) \(counters.txBytes) \(counters.rxPackets ?? 0) \(counters.txPackets ?? 0)"
    }

    /// Parses one vif's notifications, `"<ifname> <count>"` (fields after these are ignored, for a later agent); nil for
    /// anything else.
    public static func parseNotifications(_ value: String) -> (name: String, count: UInt64)? {
        let fields = value.split(whereSeparator: \.isWhitespace)
        guard fields.count >= 2, let count = UInt64(fields[1]) else { return nil }
        return (String(fields[0]), count)
    }

    /// The notifications value the agent writes for vif `name` (the inverse of ``parseNotifications(_:)``).
    public static func notificationsValue(name: String, count: UInt64) -> String { "\(name) \(count)" }

    /// Reads the published interfaces of `domid` through `list` (xs_directory) and `read` (xs_read).
    ///
    /// Values that do not parse are skipped. `guestName` names the guest of a `vif<domid>.<n>`. A vif's
    /// ``InterfaceCounters/notifications`` come from `data/iovm/notifications` when published (nil otherwise).
    /// A known `width` is returned as is, without reading `data/iovm/agent/bits`.
    public static func interfaces<E: Error>(
        domid: UInt32, list: (String) throws(E) -> [String]?, read: (String) throws(E) -> String?,
        guestName: (UInt32) -> String? = { _ in nil }, width knownWidth: CounterWidth? = nil
    ) throws(E) -> Published {
        let root = countersPath(domid: domid)
        guard let keys = try list(root) else { return (false, [], [], nil, nil) }
        var nics: [InterfaceCounters] = []
        var vifs: [InterfaceCounters] = []
        for key in keys.sorted() {
            guard var counters = try read("\(root)/\(key)").flatMap(parse) else { continue }
            if counters.kind == .vif {
                counters.guest = vifDomid(counters.name).flatMap(guestName)
                vifs.append(counters)
            } else {
                nics.append(counters)
            }
        }
        if !vifs.isEmpty, let published = try list(notificationsPath(domid: domid)) {
            var counts: [String: UInt64] = [:]
            for key in published {
                if let value = try read("\(notificationsPath(domid: domid))/\(key)").flatMap(parseNotifications) { counts[value.name] = value.count }
            }
            for index in vifs.indices { vifs[index].notifications = counts[vifs[index].name] }
        }
        // A domain's long width never changes: a caller that knows it saves the request.
        var width = knownWidth
        if width == nil { width = try read("\(agentPath(domid: domid))/bits").flatMap(number).flatMap { CounterWidth(rawValue: Int($0)) } }
        let time = try read("\(agentPath(domid: domid))/uptime").flatMap { Double($0.trimmingWhitespace()) }
        return (true, nics, vifs, width, time)
    }

    /// The guest domid of a vif backend interface name `vif<domid>.<n>` (or `vif<domid>.<n>-emu`).
    public static func vifDomid(_ name: String) -> UInt32? {
        guard name.hasPrefix("vif"), let dot = name.firstIndex(of: ".") else { return nil }
        return UInt32(name[name.index(name.startIndex, offsetBy: 3)..<dot])
    }

    private static func number(_ text: String) -> UInt64? { UInt64(text.trimmingWhitespace()) }
}

/// Domain names by domid, read once per domain rather than at every sample.
///
/// A name is one xenstore request; a sampler at 10 Hz over a host of seven domains made seventy a
/// second just to find two IOVMs. All names are read again whenever a domid appears that was not
/// listed before (a domain renamed and another created under its old name are both seen right), and
/// at least every ``refreshSeconds`` (a rename alone: `xl rename`, a migration's `NAME--incoming`); a
/// listed domain without a name yet (one being created) is asked again at every update until it has one.
public struct DomainNameCache: Sendable {
    /// The names known, by domid.
    public private(set) var names: [UInt32: String] = [:]
    /// The longest a name is trusted without reading it again.
    public let refreshSeconds: Double
    private var listed: Set<UInt32> = []
    private var readAt: Double?

    /// Creates an empty cache.
    public init(refreshSeconds: Double = 10) {
        self.refreshSeconds = refreshSeconds
    }

    /// The names of `domids` (the domains listed at monotonic time `now`, in seconds), read through `read` as
    /// described above. Domids no longer listed are forgotten.
    public mutating func update<E: Error>(_ domids: [UInt32], now: Double, read: (UInt32) throws(E) -> String?) throws(E) -> [UInt32: String] {
        let current = Set(domids)
        if !current.isSubset(of: listed) || readAt.map({ now - $0 >= refreshSeconds }) ?? true {
            names = [:]
            readAt = now
        } else if current.count != listed.count {
            names = names.filter { current.contains($0.key) }
        }
        listed = current
        for domid in domids where names[domid] == nil {
            if let name = try read(domid) { names[domid] = name }
        }
        return names
    }
}

/// The real counter source: libxenctrl's domain list for each IOVM's CPU time and online vCPUs and for the
/// nominal Hz, libxenstore for the traffic counters the agent inside each IOVM publishes (see ``CounterLayout``).
///
/// One sample costs one hypercall (per page of domains, ``XenControl``) and one xenstore request per IOVM whose agent
/// wrote `data/iovm/sample` since the last (a watch on it says so: ``SampleCache``; else one transaction of several): names
/// are cached by domid (``DomainNameCache``), the Hz and each agent's counter width are read once. libxenstat
/// read every domain's name and every vCPU's info at every sample; `libxl_list_domain` mapped two fresh 128 KiB
/// buffers and asked the security module about every domain.
///
/// Not `Sendable`: it owns a xenstore connection; use it from one task or thread.
public final class XenCounterSource: CounterSource {
    private let host: any XenCounterHost
    private let cpuHz: UInt64
    /// Seconds of a monotonic clock.
    private let clock: () -> Double
    private var names = DomainNameCache()
    private var widths: [UInt32: CounterWidth] = [:]
    /// Domains whose agent publishes counters but no one-node sample, read per key.
    private var perKey = PerKeyDomains()
    /// The samples read, kept until their watch fires.
    private var sampleCache = SampleCache()
    /// The connection that holds the samples' watches (a second one: once a watch is set, libxenstore reads every reply
    /// of its connection on a thread of its own, which each request of the host's read connection would then pass
    /// through); nil once it failed, when every tick reads every sample.
    private var sampleWatches: (any SampleWatchConnection)?
    /// When (dom0's clock) the watches' connection is next opened after it failed or could not be opened.
    private var sampleWatchesRetry = 0.0
    /// The names the kept samples' guests were named with: a kept sample names its vifs' guests as they were read.
    private var sampleNames: [UInt32: String] = [:]
    /// The domains watched.
    public let selection: IOVMSelection

    /// Opens libxenctrl and a read-only xenstore connection, and reads the nominal Hz.
    ///
    /// - Throws: `XenError.notXenDom0` when this is not a Xen dom0.
    public convenience init(selection: IOVMSelection) throws(XenError) {
        try self.init(host: XenCounterHostConnection(), selection: selection)
    }

    /// Reads `host`; `clock` is the monotonic clock in seconds that paces the names' refresh, the per-key domains and
    /// the watches' retry.
    init(
        host: any XenCounterHost, selection: IOVMSelection,
        clock: @escaping () -> Double = { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
    ) throws(XenError) {
        self.host = host
        cpuHz = try host.cpuHz()
        self.clock = clock
        self.selection = selection
    }

    /// Reads CPU time from the hypervisor and counters from xenstore, for every watched IOVM present.
    public func read() throws -> CounterReading {
        let host = self.host
        let listed = try host.domains().filter { !$0.dying }
        let now = clock()
        let names = try self.names.update(listed.map(\.domid), now: now) { (domid) throws(XenError) in
            try host.read("/local/domain/\(domid)/name")
        }
        var samples: [IOVMSample] = []
        let domains: [DomainRuntime]
        switch selection {
        case .named(let wanted):
            domains = wanted.compactMap { name in listed.first { names[$0.domid] == name } }
        case .publishing:
            domains = try listed.filter { try host.directory(CounterLayout.countersPath(domid: $0.domid)) != nil }
        }
        widths = widths.filter { domid, _ in listed.contains { $0.domid == domid } }
        let present = Set(listed.map(\.domid))
        perKey.keep(only: present)
        for domid in sampleCache.keep(only: present) {
            try? sampleWatches?.unwatch(CounterLayout.samplePath(domid: domid), token: SampleCache.token(domid))
        }
        drainSampleWatches(now: now)
        if names != sampleNames {
            sampleCache.dropSamples()
            sampleNames = names
        }
        for domain in domains {
            let known = widths[domain.domid]
            var counters: CounterLayout.Published
            let trySample = perKey.shouldTrySample(domain.domid, now: now)
            if trySample, let kept = sampleCache.sample(of: domain.domid) {
                counters = kept
            } else if trySample, let text = try host.read(CounterLayout.samplePath(domid: domain.domid)),
                let sample = CounterLayout.published(sample: text, guestName: { names[$0] }, width: known)
            {
                perKey.sampleFound(domain.domid)
                if sampleCache.remember(domain.domid, sample) { watchSample(of: domain.domid, now: now) }
                counters = sample
            } else {
                sampleCache.forget(domain.domid)
                counters = try host.inTransaction { (list, read) throws(XenError) in
                    try CounterLayout.interfaces(domid: domain.domid, list: list, read: read, guestName: { names[$0] }, width: known)
                }
                // An agent that publishes counters but no sample (the shell agent, an older image, a static agent past
                // the sample's size) is read per key.
                perKey.readPerKey(domain.domid, published: counters.published, time: counters.time, now: now, triedSample: trySample)
            }
            if let width = counters.width { widths[domain.domid] = width }
            samples.append(
                IOVMSample(
                    iovm: names[domain.domid] ?? "", domid: domain.domid, cpuNanoseconds: domain.cpuNanoseconds,
                    vcpus: max(1, Int(domain.onlineVCPUs)), nics: counters.nics, vifs: counters.vifs,
                    counterWidth: counters.width, countersPublished: counters.published, counterTime: counters.time))
        }
        return CounterReading(cpuHz: cpuHz, iovms: samples)
    }

    /// Takes the samples' fired watches (without waiting): their domains' samples are read at this tick.
    private func drainSampleWatches(now: Double) {
        guard let watches = sampleWatches else { return }
        do {
            while let event = try watches.nextWatchEvent(timeout: 0) { sampleCache.fired(token: event.token) }
        } catch {
            watchesFailed(now: now)
        }
    }

    /// Sets the watch on `domid`'s sample, opening the watches' connection when there is none (again
    /// ``SampleCache/retrySeconds`` after a failure).
    private func watchSample(of domid: UInt32, now: Double) {
        if sampleWatches == nil && now >= sampleWatchesRetry {
            sampleWatches = try? host.openWatches()
            if sampleWatches == nil { sampleWatchesRetry = now + SampleCache.retrySeconds }
        }
        guard let watches = sampleWatches else { return }
        do {
            try watches.watch(CounterLayout.samplePath(domid: domid), token: SampleCache.token(domid))
            sampleCache.watching(domid)
        } catch {
            watchesFailed(now: now)
        }
    }

    /// The watches' connection failed: every sample is read at every tick until it is opened again.
    private func watchesFailed(now: Double) {
        sampleWatches = nil
        sampleCache.reset()
        sampleWatchesRetry = now + SampleCache.retrySeconds
        sampleWatchFailures += 1
    }

    /// How many times the samples' watches failed (their connection, or a watch that could not be set); while they
    /// are down every tick reads every sample.
    public private(set) var sampleWatchFailures = 0
}

/// Which domains ``XenCounterSource`` reads per key, and when it tries their one-node sample again.
///
/// A static agent writes its sample every period but `agent/uptime` only with changed counters, so read per key an idle
/// IOVM's clock stops and its last rate would hold. It goes per key only while its sample is past 3072 bytes, when it
/// writes every key every period; once the sample is back, the keys' clock stops. A domain read per key whose agent's
/// time has not moved for ``recheckSeconds`` (of dom0's clock) has its sample tried again, then every
/// ``recheckSeconds`` while it does not move; and any domain read per key every ``retrySeconds`` (a static agent back
/// under the size whose IOVM carries traffic writes its keys every period: read per key, it costs a transaction of
/// every key). The shell agent's time moves each of its periods: its sample is tried every ``retrySeconds`` only.
struct PerKeyDomains {
    /// Seconds of an agent time that does not move before the sample is tried again.
    static let recheckSeconds = 3.0
    /// Seconds between two tries of the sample whatever the agent's time does.
    static let retrySeconds = 30.0
    /// Domid → the agent's time at the last per-key read, when (dom0's clock) it last moved or the sample was tried,
    /// and when the sample was last tried.
    private var domains: [UInt32: (time: Double?, since: Double, tried: Double)] = [:]

    /// Whether `domid`'s sample is to be read first at dom0 time `now`.
    func shouldTrySample(_ domid: UInt32, now: Double) -> Bool {
        guard let entry = domains[domid] else { return true }
        return now - entry.since >= Self.recheckSeconds || now - entry.tried >= Self.retrySeconds
    }

    /// `domid`'s sample was read: it is no longer read per key.
    mutating func sampleFound(_ domid: UInt32) { domains[domid] = nil }

    /// `domid` was read per key at `now` (after trying its sample when `triedSample`); its agent's time was `time`.
    mutating func readPerKey(_ domid: UInt32, published: Bool, time: Double?, now: Double, triedSample: Bool) {
        guard published else {
            domains[domid] = nil
            return
        }
        let entry = domains[domid]
        // No time at all (an agent without /proc/uptime) never looks stale.
        let moved = entry == nil || time == nil || time != entry?.time
        domains[domid] = (time, moved || triedSample ? now : entry?.since ?? now, triedSample ? now : entry?.tried ?? now)
    }

    /// Forgets the domains not in `domids` (gone).
    mutating func keep(only domids: Set<UInt32>) { domains = domains.filter { domids.contains($0.key) } }
}

/// Replays a recorded run's samples in order, as if read live (for trying `iovm monitor`'s
/// outputs off Xen, and for re-exporting a run). After the last sample it throws.
public final class ReplayCounterSource: CounterSource {
    private let records: [SampleRecord]
    private var next = 0

    /// Replays the samples of `run`.
    public init(_ run: RecordedRun) {
        records = run.records.filter { $0.cpuHz > 0 }
    }

    /// The next recorded sample.
    public func read() throws -> CounterReading {
        guard next < records.count else { throw MonitorError("replay: no more samples (\(records.count) recorded)") }
        defer { next += 1 }
        let record = records[next]
        return CounterReading(cpuHz: record.cpuHz, iovms: record.iovms, recordedElapsed: record.elapsed, recordedTime: record.time)
    }
}
