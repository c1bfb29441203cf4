import Logging
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
}
