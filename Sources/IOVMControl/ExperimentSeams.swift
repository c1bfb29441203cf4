import FoundationEssentials
public import IOVMCore
public import IOVMWireFormat

/// The seam between an experiment's runner and the guests' workload: the load agent in each guest
/// (`Agents/iovm-load.c`, over xenstore), or a command of the user's run from dom0.
public protocol LoadDriver {
    /// Whether `guest` can take a request now (its load agent said it is up).
    func isReady(guest: String) throws -> Bool
    /// Starts `request`'s workload in its guest.
    func start(_ request: LoadRequest) throws
    /// The outcome of request `id` in `guest`, or nil while it runs.
    func outcome(guest: String, id: Int) throws -> LoadOutcome?
    /// Asks `guest` to stop request `id`.
    func cancel(guest: String, id: Int) throws
}

/// One guest's share of a cell's workload.
public struct LoadRequest: Sendable, Equatable {
    /// The guest.
    public var guest: String
    /// The request's id, unique per attempt.
    public var id: Int
    /// The cell's direction.
    public var direction: TrafficDirection
    /// Seconds measured, after the warm-up (whole seconds, as iperf3 takes them).
    public var durationSeconds: Int
    /// Seconds of warm-up.
    public var warmUpSeconds: Int
    /// The PCI address of the NIC the guest's traffic crosses, or `-`.
    public var nic: String
    /// The iperf3 server (`HOST` or `HOST:PORT`), when the workload names one.
    public var server: String?
    /// iperf3's arguments for this guest (`-c HOST -p PORT -t D -O W -P 4 -l 1024 -J -i 0`, `-R` for Rx); empty
    /// without a server.
    public var iperf3Arguments: [String]

    /// Creates a request.
    public init(
        guest: String, id: Int, direction: TrafficDirection, durationSeconds: Int, warmUpSeconds: Int, nic: String = "-", server: String? = nil,
        iperf3Arguments: [String] = []
    ) {
        self.guest = guest
        self.id = id
        self.direction = direction
        self.durationSeconds = durationSeconds
        self.warmUpSeconds = warmUpSeconds
        self.nic = nic
        self.server = server
        self.iperf3Arguments = iperf3Arguments
    }
}

/// What a guest's workload printed and how it ended.
public struct LoadOutcome: Sendable, Equatable {
    /// Exit status; 128 + N for a signal.
    public var status: Int
    /// Standard output: iperf3's JSON.
    public var output: String
    /// The end of standard error.
    public var errorOutput: String
    /// Whether the output was cut short.
    public var truncated: Bool

    /// Creates an outcome.
    public init(status: Int, output: String, errorOutput: String = "", truncated: Bool = false) {
        self.status = status
        self.output = output
        self.errorOutput = errorOutput
        self.truncated = truncated
    }
}

/// One reading of the measured domains' CPU time and NIC counters.
public struct MeterReading: Sendable, Equatable {
    /// One domain's counters.
    public struct Counters: Sendable, Equatable {
        /// CPU time used since the domain started, nanoseconds.
        public var cpuNanoseconds: UInt64
        /// Bytes its NICs received, sent; packets received, sent.
        public var rxBytes: UInt64, txBytes: UInt64, rxPackets: UInt64, txPackets: UInt64
        /// Whether its counters agent publishes (false: the traffic is unknown).
        public var published: Bool
        /// When the agent wrote the counters, by the domain's own clock (its uptime), seconds; nil when unknown.
        public var counterTime: Double?
        /// Its vifs' notifications so far (their event channels' interrupts), summed over the vifs whose agent published
        /// them; nil when none did.
        public var notifications: UInt64?
        /// The packets those same vifs moved so far (rx + tx, as netback counts them); nil with ``notifications``.
        public var vifPackets: UInt64?
        /// Creates counters.
        public init(
            cpuNanoseconds: UInt64, rxBytes: UInt64 = 0, txBytes: UInt64 = 0, rxPackets: UInt64 = 0, txPackets: UInt64 = 0, published: Bool = true,
            counterTime: Double? = nil, notifications: UInt64? = nil, vifPackets: UInt64? = nil
        ) {
            self.counterTime = counterTime
            self.notifications = notifications
            self.vifPackets = vifPackets
            self.cpuNanoseconds = cpuNanoseconds
            self.rxBytes = rxBytes
            self.txBytes = txBytes
            self.rxPackets = rxPackets
            self.txPackets = txPackets
            self.published = published
        }
    }
    /// Nominal CPU frequency, Hz.
    public var cpuHz: UInt64
    /// The domains found, by name (a missing domain is absent).
    public var domains: [String: Counters]
    /// Creates a reading.
    public init(cpuHz: UInt64, domains: [String: Counters]) {
        self.cpuHz = cpuHz
        self.domains = domains
    }
}

/// The seam between the runner and the host's counters: libxenstat and the IOVMs' counters agents in iovm,
/// a fake in tests.
public protocol CellMeter {
    /// Reads `domains` now.
    func read(_ domains: [String]) throws -> MeterReading
}

/// The seam between the runner and the host's domains: apply and destroy through the ``ApplyEngine``.
public protocol ExperimentHost {
    /// Makes the host match `plan` (creating, recreating or changing live what differs).
    func apply(_ plan: Plan) throws
    /// Destroys what iovm made for `topology` and gives `nics` back to dom0.
    func destroy(topology: String, nics: [PCIAddress]) throws
    /// The scheduler `domains` run under, as Xen reports it (their cpupool's); nil when unknown.
    func scheduler(of domains: [String]) throws -> String?
}

/// The runner's clock: monotonic seconds and sleeping, faked in tests.
public protocol RunnerClock {
    /// Monotonic seconds.
    func now() -> Double
    /// Seconds since 1970.
    func wallTime() -> Double
    /// Sleeps `seconds`.
    func sleep(_ seconds: Double)
}

/// The real clock.
public struct SystemRunnerClock: RunnerClock {
    /// Creates the clock.
    public init() {}
    /// Monotonic seconds.
    public func now() -> Double { ProcessInfo.processInfo.systemUptime }
    /// Seconds since 1970.
    public func wallTime() -> Double { Date().timeIntervalSince1970 }
    /// Sleeps `seconds`.
    public func sleep(_ seconds: Double) { if seconds > 0 { PThread.sleep(seconds: seconds) } }
}

/// The real host: apply and destroy through an ``ApplyEngine``, the scheduler read from its backend.
public struct EngineExperimentHost: ExperimentHost {
    /// The engine.
    public var engine: ApplyEngine

    /// Creates the host over `engine`.
    public init(engine: ApplyEngine) { self.engine = engine }

    /// Applies `plan` with each domain's libxl JSON rendered from it.
    public func apply(_ plan: Plan) throws {
        let report = try engine.apply(plan, libxlJSON: try PlanRenderer.libxlJSON(of: plan))
        for step in report.done { engine.logger.info("\(step)") }
    }

    /// Destroys the topology.
    public func destroy(topology: String, nics: [PCIAddress]) throws {
        let report = try engine.destroy(topology: topology, nics: nics)
        for step in report.done { engine.logger.info("\(step)") }
    }

    /// The scheduler of `domains`' pools: one name, or `a+b` when they differ.
    public func scheduler(of domains: [String]) throws -> String? {
        let reading = try engine.backend.observe(nics: []).schedulerReading(of: domains)
        let names = Array(Set(reading.domains.map(\.scheduler))).sorted()
        return names.isEmpty ? reading.poolZero : names.joined(separator: "+")
    }
}
