import Foundation
import IOVMCore
import Testing

@testable import IOVMImage

/// Compiles `Agents/iovm-load.c` with the host's cc (as `iovm image load-agent` does) and runs it against a
/// fake xenstored on a Unix socket (`-s`), with a shell script standing in for iperf3 (`-b`).
@Suite("Guest load agent (Agents/iovm-load.c)")
struct LoadAgentTests {
    static let program = CompiledAgent.path("iovm-load.c")

    /// The fake iperf3: appends its arguments to argv (`[a][b]...`, a line per run), prints the test's stdout and
    /// stderr files (or a line of its own on stderr), then sleeps FAKE_SLEEP seconds (ignoring SIGTERM with
    /// FAKE_IGNORE_TERM) or exits FAKE_RC.
    static let fakeIperf = """
        #!/bin/sh
        printf '[%s]' "$@" >>"$FAKE_DIR/argv"
        echo >>"$FAKE_DIR/argv"
        cat "$FAKE_DIR/stdout"
        if [ -f "$FAKE_DIR/stderr" ]; then cat "$FAKE_DIR/stderr" >&2; else echo "fake iperf3: warning" >&2; fi
        if [ -n "$FAKE_IGNORE_TERM" ]; then trap '' TERM; fi
        if [ -n "$FAKE_SLEEP" ]; then exec sleep "$FAKE_SLEEP"; fi
        exit "${FAKE_RC:-0}"

        """

    /// A few KB of text like iperf3 -J's, with multi-byte characters (a chunk may end inside one).
    static let jsonText: [UInt8] = {
        var text = "{\n  \"start\": {\"connecting_to\": {\"host\": \"10.0.2.100\", \"port\": 5201}, \"note\": \"µs ± ✓\"},\n  \"intervals\": [\n"
        for second in 0..<60 {
            text += "    {\"sum\": {\"start\": \(second), \"end\": \(second + 1), \"bytes\": \(1_000_000 + second * 7919), \"note\": \"µ\"}},\n"
        }
        return Array((text + "  ],\n  \"end\": {}\n}\n").utf8)
    }()

    /// One agent (`-1`: it exits after one request) on its own fake xenstored, fake iperf3 and directory.
    final class Run {
        let directory: String
        let store: FakeXenstored
        let agent = Process()
        let agentLog: String

        init(
            store preset: [String: String] = [:], watches: Bool = true, stdout: [UInt8] = LoadAgentTests.jsonText, stderr: [UInt8]? = nil,
            environment: [String: String] = [:]
        ) throws {
            directory = "/tmp/iovm-load-test-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: directory + "/tmp", withIntermediateDirectories: true)
            let iperf = directory + "/iperf3"
            try LoadAgentTests.fakeIperf.write(toFile: iperf, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: iperf)
            try Data(stdout).write(to: URL(fileURLWithPath: directory + "/stdout"))
            if let stderr { try Data(stderr).write(to: URL(fileURLWithPath: directory + "/stderr")) }
            store = try FakeXenstored(socket: directory + "/xenstored.sock")
            store.refusesWatches = !watches
            for (path, value) in preset { store.set(path, value) }
            agentLog = directory + "/agent.log"
            _ = FileManager.default.createFile(atPath: agentLog, contents: nil)
            agent.executableURL = URL(fileURLWithPath: try LoadAgentTests.program.get())
            agent.arguments = ["-s", directory + "/xenstored.sock", "-b", iperf, "-t", directory + "/tmp", "-1"]
            agent.environment = ["PATH": "/usr/bin:/bin", "FAKE_DIR": directory].merging(environment) { $1 }
            agent.standardError = FileHandle(forWritingAtPath: agentLog)
            try agent.run()
        }

        deinit {
            if agent.isRunning { agent.terminate() }
            store.stop()
            try? FileManager.default.removeItem(atPath: directory)
        }

        var log: String { (try? String(contentsOfFile: agentLog, encoding: .utf8)) ?? "" }
        /// For failures: the agent's stderr and the last messages the fake xenstored saw.
        var diagnosis: String { "agent stderr: \(log.isEmpty ? "(empty)" : log)\nxenstore: \(store.trace.suffix(30).joined(separator: ", "))" }
        var argv: String? { try? String(contentsOfFile: directory + "/argv", encoding: .utf8) }

