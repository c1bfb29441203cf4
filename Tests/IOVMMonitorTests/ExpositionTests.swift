import Foundation
import IOVMMonitor
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Prometheus exposition")
struct ExpositionTests {
    static let interval: IntervalFigures = {
        let a = EfficiencyFigures(iovm: "iovm0", seconds: 1, rxBytes: 117_500_000, txBytes: 0, cpuNanoseconds: 325_000_000, cpuHz: 2_400_000_000)
        let b = EfficiencyFigures(iovm: "iovm1", seconds: 1, rxBytes: 0, txBytes: 62_500_000, cpuNanoseconds: 0, cpuHz: 2_400_000_000)
        return IntervalFigures(
            start: 0, end: 1, time: 1_764_100_001, cpuHz: 2_400_000_000, iovms: [a, b],
            aggregate: .aggregate([a, b], seconds: 1, cpuHz: 2_400_000_000))
    }()

    @Test("the text has throughput, cycles, efficiency per IOVM and direction, the aggregate, and the sampler's own cost")
    func text() throws {
        let text = Exposition.text(for: Self.interval, samplerCPURatio: 0.0123)
        let lines = Set(text.split(separator: "\n").map(String.init))
        #expect(lines.contains(#"iovm_throughput_bits_per_second{iovm="iovm0",direction="rx"} 940000000.0"#))
        #expect(lines.contains(#"iovm_throughput_bits_per_second{iovm="iovm0",direction="tx"} 0.0"#))
        #expect(lines.contains(#"iovm_throughput_bits_per_second{iovm="iovm1",direction="tx"} 500000000.0"#))
        #expect(lines.contains(#"iovm_cpu_cycles_per_second{iovm="iovm0"} 780000000.0"#))
        #expect(lines.contains(#"iovm_throughput_bits_per_second{iovm="aggregate",direction="rx"} 940000000.0"#))
        #expect(lines.contains(#"iovm_sampler_cpu_ratio 0.0123"#))
        #expect(lines.contains("# TYPE iovm_efficiency_bits_per_hertz gauge"))
        let efficiency = try #require(lines.first { $0.hasPrefix(#"iovm_efficiency_bits_per_hertz{iovm="iovm0",direction="rx"} "#) })
        #expect(abs(try #require(Double(efficiency.split(separator: " ").last!)) - 940e6 / 0.78e9) < 1e-9)
        // iovm1 used no cycles: no efficiency rather than infinity.
        #expect(!text.contains(#"iovm_efficiency_bits_per_hertz{iovm="iovm1""#))
        #expect(!text.contains("inf") && !text.contains("nan"))
    }

