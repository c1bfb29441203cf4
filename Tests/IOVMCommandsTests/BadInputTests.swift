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
        #expect(!plan.stderr.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" && $0 != "\t" }, "\(file): a control character reached the terminal")
        #expect(plan.stdout.isEmpty)
        let firstError = try #require(plan.stderr.split(separator: "\n").first { $0.contains("error:") })
        let located =
            firstError.range(of: #"^topology\.swift:\d+: error: "#, options: .regularExpression) != nil || firstError.hasPrefix("\(path): error: ")
            || firstError.range(of: "^\(NSRegularExpression.escapedPattern(for: path)):\\d+: error: ", options: .regularExpression) != nil
        #expect(located, "\(file): \(firstError)")

        let out = FileManager.default.temporaryDirectory.appending(path: "iovm-bad-\(UUID().uuidString)")
        let render = try CLITests().iovm("render", "--topology-json", path, "--out", out.path)
        #expect(render.status == 65)
        #expect(!FileManager.default.fileExists(atPath: out.path), "\(file): render wrote \(out.path)")
    }
}

/// A JSON document written by hand: no `source` keys, yet every error names its line.
@Suite("Hand-written JSON")
struct HandWrittenJSONTests {
    @Test("errors name the line of the part they are about; generated MACs step aside for each other")
    func errorsAreLocated() throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "iovm-hand-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appending(path: "t.json")
        let text = """
            {"schemaVersion": 1, "name": "web",
             "host": {"cores": 4, "memoryMiB": 4096},
             "defaults": {"kernel": "/k"},
             "configuration": {"kind": "multipleSmall"}, "iovms": [],
             "nics": [{"pci": "0000:00:10.0"}, {"pci": "0000:00:11.0"}],
             "guests": [
               {"name": "web6", "resources": {}},
               {"name": "web8460",
                "resources": {"vcpus": -1}}
             ],
             "placement": {"kind": "credit"}}
            """
        try text.write(to: file, atomically: true, encoding: .utf8)
        let result = try CLITests().iovm("plan", "--topology-json", file.path)
        #expect(result.status == 65)
        // Line 8: where web8460's object starts. Its MAC (the same hash as web6's, 23 bits) is another one now.
        #expect(result.stderr.contains("\(file.path):8: error: guest web8460 has -1 vCPUs"), "\(result.stderr)")
        #expect(!result.stderr.contains("MAC"), "\(result.stderr)")
        // With a UTF-8 byte order mark and a tab in a cmdline, and the vCPUs mended, it plans.
        let fixed = text.replacingOccurrences(of: #"{"vcpus": -1}"#, with: "{\"cmdline\": \"console=hvc0\\troot=/dev/xvda\"}")
        try Data([0xEF, 0xBB, 0xBF] + Array(fixed.utf8)).write(to: file)
        let planned = try CLITests().iovm("plan", "--topology-json", file.path)
        #expect(planned.status == 0, "\(planned.stderr)")
    }
}

@Suite("iovm kernel-config FILE")
struct KernelConfigFileTests {
    @Test("the fragment for a topology's declared NIC drivers, and a located error for a NIC it cannot place")
    func fromTopology() throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "iovm-kc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        func document(_ nics: String) -> String {
            """
            {"schemaVersion": 1, "name": "kc", "host": {"cores": 4, "memoryMiB": 4096},
             "defaults": {"kernel": "/k"}, "configuration": {"kind": "multipleSmall"}, "iovms": [],
             "nics": [\(nics)], "guests": [{"name": "g", "resources": {}}], "placement": {"kind": "credit"}}
            """
        }
        let good = directory.appending(path: "good.json")
        try document(#"{"pci": "0000:7f:00.0", "driver": "e1000e"}, {"pci": "0000:7f:01.0", "driver": "virtio"}"#)
            .write(to: good, atomically: true, encoding: .utf8)
        let result = try CLITests().iovm("kernel-config", good.path)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("NIC drivers of kc: e1000e, virtio"))
        #expect(result.stdout.contains("CONFIG_E1000E=y") && result.stdout.contains("CONFIG_VIRTIO_NET=y") && !result.stdout.contains("CONFIG_E1000=y"))

        let absent = directory.appending(path: "absent.json")
        try document(#"{"pci": "0000:7f:00.0", "source": {"file": "kc.swift", "line": 4}}"#).write(to: absent, atomically: true, encoding: .utf8)
        let refused = try CLITests().iovm("kernel-config", absent.path)
        #expect(refused.status == 65)
        #expect(refused.stderr.contains("kc.swift:4: error: NIC 0000:7f:00.0 is not on this host and the topology names no driver for it"), "\(refused.stderr)")
    }
}
