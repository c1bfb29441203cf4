/// A domain's scheduler parameters (`libxl_domain_sched_params`): credit's weight and cap, and rtds'
/// reservation when the domain runs under rtds.
public struct DomainSchedule: Sendable, Hashable, Codable {
    /// Credit weight (credit's default is 256; libxl's "default", -1, under rtds).
    public var weight: Int
    /// Cap in percent of one pCPU; 0 means none.
    public var cap: Int
    /// The rtds reservation, when the domain's cpupool runs rtds; nil under other schedulers.
    public var rtds: RTDSSchedule?

    /// Creates scheduler parameters.
    public init(weight: Int, cap: Int, rtds: RTDSSchedule? = nil) {
        self.weight = weight
        self.cap = cap
        self.rtds = rtds
    }
}

/// A domain's rtds (EDF) reservation: `budget` microseconds of CPU in every `period`
/// (`libxl_domain_sched_params`' period, budget and extratime).
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
