import Foundation
import IOVMControl
import Logging
import Testing
import XenKit

@testable import IOVMXen

/// LibXLBackend's waits for an IOVM and for a guest's vifs: they watch what they read and wake when it changes,
/// rather than only polling it.
@Suite("LibXLBackend waits")
struct LibXLBackendWaitTests {
    func backend(_ store: MemoryTagStore) -> LibXLBackend {
        let toolstack = RecordingToolstack(cores: 4)
        return LibXLBackend(
            context: toolstack, openToolstack: { () throws(XenError) in toolstack }, openStore: { _ throws(XenError) in store },
            logger: Logger(label: "iovm.test"), sysfs: SysfsPCI(root: "/nonexistent"), strictReset: true)
    }

    /// Runs `body` (a blocking wait) on a thread of its own, not on one of Swift concurrency's few.
    func onThread(_ body: @escaping @Sendable () throws -> Void) async throws {
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
            Thread {
                do {
                    try body()
                    done.resume()
                } catch { done.resume(throwing: error) }
            }.start()
        }
    }

    /// Returns once a wait on another thread has read `store` after its watches' first firing and waits for a change
    /// (so the test's next write is what wakes it), or fails after 10 s.
    func untilParked(_ store: MemoryTagStore) async throws {
        for _ in 0..<1000 {
            if store.parked > 0 { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("no wait parked; watches: \(store.watches)")
    }

    /// Runs `wait` over `store` on a thread of its own, writes `value` at `path` once the wait is parked, and returns
    /// when the wait has.
    func wait(
        over store: MemoryTagStore, _ wait: @escaping @Sendable (LibXLBackend) throws -> Void, thenWrite path: String, _ value: String
    ) async throws {
        let backend = backend(store)
        async let waited: Void = onThread { try wait(backend) }
        try await untilParked(store)
        try store.write(path, value)
        try await waited
    }

    @Test func theWaitForAnIOVMsDevdWatchesItsKeyAndWakesAtItsWrite() async throws {
        let store = MemoryTagStore()
        try await wait(over: store, { try $0.waitForDriverDomain(domid: 7, timeout: 30) }, thenWrite: "/local/domain/7/data/iovm/devd", "running")
        #expect(store.watches == ["/local/domain/7/data/iovm/devd"])
        // Once for the watch's first firing, once for the write.
        #expect(store.wakes == 2)
    }

    @Test func theWaitForVifBackendsWatchesEachKeyAnIOVMMayWrite() async throws {
        let store = MemoryTagStore()
        try await wait(over: store, { try $0.waitForVifBackends(domid: 4, timeout: 30) }, thenWrite: "/local/domain/4/data/iovm/netback", "1")
        #expect(
            store.watches == ["/local/domain/4/data/iovm/netback", "/local/domain/4/data/iovm/runtime", "/local/domain/4/data/iovm/devd"])
        #expect(store.wakes == 2)
    }

    @Test func aWaitNobodyAnswersStillEndsAtItsTimeoutNamingWhatItWaitedFor() throws {
        let store = MemoryTagStore()
        #expect {
            try backend(store).waitForDriverDomain(domid: 9, timeout: 0.3)
        } throws: { error in
            "\(error)".contains("/local/domain/9/data/iovm/devd was not written within 0.3 s")
        }
    }

    @Test func aGuestCannotMakeTheWaitWatchAPathThatIsNoVifBackend() {
        #expect(LibXLBackend.isVifBackendPath("/local/domain/7/backend/vif/3/0", frontend: 3))
        for path in [
            "/", "/local/domain/7/backend/vif/4/0", "/local/domain/7/backend/vbd/3/0", "/local/domain/7/backend/vif/3/0/state",
            "/local/domain/x/backend/vif/3/0", "/local/domain/7/backend/vif/3/", "/local/domain/٣/backend/vif/3/0", "local/domain/7/backend/vif/3/0",
        ] {
            #expect(!LibXLBackend.isVifBackendPath(path, frontend: 3), "\(path)")
        }
    }

    @Test("a backend path a guest wrote that is no backend of its vif is neither read nor watched: the wait ends at its timeout")
    func aBackendPathOfAnotherShapeIsNotRead() throws {
        let store = MemoryTagStore()
        // A node of the guest's own, saying the hotplug failed: it must not fail the wait (or a recovery) either.
        try store.write("/local/domain/3/device/vif/0/backend", "/local/domain/3/data/fake")
        try store.write("/local/domain/3/data/fake/state", "4")
        try store.write("/local/domain/3/data/fake/hotplug-status", "error")
        #expect {
            try backend(store).waitForGuestNetwork(domid: 3, timeout: 0.3)
        } throws: { error in
            "\(error)".contains("vif 0: no backend yet")
        }
        #expect(store.watches == ["/local/domain/3/device/vif"])
    }

    @Test("a vif's backend is libxl's record of it, which only dom0 writes; the guest's backend and backend-id are not believed over it")
    func theBackendIsWhatDom0Recorded() {
        let store = MemoryTagStore()
        let real = "/local/domain/7/backend/vif/3/0"
        try? store.write("/libxl/3/device/vif/0/backend", real)
        try? store.write("/local/domain/3/device/vif/0/backend", "/local/domain/9/backend/vif/3/0")
        try? store.write("/local/domain/3/device/vif/0/backend-id", "9999")
        try? store.write("\(real)/state", "4")
        #expect(LibXLBackend.vifBackend(of: 3, devid: 0, store: store)?.path == real)
        #expect(LibXLBackend.vifs(of: 3, store: store) == [ObservedVif(devid: 0, backendDomid: 7, backendState: "4", hotplugStatus: nil)])
        // Without libxl's record (an older toolstack), the frontend's path counts when it is this vif's, and its domain
        // is the path's, not the backend-id's.
        try? store.remove("/libxl/3")
        #expect(LibXLBackend.vifBackend(of: 3, devid: 0, store: store).map { "\($0.path) \($0.domid)" } == "/local/domain/9/backend/vif/3/0 9")
        try? store.write("/local/domain/3/device/vif/0/backend", "/local/domain/9/backend/vif/3/1")
        #expect(LibXLBackend.vifBackend(of: 3, devid: 0, store: store) == nil)
    }

    @Test func theWaitForAGuestsVifsWatchesItsDevicesAndEachBackendNotConnected() async throws {
        let store = MemoryTagStore()
        let backendPath = "/local/domain/7/backend/vif/3/0"
        try store.write("/local/domain/3/device/vif/0/backend", backendPath)
        try store.write("\(backendPath)/state", "2")
        try await wait(over: store, { try $0.waitForGuestNetwork(domid: 3, timeout: 30) }, thenWrite: "\(backendPath)/state", "4")
        #expect(store.watches == ["/local/domain/3/device/vif", backendPath])
        #expect(store.wakes == 2)
    }
}
