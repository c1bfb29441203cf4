import Foundation
import Testing

@testable import IOVMCore

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

    @Test("render --out '' writes nothing into the working directory")
    func renderWritesNothing() throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "iovm-empty-out-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let process = Process()
        process.executableURL = try #require(CLITests.binary)
        process.arguments = ["render", CLITests.root.appending(path: "Examples/hybrid.swift").path, "--out", ""]
        process.currentDirectoryURL = directory
        process.standardError = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 64)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }

    @Test("a value ArgumentParser refuses is quoted as shown, not obeyed")
    func parseErrorsAreShown() throws {
        let result = try CLITests().iovm("plan", "--host-cores", "\u{1B}]0;owned\u{07}\u{202E}", "Examples/hybrid.swift")
        #expect(result.status == 64, "\(result.stderr)")
        #expect(result.stderr.contains("\\u{1B}]0;owned\\u{7}\\u{202E}"), "\(result.stderr)")
        #expect(!result.stderr.unicodeScalars.contains { TerminalText.isHidden($0) })
        let help = try CLITests().iovm("plan", "--help")
        #expect(help.status == 0 && help.stdout.contains("USAGE: iovm plan") && help.stderr.isEmpty, "\(help.stderr)")
        let version = try CLITests().iovm("--version")
        #expect(version.status == 0 && !version.stdout.isEmpty)
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

    @Test("'-' as the experiment file reads its JSON document from standard input")
    func experimentFromStandardInput() throws {
        let cache = FileManager.default.temporaryDirectory.appending(path: "iovm-experiment-stdin-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: cache) }
        let arguments = ["--dry-run", "--json", "--seed", "42"]
        let fromFile = try CLITests().iovm(["experiment", "Examples/experiments/table3.swift"] + arguments, environment: ["IOVM_CACHE_DIR": cache.path])
        #expect(fromFile.status == 0, "\(fromFile.stderr)")
        let entries = try FileManager.default.contentsOfDirectory(atPath: cache.appending(path: "experiments").path)
        let document = try String(contentsOf: cache.appending(path: "experiments/\(try #require(entries.first))/document.json"), encoding: .utf8)
        let fromStdin = try CLITests().iovm(["experiment", "-"] + arguments, stdin: document)
        #expect(fromStdin.status == 0, "\(fromStdin.stderr)")
        #expect(fromStdin.stdout == fromFile.stdout && !fromStdin.stdout.isEmpty)
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
