import Foundation
import Testing

/// The corpus of bad topology documents in Tests/BadInputs: each one must be refused with exit
/// status 65 and an error that names where (a file:line of the topology, or the document and a JSON
/// path or line and column) and what, before anything is written.
@Suite("Bad inputs", .serialized)
struct BadInputTests {
    static let corpus = CLITests.root.appending(path: "Tests/BadInputs")

    /// (file, fragment the error must contain), from Tests/BadInputs/expected.tsv.
    static let cases: [(String, String)] = {
        let text = (try? String(contentsOf: corpus.appending(path: "expected.tsv"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { line in
            let fields = line.split(separator: "\t", maxSplits: 1).map(String.init)
            return fields.count == 2 ? (fields[0], fields[1]) : nil
        }
    }()

    @Test("the corpus has at least 30 cases, and every file in it is listed")
    func corpusIsComplete() throws {
        #expect(Self.cases.count >= 30)
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.corpus.path).filter { $0.hasSuffix(".json") }.sorted()
        #expect(files == Self.cases.map(\.0).sorted())
    }

    @Test("refused with exit 65, located, naming the thing, and nothing rendered", arguments: cases.map(\.0))
    func refused(file: String) throws {
        let fragment = try #require(Self.cases.first { $0.0 == file }?.1)
        let path = "Tests/BadInputs/\(file)"
        let plan = try CLITests().iovm("plan", "--topology-json", path)
        #expect(plan.status == 65, "\(file): exit \(plan.status), stderr: \(plan.stderr)")
        #expect(plan.stderr.contains(fragment), "\(file): \(plan.stderr)")
        #expect(plan.stdout.isEmpty)
        let firstError = try #require(plan.stderr.split(separator: "\n").first { $0.contains("error:") })
        let located = firstError.range(of: #"^topology\.swift:\d+: error: "#, options: .regularExpression) != nil || firstError.hasPrefix("\(path): error: ")
        #expect(located, "\(file): \(firstError)")

        let out = FileManager.default.temporaryDirectory.appending(path: "iovm-bad-\(UUID().uuidString)")
        let render = try CLITests().iovm("render", "--topology-json", path, "--out", out.path)
        #expect(render.status == 65)
        #expect(!FileManager.default.fileExists(atPath: out.path), "\(file): render wrote \(out.path)")
    }
}
