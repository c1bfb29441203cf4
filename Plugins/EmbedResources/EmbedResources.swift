import Foundation
import PackagePlugin

/// Embeds the package's `Templates/*.mustache` and `Kernels/**/*.config` into the target as Swift string constants,
/// so the one `iovm` binary carries them into a dom0 that has no source tree.
@main
struct EmbedResources: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let root = context.package.directoryURL
        var inputs: [URL] = []
        var arguments: [String] = []
        for (folder, suffix) in [("Templates", ".mustache"), ("Kernels", ".config")] {
            let base = root.appending(path: folder)
            guard let walker = FileManager.default.enumerator(at: base, includingPropertiesForKeys: nil) else { continue }
            for case let url as URL in walker where url.lastPathComponent.hasSuffix(suffix) {
                let relative = String(url.standardizedFileURL.path.dropFirst(base.standardizedFileURL.path.count + 1))
                if relative.hasPrefix(".") || relative.contains("/.") { continue }
                inputs.append(url)
                arguments += ["\(folder)/\(relative)", url.path]
            }
        }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedResources.swift")
        return [
            .buildCommand(
                displayName: "Embedding \(inputs.count) template and kernel files into \(target.name)",
                executable: try context.tool(named: "EmbedResourcesTool").url,
                arguments: [output.path] + arguments,
                inputFiles: inputs,
                outputFiles: [output]
            )
        ]
    }
}
