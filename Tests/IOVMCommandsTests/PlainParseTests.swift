import ArgumentParser
import Testing

@testable import IOVMCommands

/// Plain `apply` and `destroy` read without ArgumentParser (issue 16): the same command, every property alike, as the
/// command's own parse gives, and nil for everything that parser must read.
@Suite("Plain apply and destroy")
struct PlainParseTests {
    /// Every property of `command`, parsed values included, as text: a property the plain parse left unset prints as
    /// its definition, not its value.
    func described(_ command: any ParsableCommand) -> String {
        var text = ""
        dump(command, to: &text)
        return text
    }

    @Test("a plain apply or destroy is the command its own parse gives")
    func sameCommandAsTheParse() throws {
        let forms: [[String]] = [
            ["--topology-json", "/tmp/t/credit.json", "--allow-unresettable-nics"],
            ["--topology-json=/tmp/t/credit.json"],
            ["topology.swift"],
            ["topology.swift", "--dry-run", "-v"],
            ["--topology-json", "-", "--log-level", "trace", "--wait", "2.5"],
            [
                "--log-level=debug", "hosts.swift", "--on-host", "b", "--host-cores", "8", "--host-memory", "4096", "--host-scheduler", "credit2",
                "--images", "/var/lib/iovm/images", "--driver-domain-timeout", "30", "--guest-network-timeout", "45.5", "--allow-no-iommu",
                "--crash-after", "create:iovm0", "--connect", "xen+ssh://root@h/system",
            ],
            ["--verbose", "--topology-json", "t.json", "--allow-unresettable-nics", "--allow-no-iommu"],
        ]
        for arguments in forms {
            for (verb, kind) in [("apply", ApplyCommand.self as any ParsableCommand.Type), ("destroy", DestroyCommand.self)] {
                if verb == "destroy" && arguments.contains("--dry-run") { continue }
                let plain = try #require(IOVMCommand.plainParse([verb] + arguments), "\(verb) \(arguments)")
                #expect(ObjectIdentifier(type(of: plain)) == ObjectIdentifier(kind))
                let parsed = try kind.parse(arguments)
                #expect(described(plain) == described(parsed), "\(verb) \(arguments)")
            }
        }
    }

    @Test("a form that is not plain, or that the command refuses, is left to the parser")
    func leftToTheParser() {
        let cases: [[String]] = [
            [], ["apply"], ["destroy"], ["status", "t.json"], ["plan", "t.json"], ["pin", "iovm0=2"],
            ["apply", "--help"], ["apply", "-h"], ["apply", "t.json", "--", "x"], ["apply", "a.json", "b.json"],
            ["apply", "t.json", "--bogus"], ["apply", "t.json", "-vv"], ["apply", "t.json", "-q"],
            ["apply", "--topology-json"], ["apply", "--topology-json", "--dry-run"], ["apply", "--topology-json", "t.json", "--topology-json", "u.json"],
            ["apply", "t.json", "--dry-run", "--dry-run"], ["destroy", "t.json", "--dry-run"], ["apply", "t.json", "--dry-run=yes"],
            ["apply", "t.json", "--host-cores", "eight"], ["apply", "t.json", "--host-cores", "0"], ["apply", "t.json", "--host-cores", "-1"],
            ["apply", "t.json", "--wait", "soon"], ["apply", "t.json", "--log-level", "loud"], ["apply", "t.json", "--host-scheduler", "fifo"],
            ["apply", "t.json", "--topology-json", "u.json"], ["apply", ""], ["apply", "--topology-json", ""], ["apply", "t.json", "--images="],
            ["apply", "--version"], ["apply", "--generate-completion-script", "bash"],
            // `--name=` is the bare name to ArgumentParser, which takes the next word as its value or refuses it.
            ["apply", "t.json", "--connect="], ["apply", "--connect=", "t.json"], ["destroy", "t.json", "--on-host="], ["apply", "t.json", "--crash-after="],
        ]
        for arguments in cases {
            #expect(IOVMCommand.plainParse(arguments) == nil, "\(arguments)")
        }
    }
}
