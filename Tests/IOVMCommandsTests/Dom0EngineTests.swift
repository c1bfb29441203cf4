import Foundation
import Synchronization
import Testing

@testable import IOVMCommands

/// The apply command's dom0 engine, opened on a thread of its own while the topology is read and planned (issue 16).
@Suite("Dom0Engine")
struct Dom0EngineTests {
    struct Refused: Error, Equatable {}

    /// What an opening saw: how often it ran, and on which thread.
    final class Openings: Sendable {
        let calls = Mutex(0)
        let threads = Mutex<[UInt]>([])
    }

    func engine(_ openings: Openings, delay: Double) -> Dom0Engine {
        Dom0Engine {
            openings.calls.withLock { $0 += 1 }
            openings.threads.withLock { $0.append(UInt(bitPattern: Int(pthread_self()))) }
            Thread.sleep(forTimeInterval: delay)
            throw Refused()
        }
    }

    @Test("started, it opens on another thread at once and is waited for where first used; opened once")
    func startedOpensBesideTheCaller() throws {
        let openings = Openings()
        let dom0 = engine(openings, delay: 0.3)
        let before = Date()
        dom0.start()
        dom0.start()
        #expect(Date().timeIntervalSince(before) < 0.2, "start does not wait for the opening")
        #expect(throws: Refused.self) { try dom0.opened.get() }
        #expect(Date().timeIntervalSince(before) >= 0.3, "opened waits for it")
        #expect(throws: Refused.self) { try dom0.opened.get() }
        #expect(dom0.facts == nil)
        #expect(openings.calls.withLock { $0 } == 1)
        #expect(openings.threads.withLock { $0 } != [UInt(bitPattern: Int(pthread_self()))])
    }

    @Test("not started, it opens on the caller's thread when first asked for, once")
    func notStartedOpensWhenAsked() throws {
        let openings = Openings()
        let dom0 = engine(openings, delay: 0)
        #expect(openings.calls.withLock { $0 } == 0)
        #expect(dom0.facts == nil)
        #expect(throws: Refused.self) { try dom0.opened.get() }
        #expect(openings.calls.withLock { $0 } == 1)
        #expect(openings.threads.withLock { $0 } == [UInt(bitPattern: Int(pthread_self()))])
    }
}