        /// Waits (polling every 20 ms) until `condition` holds; false after `seconds` (a bound for a busy machine:
        /// each step takes milliseconds when it has a core).
        func wait(_ seconds: Double, _ condition: () -> Bool) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if condition() { return true }
                usleep(20_000)
            }
            return condition()
        }

        /// The agent's exit status, once it has exited (nil if it runs on after `seconds`).
        func exitStatus(within seconds: Double) -> Int32? {
            wait(seconds) { !agent.isRunning } ? agent.terminationStatus : nil
        }

        /// result/0 ... result/<chunks-1> put together, and the largest chunk's size.
        func stdout() throws -> (bytes: [UInt8], largest: Int) {
            let chunks = try #require(Int(store.value(LoadKeys.result + "chunks") ?? ""))
            var bytes: [UInt8] = []
            var largest = 0
            for index in 0..<chunks {
                let chunk = try #require(store.bytes(LoadKeys.result + "\(index)"), "result/\(index)")
                bytes += chunk
                largest = max(largest, chunk.count)
            }
            return (bytes, largest)
        }
    }

    enum LoadKeys {
        static let ready = "data/iovm/load/ready"
        static let request = "data/iovm/load/request"
        static let cancel = "data/iovm/load/cancel"
        static let status = "data/iovm/load/status"
        static let result = "data/iovm/load/result/"
    }

    @Test("announces itself, runs iperf3 with the request's exact arguments and publishes its output in chunks, in one transaction")
    func runsARequest() throws {
        let run = try Run()
        run.store.failResultCommits = 1  // the result's transaction is retried after an EAGAIN
        #expect(run.wait(20) { run.store.value(LoadKeys.ready) != nil }, "\(run.diagnosis)")
        #expect(run.store.value(LoadKeys.ready) == "1 \(run.agent.processIdentifier)")
        run.store.set(LoadKeys.request, "7 -c 10.0.2.100 -p 5201 -t 1 -J")
        #expect(run.wait(20) { run.store.value(LoadKeys.status) == "done 7" }, "\(run.diagnosis)")
        #expect(run.store.history(LoadKeys.status) == ["running 7", "done 7"])
        #expect(run.argv == "[-c][10.0.2.100][-p][5201][-t][1][-J]\n")
        #expect(run.store.value(LoadKeys.result + "id") == "7")
        #expect(run.store.value(LoadKeys.result + "rc") == "0")
        #expect(run.store.value(LoadKeys.result + "chunks") == "\((Self.jsonText.count + 1023) / 1024)")
        let stdout = try run.stdout()
        #expect(stdout.bytes == Self.jsonText)
        #expect(stdout.largest == 1024)
        #expect(run.store.value(LoadKeys.result + "truncated") == nil)
        #expect(run.store.value(LoadKeys.result + "stderr") == "fake iperf3: warning\n")
        #expect(run.store.abortedCommits == 1)
        #expect(run.exitStatus(within: 20) == 0, "\(run.diagnosis)")
        #expect(run.log.isEmpty, "\(run.diagnosis)")
        // Its output files were unlinked.
        #expect((try? FileManager.default.contentsOfDirectory(atPath: run.directory + "/tmp")) == [])
    }

    @Test("reports iperf3's exit status, the first 64 chunks of a long stdout (truncated) and the tail of stderr; polls without a watch")
    func failureAndLimits() throws {
        let stdout = (0..<(64 * 1024 + 100)).map { UInt8(ascii: "a") + UInt8($0 % 26) }
        let stderr = (0..<3000).map { UInt8(ascii: "0") + UInt8($0 % 10) }
        let run = try Run(watches: false, stdout: stdout, stderr: stderr, environment: ["FAKE_RC": "3"])
        #expect(run.wait(20) { run.store.value(LoadKeys.ready) != nil }, "\(run.diagnosis)")
        #expect(run.log == "iovm-load: cannot watch data/iovm/load/request: reading it every 200 ms\n")
        run.store.set(LoadKeys.request, "12 -c 10.0.2.100 -J")
        #expect(run.wait(20) { run.store.value(LoadKeys.status) == "done 12" }, "\(run.diagnosis)")
        #expect(run.store.value(LoadKeys.result + "rc") == "3")
        #expect(run.store.value(LoadKeys.result + "chunks") == "64")
        #expect(run.store.value(LoadKeys.result + "truncated") == "1")
        #expect(try run.stdout().bytes == Array(stdout.prefix(64 * 1024)))
        #expect(run.store.bytes(LoadKeys.result + "stderr") == Array(stderr.suffix(1024)))
        #expect(run.exitStatus(within: 20) == 0, "\(run.diagnosis)")
    }

    @Test("a cancel naming the running request stops iperf3 with SIGTERM (rc 143)")
    func cancels() throws {
        let run = try Run(environment: ["FAKE_SLEEP": "30"])
        #expect(run.wait(20) { run.store.value(LoadKeys.ready) != nil }, "\(run.diagnosis)")
        run.store.set(LoadKeys.request, "9 -c 10.0.2.100 -t 30 -J")
        #expect(run.wait(20) { run.store.value(LoadKeys.status) == "running 9" && run.argv != nil }, "\(run.diagnosis)")
        run.store.set(LoadKeys.cancel, "8")  // another request's cancel: no effect
        usleep(500_000)
        #expect(run.store.value(LoadKeys.status) == "running 9")
        let cancelled = Date()
        run.store.set(LoadKeys.cancel, "9")
        #expect(run.wait(20) { run.store.value(LoadKeys.status) == "done 9" }, "\(run.diagnosis)")
        #expect(Date().timeIntervalSince(cancelled) < 10)  // not the fake's 30 s (about 0.2 s on an idle machine)
        #expect(run.store.value(LoadKeys.result + "rc") == "143")
        #expect(try run.stdout().bytes == Self.jsonText)
        #expect(run.exitStatus(within: 20) == 0, "\(run.diagnosis)")
    }

    @Test("an iperf3 that ignores SIGTERM gets SIGKILL 2 s later (rc 137)")
    func killsAfterTwoSeconds() throws {
        let run = try Run(environment: ["FAKE_SLEEP": "30", "FAKE_IGNORE_TERM": "1"])
        #expect(run.wait(20) { run.store.value(LoadKeys.ready) != nil }, "\(run.diagnosis)")
        run.store.set(LoadKeys.request, "10 -c 10.0.2.100 -t 30")
        #expect(run.wait(20) { run.store.value(LoadKeys.status) == "running 10" && run.argv != nil }, "\(run.diagnosis)")
        let cancelled = Date()
        run.store.set(LoadKeys.cancel, "10")
        #expect(run.wait(20) { run.store.value(LoadKeys.status) == "done 10" }, "\(run.diagnosis)")
        let seconds = Date().timeIntervalSince(cancelled)
        #expect(seconds > 1.8 && seconds < 10, "\(seconds) s")  // 2 s, not the fake's 30
        #expect(run.store.value(LoadKeys.result + "rc") == "137")
        #expect(run.exitStatus(within: 20) == 0, "\(run.diagnosis)")
    }

    @Test("a restarted agent does not run again the request its status says is done; it runs the next one")
    func restart() throws {
        let run = try Run(store: [
            LoadKeys.status: "done 7", LoadKeys.request: "7 -c 10.0.2.100 -J", LoadKeys.result + "id": "7", LoadKeys.result + "rc": "0",
        ])
        #expect(run.wait(20) { run.store.value(LoadKeys.ready) != nil }, "\(run.diagnosis)")
        #expect(run.wait(20) { run.store.reads.contains(LoadKeys.request) }, "\(run.diagnosis)")
        usleep(500_000)
        #expect(run.argv == nil)
        #expect(run.store.history(LoadKeys.status).isEmpty)
        #expect(run.store.value(LoadKeys.result + "rc") == "0")
        #expect(run.agent.isRunning)
        run.store.set(LoadKeys.request, "8 -c 10.0.2.101 -J")
        #expect(run.wait(20) { run.store.value(LoadKeys.status) == "done 8" }, "\(run.diagnosis)")
        #expect(run.argv == "[-c][10.0.2.101][-J]\n")
        #expect(run.exitStatus(within: 20) == 0, "\(run.diagnosis)")
    }
}

