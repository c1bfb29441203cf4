import CLibXen
import CXenShim
import Synchronization
import Testing

@testable import XenKit

/// libxl's messages handed whole to a sink (the shim's logger), one call each, instead of written to stderr by
/// xentoollog: iovm then writes them as its own log lines (its time, escaped, never mixed).
@Suite("libxl messages to a sink")
struct LibXLLogSinkTests {
    final class Received: Sendable {
        let messages = Mutex<[LibXLLogMessage]>([])
        var all: [LibXLLogMessage] { messages.withLock { $0 } }
    }

    func logger(_ received: Received, minimum: LibXLContext.LogLevel) throws -> XenToolLogger {
        let created = XenToolLogger(sink: { message in received.messages.withLock { $0.append(message) } }, minimum: minimum)
        return try #require(created)
    }

    @Test("each message reaches the sink whole, with its level, errno and source; a % in it stays as it is")
    func messages() throws {
        let received = Received()
        let sink = try logger(received, minimum: .debug)
        withExtendedLifetime(sink) {
            cxenshim_logger_log(sink.pointer, XTL_ERROR, 2, "libxl", "libxl_pci.c:1573: cannot reset 100% of %s")
            cxenshim_logger_log(sink.pointer, XTL_DEBUG, -1, nil, "domainbuilder: detail: xc_dom_boot_image: called")
            cxenshim_logger_log(sink.pointer, XTL_WARN, -1, "xc", "a warning")
        }
        #expect(
            received.all == [
                LibXLLogMessage(level: .error, errno: 2, source: "libxl", text: "libxl_pci.c:1573: cannot reset 100% of %s"),
                LibXLLogMessage(level: .debug, text: "domainbuilder: detail: xc_dom_boot_image: called"),
                LibXLLogMessage(level: .warning, source: "xc", text: "a warning"),
            ])
        #expect(received.all[0].line == "libxl: libxl_pci.c:1573: cannot reset 100% of %s: No such file or directory")
        #expect(received.all[1].line == "domainbuilder: detail: xc_dom_boot_image: called")
    }

    @Test("a message below the logger's level never reaches the sink")
    func belowTheLevel() throws {
        let received = Received()
        let sink = try logger(received, minimum: .error)
        withExtendedLifetime(sink) {
            cxenshim_logger_log(sink.pointer, XTL_DEBUG, -1, "libxl", "chatter")
            cxenshim_logger_log(sink.pointer, XTL_WARN, -1, "libxl", "a warning")
            cxenshim_logger_log(sink.pointer, XTL_CRITICAL, -1, "libxl", "critical")
        }
        #expect(received.all.map(\.text) == ["critical"])
        let silent = Received()
        let quiet = try logger(silent, minimum: .silent)
        withExtendedLifetime(quiet) { cxenshim_logger_log(quiet.pointer, XTL_CRITICAL, -1, "libxl", "critical") }
        #expect(silent.all.isEmpty)
    }

    @Test("xentoollog's levels map to the context's")
    func levels() {
        let pairs: [(xentoollog_level, LibXLContext.LogLevel)] = [
            (XTL_DEBUG, .debug), (XTL_VERBOSE, .verbose), (XTL_DETAIL, .verbose), (XTL_PROGRESS, .progress), (XTL_INFO, .progress),
            (XTL_NOTICE, .progress), (XTL_WARN, .warning), (XTL_ERROR, .error), (XTL_CRITICAL, .error),
        ]
        for (xtl, level) in pairs { #expect(LibXLContext.LogLevel(xtl: xtl) == level) }
    }

    @Test("a forced context allocation failure with a sink: notXenDom0, its logger torn down once (no crash)")
    func forcedFailureWithASink() {
        let mocking = LibXLMocking()
        mocking.force("libxl_ctx_alloc", code: -5)
        let received = Received()
        LibXLMocking.$current.withValue(mocking) {
            #expect(throws: XenError.self) {
                _ = try LibXLContext(logLevel: .debug, checkHost: false, sink: { message in received.messages.withLock { $0.append(message) } })
            }
        }
        #expect(mocking.trace == ["libxl_ctx_alloc"])
    }

    /// The real `libxl_ctx_alloc` off Xen: what libxc said on its way to failing reaches the sink, not standard error.
    @Test(.enabled(if: !LibXenTests.onXen, "this machine runs Xen"))
    func realFailureTellsTheSink() {
        let received = Received()
        #expect(throws: XenError.self) {
            _ = try LibXLContext(logLevel: .debug, checkHost: false, sink: { message in received.messages.withLock { $0.append(message) } })
        }
        #expect(!received.all.isEmpty, "nothing reached the sink")
        #expect(received.all.contains { $0.level == .error }, "\(received.all)")
    }
}
