public import IOVMControl
import XenKit

/// The real ``LoadDriver``: talks to the load agent in each guest (`Agents/iovm-load.c`) through xenstore.
///
/// Relative to the guest's `/local/domain/<domid>/`:
/// ```
/// data/iovm/load/ready         "1 <pid>": the agent is up (protocol 1)
/// data/iovm/load/request       "<id> <arg> <arg> …": dom0 asks for iperf3 with these arguments
/// data/iovm/load/cancel        "<id>": dom0 asks to stop request <id>
/// data/iovm/load/status        "running <id>", then "done <id>"
/// data/iovm/load/result/{id,rc,chunks,0…,stderr,truncated}   iperf3's exit status, stdout in chunks of ≤ 1 KiB
/// ```
/// Not `Sendable`: it owns a xenstore connection; use it from one thread.
public final class XenStoreLoadDriver: LoadDriver {
    /// The agent's directory, relative to the guest's home.
    public static let root = "data/iovm/load"
    private let store: XenStoreClient
    private var domids: [String: UInt32] = [:]

    /// Connects to xenstored.
    public init() throws(XenError) {
        store = try XenStoreClient()
    }

    /// The agent's directory in `guest`, or nil when no running domain has that name.
    func path(_ guest: String) throws -> String? {
        if let domid = domids[guest], try store.read("/local/domain/\(domid)/name") == guest {
            return "/local/domain/\(domid)/\(Self.root)"
        }
        domids = [:]
        for entry in try store.directory("/local/domain") ?? [] {
            guard let domid = UInt32(entry), let name = try store.read("/local/domain/\(entry)/name") else { continue }
            domids[name] = domid
        }
        return domids[guest].map { "/local/domain/\($0)/\(Self.root)" }
    }

    /// Whether the agent wrote `ready`.
    public func isReady(guest: String) throws -> Bool {
        guard let path = try path(guest) else { return false }
        return try store.read("\(path)/ready")?.hasPrefix("1 ") == true
    }

    /// Writes the request: iperf3's arguments.
    public func start(_ request: LoadRequest) throws {
        guard let path = try path(request.guest) else {
            throw XenError.failed(operation: "find guest \(request.guest)", detail: "no running domain has that name")
        }
        try store.write("\(path)/request", ([String(request.id)] + request.iperf3Arguments).joined(separator: " "))
    }

    /// Reads the result once `status` says `done <id>`.
    public func outcome(guest: String, id: Int) throws -> LoadOutcome? {
        guard let path = try path(guest) else { throw XenError.failed(operation: "find guest \(guest)", detail: "no running domain has that name") }
        guard try store.read("\(path)/status") == "done \(id)" else { return nil }
        let result = "\(path)/result"
        return try store.withTransaction { (t) throws(XenError) -> LoadOutcome? in
            guard try store.read("\(result)/id", in: t) == String(id) else { return nil }
            let status = Int(try store.read("\(result)/rc", in: t) ?? "") ?? -1
            let chunks = Int(try store.read("\(result)/chunks", in: t) ?? "") ?? 0
            var output = ""
            for index in 0..<max(0, chunks) { output += try store.read("\(result)/\(index)", in: t) ?? "" }
            return LoadOutcome(
                status: status, output: output, errorOutput: try store.read("\(result)/stderr", in: t) ?? "",
                truncated: try store.read("\(result)/truncated", in: t) == "1")
        }
    }

    /// Writes `cancel`.
    public func cancel(guest: String, id: Int) throws {
        guard let path = try path(guest) else { return }
        try store.write("\(path)/cancel", String(id))
    }
}
