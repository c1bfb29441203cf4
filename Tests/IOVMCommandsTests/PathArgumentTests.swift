import Foundation
import Testing

/// Paths given on the command line: '' is refused before anything is read or written; '-' is standard input where a
/// command reads its topology once.
@Suite("Path arguments")
struct PathArgumentTests {
    @Test(
        "an empty path is a usage error naming the option, and nothing is written",
        arguments: [
            ["render", "Examples/hybrid.swift", "--out", ""],
            ["plan", ""],
            ["plan", "--topology-json", ""],
            ["kernel-config", "--nic-driver", "e1000", "--out", ""],
            ["report", "--out", "", "x"],
            ["monitor", "--iovm", "iovm0", "--record", ""],
            ["image", "list", "--out", ""],
        ])
    func emptyPathsAreRefused(arguments: [String]) throws {
        let result = try CLITests().iovm(arguments)
        #expect(result.status == 64, "\(arguments): exit \(result.status), \(result.stderr)")
        #expect(result.stderr.contains("is empty: give a path"), "\(arguments): \(result.stderr)")
        #expect(result.stdout.isEmpty)
    }

    @Test("'-' as the topology file reads its JSON document from standard input, as --topology-json - does")
    func dashIsStandardInput() throws {
        let synth = try CLITests().iovm("synth", "Examples/multiple-small.swift")
        #expect(synth.status == 0, "\(synth.stderr)")
        let viaOption = try CLITests().iovm("plan", "--topology-json", "-", "--json", stdin: synth.stdout)
        let viaDash = try CLITests().iovm("plan", "-", "--json", stdin: synth.stdout)
        #expect(viaDash.status == 0, "\(viaDash.stderr)")
        #expect(viaDash.stdout == viaOption.stdout && !viaDash.stdout.isEmpty)
        let empty = try CLITests().iovm("plan", "-", stdin: "")
        #expect(empty.status == 65 && empty.stderr.contains("<stdin>: error: not a usable topology document: the file is empty"), "\(empty.stderr)")
    }

    @Test("iovm watch refuses standard input: it reads its topology again when an apply records another plan")
    func watchNeedsAFile() throws {
        for arguments in [["watch", "-"], ["watch", "--topology-json", "-"]] {
            let result = try CLITests().iovm(arguments, stdin: "{}")
            #expect(result.status == 64, "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains("give a file, not standard input"), "\(arguments): \(result.stderr)")
        }
    }
}
