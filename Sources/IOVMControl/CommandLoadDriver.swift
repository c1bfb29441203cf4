import FoundationEssentials
public import IOVMCore

#if canImport(Glibc)
    import Glibc
#endif

/// The ``LoadDriver`` of a `Workload.command` template: runs it in dom0 with `/bin/sh -c`, once per guest and cell,
/// for the user's own way into the guests (ssh, a serial console, a script).
///
/// Each placeholder is replaced by its value, shell-quoted: `{guest}`, `{nic}`, `{direction}` (`rx`, `tx`, `both`),
/// `{duration}` and `{warmup}` (whole seconds), `{server}`, and `{iperf3}`, the arguments iovm gives iperf3 in the
/// guests itself (`-c HOST -p PORT -t D -O W -P 4 -l 1024 -J -i 0`, `-R` for Rx). The same values are in the
/// environment: `IOVM_GUEST`, `IOVM_NIC`, `IOVM_DIRECTION`, `IOVM_DURATION`, `IOVM_WARMUP`, `IOVM_SERVER`,
/// `IOVM_IPERF3`. The command must print iperf3's JSON (`-J`) on stdout: the payload figure comes from it. Each
/// command runs in a session of its own, without a terminal (ssh cannot prompt: use keys and `-o BatchMode=yes`); a
/// cancelled one gets SIGTERM, then SIGKILL 2 s later. Killing a local ssh does not stop what it started in the
/// guest: bound the remote side, e.g. `timeout $(({warmup} + {duration} + 10)) iperf3 {iperf3}`.
public final class CommandLoadDriver: LoadDriver {
    /// The template.
    public let template: String
    let shell: String
    let environment: [String: String]
    let now: () -> Double
    /// How long a cancelled command has between SIGTERM and SIGKILL, seconds.
    public var killAfter = 2.0
    private var running: [String: (id: Int, process: ChildProcess, cancelledAt: Double?)] = [:]
    /// The stderr a result keeps, in characters from its end.
    static let errorTail = 2000

    /// Creates the driver for `template`, run by `shell` with `environment` plus the request's `IOVM_*` variables.
    public init(
        template: String, shell: String = "/bin/sh", environment: [String: String] = ProcessInfo.processInfo.environment,
        now: @escaping () -> Double = { ProcessInfo.processInfo.systemUptime }
    ) {
        self.template = template
        self.shell = shell
        self.environment = environment
        self.now = now
    }

    /// The command for `request`, its placeholders filled in.
    public func command(for request: LoadRequest) -> String {
        ExperimentWorkload.expand(template, values: Self.values(request))
    }

    static func values(_ request: LoadRequest) -> [String: [String]] {
        [
            "guest": [request.guest], "nic": [request.nic], "direction": [request.direction.rawValue], "duration": [String(request.durationSeconds)],
            "warmup": [String(request.warmUpSeconds)], "server": request.server.map { [$0] } ?? [], "iperf3": request.iperf3Arguments,
        ]
    }

    /// No agent to wait for: the command is its own way in.
    public func isReady(guest: String) throws -> Bool { true }

    /// Starts the command for `request` (a previous one for the same guest is stopped first).
    public func start(_ request: LoadRequest) throws {
        if let previous = running[request.guest], previous.process.poll() == nil { previous.process.signal(SIGKILL) }
        var environment = self.environment
        for (name, value) in Self.values(request) { environment["IOVM_\(name.uppercased())"] = value.joined(separator: " ") }
        let process = try ProcessRunner.spawn(shell, ["-c", command(for: request)], environment: environment)
        running[request.guest] = (request.id, process, nil)
    }

    /// The command's exit status, stdout and the end of its stderr once it has exited.
    public func outcome(guest: String, id: Int) throws -> LoadOutcome? {
        guard let entry = running[guest], entry.id == id else { return nil }
        guard let finished = entry.process.poll() else {
            if let cancelledAt = entry.cancelledAt, now() - cancelledAt >= killAfter { entry.process.signal(SIGKILL) }
            return nil
        }
        let errorOutput = entry.process.errorOutput
        // Returned once: the process and its output files go with the entry.
        running[guest] = nil
        return LoadOutcome(status: Int(finished.status), output: finished.output, errorOutput: String(errorOutput.suffix(Self.errorTail)))
    }

    /// Sends the command SIGTERM (SIGKILL follows if it is still there `killAfter` seconds later, as its outcome is polled).
    public func cancel(guest: String, id: Int) throws {
        guard var entry = running[guest], entry.id == id, entry.cancelledAt == nil else { return }
        entry.process.signal(SIGTERM)
        entry.cancelledAt = now()
        running[guest] = entry
    }
}
