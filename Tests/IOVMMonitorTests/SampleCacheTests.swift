import Testing

@testable import IOVMMonitor

/// When ``XenCounterSource`` reads an agent's one-node sample again: after its watch fired, not at every tick.
@Suite struct SampleCacheTests {
    static func sample(_ time: Double) -> CounterLayout.Published { (true, [], [], .bits64, time) }

    @Test("a 10 Hz sampler over a 1 Hz agent reads each sample once, and sees each write at the tick after its event")
    func readsOncePerWrite() {
        var cache = SampleCache()
        var written = 0.0  // the agent's last sample, by its uptime
        var queued: [String] = []  // the watch's events not yet taken
        var reads = 0
        var seen: [Double] = []
        for tick in 0..<100 {
            if tick % 10 == 5 {  // the agent writes once a second, between two ticks
                written += 1
                if cache.watched.contains(7) { queued.append(SampleCache.token(7)) }
            }
            for token in queued { cache.fired(token: token) }
            queued = []
            if let kept = cache.sample(of: 7) {
                seen.append(kept.time ?? -1)
                continue
            }
            reads += 1
            let read = Self.sample(written)
            if cache.remember(7, read) {
                cache.watching(7)
                queued.append(SampleCache.token(7))  // xenstored fires a new watch once at once
            }
            seen.append(read.time ?? -1)
        }
        // The first read, the watch's first event, then one per write.
        #expect(reads == 2 + 10, "\(reads)")
        for tick in 0..<100 { #expect(seen[tick] == Double((tick + 5) / 10), "tick \(tick): \(seen[tick])") }
    }

    @Test("nothing is kept before the watch is set, for a domain read per key, or once the watches failed")
    func keepsOnlyWhatAWatchGuards() {
        var cache = SampleCache()
        let first = cache.remember(3, Self.sample(1))
        #expect(first, "no watch yet: the caller sets it")
        #expect(cache.sample(of: 3) == nil)
        cache.watching(3)
        let second = cache.remember(3, Self.sample(2))
        #expect(!second)
        #expect(cache.sample(of: 3)?.time == 2)
        cache.fired(token: "not a domid")
        #expect(cache.sample(of: 3)?.time == 2)
        // The guests' names changed: the kept sample (it names them as they were) goes, the watch stays.
        cache.dropSamples()
        #expect(cache.sample(of: 3) == nil && cache.watched == [3])
        let again = cache.remember(3, Self.sample(2))
        #expect(!again)
        cache.forget(3)
        #expect(cache.sample(of: 3) == nil)
        let third = cache.remember(3, Self.sample(3))
        #expect(!third)
        cache.reset()
        #expect(cache.sample(of: 3) == nil && cache.watched.isEmpty)
        let afterReset = cache.remember(3, Self.sample(4))
        #expect(afterReset, "after a failure the watch is to be set again")
    }

    @Test("a domain gone has its watch removed and its sample dropped; the others stay")
    func goneDomains() {
        var cache = SampleCache()
        for domid: UInt32 in [3, 5, 9] {
            cache.watching(domid)
            _ = cache.remember(domid, Self.sample(Double(domid)))
        }
        let gone = cache.keep(only: [5, 11])
        #expect(gone == [3, 9])
        #expect(cache.watched == [5])
        #expect(cache.sample(of: 5)?.time == 5 && cache.sample(of: 3) == nil && cache.sample(of: 9) == nil)
    }
}
