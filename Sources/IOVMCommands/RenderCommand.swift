import ArgumentParser
import FoundationEssentials
import IOVMCore

/// `iovm render FILE --out DIR [--format xl|libvirt]`: writes an xl.cfg and a libxl JSON config per domain, or libvirt XML.
struct RenderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "render",
        abstract: "Write one xl.cfg (from Templates/) and one libxl JSON domain config per domain, plus cpupool configs and plan.json; or one libvirt XML per domain.")

    /// What render writes.
    enum Format: String, ExpressibleByArgument, CaseIterable {
        /// `<domain>.cfg`, `<domain>.json`, `cpupool-*.cfg`, `plan.json`.
        case xl
        /// `<domain>.xml` for libvirt's libxl driver.
        case libvirt
    }

    @OptionGroup var topology: TopologyOptions
    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: "Output directory (created if missing).", completion: .directory)
    var out: String

    @Option(
        name: .long,
        help: "xl: xl.cfg, libxl JSON, cpupool configs, plan.json. libvirt: <domain>.xml for libvirt's libxl driver (refuses cpupools and rtds).")
    var format: Format = .xl

    func validate() throws {
        try requireNonEmptyPaths(["--out": out])
    }

    func run() throws {
        try reportingErrors {
            let plan = try topology.plan(logger: global.logger("iovm.render"))
            try TopologyOptions.requireImages(plan)
            let rendered: RenderedPlan
            switch format {
            case .xl: rendered = try PlanRenderer().render(plan)
            case .libvirt:
                rendered = try PlanRenderer.renderLibvirt(plan)
                for domain in plan.domains {
                    for note in PlanRenderer.libvirtNotes(domain, plan: plan) { printError("note: \(note)") }
                }
            }
            let directory = URL(fileURLWithPath: out)
            try rendered.write(to: directory)
            for file in rendered.files { printText(directory.appending(path: file.path).path) }
            printError("wrote \(rendered.files.count) files for \(plan.domains.count) domains to \(out)")
        }
    }
}
