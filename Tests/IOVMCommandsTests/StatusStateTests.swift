import IOVMControl
import Testing

@testable import IOVMCommands

/// `iovm status`'s STATE column.
@Suite struct StatusStateTests {
    func domain(_ reason: String?, incomplete: Bool? = nil, paused: Bool? = nil) -> ObservedDomain {
        ObservedDomain(
            domid: 7, name: "guest1", uuid: "u", vcpus: 1, hardAffinity: [], weight: nil, cap: nil, cpupool: "Pool-0",
            tag: ManagedTag(topology: "t", name: "guest1", role: .guest, uuid: "u", specFingerprint: "f", incomplete: incomplete),
            shutdownReason: reason, paused: paused)
    }

    @Test func eachLifeHasItsWords() {
        #expect(StatusCommand.state(of: domain(nil)) == "running")
        #expect(StatusCommand.state(of: domain(nil, incomplete: true)) == "incomplete")
        #expect(StatusCommand.state(of: domain("poweroff")) == "shut down (poweroff)")
        #expect(StatusCommand.state(of: domain("reboot", incomplete: true)) == "shut down (reboot)")
        #expect(StatusCommand.state(of: domain("dying")) == "dying")
        #expect(StatusCommand.state(of: domain(nil, paused: true)) == "paused")
        #expect(StatusCommand.state(of: domain(nil, paused: false)) == "running")
        #expect(StatusCommand.state(of: domain("crash", paused: true)) == "shut down (crash)")
        #expect(StatusCommand.state(of: domain(nil, incomplete: true, paused: true)) == "incomplete")
    }
}
