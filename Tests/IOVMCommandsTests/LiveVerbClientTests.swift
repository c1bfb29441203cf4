import Foundation
import IOVMWireFormat
import IOVMXen
import Synchronization
import Testing

/// `iovm pin`, `unpin` and `weight` as clients of a running `iovm watch`: the binary sends the request in the wire
/// format, prints what the watch answers, and runs the verb itself only when nothing serves the socket.
@Suite("Live verbs through the control socket", .serialized)
struct LiveVerbClientTests {
    let cli = CLITests()

    /// The requests a server got.
    final class Requests: Sendable {
        let list = Mutex<[LiveVerbRequest]>([])
        func withLock<T>(_ body: (inout [LiveVerbRequest]) -> T) -> T { list.withLock { body(&$0) } }
    }

    /// A server answering `reply` to every request, recording the requests.
    func serve(_ reply: LiveVerbReply) throws -> (path: String, server: ControlSocketServer, requests: Requests) {
        let path = FileManager.default.temporaryDirectory.appending(path: "iovm-lv-\(UUID().uuidString.prefix(8))").path + "/control.sock"
        let requests = Requests()
        let answer = try JSONEncoder().encode(reply)
        let server = try ControlSocketServer(path: path) { request, _ in
            if case .document(let bytes) = request, let request = try? JSONDecoder().decode(LiveVerbRequest.self, from: Data(bytes)) { requests.withLock { $0.append(request) } }
            return Array(answer)
        }
        return (path, server, requests)
    }

    @Test("pin, unpin and weight send their targets to the watch and print its lines")
    func sendsAndPrints() throws {
        let changes = [LiveVerbReply.Change(line: "iovm0 (3): pinned to cores 2 in 1.2 ms", domid: 3), .init(line: "iovm1 (4): pinned to cores 3 in 0.9 ms", domid: 4)]
        let (path, server, requests) = try serve(LiveVerbReply(changes: changes, pid: 99))
        defer { server.stop() }
        let pin = try cli.iovm(["pin", "iovm0=2", "iovm1=3", "--wait", "7", "--control-socket", path])
        #expect(pin.status == 0, "\(pin.stderr)")
        #expect(pin.stderr == "iovm0 (3): pinned to cores 2 in 1.2 ms\niovm1 (4): pinned to cores 3 in 0.9 ms\n")
        _ = try cli.iovm(["unpin", "iovm0", "--control-socket", path])
        _ = try cli.iovm(["weight", "iovm0", "iovm1", "512", "--cap", "40", "--control-socket", path])
        #expect(
            requests.withLock { $0 } == [
                LiveVerbRequest(verb: .pin, targets: [.init(domain: "iovm0", cores: "2"), .init(domain: "iovm1", cores: "3")], wait: 7),
                LiveVerbRequest(verb: .pin, targets: [.init(domain: "iovm0")]),
                LiveVerbRequest(verb: .weight, targets: [.init(domain: "iovm0", weight: 512), .init(domain: "iovm1", weight: 512)], cap: 40),
            ])
    }

    @Test("the watch's error is printed as it is and exits 1")
    func error() throws {
        let (path, server, _) = try serve(LiveVerbReply(changes: [], error: "iovm: error: no domain nosuch", pid: 99))
        defer { server.stop() }
        let pin = try cli.iovm(["pin", "nosuch=1", "--control-socket", path])
        #expect(pin.status == 1)
        #expect(pin.stderr == "iovm: error: no domain nosuch\n")
    }

    @Test("--in-process, --connect, or no server: the watch is not asked")
    func notAsked() throws {
        let (path, server, requests) = try serve(LiveVerbReply(changes: [], pid: 99))
        defer { server.stop() }
        let local = try cli.iovm(["pin", "iovm0=1", "--in-process", "--control-socket", path])
        #expect(local.status == 1)  // no Xen on this machine: the in-process verb fails at the host
        let remote = try cli.iovm(["pin", "iovm0=1", "--connect", "test:///default", "--control-socket", path])
        #expect(remote.stderr.contains("its libvirt driver is TEST"), "\(remote.stderr)")
        #expect(requests.withLock { $0 }.isEmpty)
        let none = try cli.iovm(["pin", "iovm0=1", "--control-socket", path + ".none"])
        #expect(none.status == 1)
        #expect(none.stderr == local.stderr)
    }
}

/// The live verbs are parsed by their own command when that succeeds; help, `--version` and parse errors still go
/// through the whole tree and read as the other commands' do.
@Suite("Live verbs' own parse")
struct LiveVerbParseTests {
    let cli = CLITests()

