import Foundation
import IOVMMonitor
import Testing
import XenKit

@testable import IOVMXen

/// `iovm monitor --connect`: CPU time and Hz through libvirt, the agents' counters from the host's xenstore over ssh.
@Suite struct LibvirtCounterSourceTests {
    /// A host with iovm0 (domid 1) publishing a NIC and a vif of guest1 (domid 2), and guest1 publishing nothing.
    func host() -> (RecordingLibvirtHost, RecordingRemoteDom0) {
        let store = MemoryTagStore()
        let host = RecordingLibvirtHost(nics: [], store: store)
        host.addForeign("iovm0")
        host.addForeign("guest1")
        host.setCPU("iovm0", nanoseconds: 1_500_000_000)
        let root = "/local/domain/1/data/iovm"
        try? store.write("/local/domain/1/name", "iovm0")
        try? store.write("/local/domain/2/name", "guest1")
        try? store.write("\(root)/counters/eth0", "nic eth0 1000 2000 10 20")
        try? store.write("\(root)/counters/vif2_0", "vif vif2.0 300 400 3 4")
        try? store.write("\(root)/notifications/vif2_0", "vif2.0 77")
        try? store.write("\(root)/agent/bits", "64")
        try? store.write("\(root)/agent/uptime", "12.5")
        return (host, RecordingRemoteDom0(store: store))
    }

    @Test func readsCPUThroughLibvirtAndCountersInOneRoundTrip() throws {
        let (host, dom0) = host()
        let source = LibvirtCounterSource(host: host, dom0: dom0, selection: .named(["iovm0", "absent"]))
        let reading = try source.read()
        #expect(reading.cpuHz == 2_400_000_000)
        #expect(reading.iovms.map(\.iovm) == ["iovm0"])
        let iovm = try #require(reading.iovms.first)
        #expect(iovm.domid == 1 && iovm.cpuNanoseconds == 1_500_000_000 && iovm.countersPublished)
        #expect(iovm.nics.map(\.name) == ["eth0"] && iovm.nics.first?.rxBytes == 1000 && iovm.nics.first?.txBytes == 2000)
        #expect(iovm.vifs.first?.guest == "guest1" && iovm.vifs.first?.notifications == 77)
        #expect(iovm.counterWidth == .bits64 && iovm.counterTime == 12.5)
        #expect(dom0.calls == ["iovm-data 1"])
    }

    @Test func publishingWatchesOnlyTheDomainsWhoseAgentPublishes() throws {
        let (host, dom0) = host()
        let reading = try LibvirtCounterSource(host: host, dom0: dom0, selection: .publishing).read()
        #expect(reading.iovms.map(\.iovm) == ["iovm0"])
        #expect(dom0.calls.count == 1 && Set(dom0.calls[0].split(separator: " ").dropFirst()) == ["0", "1", "2"])
        // Domain-0 is the IOVM of the centralized configuration: watched once its agent publishes.
        try dom0.write("/local/domain/0/data/iovm/counters/eth0", "nic eth0 5 6 1 1")
        let centralized = try LibvirtCounterSource(host: host, dom0: dom0, selection: .publishing).read()
        #expect(Set(centralized.iovms.map(\.iovm)) == ["Domain-0", "iovm0"])
    }

    @Test func linesFromOneRoundTripBecomeTheCountersNodes() {
        let data = IOVMData.parse(
            "L /local/domain/3/data/iovm/counters eth0 vif5_0\nV /local/domain/3/data/iovm/counters/eth0 nic eth0 1 2 3 4\nV /local/domain/3/data/iovm/agent/bits 64\n"
                + "L /local/domain/3/data/iovm/notifications\nN 0 Domain-0\nN 5 web\nN 6 \n")
        #expect(data.lists["/local/domain/3/data/iovm/counters"] == ["eth0", "vif5_0"])
        #expect(data.lists["/local/domain/3/data/iovm/notifications"] == [])
        #expect(data.values["/local/domain/3/data/iovm/counters/eth0"] == "nic eth0 1 2 3 4")
        #expect(data.values["/local/domain/3/data/iovm/agent/bits"] == "64")
        #expect(data.names == [0: "Domain-0", 5: "web", 6: ""])
    }
}
