import FoundationEssentials
import IOVMCore
import Prometheus
import Synchronization
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The live figures as Prometheus text exposition (swift-prometheus), for node_exporter's
/// textfile collector or a scrape of ``MetricsListener``.
///
/// Metrics (the aggregate of all IOVMs has `iovm="aggregate"`; leave it out when summing):
/// - `iovm_throughput_bits_per_second{iovm,direction="rx"|"tx"}`: Rx = client → guest, Tx = guest → client.
/// - `iovm_cpu_cycles_per_second{iovm}`: cycles at nominal Hz.
/// - `iovm_efficiency_bits_per_hertz{iovm,direction="rx"|"tx"}`: direction bits / all cycles, so
///   the two directions add up to the IOVM's efficiency.
/// - `iovm_sampler_cpu_ratio`: the sampler's own CPU seconds per wall second.
public enum Exposition {
    /// The exposition text for one interval.
    ///
    /// A fresh registry per call, so IOVMs that are gone do not linger with stale values.
    public static func text(for interval: IntervalFigures, samplerCPURatio: Double?) -> String {
        let registry = PrometheusCollectorRegistry()
        for figures in interval.iovms + [interval.aggregate] {
            let seconds = max(figures.seconds, .leastNonzeroMagnitude)
            // Unknown traffic (no rate yet, no agent) is left out rather than exported as 0.
            for (direction, bytes, efficiency) in [("rx", figures.rxBytes, figures.rxEfficiency), ("tx", figures.txBytes, figures.txEfficiency)]
            where figures.trafficKnown {
                let labels = [("iovm", figures.iovm), ("direction", direction)]
                registry.makeGauge(descriptor: throughput, labels: labels).set(Double(bytes) * 8 / seconds)
                if let efficiency { registry.makeGauge(descriptor: self.efficiency, labels: labels).set(efficiency) }
            }
            registry.makeGauge(descriptor: cycles, labels: [("iovm", figures.iovm)]).set(figures.cycles / seconds)
        }
        if let samplerCPURatio { registry.makeGauge(descriptor: samplerCPU).set(samplerCPURatio) }
        return registry.emitToString()
    }

    static var throughput: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "iovm", metricName: "throughput", unitName: "bits_per_second",
            helpText: "Traffic through the IOVM's NICs; rx = client to guest, tx = guest to client")
    }
    static var efficiency: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "iovm", metricName: "efficiency", unitName: "bits_per_hertz",
            helpText: "Bits moved in this direction per CPU cycle the IOVM used (nominal Hz); rx + tx = the IOVM's efficiency")
    }
    static var cycles: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "iovm", metricName: "cpu_cycles", unitName: "per_second",
            helpText: "CPU cycles per second the IOVM used: CPU time times nominal Hz")
    }
    static var samplerCPU: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "iovm", subsystem: "sampler", metricName: "cpu", unitName: "ratio",
            helpText: "CPU seconds (user + system) the iovm sampler used per wall second")
    }

    /// Writes `text` to `path` atomically (a temporary file in the same directory, then rename), as
    /// node_exporter's textfile collector requires.
    public static func writeAtomically(_ text: String, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp")
        try Data(text.utf8).write(to: temporary)
        guard rename(temporary.path, url.path) == 0 else {
            let code = errno
            try? FileManager.default.removeItem(at: temporary)
            throw MonitorError("cannot rename \(temporary.path) to \(path): \(Errno(rawValue: code).description)")
        }
    }
}

/// An error of the monitor with a message for people.
public struct MonitorError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The message.
    public var description: String
    /// Creates an error.
    public init(_ description: String) { self.description = description }
}

/// A minimal loopback-only HTTP responder: every request gets the latest exposition text.
///
/// It binds only IPv4 loopback addresses (127.0.0.0/8), answers one request per connection on a
/// background thread, and ignores the request line (any path is `/metrics`).
public final class MetricsListener: Sendable {
    private let body = Mutex("")
    private let socket: Int32
    /// The port bound (useful with port 0).
    public let port: UInt16

