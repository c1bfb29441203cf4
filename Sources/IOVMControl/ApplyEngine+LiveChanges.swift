public import CPUSets
import Foundation
import IOVMCore

/// A domain iovm manages, as the live verbs need it.
public struct ManagedDomain: Sendable, Equatable {
    /// Domain id.
    public var domid: UInt32
    /// Name.
    public var name: String
    /// vCPUs online.
    public var vcpus: Int
    /// Credit cap now, when the scheduler has one.
    public var cap: Int?

    /// Creates one.
    public init(domid: UInt32, name: String, vcpus: Int, cap: Int?) {
        self.domid = domid
        self.name = name
        self.vcpus = vcpus
        self.cap = cap
    }
}

/// What a live verb did.
public struct LiveChange: Sendable, CustomStringConvertible {
    /// The domain changed.
    public var domain: ManagedDomain
    /// What was changed, e.g. "pinned to cores 2-3".
    public var change: String
    /// Seconds the change itself took (lock and lookup not counted).
    public var seconds: Double

    /// `iovm0 (3): pinned to cores 2-3 in 4.1 ms`.
    public var description: String {
        String(format: "%@ (%u): %@ in %.1f ms", domain.name, domain.domid, change, seconds * 1000)
    }
}

/// Why a live verb refused.
public enum LiveChangeError: Error, Sendable, CustomStringConvertible {
    /// No domain has that name or id.
    case noSuchDomain(String)

    /// Human-readable text.
    public var description: String {
        switch self {
        case .noSuchDomain(let name): "no domain \(name)"
        }
    }
}

/// `iovm pin`, `unpin` and `weight`: like apply, under the host lock and through the backend, and
/// only on domains iovm created (the backend refuses any other).
extension ApplyEngine {
    /// Pins every vCPU of `nameOrID` to `cores` (nil: every core), live.
    public func pin(_ nameOrID: String, to cores: CPUSet?) throws -> LiveChange {
        try live(nameOrID) { domain in
            try backend.setAffinity(domid: domain.domid, vcpus: domain.vcpus, hard: cores)
            return cores.map { "pinned to cores \($0)" } ?? "unpinned (every core)"
        }
    }

    /// Sets the credit weight of `nameOrID`, and its cap (nil keeps the current one), live.
    public func setWeight(_ nameOrID: String, weight: Int, cap: Int?) throws -> LiveChange {
        try live(nameOrID) { domain in
            let newCap = cap ?? domain.cap ?? 0
            try backend.setSchedule(domid: domain.domid, weight: weight, cap: newCap)
            return "weight \(weight), cap \(newCap)"
        }
    }

    private func live(_ nameOrID: String, _ change: (ManagedDomain) throws -> String) throws -> LiveChange {
        let hold = try lock.acquire(timeout: lockTimeout)
        defer { hold.release() }
        guard let domain = try backend.managedDomain(nameOrID) else { throw LiveChangeError.noSuchDomain(nameOrID) }
        let start = Date()
        let what = try change(domain)
        return LiveChange(domain: domain, change: what, seconds: Date().timeIntervalSince(start))
    }
}
