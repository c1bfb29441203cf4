import Foundation
import IOVMCore
import Testing

/// Compiling and running real topology files, as `iovm` does.
@Suite("Topology loader", .serialized)
struct LoaderTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func loader(cache: URL) throws -> TopologyLoader {
        var loader = TopologyLoader(environment: ProcessInfo.processInfo.environment.merging(["IOVM_CACHE_DIR": cache.path]) { $1 })
        _ = try #require(loader.dsl, "libIOVMDescription.a not found beside the test binary: run `swift build` before `swift test` (scripts/test does)")
        loader.cacheDirectory = cache
        return loader
    }

    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appending(path: "iovm-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func compilesAnExampleAndCachesIt() throws {
        let cache = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: cache) }
        let loader = try loader(cache: cache)
        let path = Self.root.appending(path: "Examples/hybrid-pinned.swift").path
        let document = try loader.load(path)
        #expect(document.name == "paper-hybrid-pinned")
        #expect(document.nics.count == 4)
        #expect(document.placement.kind == .hybridPinned)
        #expect(document.source?.file == path)
        let plan = try Planner().plan(document)
        #expect(plan.domain("iovm0")?.hardAffinity == [3])

        let entries = try FileManager.default.contentsOfDirectory(atPath: cache.appending(path: "topologies").path)
        #expect(entries.count == 1)
        let start = Date()
        #expect(try loader.load(path) == document)
        #expect(Date().timeIntervalSince(start) < 2, "a cache hit should not compile")
    }

    @Test func typeErrorComesBackWithLineAndColumn() throws {
        let cache = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: cache) }
        let path = Self.root.appending(path: "Examples/invalid/type-error.swift").path
        do {
            _ = try loader(cache: cache).load(path)
            Issue.record("a file with a type error loaded")
        } catch let error as TopologyError {
            guard case .compilationFailed(let file, let output) = error else {
                Issue.record("wrong error \(error)")
                return
            }
            #expect(file == path)
            #expect(output.contains("\(path):9:29: error: cannot convert value of type 'String' to expected argument type 'Memory'"), "\(output)")
        }
    }

    @Test func evaluationRunsUnprivilegedAndChangesInvalidateTheCache() throws {
        let work = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        let file = work.appending(path: "whoami.swift")
        let source = """
            import IOVMDescription
            import Foundation
            let status = try! String(contentsOfFile: "/proc/self/status", encoding: .utf8)
            let nnp = status.split(separator: "\\n").first { $0.hasPrefix("NoNewPrivs:") }?.split(separator: "\\t").last ?? "?"
            let topology = Topology("uid-\\(getuid())-nnp-\\(nnp)") { Host(cores: 1) }
            """
        try source.write(to: file, atomically: true, encoding: .utf8)
        let loader = try loader(cache: work.appending(path: "cache"))
        let document = try loader.load(file.path)
        let expectedUID = getuid() == 0 ? 65534 : getuid()
        #expect(document.name == "uid-\(expectedUID)-nnp-1")

        try (source + "\n// changed\n").write(to: file, atomically: true, encoding: .utf8)
        _ = try loader.load(file.path)
        let entries = try FileManager.default.contentsOfDirectory(atPath: work.appending(path: "cache/topologies").path)
        #expect(entries.count == 2)
    }

    @Test func aFileWithoutTopologyIsAnError() throws {
        let work = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        let file = work.appending(path: "empty.swift")
        try "import IOVMDescription\nlet x = 1\n".write(to: file, atomically: true, encoding: .utf8)
        #expect(throws: TopologyError.self) { try self.loader(cache: work).load(file.path) }
    }
}
