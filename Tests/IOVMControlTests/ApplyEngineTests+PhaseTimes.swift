import IOVMControl
import IOVMCore
import Logging
import Testing

/// `--log-level trace` shows where an apply spends its time, phase by phase (issue 16's no-op re-apply).
@Suite("apply: phase times at trace")
struct ApplyEnginePhaseTimeTests {
    let table3 = ApplyEngineTests()

    func applyTwice(at level: Logger.Level) throws -> String {
        let fake = FakeXenBackend(nics: ApplyEngineTests.nics)
        let plan = try table3.plan(.credit)
        let log = CapturedLog()
        var logger = log.logger
        logger.logLevel = level
        let engine = ApplyEngine(backend: fake, lock: fake, logger: logger)
        _ = try engine.apply(plan, libxlJSON: table3.json(plan))
        log.lines.withLock { $0.removeAll() }
        let report = try engine.apply(plan, libxlJSON: table3.json(plan))
        #expect(report.nothingToDo)
        return log.text
    }

    @Test("a no-op re-apply at trace names each phase with its time; at debug none")
    func phases() throws {
        let trace = try applyTwice(at: .trace)
        for phase in ["took the host lock", "removed stale records and observed the host", "validated and reconciled (0 changes)", "made the changes"] {
            #expect(trace.contains("trace: apply: \(phase) in "), "\(phase) in:\n\(trace)")
        }
        // With each phase's CPU and page faults, as getrusage counts them (what the lab's figure reads).
        #expect(
            trace.contains(
                try Regex("apply: removed stale records and observed the host in [0-9]+\\.[0-9] ms \\(user [0-9]+\\.[0-9] ms, system [0-9]+\\.[0-9] ms, [0-9]+ faults\\)\n")))
        let debug = try applyTwice(at: .debug)
        #expect(!debug.contains("and observed the host") && !debug.contains("trace: apply:"))
    }
}
