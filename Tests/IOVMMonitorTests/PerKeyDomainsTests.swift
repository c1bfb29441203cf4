import Testing

@testable import IOVMMonitor

/// When ``XenCounterSource`` reads a domain per key, and when it tries that domain's one-node sample again.
@Suite struct PerKeyDomainsTests {
    @Test("a domain whose agent's time stops moving has its sample tried again after 3 s, then every 3 s")
    func staleClockTriesTheSample() {
        var domains = PerKeyDomains()
        #expect(domains.shouldTrySample(7, now: 0))
        // A static agent past the sample's size writes every key each period: its time moves, no retry.
        domains.readPerKey(7, published: true, time: 100, now: 0, triedSample: true)
        for (step, time) in [(1.0, 101.0), (2.0, 102.0), (3.0, 103.0), (4.0, 104.0)] {
            #expect(!domains.shouldTrySample(7, now: step), "at \(step)")
            domains.readPerKey(7, published: true, time: time, now: step, triedSample: false)
        }
        // Its sample is back and its keys' clock stops (an idle IOVM): tried again 3 s after the clock last moved.
        domains.readPerKey(7, published: true, time: 104, now: 5, triedSample: false)
        #expect(!domains.shouldTrySample(7, now: 6.9))
        #expect(domains.shouldTrySample(7, now: 7))
        domains.sampleFound(7)
        #expect(domains.shouldTrySample(7, now: 7.1))
    }

    @Test("the shell agent, read at 10 Hz, has its sample tried only while its clock stands still")
    func shellAgentIsNotAskedForASample() {
        var domains = PerKeyDomains()
        var tries = 0
        for tick in 0..<100 {
            let now = Double(tick) / 10
            let tried = domains.shouldTrySample(3, now: now)
            if tried { tries += 1 }
            // It writes once a second: its time moves every 10 reads.
            domains.readPerKey(3, published: true, time: Double(tick / 10), now: now, triedSample: tried)
        }
        #expect(tries == 1, "the first read only (the next try would be 30 s on)")
        // It stops writing (the IOVM paused): one try every 3 s, not one per read.
        var stalled = 0
        for tick in 100..<200 {
            let now = Double(tick) / 10
            let tried = domains.shouldTrySample(3, now: now)
            if tried { stalled += 1 }
            domains.readPerKey(3, published: true, time: 9, now: now, triedSample: tried)
        }
        #expect(stalled == 3, "\(stalled) tries in 10 s")
    }

    @Test("a domain whose keys' clock keeps moving (traffic) has its sample tried every 30 s")
    func movingClockTriesEvery30Seconds() {
        var domains = PerKeyDomains()
        var tries: [Double] = []
        for tick in 0..<700 {
            let now = Double(tick) / 10
            let tried = domains.shouldTrySample(7, now: now)
            if tried { tries.append(now) }
            domains.readPerKey(7, published: true, time: now, now: now, triedSample: tried)
        }
        #expect(tries == [0, 30, 60], "\(tries)")
    }

    @Test("an agent with no time never looks stale; a domain that stops publishing or is gone is forgotten")
    func noTimeAndForgetting() {
        var domains = PerKeyDomains()
        domains.readPerKey(4, published: true, time: nil, now: 0, triedSample: true)
        domains.readPerKey(4, published: true, time: nil, now: 10, triedSample: false)
        #expect(!domains.shouldTrySample(4, now: 12))
        domains.readPerKey(4, published: false, time: nil, now: 13, triedSample: false)
        #expect(domains.shouldTrySample(4, now: 13))
        domains.readPerKey(5, published: true, time: 1, now: 0, triedSample: true)
        domains.keep(only: [4])
        #expect(domains.shouldTrySample(5, now: 0.5))
    }
}
