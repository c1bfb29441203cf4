/// A domain's credit scheduler parameters (`libxl_domain_sched_params`' weight and cap).
public struct DomainSchedule: Sendable, Hashable, Codable {
    /// Credit weight (credit's default is 256).
    public var weight: Int
    /// Cap in percent of one pCPU; 0 means none.
    public var cap: Int

    /// Creates scheduler parameters.
    public init(weight: Int, cap: Int) {
        self.weight = weight
        self.cap = cap
    }
}
