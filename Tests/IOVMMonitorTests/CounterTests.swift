import IOVMMonitor
import Testing

@Suite("Counters and epochs")
struct CounterTests {
    @Test("a counter that goes forward moves by the difference")
    func advances() {
        #expect(CounterDelta.between(1_000, 1_500) == CounterDelta(value: 500, change: .advanced))
        #expect(CounterDelta.between(7, 7, width: .bits32) == CounterDelta(value: 0, change: .advanced))
    }

    @Test("a 32-bit counter that passes its maximum wraps, when the jump is plausible")
    func wraps32() {
        let previous = UInt64(UInt32.max) - 99  // 100 below the top
        let delta = CounterDelta.between(previous, 50, width: .bits32, maximumPlausible: 1_000)
        #expect(delta == CounterDelta(value: 150, change: .wrapped))
    }

    @Test("a 64-bit counter near its top wraps")
    func wraps64() {
        let delta = CounterDelta.between(UInt64.max - 9, 5, width: .bits64)
        #expect(delta == CounterDelta(value: 15, change: .wrapped))
    }

    @Test("a backwards step with unknown width is a restart: new epoch, counted from zero")
    func resetWithoutWidth() {
        let delta = CounterDelta.between(4_000_000_000, 1_234)
        #expect(delta == CounterDelta(value: 1_234, change: .newEpoch))
        #expect(delta.isNewEpoch)
    }

    @Test("a backwards step too large to be a wrap is a restart, even with a known width")
    func implausibleWrapIsReset() {
        // 32-bit: from 3e9 to 1e6 would be a wrap of ~1.3e9 bytes: more than 1 s at 1 Gbit/s can move.
        let delta = CounterDelta.between(3_000_000_000, 1_000_000, width: .bits32, maximumPlausible: 125_000_000)
        #expect(delta == CounterDelta(value: 1_000_000, change: .newEpoch))
        // 64-bit counters restarting (domain recreated) are never taken for a wrap.
        #expect(CounterDelta.between(5_000_000_000, 10, width: .bits64).change == .newEpoch)
    }

    @Test("without a plausibility bound a wrap may cover at most half the range")
    func defaultBound() {
        #expect(CounterDelta.between(UInt64(UInt32.max) - 10, 10, width: .bits32).change == .wrapped)
        #expect(CounterDelta.between(1_000, 10, width: .bits32).change == .newEpoch)
    }

    @Test("a value larger than the declared width is a restart, not a wrap")
    func outOfWidth() {
        #expect(CounterDelta.between(5_000_000_000, 1, width: .bits32).change == .newEpoch)
    }

    @Test("a counter that did not exist before (new interface) counts from zero as a new epoch")
    func newCounter() {
        #expect(CounterDelta.between(nil, 42) == CounterDelta(value: 42, change: .newEpoch))
    }
}
