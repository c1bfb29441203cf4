/// A guest's vif as dom0 sees it in xenstore: which domain backs it and whether it is connected.
public struct ObservedVif: Sendable, Codable, Equatable {
    /// Device id (`vif<domid>.<devid>` in the backend).
    public var devid: Int
    /// The backend's domid (`backend-id`).
    public var backendDomid: UInt32?
    /// The backend's xenbus state (`4` is connected); nil when the backend directory is gone.
    public var backendState: String?
    /// The backend's `hotplug-status`.
    public var hotplugStatus: String?

    /// Creates one.
    public init(devid: Int, backendDomid: UInt32?, backendState: String?, hotplugStatus: String?) {
        self.devid = devid
        self.backendDomid = backendDomid
        self.backendState = backendState
        self.hotplugStatus = hotplugStatus
    }

    /// How this vif is doing on `host`: nil when it is connected, else what is wrong with it.
    /// A vif whose backend domain is gone stays up in the guest and carries nothing (Qubes #1426).
    public func problem(on host: ObservedHost) -> String? {
        guard let backendDomid else { return "vif \(devid) names no backend" }
        guard let backend = host.domains.first(where: { $0.domid == backendDomid }) else {
            return "vif \(devid) is backed by domain \(backendDomid), which no longer exists"
        }
        guard let backendState else { return "vif \(devid) has no backend directory in \(backend.name) (\(backendDomid))" }
        if backendState == "4" { return nil }
        let hotplug = hotplugStatus.map { ", hotplug-status \($0)" } ?? ""
        return "vif \(devid) in \(backend.name) (\(backendDomid)) is in state \(backendState), not connected (4)\(hotplug)"
    }

    /// Whether it is on its way to connected: its backend domain runs, its backend directory exists in a state
    /// before 4, and the hotplug script has not failed.
    public func isConnecting(on host: ObservedHost) -> Bool {
        guard let backendDomid, host.domains.contains(where: { $0.domid == backendDomid }), let backendState,
            let state = Int(backendState), (1...3).contains(state)
        else { return false }
        return hotplugStatus != "error"
    }

    /// `vif0 → iovm0` when connected, else the problem.
    public func summary(on host: ObservedHost) -> String {
        if let problem = problem(on: host) { return "BROKEN: \(problem)" }
        let name = host.domains.first { $0.domid == backendDomid }?.name ?? "?"
        return "vif\(devid) → \(name)"
    }
}
