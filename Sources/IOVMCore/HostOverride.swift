public import IOVMWireFormat

/// The host size given on the command line (`--host-cores`, `--host-memory`), and how it merges
/// with the topology's own `Host` and with what Xen reports.
public struct HostOverride: Sendable, Equatable {
    /// `--host-cores`.
    public var cores: Int?
    /// `--host-memory`, MiB.
    public var memoryMiB: Int?

    /// Creates an override.
    public init(cores: Int?, memoryMiB: Int?) {
        self.cores = cores
        self.memoryMiB = memoryMiB
    }

    /// The host to give the ``Planner`` for `document`, updating the document where the override
    /// belongs in it: `--host-memory` alone sets the document's memory; `--host-cores` replaces the
    /// size but keeps the document's scheduler. When neither the override nor the document gives
    /// cores, the host is `xenHost()` (this dom0's shape, or nil off Xen).
    public func merge(into document: inout TopologyDocument, xenHost: () -> HostShape?) -> HostShape? {
        if cores == nil, let memoryMiB {
            var host = document.host ?? HostDocument()
            host.memoryMiB = memoryMiB
            document.host = host
        }
        var host = cores.map { HostShape(cores: $0, memoryMiB: memoryMiB) }
        if let scheduler = document.host?.scheduler { host?.scheduler = scheduler }  // --host-cores changes the size, not the scheduler
        if host == nil && document.host?.cores == nil {
            // Neither the file nor the command line says: plan for this host if it is a Xen dom0.
            host = xenHost()
        }
        return host
    }
}