    /// Binds `address` (`127.0.0.1:9100`) and starts answering.
    public init(address: String) throws {
        guard let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...]) else {
            throw MonitorError("--listen wants HOST:PORT, e.g. 127.0.0.1:9105")
        }
        let host = address[..<colon] == "localhost" ? "127.0.0.1" : String(address[..<colon])
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &sin.sin_addr) == 1, UInt32(bigEndian: sin.sin_addr.s_addr) >> 24 == 127 else {
            throw MonitorError("--listen \(address): only IPv4 loopback addresses (127.x.x.x) are served")
        }
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw MonitorError("socket: \(Errno(rawValue: errno).description)") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(fd, 8) == 0 else {
            let message = Errno(rawValue: errno).description
            close(fd)
            throw MonitorError("cannot listen on \(address): \(message)")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        self.port = UInt16(bigEndian: actual.sin_port)
        self.socket = fd
        PThread.detach { [self] in serve() }
    }

    /// Replaces the text served.
    public func update(_ text: String) { body.withLock { $0 = text } }

    private func serve() {
        while true {
            let client = accept(socket, nil, nil)
            if client < 0 {
                // A closed socket ends the thread; EMFILE, ENFILE, ENOBUFS pass: /metrics must not go quiet for good.
                let error = errno
                if error == EBADF || error == EINVAL || error == ENOTSOCK { return }
                if error != EINTR, error != ECONNABORTED { PThread.sleep(seconds: 0.1) }
                continue
            }
            var timeout = timeval(tv_sec: 1, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var request = [UInt8](repeating: 0, count: 2048)
            _ = recv(client, &request, request.count, 0)  // the request itself does not matter
            let text = body.withLock { $0 }
            let response = "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: \(text.utf8.count)\r\nConnection: close\r\n\r\n" + text
            var bytes = Array(response.utf8)[...]
            while !bytes.isEmpty {
                let sent = bytes.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if sent <= 0 { break }
                bytes = bytes.dropFirst(sent)
            }
            // A close with request bytes still unread makes the kernel send a reset, which can throw away the
            // response before the client reads it ("Connection reset by peer", an empty scrape): end our side,
            // then read what the client still sends until it closes (or the 1 s timeout), then close.
            shutdown(client, Int32(SHUT_WR))
            var drain = [UInt8](repeating: 0, count: 512)
            while recv(client, &drain, drain.count, 0) > 0 {}
            close(client)
        }
    }
}

/// The figures of `iovm watch` as Prometheus text exposition, kept for the life of the process.
///
/// - `iovm_watch_recoveries_total`: recoveries that brought the topology back (IOVMs made again, vifs re-attached).
/// - `iovm_watch_failures_total`: recovery attempts that failed (each is tried again after a backoff).
/// - `iovm_watch_recovery_seconds`: a histogram of how long each successful recovery took.
/// - `iovm_watch_last_recovery_seconds`: how long the last successful one took.
public final class WatchMetrics: Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let recoveries: Counter
    private let failures: Counter
    private let durations: ValueHistogram
    private let last: Gauge

    /// The buckets of `iovm_watch_recovery_seconds`: an IOVM boots and starts `xl devd` in seconds; the
    /// apply's waits allow minutes.
    public static let buckets: [Double] = [1, 2, 5, 10, 20, 30, 60, 120, 300]

    /// Creates the metrics at zero (they are exported from the start, before any recovery).
    public init() {
        recoveries = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "iovm", subsystem: "watch", metricName: "recoveries", unitName: "total",
                helpText: "Recoveries of dead IOVMs and their guests' vifs that succeeded"))
        failures = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "iovm", subsystem: "watch", metricName: "failures", unitName: "total",
                helpText: "Recovery attempts that failed (each is retried after a backoff)"))
        durations = registry.makeValueHistogram(
            descriptor: MetricNameDescriptor(
                namespace: "iovm", subsystem: "watch", metricName: "recovery", unitName: "seconds",
                helpText: "Seconds each successful recovery took, from seeing the death to the guests' vifs connected"),
            buckets: Self.buckets)
        last = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                namespace: "iovm", subsystem: "watch", metricName: "last_recovery", unitName: "seconds",
                helpText: "Seconds the last successful recovery took"))
    }

    /// Counts a successful recovery that took `seconds`.
    public func recovered(seconds: Double) {
        recoveries.increment()
        durations.record(seconds)
        last.set(seconds)
    }

    /// Counts a failed recovery attempt.
    public func failed() { failures.increment() }

    /// The exposition text now.
    public func text() -> String { registry.emitToString() }
}