    @Test("the textfile is replaced atomically and leaves no temporary file")
    func atomicWrite() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prom-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("iovm.prom").path
        try Exposition.writeAtomically("old\n", to: path)
        try Exposition.writeAtomically("new\n", to: path)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "new\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["iovm.prom"])
    }

    @Test("the listener serves the latest text on loopback and refuses other addresses")
    func listener() throws {
        #expect(throws: MonitorError.self) { _ = try MetricsListener(address: "0.0.0.0:0") }
        #expect(throws: MonitorError.self) { _ = try MetricsListener(address: "9100") }
        let listener = try MetricsListener(address: "127.0.0.1:0")
        listener.update("iovm_sampler_cpu_ratio 0.5\n")
        let response = try Self.get(port: listener.port)
        #expect(response.hasPrefix("HTTP/1.0 200 OK\r\n"))
        #expect(response.contains("Content-Type: text/plain; version=0.0.4"))
        #expect(response.hasSuffix("\r\n\r\niovm_sampler_cpu_ratio 0.5\n"))
    }

    @Test("a request that arrives in two writes (as bash's printf to /dev/tcp sends it) still gets the whole response")
    func requestInTwoParts() throws {
        let listener = try MetricsListener(address: "127.0.0.1:0")
        listener.update("iovm_watch_recoveries_total 1\n")
        for _ in 0..<20 {
            let response = try Self.get(port: listener.port, parts: ["GET /metrics HTTP/1.0\r\n", "Host: 127.0.0.1\r\n\r\n"])
            #expect(response.hasSuffix("\r\n\r\niovm_watch_recoveries_total 1\n"), "\(response)")
        }
    }

    @Test("a port another listener holds, a port past 65535 and an IPv6 address are refused with the address named")
    func refusedAddresses() throws {
        let first = try MetricsListener(address: "localhost:0")
        let taken = "127.0.0.1:\(first.port)"
        #expect(throws: MonitorError("cannot listen on \(taken): Address already in use")) { _ = try MetricsListener(address: taken) }
        #expect(throws: MonitorError("--listen wants HOST:PORT, e.g. 127.0.0.1:9105")) { _ = try MetricsListener(address: "127.0.0.1:65536") }
        #expect(throws: MonitorError("--listen [::1]:0: only IPv4 loopback addresses (127.x.x.x) are served")) {
            _ = try MetricsListener(address: "[::1]:0")
        }
        // The refusals left the first listener serving.
        first.update("up 1\n")
        #expect(try Self.get(port: first.port).hasSuffix("\r\n\r\nup 1\n"))
    }

    @Test("clients that hang up unanswered, or connect and say nothing, do not stop the listener serving the next")
    func badClientsDoNotStopIt() throws {
        let listener = try MetricsListener(address: "127.0.0.1:0")
        let filler = String(repeating: "iovm_filler 1\n", count: 20_000)  // 280 kB: more than one send
        listener.update(filler)
        #expect(try Self.get(port: listener.port).hasSuffix("\r\n\r\n" + filler))
        // Hang up at once, with the request unsent: the response's send fails (EPIPE, ECONNRESET) without a SIGPIPE.
        for _ in 0..<5 {
            let fd = try Self.connected(port: listener.port)
            var linger = linger(l_onoff: 1, l_linger: 0)  // close sends a reset
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<linger>.size))
            close(fd)
        }
        // Say nothing: the listener gives up reading after its 1 s and answers anyway.
        let silent = try Self.connected(port: listener.port)
        defer { close(silent) }
        listener.update("iovm_watch_failures_total 0\n")
        let response = try Self.get(port: listener.port)
        #expect(response.hasSuffix("\r\n\r\niovm_watch_failures_total 0\n"), "\(response.prefix(200))")
    }

    /// A TCP connection to the listener on `port`.
    static func connected(port: UInt16) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard connected == 0 else {
            close(fd)
            throw MonitorError("connect: \(errno)")
        }
        // A listener that stops answering fails the test instead of hanging the run.
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    static func get(port: UInt16, parts: [String] = ["GET /metrics HTTP/1.0\r\n\r\n"]) throws -> String {
        let fd = try connected(port: port)
        defer { close(fd) }
        for (index, part) in parts.enumerated() {
            if index > 0 { usleep(2_000) }  // after the server's recv woke on the first part, before its close
            let request = Array(part.utf8)
            _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            bytes += buffer[..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// `iovm watch --metrics-port`: recoveries, failures and how long recoveries took, as Prometheus scrapes them.
@Suite("iovm watch metrics")
struct WatchMetricsTests {
    @Test func recoveriesFailuresAndDurations() throws {
        let metrics = WatchMetrics()
        let empty = metrics.text()
        #expect(empty.contains("iovm_watch_recoveries_total 0"), "\(empty)")
        #expect(empty.contains("iovm_watch_failures_total 0"))
        metrics.failed()
        metrics.recovered(seconds: 7.5)
        metrics.recovered(seconds: 42)
        let text = metrics.text()
        #expect(text.contains("# TYPE iovm_watch_recoveries_total counter"), "\(text)")
        #expect(text.contains("iovm_watch_recoveries_total 2"))
        #expect(text.contains("iovm_watch_failures_total 1"))
        #expect(text.contains("# TYPE iovm_watch_recovery_seconds histogram"))
        #expect(text.contains("iovm_watch_recovery_seconds_bucket{le=\"5.0\"} 0"))
        #expect(text.contains("iovm_watch_recovery_seconds_bucket{le=\"10.0\"} 1"))
        #expect(text.contains("iovm_watch_recovery_seconds_bucket{le=\"60.0\"} 2"))
        #expect(text.contains("iovm_watch_recovery_seconds_bucket{le=\"+Inf\"} 2"))
        #expect(text.contains("iovm_watch_recovery_seconds_sum 49.5"))
        #expect(text.contains("iovm_watch_recovery_seconds_count 2"))
        #expect(text.contains("iovm_watch_last_recovery_seconds 42.0"))
    }
}
