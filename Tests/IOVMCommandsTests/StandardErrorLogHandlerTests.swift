import Foundation
import Logging
import Synchronization
import Testing

@testable import IOVMCommands

#if canImport(Glibc)
    import Glibc
#endif

/// iovm's log lines: swift-log's stream handler's format, with the time to the millisecond.
@Suite("Log lines")
struct StandardErrorLogHandlerTests {
    /// Collects what a `StreamLogHandler` writes.
    final class Captured: TextOutputStream, @unchecked Sendable {
        private let text = Mutex("")
        func write(_ string: String) { text.withLock { $0 += string } }
        var value: String { text.withLock { $0 } }
    }

    @Test("the time has milliseconds, zero-padded, between the seconds and the zone")
    func milliseconds() throws {
        let pattern = #/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.(\d{3})[+-]\d{4}$/#
        let stamp = StandardErrorLogHandler.timestamp(timeval(tv_sec: 1_796_397_174, tv_usec: 7_999))
        #expect(try #require(stamp.wholeMatch(of: pattern)).1 == "007", "\(stamp)")
        let late = StandardErrorLogHandler.timestamp(timeval(tv_sec: 1_796_397_174, tv_usec: 999_999))
        #expect(try #require(late.wholeMatch(of: pattern)).1 == "999", "\(late)")
        // The same second either way: milliseconds are cut, never rounded up into the next second.
        #expect(stamp.prefix(19) == late.prefix(19))
    }

    @Test("after the time, a line reads as swift-log's stream handler writes it: level, label, sorted metadata, source, message")
    func sameLineAsTheStreamHandler() {
        let captured = Captured()
        var stream = StreamLogHandler(label: "iovm.watch", stream: captured)
        stream.metadata = ["b": "x", "a": "1"]
        stream.log(
            event: LogEvent(level: .notice, message: "recovered iovm0", metadata: nil, source: "IOVMControl", file: #fileID, function: #function, line: #line))
        let ours = StandardErrorLogHandler.line(
            time: timeval(tv_sec: 0, tv_usec: 0), level: .notice, label: "iovm.watch", metadata: ["b": "x", "a": "1"], source: "IOVMControl",
            message: "recovered iovm0")
        #expect(ours.drop { $0 != " " } == captured.value.drop { $0 != " " }, "\(ours) vs \(captured.value)")
        #expect(ours.hasSuffix(" notice iovm.watch: a=1 b=x [IOVMControl] recovered iovm0\n"))
        let bare = StandardErrorLogHandler.line(time: timeval(), level: .info, label: "", metadata: [:], source: "S", message: "m")
        #expect(bare.hasSuffix(" info: [S] m\n"), "\(bare)")
    }

    @Test("a message of several lines goes on in indented lines: what a topology file printed cannot pass for an entry")
    func continuationLines() {
        let faked = "2026-12-06T04:30:00.000+0000 notice iovm.watch: [IOVMControl] recovered iovm0"
        let line = StandardErrorLogHandler.line(
            time: timeval(), level: .notice, label: "iovm.watch", metadata: ["k": "a\nb"], source: "IOVMCore", message: "topology file printed: hi\n\(faked)")
        let lines = line.split(separator: "\n")
        #expect(lines.count == 3, "\(line)")
        #expect(lines[1] == "    | b [IOVMCore] topology file printed: hi")
        #expect(lines[2] == "    | " + faked)
    }
}
