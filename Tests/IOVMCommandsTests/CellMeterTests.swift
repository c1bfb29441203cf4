import IOVMControl
import IOVMMonitor
import Testing

@testable import IOVMCommands

/// What `iovm experiment` reads of an IOVM: its sample mapped to the runner's counters.
@Suite("Cell meter")
struct CellMeterTests {
    @Test("an IOVM's counters: its NICs' traffic summed; notifications and packets over the vifs that published notifications")
    func counters() {
        let sample = IOVMSample(
            iovm: "iovm0", domid: 3, cpuNanoseconds: 42,
            nics: [
                InterfaceCounters(name: "eth0", kind: .nic, rxBytes: 100, txBytes: 200, rxPackets: 1, txPackets: 2),
                InterfaceCounters(name: "eth1", kind: .nic, rxBytes: 10, txBytes: 20, rxPackets: 3, txPackets: 4),
            ],
            vifs: [
                InterfaceCounters(name: "vif7.0", kind: .vif, rxBytes: 5, txBytes: 6, rxPackets: 700, txPackets: 300, notifications: 40),
                InterfaceCounters(name: "vif8.0", kind: .vif, rxBytes: 5, txBytes: 6, rxPackets: 50, txPackets: 50, notifications: 10),
                InterfaceCounters(name: "vif9.0", kind: .vif, rxBytes: 5, txBytes: 6, rxPackets: 9_999, txPackets: 9_999),  // none published
            ], counterTime: 12.5)
        let counters = MeterReading.Counters(sample)
        #expect(counters.cpuNanoseconds == 42 && counters.rxBytes == 110 && counters.txBytes == 220 && counters.rxPackets == 4 && counters.txPackets == 6)
        #expect(counters.published && counters.counterTime == 12.5)
        #expect(counters.notifications == 50)
        #expect(counters.vifPackets == 1_100)
        // An agent that publishes no notifications: both unknown.
        var old = sample
        for index in old.vifs.indices { old.vifs[index].notifications = nil }
        let without = MeterReading.Counters(old)
        #expect(without.notifications == nil && without.vifPackets == nil)
        #expect(without.rxBytes == counters.rxBytes && without.txPackets == counters.txPackets)
    }
}
