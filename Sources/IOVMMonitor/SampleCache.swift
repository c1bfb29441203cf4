/// The one-node samples ``XenCounterSource`` keeps between two reads: a domain's `data/iovm/sample` is read again only
/// once a xenstore watch on it fired, so a sampler faster than the agent (10 Hz against the agent's 1 Hz) reads and
/// parses each sample once rather than at every tick.
///
/// xenstored fires a new watch once at once, then at every write of the node: a domain is read again right after its
/// watch is set (a write between the first read and the watch is not lost) and after each write. A fired event that
/// comes after the tick's check leaves the last sample standing one tick; the rates stay right, as they come from the
/// sample's own clock (`uptime`). Without the watch (it could not be set, or its connection failed) every tick reads.
struct SampleCache {
    /// The last sample read of each domain whose watch is set, until the watch fires.
    private var samples: [UInt32: CounterLayout.Published] = [:]
    /// The domains whose watch is set.
    private(set) var watched: Set<UInt32> = []

    /// The sample of `domid` read before and not written since; nil when it is to be read.
    func sample(of domid: UInt32) -> CounterLayout.Published? { samples[domid] }

    /// `domid`'s sample was read: kept until its watch fires. True when its watch is still to be set.
    mutating func remember(_ domid: UInt32, _ sample: CounterLayout.Published) -> Bool {
        guard watched.contains(domid) else { return true }
        samples[domid] = sample
        return false
    }

    /// `domid`'s watch is set (the caller read its sample before; the watch's first event reads it again).
    mutating func watching(_ domid: UInt32) { watched.insert(domid) }

    /// The watch of the domain named by `token` fired: its sample is read at the next tick.
    mutating func fired(token: String) {
        if let domid = UInt32(token) { samples[domid] = nil }
    }

    /// `domid` has no sample (read per key): nothing is kept for it.
    mutating func forget(_ domid: UInt32) { samples[domid] = nil }

    /// Forgets the domains not in `domids` (gone); returns those whose watch is to be removed.
    mutating func keep(only domids: Set<UInt32>) -> [UInt32] {
        samples = samples.filter { domids.contains($0.key) }
        let gone = watched.subtracting(domids)
        watched.subtract(gone)
        return gone.sorted()
    }

    /// Seconds before the watches' connection is opened again after it failed.
    static let retrySeconds = 30.0

    /// The guests' names changed (a kept sample names its vifs' guests as they were): every sample is read again, the
    /// watches stay.
    mutating func dropSamples() { samples = [:] }

    /// The watches' connection failed: nothing is watched or kept any more.
    mutating func reset() {
        samples = [:]
        watched = []
    }

    /// The watch token of `domid`'s sample.
    static func token(_ domid: UInt32) -> String { String(domid) }
}
