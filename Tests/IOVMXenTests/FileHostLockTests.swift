import Foundation
import IOVMControl
import IOVMXen
import Testing

/// The host lock is a real flock: a second holder is refused (or waits) until the first releases.
@Suite("Host lock")
struct FileHostLockTests {
    @Test func aSecondApplyIsRefusedUntilTheFirstReleases() throws {
        let path = FileManager.default.temporaryDirectory.appending(path: "iovm-lock-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let lock = FileHostLock(path: path)
        let first = try lock.acquire(timeout: 0)
        do {
            _ = try lock.acquire(timeout: 0.3)
            Issue.record("a second holder got the lock")
        } catch let error as ApplyError {
            #expect(error.description.contains("held by another iovm"), "\(error)")
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "\(getpid())\n")
        first.release()
        let second = try lock.acquire(timeout: 0)
        second.release()
    }
}
