import FoundationEssentials
import IOVMCore
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// Compiles iovm's C agents (`Agents/*.c`, embedded in the binary) into static programs for the image.
///
/// The minimal IOVM has no C library of its own beyond the closure of its programs, so an agent is linked
/// `-static`: it runs on any IOVM kernel without a loader. The same source and compiler give the same bytes.
public struct AgentCompiler: Sendable {
    /// The C compiler (`cc` on the PATH unless given).
    public var compiler: String
    /// The flags every agent is compiled with.
    public static let flags = ["-static", "-Os", "-s", "-Wall", "-Wextra", "-Werror", "-Wno-format-truncation"]

    /// A compiler at `compiler`, or the first `cc`/`gcc` in /usr/bin or /bin.
    public init(compiler: String? = nil) {
        self.compiler =
            compiler ?? ["/usr/bin/cc", "/usr/bin/gcc", "/bin/cc"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/bin/cc"
    }

    /// The static program built from the embedded `Agents/<name>`.
    public func compile(_ name: String) throws(ImageError) -> [UInt8] {
        guard let source = AgentFiles.text(name) else { throw .unreadable("Agents/" + name + " (not embedded in this build)") }
        return try compile(source: source, name: name)
    }

    /// The static program built from `source` (named `name` in messages), next to every embedded `Agents/*.h`
    /// (`Agents/xs-wire.h`: the xenstore wire protocol the agents share).
    public func compile(source: String, name: String) throws(ImageError) -> [UInt8] {
        let directory = FileManager.default.temporaryDirectory.appending(path: "iovm-agent-\(getpid())-\(UUID().uuidString)").path
        try makeDirectory(directory)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for header in AgentFiles.names where header.hasSuffix(".h") {
            guard let text = AgentFiles.text(header) else { continue }
            let path = directory + "/" + header
            do { try Data(text.utf8).write(to: URL(fileURLWithPath: path)) } catch { throw .cannotWrite(path, why: "\(error)") }
        }
        let sourcePath = directory + "/" + name
        let output = directory + "/" + (FilePath(name).stem ?? name)
        do { try Data(source.utf8).write(to: URL(fileURLWithPath: sourcePath)) } catch { throw .cannotWrite(sourcePath, why: "\(error)") }
        let outcome: ProcessOutcome
        do {
            outcome = try ProcessRunner.run(
                compiler, Self.flags + ["-o", output, sourcePath], environment: ["PATH": "/usr/bin:/bin", "LC_ALL": "C"], timeout: 300)
        } catch {
            throw .stepFailed("cc \(name)", status: 127, logTail: "\(error): install gcc and libc6-dev (scripts/setup does)", log: compiler)
        }
        guard outcome.succeeded, let data = FileManager.default.contents(atPath: output) else {
            throw .stepFailed("cc \(name)", status: outcome.status, logTail: outcome.output, log: compiler)
        }
        return [UInt8](data)
    }
}
