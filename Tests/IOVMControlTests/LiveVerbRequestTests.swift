import CPUSets
import Foundation
import IOVMControl
import IOVMCore
import IOVMWireFormat
import Synchronization
import Testing

/// The live verbs as `iovm watch` serves them: the wire format's requests, carried out through the same engine,
/// lock and seam as the command's own, and every bad request refused before anything is touched.
@Suite("Live verb requests")
struct LiveVerbRequestTests {
    let live = LiveChangeTests()

    func reply(_ engine: ApplyEngine, _ json: String) throws -> LiveVerbReply {
        let bytes = engine.serve(requestDocument: Array(json.utf8), pid: 42).document()
        return try JSONDecoder().decode(LiveVerbReply.self, from: Data(bytes))
    }

    @Test("pin, unpin and weight requests change managed domains and answer the lines the command prints")
    func carriesOut() throws {
        let (fake, engine) = try live.applied()
        let before = fake.calls.count
        let pinned = try reply(engine, #"{"version":1,"verb":"pin","targets":[{"domain":"iovm0","cores":"2"},{"domain":"iovm1","cores":"3"}],"wait":0}"#)
        #expect(pinned.error == nil && pinned.pid == 42 && pinned.version == 1)
        #expect(pinned.changes.map(\.line).allSatisfy { $0.hasSuffix(" ms") })
        let ids = Dictionary(uniqueKeysWithValues: fake.snapshot.domains.map { ($0.name, $0.domid) })
        let iovm0 = try #require(ids["iovm0"])
        let iovm1 = try #require(ids["iovm1"])
        #expect(pinned.changes.map { $0.line.components(separatedBy: " in ")[0] } == ["iovm0 (\(iovm0)): pinned to cores 2", "iovm1 (\(iovm1)): pinned to cores 3"])
        #expect(pinned.changes.map(\.domid) == [iovm0, iovm1])
        #expect(fake.snapshot.domains.first { $0.name == "iovm1" }?.hardAffinity == [[3]])
        let unpinned = try reply(engine, #"{"version":1,"verb":"pin","targets":[{"domain":"iovm1"}],"wait":0}"#)
        #expect(unpinned.changes.first?.line.contains("unpinned (every core)") == true)
        let weighed = try reply(engine, #"{"version":1,"verb":"weight","targets":[{"domain":"iovm0","weight":512}],"cap":25,"wait":0}"#)
        #expect(weighed.changes.first?.line.contains("weight 512, cap 25") == true)
        #expect(
            Array(fake.calls.dropFirst(before)) == [
                "managedDomain iovm0", "managedDomain iovm1", "setAffinity iovm0 2", "setAffinity iovm1 3",
                "managedDomain iovm1", "setAffinity iovm1 all", "managedDomain iovm0", "setSchedule iovm0 512 25",
            ])
    }

    @Test(
        "a bad request is refused with the reason and changes nothing",
        arguments: [
            (#"{"version":2,"verb":"pin","targets":[{"domain":"iovm0","cores":"2"}],"wait":0}"#, "request version 2; this iovm speaks version 1"),
            (#"{"version":1,"verb":"pin","targets":[],"wait":0}"#, "name at least one domain"),
            (#"{"version":1,"verb":"pin","targets":[{"domain":"iovm0","cores":"2-x"}],"wait":0}"#, "invalid CPU list \"2-x\""),
            (#"{"version":1,"verb":"pin","targets":[{"domain":"iovm0","cores":"all"}],"wait":0}"#, "iovm0: cores must be listed"),
            (#"{"version":1,"verb":"weight","targets":[{"domain":"iovm0","weight":0}],"wait":0}"#, "iovm0: weight must be 1-65535"),
            (#"{"version":1,"verb":"weight","targets":[{"domain":"iovm0"}],"wait":0}"#, "iovm0: weight must be 1-65535"),
            (#"{"version":1,"verb":"weight","targets":[{"domain":"iovm0","weight":9}],"cap":-1,"wait":0}"#, "cap must be 0 or more"),
            (#"{"version":1,"verb":"pin","targets":[{"domain":"iovm0","cores":"2"}],"wait":-1}"#, "--wait must be 0 to 86400 seconds"),
            (#"{"version":1,"verb":"pin","targets":[{"domain":"nosuch","cores":"2"}],"wait":0}"#, "iovm: error: no domain nosuch"),
            (#"{"version":1,"verb":"pin","targets":[{"domain":"Domain-0","cores":"2"}],"wait":0}"#, "iovm did not create"),
            (#"{"version":1,"verb":"reboot","targets":[{"domain":"iovm0"}],"wait":0}"#, "control socket request"),
            (#"{"version":1,"verb":"pin","targets":[{"domain":"iovm0""#, "line 1, column 55: unexpected end of file"),
        ])
    func refuses(_ json: String, _ expected: String) throws {
        let (fake, engine) = try live.applied()
        let before = fake.calls.count
        let answer = try reply(engine, json)
        #expect(answer.changes.isEmpty)
        #expect(answer.error?.contains(expected) == true, "\(answer.error ?? "no error")")
        #expect(!fake.calls.dropFirst(before).contains { $0.hasPrefix("set") })
    }

    @Test("while an apply holds the host lock, a request gets apply's busy error and changes nothing")
    func lock() throws {
        let (fake, engine) = try live.applied()
        let hold = try fake.acquire(timeout: 0)
        defer { hold.release() }
        let busy = try reply(engine, #"{"version":1,"verb":"pin","targets":[{"domain":"iovm0","cores":"3"}],"wait":0}"#)
        #expect(busy.error?.hasPrefix("error: another iovm apply is running") == true, "\(busy.error ?? "")")
        #expect(fake.snapshot.domains.first { $0.name == "iovm0" }?.hardAffinity == [[0, 1, 2, 3]])
    }

    @Test("a request whose client hung up while it waited for the lock changes nothing, and the lock is asked first")
    func abandoned() throws {
        let (fake, engine) = try live.applied()
        let before = fake.calls.count
        let asked = Mutex(0)
        let request = Array(#"{"version":1,"verb":"pin","targets":[{"domain":"iovm0","cores":"3"}],"wait":0}"#.utf8)
        let gone = engine.serve(requestDocument: request, pid: 42) {
            asked.withLock { $0 += 1 }
            return true
        }
        #expect(gone.changes.isEmpty)
        #expect(gone.error?.contains("hung up while the change waited for the host lock; nothing was changed") == true, "\(gone.error ?? "")")
        #expect(asked.withLock { $0 } == 1)
        #expect(fake.calls.count == before)
        // While the lock is held, the lock's refusal comes first (the client is not asked).
        let hold = try fake.acquire(timeout: 0)
        let busy = engine.serve(requestDocument: request, pid: 42) {
            asked.withLock { $0 += 1 }
            return true
        }
        hold.release()
        #expect(busy.error?.contains("another iovm apply is running") == true)
        #expect(asked.withLock { $0 } == 1)
        let stayed = engine.serve(requestDocument: request, pid: 42) { false }
        #expect(stayed.error == nil && stayed.changes.count == 1)
    }

    @Test("the command line and the control socket refuse with the same words")
    func sameWords() {
        #expect(LiveVerbRefusal.weight(0, of: "iovm0")?.description == "iovm0: weight must be 1-65535")
        #expect(LiveVerbRefusal.weight(256, of: "iovm0") == nil)
        #expect(LiveVerbRefusal.cap(-1)?.description == "cap must be 0 or more")
        #expect(LiveVerbRefusal.cap(0) == nil)
        #expect(LiveVerbRefusal.wait(86_401)?.description == "--wait must be 0 to 86400 seconds")
        #expect(LiveVerbRefusal.wait(0) == nil)
        #expect(LiveVerbRefusal.coresNotListed("iovm1=all").description == "iovm1=all: cores must be listed; use `iovm unpin` for all")
    }

    @Test("a request's JSON round-trips in the wire format")
    func wireFormat() throws {
        let request = LiveVerbRequest(verb: .weight, targets: [.init(domain: "iovm0", weight: 512)], cap: 50, wait: 2)
        let text = try JSONText.line(request)
        #expect(text == #"{"cap":50,"targets":[{"domain":"iovm0","weight":512}],"verb":"weight","version":1,"wait":2}"#)
        #expect(try JSONDecoder().decode(LiveVerbRequest.self, from: Data(text.utf8)) == request)
    }

    @Test("requests and replies are written by hand as the encoder writes them, byte for byte")
    func writtenAsTheEncoderWrites() throws {
        let requests = [
            LiveVerbRequest(verb: .pin, targets: [.init(domain: "iovm0", cores: "2-3,^3"), .init(domain: "iovm1")], wait: 0),
            LiveVerbRequest(verb: .weight, targets: [.init(domain: "a \"b\"/c\u{1}é", weight: 65_535)], cap: 0, wait: 86_400),
            LiveVerbRequest(verb: .weight, targets: [.init(domain: "iovm0", weight: -1)], cap: -5, wait: 0.25),
        ]
        for request in requests {
            // Bytes, not Strings: String's == would take "é" and "e" + U+0301 for the same.
            #expect(Array(JSONLineWriter.line(request).utf8) == Array(try JSONText.line(request).utf8))
        }
        let replies = [
            LiveVerbReply(changes: [.init(line: "iovm0 (3): pinned to cores 2 in 1.2 ms", domid: 3), .init(line: "x", domid: .max)], pid: 42),
            LiveVerbReply.refused("no such domain \"x\"\n", pid: -1),
        ]
        for reply in replies {
            #expect(reply.document() == Array(try JSONText.line(reply).utf8))
            #expect(try JSONDecoder().decode(LiveVerbReply.self, from: Data(reply.document())) == reply)
        }
    }
}
