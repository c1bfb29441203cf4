public import FoundationEssentials
public import IOVMWireFormat

// Experiment files go the way topology files go: compiled against IOVMDescription, run unprivileged
// under the same limits, their document read back through file descriptor 3 and cached.
extension TopologyLoader {
    /// Loads an experiment: `.json` as its document, ``standardInput`` as the document on stdin, anything else as a
    /// Swift file declaring `let experiment = Experiment(…)`.
    public func loadExperiment(_ path: String) throws(ExperimentError) -> ExperimentDocument {
        if path == Self.standardInput {
            let data: Data
            do { data = try Self.readStandardInput() } catch { throw ExperimentError(error) }
            return try Self.decodeExperiment(data, file: "<stdin>")
        }
        let url = URL(fileURLWithPath: path).standardizedFileURL
        guard FileManager.default.isReadableFile(atPath: url.path) else {
            throw .unreadableDocument(file: path, reason: "no such readable file")
        }
        if url.pathExtension == "json" {
            guard let data = FileBytes.read(url.path, upTo: DocumentLimits.maximumBytes + 1) else {
                throw .unreadableDocument(file: url.path, reason: "cannot open it for reading")
            }
            return try Self.decodeExperiment(data, file: url.path)
        }
        do throws(TopologyError) {
            return try evaluateSwift(url, asking: .experiment) { data, file throws(TopologyError) in
                do throws(ExperimentError) { return try Self.decodeExperiment(data, file: file) } catch { throw error.asTopologyError }
            }
        } catch {
            throw ExperimentError(error)
        }
    }

    /// Decodes an experiment document, with readable errors for another kind of document, a wrong schema
    /// version or shape.
    public static func decodeExperiment(_ data: Data, file: String) throws(ExperimentError) -> ExperimentDocument {
        let text: Data?
        let probe: DocumentProbe
        do { (text, probe) = try Self.probe(data, file: file) } catch { throw ExperimentError(error) }
        guard probe.kind == ExperimentDocument.kindName else {
            let what = probe.kind.map { "a document of kind \"\($0)\"" } ?? "a topology document"
            throw .unreadableDocument(file: file, reason: "it is \(what), not an experiment (`iovm plan` reads topologies)")
        }
        guard let version = probe.schemaVersion else { throw .unreadableDocument(file: file, reason: "no schemaVersion") }
        guard version == ExperimentDocument.currentSchemaVersion else {
            throw .unreadableDocument(
                file: file, reason: "experiment schema version \(version); this iovm reads version \(ExperimentDocument.currentSchemaVersion)")
        }
        do { return try decodeReadingEveryKey(ExperimentDocument.self, data, text: text, file: file).document } catch { throw ExperimentError(error) }
    }
}

extension ExperimentError {
    /// The same failure as the shared machinery carries it (mapped back by ``ExperimentError/init(_:)``).
    var asTopologyError: TopologyError {
        switch self {
        case .invalid(let diagnostics): .invalid(diagnostics)
        case .compilationFailed(let file, let output): .compilationFailed(file: file, output: output)
        case .evaluationFailed(let file, let reason): .evaluationFailed(file: file, reason: reason)
        case .unreadableDocument(let file, let reason): .unreadableDocument(file: file, reason: reason)
        }
    }
}
