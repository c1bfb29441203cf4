/// The schedulers Xen runs, as read from it (not as planned): Pool-0's, and the cpupool and scheduler of
/// each domain. `iovm status` shows it and `iovm monitor --record` keeps it with every run.
public struct SchedulerReading: Sendable, Codable, Hashable {
    /// One domain's cpupool and the scheduler that pool runs.
    public struct DomainScheduler: Sendable, Codable, Hashable {
        /// Domain name.
        public var domain: String
        /// Its cpupool.
        public var pool: String
        /// The scheduler of that pool, as libxl names it.
        public var scheduler: String

        /// Creates an entry.
        public init(domain: String, pool: String, scheduler: String) {
            self.domain = domain
            self.pool = pool
            self.scheduler = scheduler
        }
    }

    /// Pool-0's scheduler (`libxl_get_scheduler`).
    public var poolZero: String
    /// The domains read, in the order asked for.
    public var domains: [DomainScheduler]

    /// Creates a reading.
    public init(poolZero: String, domains: [DomainScheduler]) {
        self.poolZero = poolZero
        self.domains = domains
    }

    /// One line: `Pool-0 credit2: iovm0, guest1; iovm-rtds rtds: iovm1` (pools in first-seen order).
    public var summary: String {
        var pools: [(pool: String, scheduler: String, domains: [String])] = []
        for entry in domains {
            if let index = pools.firstIndex(where: { $0.pool == entry.pool }) {
                pools[index].domains.append(entry.domain)
            } else {
                pools.append((entry.pool, entry.scheduler, [entry.domain]))
            }
        }
        if pools.isEmpty { return "Pool-0 \(poolZero)" }
        return pools.map { "\($0.pool) \($0.scheduler): \($0.domains.joined(separator: ", "))" }.joined(separator: "; ")
    }
}
