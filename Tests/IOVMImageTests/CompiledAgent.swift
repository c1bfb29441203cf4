import Foundation
import IOVMCore

@testable import IOVMImage

/// An agent of `Agents/` compiled static with the host's cc, as `iovm image build` compiles it, for the suites that run
/// one.
enum CompiledAgent {
    /// The executable built from the embedded `Agents/<name>`, in a temporary file named by its contents (FNV-1a): test
    /// runs share one file per version instead of leaving one each.
    static func path(_ name: String) -> Result<String, any Error> {
        do {
            let bytes = try AgentCompiler().compile(name)
            let digest = StableHash.fnv1a(bytes: bytes)
            let stem = name.hasSuffix(".c") ? String(name.dropLast(2)) : name
            let path = FileManager.default.temporaryDirectory.appending(path: "\(stem)-\(String(digest, radix: 16))").path
            // Reused only when it is this user's, no one else can write it, and it holds these very bytes: the
            // name is predictable, and root runs it.
            if let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                (attributes[.ownerAccountID] as? NSNumber)?.uint32Value == geteuid(),
                let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue, mode & 0o022 == 0,
                FileManager.default.contents(atPath: path) == Data(bytes)
            {
                return .success(path)
            }
            try? FileManager.default.removeItem(atPath: path)
            let temporary = path + ".\(getpid())"
            guard FileManager.default.createFile(atPath: temporary, contents: Data(bytes), attributes: [.posixPermissions: 0o755]),
                rename(temporary, path) == 0
            else {
                return .failure(ImageError.cannotWrite(path, why: "createFile or rename failed"))
            }
            return .success(path)
        } catch { return .failure(error) }
    }
}
