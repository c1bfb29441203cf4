import ArgumentParser
import Foundation
import IOVMCore

/// `iovm render FILE --out DIR`: writes an xl.cfg and a libxl JSON config per domain.
struct RenderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "render",
        abstract: "Write one xl.cfg (from Templates/) and one libxl JSON domain config per domain, plus cpupool configs and plan.json.")

    @OptionGroup var topology: TopologyOptions
    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: "Output directory (created if missing).", completion: .directory)
    var out: String

    func run() throws {
        try reportingErrors {
            let plan = try topology.plan(logger: global.logger("iovm.render"))
            try TopologyOptions.requireImages(plan)
            let rendered = try PlanRenderer().render(plan)
            let directory = URL(fileURLWithPath: out)
            try rendered.write(to: directory)
            for file in rendered.files { print(directory.appending(path: file.path).path) }
            printError("wrote \(rendered.files.count) files for \(plan.domains.count) domains to \(out)")
        }
    }
}
