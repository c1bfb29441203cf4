import Foundation
import IOVMCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Children get SIGPIPE back at its default, whatever this process does with it (it ignores it once libvirt is loaded).
@Suite struct ProcessRunnerTests {
    @Test func aChildsPipelineEndsQuietlyThoughThisProcessIgnoresSIGPIPE() throws {
        signal(SIGPIPE, SIG_IGN)
        let outcome = try ProcessRunner.run("/bin/sh", ["-c", "yes | head -1"], environment: ["PATH": "/usr/bin:/bin"], timeout: 20)
        #expect(outcome.succeeded)
        // With SIGPIPE ignored, `yes` would get EPIPE and say "Broken pipe" instead of ending at head's exit.
        #expect(outcome.output == "y\n", "\(outcome.output)")
    }
}
