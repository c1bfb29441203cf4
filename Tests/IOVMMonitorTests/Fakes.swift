import Foundation
import IOVMCore
import IOVMMonitor
import IOVMWireFormat

/// A scripted stand-in for the host's counters, for unit tests only: each `read()` returns the
/// next scripted reading (or throws the next scripted error); the last one repeats.
final class FakeCounterSource: CounterSource {
    var script: [Result<CounterReading, any Error>]
    private(set) var reads = 0

    init(_ script: [Result<CounterReading, any Error>]) { self.script = script }

    convenience init(readings: [CounterReading]) { self.init(readings.map { .success($0) }) }

    func read() throws -> CounterReading {
        defer { reads += 1 }
        return try script[min(reads, script.count - 1)].get()
    }
}

/// A clock that never waits: sleeping jumps to the deadline. CPU time grows by `cpuPerRead`
/// each time it is asked (as if each sample cost that much CPU).
final class FakeClock: SamplerClock {
    var now: Double = 100
    var cpu: Double = 0
    var cpuPerRead: Double
    private(set) var sleeps: [Double] = []

    init(cpuPerRead: Double = 0.001) { self.cpuPerRead = cpuPerRead }

    func monotonic() -> Double { now }
    func wallTime() -> Double { 1_700_000_000 + now }
    func sleep(until deadline: Double) {
        sleeps.append(deadline)
        now = max(now, deadline)
    }
    func processCPUSeconds() -> Double {
        cpu += cpuPerRead
        return cpu
    }
}

enum Sim {
    static let hz: UInt64 = 2_400_000_000

    /// An IOVM sample whose NIC counters are `rx`/`tx` bytes and CPU time `cpu` ns.
    static func iovm(_ name: String, domid: UInt32 = 1, cpu: UInt64, rx: UInt64, tx: UInt64, width: CounterWidth? = nil) -> IOVMSample {
        IOVMSample(
            iovm: name, domid: domid, cpuNanoseconds: cpu, vcpus: 1,
            nics: [InterfaceCounters(name: "eth0", kind: .nic, rxBytes: rx, txBytes: tx)],
            // The vif sees the opposite directions: what the guest receives leaves the IOVM on the vif (vif tx).
            vifs: [InterfaceCounters(name: "vif9.0", kind: .vif, rxBytes: tx, txBytes: rx, guest: "guest1")],
            counterWidth: width)
    }

    /// A recorded run: `seconds` samples one second apart; each IOVM moves `rxMbps`/`txMbps` and
    /// uses `cpuShare` of a core (index 0 varies a little over time so the charts are not flat).
    static func run(
        into directory: URL, label: String?, plan: Plan?, iovms: [(name: String, rxMbps: Double, txMbps: Double, cpuShare: Double)],
        seconds: Int, gap: (iovm: String, from: Int, to: Int)? = nil
    ) throws {
        let meta = RunMeta(interval: 1, cpuHz: hz, frequencyWarning: nil, started: 1_764_100_000, label: label, plan: plan, iovms: iovms.map(\.name))
        let recorder = try RunRecorder(directory: directory, meta: meta, plan: plan)
        var totals = iovms.map { _ in (cpu: 0.0, rx: 0.0, tx: 0.0) }
        for t in 0...seconds {
            var samples: [IOVMSample] = []
            var missing: [String] = []
            for (index, iovm) in iovms.enumerated() {
                let wobble = 1 + 0.04 * sin(Double(t + index) / 2)
                if t > 0 {
                    totals[index].rx += iovm.rxMbps * 1e6 / 8 * wobble
                    totals[index].tx += iovm.txMbps * 1e6 / 8 * wobble
                    totals[index].cpu += iovm.cpuShare * 1e9 * (1 + 0.03 * cos(Double(t)))
                }
                if let gap, gap.iovm == iovm.name, (gap.from...gap.to).contains(t) {
                    missing.append(iovm.name)
                    continue
                }
                samples.append(
                    self.iovm(
                        iovm.name, domid: UInt32(index + 1), cpu: UInt64(totals[index].cpu),
                        rx: UInt64(totals[index].rx), tx: UInt64(totals[index].tx)))
            }
            try recorder.append(SampleRecord(time: 1_764_100_000 + Double(t), elapsed: Double(t), cpuHz: hz, iovms: samples, missing: missing))
        }
    }

    /// A planned topology of the paper's kind on 4 cores with 3 NICs.
    static func plan(_ kind: ConfigurationKind, placement: PlacementKind) throws -> Plan {
        let nics = ["0000:00:04.0", "0000:00:05.0", "0000:00:06.0"]
        let document = TopologyDocument(
            name: "paper-\(kind.rawValue)",
            host: HostDocument(cores: 4, memoryMiB: 8192, scheduler: "credit"),
            defaults: DefaultsDocument(kernel: "/boot/vmlinux", ramdisk: "/boot/initrd"),
            configuration: ConfigurationDocument(kind: kind, groups: kind == .hybrid ? 2 : nil),
            nics: nics.map { NICDocument(pci: $0) },
            guests: (0..<3).map { GuestDocument(name: "guest\($0 + 1)") },
            placement: PlacementDocument(kind: placement))
        return try Planner().plan(document)
    }
}
