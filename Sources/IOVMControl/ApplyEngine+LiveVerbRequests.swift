import CPUSets
import FoundationEssentials
import IOVMCore
public import IOVMWireFormat

/// The live verbs as `iovm watch` serves them on its control socket: a request in the wire format, carried out by
/// this engine (its own libxl context, already open) under the host lock like the command's own.
extension ApplyEngine {
    /// Most domains one request may name.
    public static let liveVerbTargetLimit = 4096
    /// The seconds a live verb may wait for the host lock (`--wait`), in its own process and served alike.
    public static let liveVerbWaitRange = 0.0...86_400.0
    /// Why a wait outside ``liveVerbWaitRange`` is refused.
    public static let liveVerbWaitRefusal = "--wait must be 0 to 86400 seconds"

    /// Carries `request` out and says what changed, or the error as the verb would print it.
    ///
    /// Checks what the command checks (weights in range, a cap not negative, core lists that parse) before
    /// anything is touched; `wait` is this request's lock timeout.
    public func serve(_ request: LiveVerbRequest, pid: Int32) -> LiveVerbReply {
        func refused(_ text: String) -> LiveVerbReply { LiveVerbReply(changes: [], error: "iovm: error: \(text)", pid: pid) }
        guard request.version == LiveVerbRequest.currentVersion else {
            return refused("control socket request version \(request.version); this iovm speaks version \(LiveVerbRequest.currentVersion)")
        }
        guard !request.targets.isEmpty else { return refused("name at least one domain") }
        guard request.targets.count <= Self.liveVerbTargetLimit else { return refused("more than \(Self.liveVerbTargetLimit) domains in one request") }
        guard Self.liveVerbWaitRange.contains(request.wait) else { return refused(Self.liveVerbWaitRefusal) }
        var engine = self
        engine.lockTimeout = request.wait
        do {
            let changes: [LiveChange]
            switch request.verb {
            case .pin:
                let targets: [(domain: String, cores: CPUSet?)] = try request.targets.map { target in
                    guard let list = target.cores else { return (target.domain, nil) }
                    guard let cores = try CPUSet(xlList: list) else { throw LiveVerbRefusal("\(target.domain): cores must be listed; use `iovm unpin` for all") }
                    return (target.domain, cores)
                }
                changes = try engine.pin(targets)
            case .weight:
                let targets: [(domain: String, weight: Int)] = try request.targets.map { target in
                    guard let weight = target.weight, Planner.weightRange.contains(weight) else {
                        throw LiveVerbRefusal("\(target.domain): weight must be \(Planner.weightRange.lowerBound)-\(Planner.weightRange.upperBound)")
                    }
                    return (target.domain, weight)
                }
                if let cap = request.cap, cap < 0 { throw LiveVerbRefusal("cap must be 0 or more") }
                changes = try engine.setWeight(targets, cap: request.cap)
            }
            return LiveVerbReply(changes: changes.map { LiveVerbReply.Change(line: $0.description, domid: $0.domain.domid) }, pid: pid)
        } catch let error as ApplyError {
            return LiveVerbReply(changes: [], error: error.description, pid: pid)
        } catch {
            return refused("\(error)")
        }
    }

    /// ``serve(_:pid:)`` of one request document. A document that does not decode gets an error reply naming the
    /// JSON's fault.
    public func serve(requestDocument bytes: [UInt8], pid: Int32) -> LiveVerbReply {
        do {
            let request = try JSONDecoder().decode(LiveVerbRequest.self, from: Data(bytes))
            return serve(request, pid: pid)
        } catch {
            let located = JSONSyntax.check(bytes).map { "\($0)" } ?? "\(error)"
            return LiveVerbReply(changes: [], error: "iovm: error: control socket request: \(located)", pid: pid)
        }
    }
}

/// A live verb request refused before anything was touched.
struct LiveVerbRefusal: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
