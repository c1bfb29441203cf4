import IOVMWireFormat
import Testing

@testable import IOVMCommands

/// The live verbs' plainest forms, read without ArgumentParser (issue 16): the same request as the command's own
/// parse, and nil for everything the command's parser must read (options, help, bad targets).
@Suite("Live verbs' shortcut")
struct LiveVerbShortcutTests {
    @Test("a plain pin, unpin or weight gives the request the command's own parse gives")
    func sameRequestAsTheParse() throws {
        let pin = ["iovm0=2", "iovm1=3-4", "7=0,2"]
        #expect(IOVMCommand.liveVerbShortcut(["pin"] + pin) == PinCommand.request(try PinCommand.parse(pin).targets()))
        #expect(
            IOVMCommand.liveVerbShortcut(["pin"] + pin)
                == LiveVerbRequest(
                    verb: .pin, targets: [.init(domain: "iovm0", cores: "2"), .init(domain: "iovm1", cores: "3-4"), .init(domain: "7", cores: "0,2")]))
        let unpin = ["iovm0", "iovm1"]
        #expect(IOVMCommand.liveVerbShortcut(["unpin"] + unpin) == UnpinCommand.request(try UnpinCommand.parse(unpin).domains))
        #expect(IOVMCommand.liveVerbShortcut(["unpin"] + unpin) == LiveVerbRequest(verb: .pin, targets: [.init(domain: "iovm0"), .init(domain: "iovm1")]))
        for weight in [["iovm0", "iovm1", "512"], ["iovm0=512", "iovm1=256"], ["iovm0=512", "iovm1", "128"]] {
            let parsed = try WeightCommand.parse(weight)
            #expect(IOVMCommand.liveVerbShortcut(["weight"] + weight) == WeightCommand.request(try parsed.targets(), cap: parsed.cap), "\(weight)")
        }
        #expect(
            IOVMCommand.liveVerbShortcut(["weight", "iovm0", "iovm1", "512"])
                == LiveVerbRequest(verb: .weight, targets: [.init(domain: "iovm0", weight: 512), .init(domain: "iovm1", weight: 512)]))
    }

    @Test("options, help, bad targets and other commands are left to the parser")
    func leftToTheParser() {
        let cases: [[String]] = [
            [], ["pin"], ["unpin"], ["weight"],
            ["pin", "iovm0=2", "--wait", "5"], ["pin", "iovm0", "--cpus", "2"], ["pin", "--help"], ["pin", "-h"], ["pin", "iovm0=2", "-v"],
            ["pin", "iovm0=2", "--in-process"], ["unpin", "iovm0", "--connect", "xen+ssh://h/system"], ["weight", "iovm0", "256", "--cap", "50"],
            ["pin", "iovm0"], ["pin", "iovm0=all"], ["pin", "iovm0=9-2"], ["pin", "iovm0=x"], ["pin", "iovm0=2", ""],
            ["weight", "iovm0", "0"], ["weight", "iovm0", "-5"], ["weight", "iovm0", "big"], ["weight", "512"], ["weight", "iovm0=256", "512"],
            ["weight", "iovm0=70000"], ["unpin", "-v"], ["status", "iovm0"], ["apply", "x.swift"], ["--version"], ["help", "pin"],
        ]
        for arguments in cases {
            #expect(IOVMCommand.liveVerbShortcut(arguments) == nil, "\(arguments)")
        }
    }
}
