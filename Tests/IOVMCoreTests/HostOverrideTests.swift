import IOVMCore
import IOVMWireFormat
import Testing

/// How `--host-cores`/`--host-memory` merge with the topology's `Host` and with what Xen reports.
@Suite("Host override")
struct HostOverrideTests {
    let xen = HostShape(cores: 16, memoryMiB: 30000, scheduler: "credit")

    @Test func coresFromTheCommandLineKeepTheDocumentsScheduler() {
        var document = TopologyDocument(name: "t", host: HostDocument(cores: 4, scheduler: "credit"))
        let host = HostOverride(cores: 8, memoryMiB: 4096).merge(into: &document) { xen }
        #expect(host == HostShape(cores: 8, memoryMiB: 4096, scheduler: "credit"))
        #expect(document.host?.cores == 4)  // the document itself is left alone
    }

    @Test func memoryAloneGoesIntoTheDocument() {
        var document = TopologyDocument(name: "t", host: HostDocument(cores: 4))
        var asked = false
        let host = HostOverride(cores: nil, memoryMiB: 2048).merge(into: &document) {
            asked = true
            return xen
        }
        #expect(host == nil)
        #expect(!asked)  // the document gives cores: Xen is not asked
        #expect(document.host?.memoryMiB == 2048)
    }

    @Test func withoutCoresAnywhereTheXenHostIsUsed() {
        var document = TopologyDocument(name: "t")
        #expect(HostOverride(cores: nil, memoryMiB: nil).merge(into: &document) { xen } == xen)
        #expect(HostOverride(cores: nil, memoryMiB: nil).merge(into: &document) { nil } == nil)
    }
}