/// A xenstored for one client on a Unix stream socket, speaking the wire protocol (xen/io/xs_wire.h): a
/// dictionary of paths (taken as given, relative or not), READ, WRITE, RM (with the subtree), DIRECTORY,
/// transactions (their writes applied at a successful TRANSACTION_END, not isolated otherwise), and watches,
/// with the event xenstored sends when a watch is set and one per write or removal at or under its path.
final class FakeXenstored: @unchecked Sendable {
    enum MessageType: UInt32 {
        case directory = 1
        case read = 2
        case watch = 4
        case unwatch = 5
        case transactionStart = 6
        case transactionEnd = 7
        case write = 11
        case rm = 13
        case watchEvent = 15
        case error = 16
    }
    enum Operation {
        case write(String, [UInt8])
        case rm(String)
    }

    private let lock = NSLock()
    private let listener: Int32
    private var listening = true
    private var client: Int32 = -1
    private var values: [String: [UInt8]] = [:]
    private var watches: [(path: String, token: String)] = []
    private var transactions: [UInt32: [Operation]] = [:]
    private var nextTransaction: UInt32 = 1
    private var writes: [(path: String, value: [UInt8])] = []
    private var readPaths: [String] = []
    private var messages: [String] = []
    private var failures = 0
    private var aborted = 0
    private var refusing = false

