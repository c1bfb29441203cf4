import Foundation
import IOVMCore
import IOVMDescription
import IOVMWireFormat
import Testing

/// Compiling and running real experiment files, as `iovm experiment` does.
@Suite("Experiment files", .serialized)
struct ExperimentFileTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let cache = FileManager.default.temporaryDirectory.appending(path: "iovm-experiment-test-\(UUID().uuidString)")

    static let presets: [String: Experiment] = [
        "figures6and7": Experiment.paper.figures6and7, "figures8and9": Experiment.paper.figures8and9,
        "figures10and11": Experiment.paper.figures10and11, "figures12and13": Experiment.paper.figures12and13,
        "table3": Experiment.paper.table3,
    ]

    func loader() throws -> TopologyLoader {
        var loader = TopologyLoader(environment: ProcessInfo.processInfo.environment.merging(["IOVM_CACHE_DIR": Self.cache.path]) { $1 })
        _ = try #require(loader.dsl, "libIOVMDescription.a not found beside the test binary: run `swift build` before `swift test` (scripts/test does)")
        loader.cacheDirectory = Self.cache
        return loader
    }

    /// `value` as JSON, without where anything was declared (a preset is declared in the library, its file in Examples/).
    func withoutSources(_ value: some Encodable) throws -> NSDictionary {
        func strip(_ object: Any) -> Any {
            if let dictionary = object as? [String: Any] {
                return dictionary.filter { !["source", "baseSource", "location"].contains($0.key) }.mapValues(strip)
            }
            if let array = object as? [Any] { return array.map(strip) }
            return object
        }
        let data = Data(try JSONText.line(value).utf8)
        return try #require(strip(try JSONSerialization.jsonObject(with: data)) as? NSDictionary)
    }

    @Test("each Examples/experiments file expands to the same cells as its preset", arguments: ["figures6and7", "figures8and9", "figures10and11", "figures12and13", "table3"])
    func exampleMatchesPreset(name: String) throws {
        let path = Self.root.appending(path: "Examples/experiments/\(name).swift").path
        let document = try loader().loadExperiment(path)
        let preset = try #require(Self.presets[name]).document
        #expect(document.name == preset.name)
        #expect(document.source?.file == path)
        #expect(try withoutSources(document) == withoutSources(preset))

        let fromFile = try ExperimentPlanner().plan(document)
        let fromPreset = try ExperimentPlanner().plan(preset)
        #expect(fromFile.cells.count == fromPreset.cells.count)
        #expect(fromFile.cells == fromPreset.cells)
        #expect(fromFile.combinations.map(\.settings) == fromPreset.combinations.map(\.settings))
        #expect(try withoutSources(fromFile) == withoutSources(fromPreset))
    }

    @Test("a topology file is not an experiment, and an experiment file is not a topology")
    func kindsAreNotMixedUp() throws {
        let loader = try loader()
        do {
            _ = try loader.loadExperiment(Self.root.appending(path: "Examples/hybrid.swift").path)
            Issue.record("a topology file loaded as an experiment")
        } catch {
            #expect(error.description.hasSuffix("Examples/hybrid.swift: error: evaluating the experiment failed: the file declares no Experiment"), "\(error)")
        }
        do {
            _ = try loader.load(Self.root.appending(path: "Examples/experiments/table3.swift").path)
            Issue.record("an experiment file loaded as a topology")
        } catch {
            #expect(
                error.description.hasSuffix(
                    "table3.swift: error: evaluating the topology failed: the file declares an Experiment, not a Topology: run it with `iovm experiment FILE`"),
                "\(error)")
        }
    }

    @Test("an experiment file is cached apart from topologies: a second load does not compile")
    func cachedApart() throws {
        let path = Self.root.appending(path: "Examples/experiments/table3.swift").path
        let loader = try loader()
        let first = try loader.loadExperiment(path)
        let start = Date()
        #expect(try loader.loadExperiment(path) == first)
        #expect(Date().timeIntervalSince(start) < 2, "a cache hit should not compile")
        #expect(FileManager.default.fileExists(atPath: Self.cache.appending(path: "experiments").path))
    }
}
