import ArgumentParser
import IOVMCore

/// `iovm synth FILE`: evaluates a topology file and prints its canonical JSON document.
struct SynthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synth",
        abstract: "Evaluate a topology file and print its canonical JSON document.",
        discussion: "The JSON can be given to any command with --topology-json on a host without a Swift toolchain.")

    @OptionGroup var topology: TopologyOptions
    @OptionGroup var global: GlobalOptions

    func run() throws {
        try reportingErrors {
            let document = try topology.loadDocument(logger: global.logger("iovm.synth"))
            print(try jsonText(document))
        }
    }
}
