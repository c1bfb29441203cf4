import Foundation
import IOVMCore
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

    /// The static agent leaves `agent/uptime` at its last change while the IOVM is idle; its sample says every period.
    @Test func anAgentsSampleIsReadInsteadOfItsKeys() throws {
        let (host, dom0) = host()
        try dom0.write(
            "/local/domain/1/data/iovm/sample",
            "iovm-sample 1\nseq 9\ninterval 1\nuptime 20.25\nbits 64\nc eth0 nic eth0 1000 2000 10 20\nc vif2_0 vif vif2.0 300 400 3 4\n"
                + "n vif2_0 vif2.0 78\n")
        let iovm = try #require(try LibvirtCounterSource(host: host, dom0: dom0, selection: .publishing).read().iovms.first { $0.iovm == "iovm0" })
        #expect(iovm.counterTime == 20.25 && iovm.countersPublished && iovm.counterWidth == .bits64)
        #expect(iovm.nics.first?.txBytes == 2000 && iovm.vifs.first?.guest == "guest1" && iovm.vifs.first?.notifications == 78)
    }

    @Test("the remote script prints an agent's sample on one line, and the keys of an agent without one")
    func remoteScriptPrefersTheSample() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("iovm-iovmdata-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        // A name may hold any byte but '/', ':', NUL and blanks: a ';' or a backslash too (dash's echo would read "\\n").
        let sample =
            "iovm-sample 1\nseq 9\ninterval 1\nuptime 20.25\nbits 64\nc eth0 nic eth0 1000 2000 10 20\nc x_y nic x;y 1 2 3 4\n"
            + "c a_nb nic a\\nb 5 6 7 8\n"
        for (path, value) in [
            ("/local/domain/3/data/iovm/sample", sample), ("/local/domain/3/data/iovm/counters/eth0", "nic eth0 1 2 3 4"),
            ("/local/domain/3/data/iovm/agent/uptime", "12.5"), ("/local/domain/4/data/iovm/counters/eth0", "nic eth0 5 6 7 8"),
            ("/local/domain/4/data/iovm/agent/uptime", "7.5"), ("/local/domain/3/name", "iovm0"), ("/local/domain/4/name", "stock"),
        ] {
            try FileManager.default.createDirectory(atPath: root + "/store" + (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(value.utf8).write(to: URL(fileURLWithPath: root + "/store" + path))
        }
        try FileManager.default.createDirectory(atPath: root + "/bin", withIntermediateDirectories: true)
        for (name, text) in [
            "xenstore-list": "#!/bin/sh\n[ -d \"\(root)/store$1\" ] && ls \"\(root)/store$1\"\n",
            // -R: raw; without it the real tool escapes a newline as \\n, so a value that holds one must be read raw.
            "xenstore-read": "#!/bin/sh\nraw=0; [ \"$1\" = -R ] && { raw=1; shift; }\n[ -f \"\(root)/store$1\" ] || exit 1\n"
                + #"if [ $raw = 1 ]; then cat "\#(root)/store$1"; else awk 'NR > 1 { printf "\\n" } { printf "%s", $0 }' "\#(root)/store$1"; fi; echo"#
                + "\n",
        ] {
            try Data(text.utf8).write(to: URL(fileURLWithPath: "\(root)/bin/\(name)"))
            chmod("\(root)/bin/\(name)", 0o755)
        }
        let outcome = try ProcessRunner.run("/bin/sh", ["-c", SSHXenStore.iovmDataScript([3, 4])], environment: ["PATH": "\(root)/bin:/usr/bin:/bin"], timeout: 30)
        #expect(outcome.succeeded, "\(outcome.output)")
        let data = IOVMData.parse(outcome.output)
        #expect(data.samples == [3: sample], "\(outcome.output)")
        #expect(data.lists["/local/domain/3/data/iovm/counters"] == nil && data.values["/local/domain/3/data/iovm/agent/uptime"] == nil)
        #expect(data.lists["/local/domain/4/data/iovm/counters"] == ["eth0"] && data.values["/local/domain/4/data/iovm/agent/uptime"] == "7.5")
        #expect(CounterLayout.parseSample(data.samples[3] ?? "")?.time == 20.25)
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
