import Foundation
import Synchronization
import Testing

@testable import IOVMImage

/// A kernel build's steps (`tar`, `make`) run with their output in a log, each line handed on as it comes.
@Suite("Build steps")
struct BuildStepTests {
    @Test("a step's stdout and stderr go to its log and, line by line, to the progress callback")
    func lines() throws {
        let log = FileManager.default.temporaryDirectory.appending(path: "iovm-step-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let seen = Mutex<[String]>([])
        try run("echo", ["sh", "-c", "echo one; echo two >&2; sleep 0.3; echo three"], log: log) { line in seen.withLock { $0.append(line) } }
        #expect(seen.withLock { $0 } == ["one", "two", "three"])
        #expect(try String(contentsOfFile: log, encoding: .utf8) == "one\ntwo\nthree\n")
    }

    @Test("a failing step throws its status and the log's last lines")
    func failure() {
        let log = FileManager.default.temporaryDirectory.appending(path: "iovm-step-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let error = #expect(throws: ImageError.self) { try run("make", ["sh", "-c", "echo building; echo 'error: boom' >&2; exit 3"], log: log) { _ in } }
        guard case .stepFailed(let step, let status, let tail, _) = error else {
            Issue.record("not stepFailed: \(String(describing: error))")
            return
        }
        #expect(step == "make" && status == 3 && tail.contains("building\nerror: boom"))
    }
}
