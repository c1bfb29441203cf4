import Foundation
import IOVMControl
import IOVMCore
import IOVMWireFormat
import Logging
import Synchronization
import Testing

/// An apply or destroy killed after any step (`kill -9`: no rollback runs) leaves a host that a new apply
/// converges from, and that a destroy returns to exactly how it was. The kill is simulated at each crash
/// point by keeping the fake host's state as it was at that instant and continuing from it in a new "process".
@Suite("An apply killed after any step")
struct CrashTableTests {
    static let nics = ["0000:00:10.0", "0000:00:11.0", "0000:00:12.0", "0000:00:13.0"]

    /// Table 3's hybrid with IOVM-affinity in a dedicated pool: pools, NICs, IOVMs, guests.
    func plan() throws -> Plan {
        try Planner().plan(
            TopologyDocument(
                name: "crash", host: HostDocument(cores: 4, memoryMiB: 8192, scheduler: "credit"),
                defaults: DefaultsDocument(kernel: "/lab/vmlinux"),
                configuration: ConfigurationDocument(kind: .hybrid, groups: 2), nics: Self.nics.map { NICDocument(pci: $0) },
                guests: (1...4).map { GuestDocument(name: "guest\($0)") },
                placement: PlacementDocument(kind: .iovmAffinity, dedicatedPool: true)))
    }

    func json(_ plan: Plan) -> [String: String] { Dictionary(uniqueKeysWithValues: plan.domains.map { ($0.name, "{}") }) }

    /// The engine over `fake`, its crash points (engine and backend) calling `point`.
    func engine(_ fake: FakeXenBackend, point: CrashPoint? = nil) -> ApplyEngine {
        var engine = ApplyEngine(backend: fake, lock: fake, logger: Logger(label: "crash"))
        engine.crashPoint = point
        fake.crashPoint.withLock { $0 = point }
        return engine
    }

    /// Every crash point a full apply passes, in order.
    func points(of plan: Plan) throws -> [String] {
        let seen = Mutex<[String]>([])
        _ = try engine(FakeXenBackend(nics: Self.nics), point: { step in seen.withLock { $0.append(step) } }).apply(plan, libxlJSON: json(plan))
        return seen.withLock { $0 }
    }

    /// Runs `body` on a fresh host and returns the host's state at the moment `step` was reached.
    func stateKilled(at step: String, _ body: (ApplyEngine) throws -> Void, on fake: FakeXenBackend) -> FakeXenBackend.State? {
        let frozen = Mutex<FakeXenBackend.State?>(nil)
        let point: CrashPoint = { [fake] name in
            guard name == step else { return }
            frozen.withLock { if $0 == nil { $0 = fake.snapshot } }
        }
        try? body(engine(fake, point: point))
        return frozen.withLock { $0 }
    }

    func pristine() -> FakeXenBackend.State { FakeXenBackend(nics: Self.nics).snapshot }

    @Test("the table: after each step, a new apply converges and a destroy leaves the host as it was")
    func table() throws {
        let plan = try plan()
        let points = try points(of: plan)
        #expect(points.contains("pool:iovm-pool") && points.contains("assignable:0000:00:12.0"))
        #expect(points.contains("intent:iovm1") && points.contains("untagged:iovm1") && points.contains("create:iovm1"))
        #expect(points.contains("devd:iovm0") && points.contains("vifs:guest4"))
        var rows: [String] = []
        for step in points {
            let killed = try #require(stateKilled(at: step, { try $0.apply(plan, libxlJSON: json(plan)) }, on: FakeXenBackend(nics: Self.nics)), "\(step)")
            // The next process: the same host, the lock free again.
            let host = FakeXenBackend(state: killed)
            let report = try engine(host).apply(plan, libxlJSON: json(plan))
            let after = try engine(host).preview(plan)
            #expect(after.changes.isEmpty && after.conflicts.isEmpty, "after a kill at \(step), apply did not converge: \(after.changes) \(after.conflicts)")
            #expect(Set(host.snapshot.domains.map(\.name)) == Set(["Domain-0"] + plan.domains.map(\.name)), "\(step)")
            #expect(host.snapshot.domains.allSatisfy { $0.domid == 0 || $0.tag?.incomplete != true }, "\(step)")
            _ = try engine(host).destroy(topology: plan.topology, nics: plan.iovms.flatMap(\.pci))
            var left = host.snapshot
            left.nextDomid = 1
            #expect(left == pristine(), "after a kill at \(step) and destroy, the host differs: \(left)")
            rows.append("\(step): apply redid \(report.done.count) steps, destroy left the host as before")
        }
        print("kill table (\(rows.count) crash points):\n  " + rows.joined(separator: "\n  "))
    }

    @Test("a destroy killed after any step is finished by the next destroy")
    func destroyTable() throws {
        let plan = try plan()
        let base = FakeXenBackend(nics: Self.nics)
        _ = try engine(base).apply(plan, libxlJSON: json(plan))
        let applied = base.snapshot
        let seen = Mutex<[String]>([])
        let probe = FakeXenBackend(state: applied)
        _ = try engine(probe, point: { step in seen.withLock { $0.append(step) } }).destroy(topology: plan.topology, nics: plan.iovms.flatMap(\.pci))
        let points = seen.withLock { $0 }
        #expect(points.contains("destroy:guest1") && points.contains("destroy-pool:iovm-pool") && points.contains("release:0000:00:13.0"))
        for step in points {
            let killed = try #require(
                stateKilled(at: step, { _ = try $0.destroy(topology: plan.topology, nics: plan.iovms.flatMap(\.pci)) }, on: FakeXenBackend(state: applied)))
            let host = FakeXenBackend(state: killed)
            _ = try engine(host).destroy(topology: plan.topology, nics: plan.iovms.flatMap(\.pci))
            var left = host.snapshot
            left.nextDomid = 1
            #expect(left == pristine(), "after a destroy killed at \(step), the next destroy left: \(left)")
        }
    }

    @Test("a stale intent (killed before libxl created the domain) is removed by the next apply")
    func staleIntent() throws {
        let plan = try plan()
        let killed = try #require(stateKilled(at: "intent:iovm0", { try $0.apply(plan, libxlJSON: json(plan)) }, on: FakeXenBackend(nics: Self.nics)))
        #expect(!killed.intents.isEmpty)
        let host = FakeXenBackend(state: killed)
        _ = try engine(host).apply(plan, libxlJSON: json(plan))
        #expect(host.snapshot.intents.isEmpty)
    }
}