    /// Listens on `socket` and serves the first client that connects, on a thread of its own.
    init(socket path: String) throws {
        listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard listener >= 0, bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            if listener >= 0 { close(listener) }
            throw POSIXError(.EINVAL)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes + [0]) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(listener, 1) == 0 else {
            let error = POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            close(listener)
            throw error
        }
        Thread { [self] in serve() }.start()
    }

    /// Stops listening and hangs up on the client.
    /// Only the serving thread closes the sockets (and forgets them under the lock first): a descriptor closed here
    /// could be another test's by the time that thread used it.
    func stop() {
        lock.withLock {
            if listening { shutdown(listener, Int32(SHUT_RDWR)) }
            if client >= 0 { shutdown(client, Int32(SHUT_RDWR)) }
        }
    }

    /// Commits of a transaction writing `…/result/id` answered EAGAIN (the agent must start it again).
    var failResultCommits: Int {
        get { lock.withLock { failures } }
        set { lock.withLock { failures = newValue } }
    }
    var abortedCommits: Int { lock.withLock { aborted } }
    /// WATCH answers ENOSYS (the agent must poll).
    var refusesWatches: Bool {
        get { lock.withLock { refusing } }
        set { lock.withLock { refusing = newValue } }
    }
    /// The paths the client read, in order.
    var reads: [String] { lock.withLock { readPaths } }
    /// The requests, replies' errors and watch events, in order ("read data/iovm/load/request", "event …").
    var trace: [String] { lock.withLock { messages } }

    func bytes(_ path: String) -> [UInt8]? { lock.withLock { values[path] } }
    func value(_ path: String) -> String? { bytes(path).map { String(decoding: $0, as: UTF8.self) } }
    /// The values written to `path` (committed), in order.
    func history(_ path: String) -> [String] {
        lock.withLock { writes.filter { $0.path == path }.map { String(decoding: $0.value, as: UTF8.self) } }
    }

    /// A write by "dom0" (the test): fires the client's watches.
    func set(_ path: String, _ value: String) {
        lock.withLock { apply(.write(path, Array(value.utf8)), record: false) }
    }

    private func serve() {
        let fd = accept(listener, nil, nil)
        if fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        lock.withLock {
            listening = false
            close(listener)
            client = fd
        }
        guard fd >= 0 else { return }
        while let header = readExactly(fd, 16) {
            func field(_ index: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(header[index * 4 + $1]) << (8 * $1) } }
            guard let body = readExactly(fd, Int(field(3))) else { break }
            lock.withLock { handle(type: field(0), requestID: field(1), transaction: field(2), body: body) }
        }
        lock.withLock {
            client = -1
            close(fd)
        }
    }

    /// One request and its reply (called with the lock held).
    private func handle(type rawType: UInt32, requestID: UInt32, transaction: UInt32, body: [UInt8]) {
        let strings = body.split(separator: 0, maxSplits: 1, omittingEmptySubsequences: false)
        let path = String(decoding: strings.first ?? [], as: UTF8.self)
        let rest = strings.count > 1 ? Array(strings[1]) : []
        func reply(_ payload: [UInt8], as replyType: UInt32 = rawType) { send(replyType, requestID, transaction, payload) }
        func fail(_ name: String) {
            messages.append(name)
            reply(Array(name.utf8) + [0], as: MessageType.error.rawValue)
        }
        messages.append("\(MessageType(rawValue: rawType).map { "\($0)" } ?? "type \(rawType)") \(transaction == 0 ? "" : "tx \(transaction) ")\(path)")
        func perform(_ operation: Operation) {
            if transaction != 0 { transactions[transaction, default: []].append(operation) } else { apply(operation, record: true) }
            reply(Array("OK".utf8) + [0])
        }
        switch MessageType(rawValue: rawType) {
        case .read:
            readPaths.append(path)
            if let value = values[path] { reply(value) } else { fail("ENOENT") }
        case .write:
            // xenstored's entry-size quota: a guest's node (data, permissions, children's names) holds 2048 bytes.
            if rest.count > 2048 - 64 { fail("ENOSPC") } else { perform(.write(path, rest)) }
        case .rm: perform(.rm(path))
        case .directory:
            let children = Set(values.keys.filter { $0.hasPrefix(path + "/") }.map { $0.dropFirst(path.count + 1).split(separator: "/")[0] })
            if values[path] == nil && children.isEmpty { fail("ENOENT") } else { reply(children.sorted().flatMap { Array($0.utf8) + [0] }) }
        case .watch where refusing: fail("ENOSYS")
        case .watch:
            let token = String(decoding: rest.prefix { $0 != 0 }, as: UTF8.self)
            watches.append((path, token))
            reply(Array("OK".utf8) + [0])
            messages.append("event \(path)")
            send(MessageType.watchEvent.rawValue, 0, 0, Array(path.utf8) + [0] + Array(token.utf8) + [0])  // as xenstored: once up front
        case .unwatch:
            watches.removeAll { $0.path == path }
            reply(Array("OK".utf8) + [0])
        case .transactionStart:
            transactions[nextTransaction] = []
            reply(Array("\(nextTransaction)".utf8) + [0])
            nextTransaction += 1
        case .transactionEnd:
            guard let operations = transactions.removeValue(forKey: transaction) else { return fail("ENOENT") }
            let writesResult = operations.contains { if case .write(let path, _) = $0 { path.hasSuffix("result/id") } else { false } }
            if path == "T" && writesResult && failures > 0 {
                failures -= 1
                aborted += 1
                return fail("EAGAIN")
            }
            if path == "T" { for operation in operations { apply(operation, record: true) } }
            reply(Array("OK".utf8) + [0])
        default: fail("ENOSYS")
        }
    }

    /// Changes the store and fires the watches on the changed path (called with the lock held).
    private func apply(_ operation: Operation, record: Bool) {
        let changed: String
        switch operation {
        case .write(let path, let value):
            values[path] = value
            if record { writes.append((path, value)) }
            changed = path
        case .rm(let path):
            for key in values.keys where key == path || key.hasPrefix(path + "/") { values[key] = nil }
            changed = path
        }
        for watch in watches where changed == watch.path || changed.hasPrefix(watch.path + "/") {
            messages.append("event \(changed)")
            send(MessageType.watchEvent.rawValue, 0, 0, Array(changed.utf8) + [0] + Array(watch.token.utf8) + [0])
        }
    }

    private func send(_ type: UInt32, _ requestID: UInt32, _ transaction: UInt32, _ payload: [UInt8]) {
        guard client >= 0 else { return }
        var message: [UInt8] = []
        for field in [type, requestID, transaction, UInt32(payload.count)] { message += (0..<4).map { UInt8(truncatingIfNeeded: field >> (8 * $0)) } }
        message += payload
        var sent = 0
        while sent < message.count {
            let n = message.withUnsafeBytes { write(client, $0.baseAddress! + sent, message.count - sent) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            sent += n
        }
    }

    private func readExactly(_ fd: Int32, _ count: Int) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + got, count - got) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return nil }
            got += n
        }
        return buffer
    }
}
