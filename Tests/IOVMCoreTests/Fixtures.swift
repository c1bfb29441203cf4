import IOVMCore
import IOVMWireFormat

/// Builders for topology documents in tests, each entity on its own fake line so diagnostics can be matched.
enum Fixture {
    static let file = "/fixtures/topology.swift"

    static func at(_ line: Int) -> SourceLocation { SourceLocation(file: file, line: line) }

    static let paperNICs3 = ["0000:00:04.0", "0000:00:05.0", "0000:00:06.0"]
    static let paperNICs4 = ["0000:00:04.0", "0000:00:05.0", "0000:00:06.0", "0000:00:07.0"]

    /// A generated configuration: NICs on lines 10+, guests on lines 20+, placement on line 30.
    static func generated(
        _ kind: ConfigurationKind, groups: Int? = nil, nics: [String], guests: Int,
        placement: PlacementKind, cores: Int = 4, memoryMiB: Int? = 8192,
        reserved: [Int]? = nil, dedicatedPool: Bool? = nil
    ) -> TopologyDocument {
        TopologyDocument(
            name: "test",
            source: at(1),
            host: HostDocument(cores: cores, memoryMiB: memoryMiB, reservedCores: reserved, scheduler: "credit", source: at(2)),
            defaults: DefaultsDocument(kernel: "/boot/vmlinux", ramdisk: "/boot/initrd", source: at(3)),
            configuration: ConfigurationDocument(kind: kind, groups: groups, source: at(4)),
            nics: nics.enumerated().map { NICDocument(pci: $1, source: at(10 + $0)) },
            guests: (0..<guests).map { GuestDocument(name: "guest\($0 + 1)", source: at(20 + $0)) },
            placement: PlacementDocument(kind: placement, dedicatedPool: dedicatedPool, source: at(30)))
    }

    static func plan(_ document: TopologyDocument) throws -> Plan {
        try Planner().plan(document)
    }

    /// The diagnostics of a document that must not plan.
    static func errors(_ document: TopologyDocument) -> [Diagnostic] {
        do {
            _ = try Planner().plan(document)
            return []
        } catch {
            if case .invalid(let diagnostics) = error { return diagnostics.filter { $0.severity == .error } }
            return [Diagnostic(.error, "unexpected \(error)", at: nil)]
        }
    }
}

extension Plan {
    /// Hard affinity of `name` as a plain array (nil = unpinned).
    func cores(_ name: String) -> [Int]? { domain(name)?.hardAffinity?.cores }
}
