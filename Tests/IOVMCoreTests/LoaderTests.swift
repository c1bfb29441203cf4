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

/// A topology file is code: its evaluation runs under limits and ends with a clear error.
@Suite("Topology evaluation limits", .serialized)
struct EvaluationLimitTests {
    func run(_ source: String, limits: (inout EvaluationLimits) -> Void) throws -> (error: TopologyError?, seconds: Double) {
        let work = FileManager.default.temporaryDirectory.appending(path: "iovm-limits-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let file = work.appending(path: "hostile.swift")
        try source.write(to: file, atomically: true, encoding: .utf8)
        var loader = TopologyLoader(environment: ProcessInfo.processInfo.environment.merging(["IOVM_CACHE_DIR": work.path]) { $1 })
        _ = try #require(loader.dsl, "libIOVMDescription.a not found beside the test binary")
        loader.cacheDirectory = nil
        limits(&loader.limits)
        let start = Date()
        do {
            _ = try loader.load(file.path)
            return (nil, Date().timeIntervalSince(start))
        } catch {
            return (error, Date().timeIntervalSince(start))
        }
    }

    @Test("an endless loop is stopped by the CPU limit")
    func endlessLoop() throws {
        let (error, seconds) = try run(
            "import IOVMDescription\nvar n = 0\nwhile true { n &+= 1 }\n",
            limits: {
                $0.cpuSeconds = 2
                $0.wallSeconds = 30
            })
        #expect("\(error.map { "\($0)" } ?? "none")".contains("used more than 2 s of CPU time"), "\(String(describing: error))")
        #expect(seconds < 25)
    }

    @Test("sleeping forever is stopped by the wall-time limit")
    func sleepsForever() throws {
        let (error, _) = try run(
            "import IOVMDescription\nimport Foundation\nsleep(600)\n",
            limits: { $0.wallSeconds = 3 })
        #expect("\(error.map { "\($0)" } ?? "none")".contains("ran past 3 s and was stopped"), "\(String(describing: error))")
    }

    @Test("a document past the size limit is stopped while it is written")
    func hugeDocument() throws {
        let (error, _) = try run(
            "import IOVMDescription\nlet topology = Topology(String(repeating: \"x\", count: 3_000_000)) { Host(cores: 1) }\n",
            limits: { $0.fileBytes = 1 << 20 })
        #expect("\(error.map { "\($0)" } ?? "none")".contains("wrote more than 1 MiB"), "\(String(describing: error))")
    }

    @Test("a fork bomb gets no more processes than the limit", .enabled(if: getuid() == 0, "the per-user limit applies to `nobody`, which only root can switch to"))
    func forkBomb() throws {
        let source = """
            import IOVMDescription
            import Glibc
            var children: [pid_t] = []
            for _ in 0..<200 {
                let pid = fork()
                if pid == 0 { sleep(3); _exit(0) }
                if pid < 0 { print("fork failed after \\(children.count) children"); exit(3) }
                children.append(pid)
            }
            print("forked \\(children.count)")
            """
        let (error, _) = try run(
            source,
            limits: {
                $0.processes = 16
                $0.wallSeconds = 30
            })
        let text = "\(error.map { "\($0)" } ?? "none")"
        #expect(text.contains("fork failed after"), "\(text)")
    }

    @Test("JSON documents past the size or depth limit are refused before decoding")
    func documentLimits() {
        #expect(DocumentLimits.violation(Data(#"{"a":[1,{"b":"[[[[[[["}]}"#.utf8)) == nil)
        let deep = String(repeating: "[", count: 40) + String(repeating: "]", count: 40)
        #expect(DocumentLimits.violation(Data(deep.utf8))?.contains("more than 32 deep") == true)
        #expect(DocumentLimits.violation(Data(count: DocumentLimits.maximumBytes + 1))?.contains("more than the 16 MiB") == true)
    }
}
