import SystemPackage
import Testing

@testable import XenKit

#if canImport(Glibc)
    import Glibc
#endif

/// The xenstore watch calls, driven through the funnel's mocking trace over a handle that is never
/// dereferenced: no Xen needed. The descriptor polled is a pipe the test controls.
@Suite("xenstore watches through the funnel")
struct XenStoreWatchTests {
    let client = XenStoreClient(handleForTesting: OpaquePointer(bitPattern: 0x1)!)

    func pipePair() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        try #require(pipe(&fds) == 0)
        return (fds[0], fds[1])
    }

    @Test func aRefusedWatchIsAnErrnoNamingPathAndToken() {
        let mocking = LibXLMocking()
        mocking.force("xs_watch", code: EACCES)
        mocking.force("xs_unwatch", code: 0)
        LibXLMocking.$current.withValue(mocking) {
            #expect(throws: XenError.errno(.permissionDenied, operation: "xs_watch @releaseDomain (token iovm-watch)")) {
                try client.watch("@releaseDomain", token: "iovm-watch")
            }
            #expect(throws: Never.self) { try client.unwatch("@releaseDomain", token: "iovm-watch") }
            // A NUL would cut the path short in C: refused before any call.
            #expect(throws: XenError.self) { try client.watch("/local/domain/0/iovm\u{0}x", token: "t") }
        }
        #expect(mocking.trace == ["xs_watch", "xs_unwatch"])
        #expect(
            XenError.errno(.permissionDenied, operation: "xs_watch @releaseDomain (token iovm-watch)").description
                == "xs_watch @releaseDomain (token iovm-watch) failed: Permission denied (errno 13)")
    }

    @Test func noEventWithinTheTimeoutIsNil() throws {
        let fds = try pipePair()
        defer {
            close(fds.read)
            close(fds.write)
        }
        let mocking = LibXLMocking()
        mocking.force("xs_check_watch", code: EAGAIN)
        mocking.force("xs_fileno", code: fds.read)
        let start = ContinuousClock.now
        let event = try LibXLMocking.$current.withValue(mocking) { try client.nextWatchEvent(timeout: 0.1) }
        let elapsed = ContinuousClock.now - start
        #expect(event == nil)
        #expect(elapsed >= .milliseconds(90) && elapsed < .seconds(5), "\(elapsed)")
        #expect(mocking.trace == ["xs_check_watch", "xs_fileno"])
    }

    /// libxenstore keeps a byte in its pipe while events are queued; a descriptor that stays readable
    /// with nothing to take must not make the wait spin.
    @Test func aReadableDescriptorWithNothingQueuedDoesNotSpin() throws {
        let fds = try pipePair()
        defer {
            close(fds.read)
            close(fds.write)
        }
        var byte: UInt8 = 0
        #expect(write(fds.write, &byte, 1) == 1)
        let mocking = LibXLMocking()
        mocking.force("xs_check_watch", code: EAGAIN)
        mocking.force("xs_fileno", code: fds.read)
        let event = try LibXLMocking.$current.withValue(mocking) { try client.nextWatchEvent(timeout: 0.2) }
        #expect(event == nil)
        let checks = mocking.trace.filter { $0 == "xs_check_watch" }.count
        #expect(checks >= 2 && checks <= 15, "\(checks) checks in 0.2 s")
    }

    @Test func aHungUpDescriptorOrAFailedCheckIsAnError() throws {
        let fds = try pipePair()
        defer { close(fds.read) }
        close(fds.write)
        let mocking = LibXLMocking()
        mocking.force("xs_check_watch", code: EAGAIN)
        mocking.force("xs_fileno", code: fds.read)
        LibXLMocking.$current.withValue(mocking) {
            #expect(throws: XenError.self) { try client.nextWatchEvent(timeout: 1) }
        }
        let failing = LibXLMocking()
        failing.force("xs_check_watch", code: EBADF)
        LibXLMocking.$current.withValue(failing) {
            #expect(throws: XenError.errno(.badFileDescriptor, operation: "xs_check_watch")) { try client.nextWatchEvent(timeout: 1) }
        }
        #expect(failing.trace == ["xs_check_watch"])
    }
}
