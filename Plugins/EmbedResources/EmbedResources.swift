import Foundation
import PackagePlugin

/// Embeds the package's `Templates/*.mustache`, `Kernels/**/*.config` and `Agents/*` into the target as Swift string constants,
/// so the one `iovm` binary carries them into a dom0 that has no source tree.
@main
struct EmbedResources: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let root = context.package.directoryURL
        var inputs: [URL] = []
        var arguments: [String] = []
        for (folder, suffix) in [("Templates", ".mustache"), ("Kernels", ".config"), ("Agents", "")] {
            let base = root.appending(path: folder)
            guard let walker = FileManager.default.enumerator(at: base, includingPropertiesForKeys: nil) else { continue }
            for case let url as URL in walker where url.lastPathComponent.hasSuffix(suffix) && Self.isFile(url) {
                let relative = String(url.standardizedFileURL.path.dropFirst(base.standardizedFileURL.path.count + 1))
                if relative.hasPrefix(".") || relative.contains("/.") { continue }
                inputs.append(url)
                arguments += ["\(folder)/\(relative)", url.path]
            }
        }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedResources.swift")
        return [
            .buildCommand(
                displayName: "Embedding \(inputs.count) template, kernel and agent files into \(target.name)",
                executable: try context.tool(named: "EmbedResourcesTool").url,
                arguments: [output.path] + arguments,
                inputFiles: inputs,
                outputFiles: [output]
            )
        ]
    }

    static func isFile(_ url: URL) -> Bool {
        var directory: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &directory) && !directory.boolValue
    }
}