    @Test("help, a bad argument and --version after a verb read as through the root")
    func fallsBackToTheTree() throws {
        for verb in ["pin", "unpin", "weight"] {
            let help = try cli.iovm(verb, "--help")
            #expect(help.status == 0)
            #expect(help.stdout.contains("USAGE: iovm \(verb)"), "\(help.stdout)")
            #expect(help.stdout.contains("--control-socket") && help.stdout.contains("--in-process"), "\(help.stdout)")
        }
        let bad = try cli.iovm("weight", "iovm0", "0")
        #expect(bad.status == 64)
        #expect(bad.stderr.contains("Error: iovm0: weight must be 1-65535"), "\(bad.stderr)")
        #expect(bad.stderr.contains("Usage: iovm weight"), "\(bad.stderr)")
        let wait = try cli.iovm("pin", "iovm0=1", "--wait=-1")
        #expect(wait.status == 64)
        #expect(wait.stderr.contains("--wait must be 0 to 86400 seconds"), "\(wait.stderr)")
        let unknown = try cli.iovm("pin", "iovm0=1", "--bogus")
        #expect(unknown.status == 64)
        #expect(unknown.stderr.contains("Unknown option '--bogus'") && unknown.stderr.contains("Usage: iovm pin"), "\(unknown.stderr)")
    }
}

/// The plainest forms go to the watch without ArgumentParser (``IOVMCommands/IOVMCommand/liveVerbShortcut(_:)``):
/// the socket from `$IOVM_CONTROL_SOCKET`, the same request, lines and exit status as through the parser.
@Suite("Live verbs' shortcut through the control socket", .serialized)
struct LiveVerbShortcutClientTests {
    let cli = CLITests()
    let client = LiveVerbClientTests()

    @Test("a plain pin, unpin and weight reach the watch at $IOVM_CONTROL_SOCKET and print its lines")
    func plainFormsReachTheWatch() throws {
        let changes = [LiveVerbReply.Change(line: "iovm0 (3): pinned to cores 2 in 1.2 ms", domid: 3)]
        let (path, server, requests) = try client.serve(LiveVerbReply(changes: changes, pid: 99))
        defer { server.stop() }
        let environment = ["IOVM_CONTROL_SOCKET": path]
        let pin = try cli.iovm(["pin", "iovm0=2", "iovm1=3"], environment: environment)
        #expect(pin.status == 0, "\(pin.stderr)")
        #expect(pin.stderr == "iovm0 (3): pinned to cores 2 in 1.2 ms\n")
        #expect(try cli.iovm(["unpin", "iovm0"], environment: environment).status == 0)
        #expect(try cli.iovm(["weight", "iovm0", "iovm1", "512"], environment: environment).status == 0)
        // With an option, the parser reads it and sends the same socket's request.
        #expect(try cli.iovm(["weight", "iovm0", "256", "--cap", "40"], environment: environment).status == 0)
        #expect(
            requests.withLock { $0 } == [
                LiveVerbRequest(verb: .pin, targets: [.init(domain: "iovm0", cores: "2"), .init(domain: "iovm1", cores: "3")]),
                LiveVerbRequest(verb: .pin, targets: [.init(domain: "iovm0")]),
                LiveVerbRequest(verb: .weight, targets: [.init(domain: "iovm0", weight: 512), .init(domain: "iovm1", weight: 512)]),
                LiveVerbRequest(verb: .weight, targets: [.init(domain: "iovm0", weight: 256)], cap: 40),
            ])
    }

    @Test("the watch's error exits 1; with no watch the verb runs in its own process, as through the parser")
    func errorAndNoWatch() throws {
        let (path, server, _) = try client.serve(LiveVerbReply(changes: [], error: "iovm: error: no domain nosuch", pid: 99))
        defer { server.stop() }
        let refused = try cli.iovm(["pin", "nosuch=1"], environment: ["IOVM_CONTROL_SOCKET": path])
        #expect(refused.status == 1)
        #expect(refused.stderr == "iovm: error: no domain nosuch\n")
        let none = try cli.iovm(["pin", "iovm0=1"], environment: ["IOVM_CONTROL_SOCKET": path + ".none"])
        let parsed = try cli.iovm(["pin", "iovm0=1", "--control-socket", path + ".none"])
        #expect(none.status == 1)  // no Xen on this machine: the in-process verb fails at the host
        #expect(none.stderr == parsed.stderr)
    }
}
