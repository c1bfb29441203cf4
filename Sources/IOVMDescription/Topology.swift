public import IOVMWireFormat

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// A declared IOVM topology: the one value a topology file creates.
///
/// ```swift
/// import IOVMDescription
///
/// let topology = Topology("paper-hybrid") {
///     Host(cores: 4, memory: .gib(6))
///     Defaults(kernel: "/var/lib/iovm/vmlinux")
///     Configuration.hybrid(groups: 2)
///     NIC("0000:00:04.0"); NIC("0000:00:05.0"); NIC("0000:00:06.0"); NIC("0000:00:07.0")
///     for i in 1...4 { Guest("guest\(i)") }
///     Placement.hybridPinned()
///     Scheduling(iovmWeight: 512)
/// }
/// ```
///
/// Like a Package.swift, the file is compiled and run by the tool; the topology
/// writes itself as a versioned JSON ``TopologyDocument`` to the file descriptor
/// the tool names with `-fileno N` when the program exits.
public struct Topology: Sendable {
    /// The wire document this topology serializes to.
    public private(set) var document: TopologyDocument

    /// Declares a topology.
    /// - Parameters:
    ///   - name: Name of the topology (shows in plans, tags and reports).
    ///   - content: Host, defaults, configuration, IOVMs, NICs, guests, placement and scheduling.
    public init(
        _ name: String, file: String = #filePath, line: Int = #line,
        @TopologyBuilder _ content: () -> [TopologyElement]
    ) {
        var document = TopologyDocument(name: name, source: SourceLocation(file: file, line: line))
        var configurationSet = false
        var placementSet = false
        for element in content() {
            switch element.storage {
            case .host(let host):
                if host.name != nil {
                    document.hosts = (document.hosts ?? []) + [host]
                } else {
                    document.host = host
                }
            case .defaults(let defaults): document.defaults = defaults
            case .configuration(let configuration):
                if configurationSet { Topology.note(duplicate: "Configuration", at: configuration.source) }
                configurationSet = true
                document.configuration = configuration
            case .iovm(let iovm): document.iovms.append(iovm)
            case .nic(let nic): document.nics.append(nic)
            case .guest(let guest): document.guests.append(guest)
            case .placement(let placement):
                if placementSet { Topology.note(duplicate: "Placement", at: placement.source) }
                placementSet = true
                document.placement = placement
            case .scheduling(let scheduling): document.scheduling = scheduling
            }
        }
        self.document = document
        TopologyRegistry.register(document)
    }

    private static func note(duplicate what: String, at source: SourceLocation?) {
        let place = source.map { "\($0): " } ?? ""
        TopologyRegistry.warn("\(place)warning: a second \(what) replaces the first one")
    }
}

/// Collects the topology or experiment a file declares and writes it when the program exits.
///
/// The tool runs the file with `-fileno N` for a topology, and with `-fileno N -experiment` for an
/// experiment (whose base topologies are declared too, and are not what it asks for).
enum TopologyRegistry {
    nonisolated(unsafe) private static var documents: [TopologyDocument] = []
    nonisolated(unsafe) private static var experiments: [ExperimentDocument] = []
    nonisolated(unsafe) private static var installed = false

    static func register(_ document: TopologyDocument) {
        documents.append(document)
        installOnce()
    }

    static func register(_ experiment: ExperimentDocument) {
        experiments.append(experiment)
        installOnce()
    }

    private static func installOnce() {
        if !installed {
            installed = true
            atexit { TopologyRegistry.dump() }
        }
    }

    static func warn(_ message: String) {
        fputs(message + "\n", stderr_())
    }

    private static func stderr_() -> UnsafeMutablePointer<FILE> {
        fdopen(2, "w")
    }

    /// The document the tool asks for, or `{"error": …}` saying why there is none.
    static func payload(arguments: [String]) -> String {
        if arguments.contains("-experiment") {
            if experiments.count == 1 {
                do {
                    return try JSONText.line(experiments[0])
                } catch {
                    return #"{"error":"cannot encode the experiment: \#(error)"}"#
                }
            } else if experiments.isEmpty {
                return #"{"error":"the file declares no Experiment"}"#
            }
            return #"{"error":"the file declares \#(experiments.count) Experiment values; declare exactly one"}"#
        }
        if !experiments.isEmpty {
            return #"{"error":"the file declares an Experiment, not a Topology: run it with `iovm experiment FILE`"}"#
        }
        if documents.count == 1 {
            do {
                return try JSONText.line(documents[0])
            } catch {
                return #"{"error":"cannot encode the topology: \#(error)"}"#
            }
        } else if documents.isEmpty {
            return #"{"error":"the file declares no Topology"}"#
        }
        return #"{"error":"the file declares \#(documents.count) Topology values; declare exactly one"}"#
    }

    /// Writes the declared document to the descriptor given as `-fileno N`.
    static func dump() {
        let arguments = CommandLine.arguments
        guard let index = arguments.firstIndex(of: "-fileno"), index + 1 < arguments.count,
            let fd = Int32(arguments[index + 1])
        else { return }
        let payload = payload(arguments: arguments)
        var bytes = Array(payload.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { buffer in
                write(fd, buffer.baseAddress! + offset, buffer.count - offset)
            }
            if written <= 0 { break }
            offset += written
        }
        close(fd)
    }
}
