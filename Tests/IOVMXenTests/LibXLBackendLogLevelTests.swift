import Logging
import Synchronization
import Testing
import XenKit

@testable import IOVMXen

/// `--log-level trace` is iovm's `xl -vvv`: libxl's own debug log joins iovm's.
@Suite("LibXLBackend libxl log level")
struct LibXLBackendLogLevelTests {
    @Test("trace turns libxl's debug log on; every other level keeps libxl to its errors")
    func libxlLevel() {
        #expect(LibXLBackend.libxlLogLevel(for: .trace) == .debug)
        for level in [Logger.Level.debug, .info, .notice, .warning, .error, .critical] {
            #expect(LibXLBackend.libxlLogLevel(for: level) == .error)
        }
    }

    /// Log entries as `level: message`.
    final class Entries: Sendable {
        let lines = Mutex<[String]>([])
        struct Handler: LogHandler {
            let entries: Entries
            var metadata: Logger.Metadata = [:]
            var logLevel: Logger.Level
            subscript(metadataKey key: String) -> Logger.Metadata.Value? {
                get { metadata[key] }
                set { metadata[key] = newValue }
            }
            func log(event: LogEvent) { entries.lines.withLock { $0.append("\(event.level): \(event.message)") } }
        }
        func logger(_ level: Logger.Level) -> Logger { Logger(label: "test") { _ in Handler(entries: self, logLevel: level) } }
    }

    @Test("libxl's levels map to iovm's: its debug and verbose chatter at trace")
    func levels() {
        let pairs: [(LibXLContext.LogLevel, Logger.Level)] = [
            (.debug, .trace), (.verbose, .trace), (.progress, .info), (.warning, .warning), (.error, .error),
        ]
        for (libxl, iovm) in pairs { #expect(LibXLBackend.level(of: libxl) == iovm) }
    }

    @Test("a libxl message becomes one entry of iovm's log at libxl's level; its chatter only at trace")
    func sink() {
        let entries = Entries()
        let sink = LibXLBackend.libxlSink(entries.logger(.notice))
        sink(LibXLLogMessage(level: .error, errno: 2, source: "libxl", text: "libxl_pci.c:1573: no reset"))
        sink(LibXLLogMessage(level: .debug, source: "libxl", text: "chatter"))
        sink(LibXLLogMessage(level: .warning, source: "xc", text: "a warning"))
        #expect(entries.lines.withLock { $0 } == ["error: libxl: libxl_pci.c:1573: no reset: No such file or directory", "warning: xc: a warning"])
        let traced = Entries()
        LibXLBackend.libxlSink(traced.logger(.trace))(LibXLLogMessage(level: .debug, source: "libxl", text: "chatter"))
        #expect(traced.lines.withLock { $0 } == ["trace: libxl: chatter"])
    }
}
