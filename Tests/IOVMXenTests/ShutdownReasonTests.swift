import Testing
import XenKit

@testable import IOVMXen

/// A domain libxl still lists but that no longer runs (crashed, powered off, dying) is observed with its
/// reason, so apply and `iovm watch` treat such an IOVM as dead; nothing restarts a domain libxl created.
@Suite("shut-down domains")
struct ShutdownReasonTests {
    @Test func libxlsStateBecomesTheObservedReason() {
        func info(_ state: DomainInfo.State, _ reason: String? = nil) -> DomainInfo {
            DomainInfo(domid: 5, name: "iovm0", uuid: "u", state: state, shutdownReason: reason)
        }
        #expect(LibXLBackend.shutdownReason(info(.init(running: true))) == nil)
        #expect(LibXLBackend.shutdownReason(info(.init(blocked: true))) == nil)
        #expect(LibXLBackend.shutdownReason(info(.init(shutdown: true), "crash")) == "crash")
        #expect(LibXLBackend.shutdownReason(info(.init(shutdown: true), "poweroff")) == "poweroff")
        #expect(LibXLBackend.shutdownReason(info(.init(shutdown: true))) == "unknown")
        #expect(LibXLBackend.shutdownReason(info(.init(shutdown: true, dying: true), "crash")) == "dying")
    }
}
