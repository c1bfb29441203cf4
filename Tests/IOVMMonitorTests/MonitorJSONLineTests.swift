import Foundation
import IOVMMonitor
import IOVMWireFormat
import Testing

@testable import IOVMCore

@Suite("iovm monitor --json lines (JSONLineWriter)")
struct MonitorJSONLineTests {
    /// Figures of one IOVM whose every field follows from `rx` and `cpu` (nil efficiencies when `cpu` is 0).
    static func figures(_ name: String, seconds: Double, rx: UInt64, cpu: UInt64, aligned: Double? = nil) -> EfficiencyFigures {
        EfficiencyFigures(
            iovm: name, seconds: seconds, rxBytes: rx, txBytes: rx / 3, cpuNanoseconds: cpu, cpuHz: 2_596_144_000, guestVifRxBytes: rx &+ 7,
            guestVifTxBytes: rx / 3, newEpoch: rx % 2 == 0, countersPublished: true, trafficKnown: rx % 3 != 0, rxPackets: rx / 1500,
            txPackets: rx / 4500, alignedCycles: aligned)
    }

    @Test("every kind of line is what JSONText writes, byte for byte: interval, events, start, summary")
    func sameBytesAsTheEncoder() throws {
        let iovms = [
            Self.figures("iovm0", seconds: 0.1, rx: 1_250_000, cpu: 25_000_000),
            Self.figures("iovm1", seconds: 0.1, rx: 0, cpu: 0),  // no cycles: the efficiencies are nil, left out
            Self.figures("a/b \"c\"\\é\u{1}\n\u{0}\u{7f}e\u{301}", seconds: 1, rx: UInt64.max / 2, cpu: 999_999_999, aligned: 1e-7),
        ]
        let events = [
            MonitorEvent(elapsed: 1.5, iovm: "iovm0", kind: .recreated, detail: "domain 7 → 8; counting from zero"),
            MonitorEvent(elapsed: 0, iovm: "*", kind: .readFailed, detail: "tab\there\r\u{1b}[0m \u{8}\u{c}"),
        ]
        var totals: [String: TrafficTotals] = [:]
        for (index, name) in ["iovm1", "Zed", "iovm0", "é", "B"].enumerated() {
            var t = TrafficTotals()
            t.seconds = 12.25 * Double(index)
            t.rxBytes = UInt64(index) * 1_000_003
            t.txBytes = 17
            t.rxPackets = UInt64(index)
            totals[name] = t
        }
        let lines = [
            MonitorJSONLine(
                type: "interval", time: 1_796_444_127.3338583, start: 4.9, end: 5.0, cpuHz: 2_596_144_000, iovms: iovms,
                aggregate: .aggregate(iovms, seconds: 0.1, cpuHz: 2_596_144_000), events: events, samplerCPURatio: 0.0406,
                samplerCPURatioTotal: 0.04),
            MonitorJSONLine(type: "interval", time: 1, start: 0, end: 1, cpuHz: 1, iovms: [], aggregate: .aggregate([], seconds: 1, cpuHz: 1), events: []),
            MonitorJSONLine(type: "events", time: 1_796_444_127, events: events),
            MonitorJSONLine(type: "start", nominalHzNote: "cycles at nominal Hz / TSC", frequencyWarning: "cpufreq: \"ondemand\""),
            MonitorJSONLine(type: "summary", samplerCPURatio: nil, intervals: 100, totals: totals),
            MonitorJSONLine(type: "summary", samplerCPURatio: 0.0057, intervals: Int.min, totals: [:]),
            MonitorJSONLine(type: "summary", intervals: Int.max),
            // Alone: an aggregate of UInt64.max bytes would overflow.
            MonitorJSONLine(type: "interval", iovms: [Self.figures("max", seconds: -0.0, rx: UInt64.max, cpu: UInt64.max)]),
        ]
        for line in lines {
            // Bytes, not Strings: String's == would take "é" and "e" + U+0301 for the same.
            let expected = Array(try JSONText.line(line).utf8)
            #expect(Array(line.text.utf8) == expected)
        }
    }

    @Test("a number that is not finite is written as null, where the encoder refuses the line")
    func nonFiniteIsNull() {
        #expect(MonitorJSONLine(type: "x", time: .nan, start: .infinity, end: -.infinity).text == #"{"end":null,"start":null,"time":null,"type":"x"}"#)
        #expect(throws: (any Error).self) { try JSONText.line(MonitorJSONLine(type: "x", time: .nan)) }
    }

    @Test("numbers as the encoder writes them, over 3,000 seeded values of every magnitude")
    func numbersOfEveryMagnitude() throws {
        var random = SplitMix64(seed: 0x10_4D5E)  // seeded: a failure names values that come back
        var mismatches: [String] = []
        for index in 0..<3_000 {
            let magnitude = Double.random(in: -12...22, using: &random)
            var seconds = pow(10, magnitude) * Double.random(in: 1..<10, using: &random)
            if index % 5 == 0 { seconds = seconds.rounded() }  // integral values: "100", not "100.0"
            if index % 7 == 0 { seconds = Double(UInt64.random(in: 0...UInt64.max >> 11, using: &random)) }
            let rx = index % 3 == 0 ? UInt64.random(in: 0...UInt64.max, using: &random) : UInt64.random(in: 0...99, using: &random)
            let figures = Self.figures("iovm\(index)", seconds: seconds, rx: rx, cpu: UInt64.random(in: 0...UInt64(1e12), using: &random))
            let line = MonitorJSONLine(type: "interval", time: -seconds, start: seconds / 3, end: seconds, iovms: [figures])
            let expected = try JSONText.line(line)
            if Array(line.text.utf8) != Array(expected.utf8) { mismatches.append("\(line.text)\n  vs \(expected)") }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) lines differ; first: \(mismatches.first ?? "")")
    }
}
