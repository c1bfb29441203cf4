/// A domain's scheduler parameters: credit's weight and cap, and each vCPU's rtds reservation when the domain
/// runs under rtds.
public struct DomainSchedule: Sendable, Hashable, Codable {
    /// Credit weight (credit's default is 256; libxl's "default", -1, under rtds).
    public var weight: Int
    /// Cap in percent of one pCPU; 0 means none.
    public var cap: Int
    /// Each vCPU's rtds reservation, vCPU 0 first, when the domain's cpupool runs rtds; empty under other
    /// schedulers. rtds keeps a reservation per vCPU: the domain has one only when all of them agree (``rtds``).
    public var rtdsByVCPU: [RTDSSchedule]

    /// The rtds reservation every vCPU has; nil under other schedulers, and when the vCPUs' differ.
    public var rtds: RTDSSchedule? {
        guard let first = rtdsByVCPU.first, rtdsByVCPU.allSatisfy({ $0 == first }) else { return nil }
        return first
    }

    /// Creates scheduler parameters.
    public init(weight: Int, cap: Int, rtdsByVCPU: [RTDSSchedule] = []) {
        self.weight = weight
        self.cap = cap
        self.rtdsByVCPU = rtdsByVCPU
    }
}

/// A domain's rtds (EDF) reservation: `budget` microseconds of CPU in every `period`
/// (`libxl_sched_params`' period, budget and extratime).
public struct RTDSSchedule: Sendable, Hashable, Codable {
    /// Period in microseconds.
    public var periodMicroseconds: Int
    /// Budget per period in microseconds.
    public var budgetMicroseconds: Int
    /// Whether the domain may run on idle time beyond its budget.
    public var extratime: Bool

    /// Creates a reservation.
    public init(periodMicroseconds: Int, budgetMicroseconds: Int, extratime: Bool) {
        self.periodMicroseconds = periodMicroseconds
        self.budgetMicroseconds = budgetMicroseconds
        self.extratime = extratime
    }
}
