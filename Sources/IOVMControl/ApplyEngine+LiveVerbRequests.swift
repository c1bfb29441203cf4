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

    /// Carries `request` out and says what changed, or the error as the verb would print it.
    ///
    /// Checks what the command checks (weights in range, a cap not negative, core lists that parse) before
    /// anything is touched; `wait` is this request's lock timeout.
    /// `abandoned` is asked once the host lock is held (``ApplyEngine/abandoned``).
    public func serve(_ request: LiveVerbRequest, pid: Int32, abandoned: (@Sendable () -> Bool)? = nil) -> LiveVerbReply {
        func refused(_ text: String) -> LiveVerbReply { .refused(text, pid: pid) }
        guard request.version == LiveVerbRequest.currentVersion else {
            return refused("control socket request version \(request.version); this iovm speaks version \(LiveVerbRequest.currentVersion)")
        }
        guard !request.targets.isEmpty else { return refused("name at least one domain") }
        guard request.targets.count <= Self.liveVerbTargetLimit else { return refused("more than \(Self.liveVerbTargetLimit) domains in one request") }
        if let refusal = LiveVerbRefusal.wait(request.wait) { return refused("\(refusal)") }
        var engine = self
        engine.lockTimeout = request.wait
        engine.abandoned = abandoned
        do {
            let changes: [LiveChange]
            switch request.verb {
            case .pin:
                let targets: [(domain: String, cores: CPUSet?)] = try request.targets.map { target in
                    guard let list = target.cores else { return (target.domain, nil) }
                    guard let cores = try CPUSet(xlList: list) else { throw LiveVerbRefusal.coresNotListed(target.domain) }
                    return (target.domain, cores)
                }
                changes = try engine.pin(targets)
            case .weight:
                let targets: [(domain: String, weight: Int)] = try request.targets.map { target in
                    guard let weight = target.weight else { throw LiveVerbRefusal.weight(of: target.domain) }
                    if let refusal = LiveVerbRefusal.weight(weight, of: target.domain) { throw refusal }
                    return (target.domain, weight)
                }
                if let refusal = request.cap.flatMap(LiveVerbRefusal.cap) { throw refusal }
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
    public func serve(requestDocument bytes: [UInt8], pid: Int32, abandoned: (@Sendable () -> Bool)? = nil) -> LiveVerbReply {
        do {
            let request = try JSONDecoder().decode(LiveVerbRequest.self, from: Data(bytes))
            return serve(request, pid: pid, abandoned: abandoned)
        } catch {
            let located = JSONSyntax.check(bytes).map { "\($0)" } ?? "\(error)"
            return .refused("control socket request: \(located)", pid: pid)
        }
    }
}

/// Why a live verb's arguments are refused before anything is touched: the same words from the command line and
/// from the control socket.
public struct LiveVerbRefusal: Error, Sendable, CustomStringConvertible {
    /// Human-readable text.
    public var description: String

    init(_ description: String) { self.description = description }

    /// A weight outside ``IOVMCore/Planner/weightRange``; nil when `weight` is in it.
    public static func weight(_ weight: Int, of domain: String) -> LiveVerbRefusal? {
        Planner.weightRange.contains(weight) ? nil : Self.weight(of: domain)
    }

    /// A domain given no weight in range.
    public static func weight(of domain: String) -> LiveVerbRefusal {
        LiveVerbRefusal("\(domain): weight must be \(Planner.weightRange.lowerBound)-\(Planner.weightRange.upperBound)")
    }

    /// A negative cap; nil for 0 or more.
    public static func cap(_ cap: Int) -> LiveVerbRefusal? {
        cap < 0 ? LiveVerbRefusal("cap must be 0 or more") : nil
    }

    /// A pin to "all" cores, which is `iovm unpin`'s.
    public static func coresNotListed(_ domain: String) -> LiveVerbRefusal {
        LiveVerbRefusal("\(domain): cores must be listed; use `iovm unpin` for all")
    }

    /// A `--wait` outside ``ApplyEngine/liveVerbWaitRange``; nil when it is in it.
    public static func wait(_ seconds: Double) -> LiveVerbRefusal? {
        ApplyEngine.liveVerbWaitRange.contains(seconds) ? nil : LiveVerbRefusal("--wait must be 0 to 86400 seconds")
    }
}
