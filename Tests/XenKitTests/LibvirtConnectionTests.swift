import CPUSets
import Foundation
import Testing

@testable import XenKit

/// XenKit's libvirt layer against libvirt's own test driver (`test:///default`, in libvirt.so.0: real
/// libvirt, no daemon), and its error funnel with failures forced through ``LibXLMocking``.
///
/// The test driver's state is shared by every connection of the process, so each test uses its own names.
@Suite struct LibvirtConnectionTests {
    static let namespace = "https://iovm.dev/xmlns/libvirt/1"

    static func xml(_ name: String, metadata: Bool) -> String {
        """
        <domain type='test'>
          <name>\(name)</name>
          \(metadata ? "<metadata><iovm:managed xmlns:iovm='\(namespace)'><iovm:topology>t</iovm:topology></iovm:managed></metadata>" : "")
          <memory unit='KiB'>262144</memory>
          <vcpu>2</vcpu>
          <os><type arch='i686'>hvm</type></os>
        </domain>
        """
    }

    @Test func opensTheTestDriverAndReadsTheHost() throws {
        let connection = try LibvirtConnection(uri: "test:///default")
        #expect(try connection.driverName() == "TEST")
        #expect(try connection.hostCPUCount() == 16)
        #expect(try connection.libraryVersion().hasPrefix("9."))
        let test = try #require(try connection.domains().first { $0.name == "test" })
        #expect(test.id == 1)
        #expect(test.state == 1)
        #expect(test.uuid.count == 36)
    }

    /// A host that dies under an open connection returns an error instead of killing the process with SIGPIPE
    /// (libvirt leaves SIGPIPE to the application: the lab's killed host ended an apply with exit 141).
    @Test func aDeadTransportCannotKillTheProcessWithSIGPIPE() throws {
        _ = try LibvirtConnection(uri: "test:///default")
        var action = sigaction()
        #expect(sigaction(SIGPIPE, nil, &action) == 0)
        #expect(unsafeBitCast(action.__sigaction_handler.sa_handler, to: Int.self) == 1)  // SIG_IGN
    }

    @Test func createsReadsMetadataAndDestroysATransientDomain() throws {
        let connection = try LibvirtConnection(uri: "test:///default")
        let created = try connection.createDomain(xml: Self.xml("lvtest-tagged", metadata: true), name: "lvtest-tagged")
        #expect(created.name == "lvtest-tagged")
        #expect(created.vcpus == 2)
        #expect(created.maxMemoryKiB == 262_144)
        let tag = try #require(try connection.metadata(of: "lvtest-tagged", namespace: Self.namespace))
        #expect(tag.contains("<iovm:topology>t</iovm:topology>") || tag.contains("<topology>t</topology>"))
        #expect(try connection.metadata(of: "lvtest-tagged", namespace: "https://example.invalid/other") == nil)
        try connection.destroyDomain("lvtest-tagged")
        #expect(try connection.domain(named: "lvtest-tagged") == nil)

        let plain = try connection.createDomain(xml: Self.xml("lvtest-untagged", metadata: false), name: "lvtest-untagged")
        defer { try? connection.destroyDomain(plain.name) }
        #expect(try connection.metadata(of: plain.name, namespace: Self.namespace) == nil)
    }

    @Test func pinsVCPUsAndSetsTheWeight() throws {
        let connection = try LibvirtConnection(uri: "test:///default")
        let domain = try connection.createDomain(xml: Self.xml("lvtest-pin", metadata: false), name: "lvtest-pin")
        defer { try? connection.destroyDomain(domain.name) }
        try connection.pinVCPU(domain.name, vcpu: 1, to: [3, 9], cores: 16)
        let affinity = try connection.vcpuAffinity(of: domain.name, vcpus: 2, cores: 16)
        #expect(affinity.count == 2)
        #expect(affinity[1] == [3, 9])
        let credit = try connection.credit(of: domain.name)
        #expect(credit.weight == 50)  // the test driver's fixed "weight"; it has no cap
        #expect(credit.cap == nil)
    }

    @Test func aMissingDomainOrDeviceIsNilOrANamedError() throws {
        let connection = try LibvirtConnection(uri: "test:///default")
        #expect(try connection.domain(named: "lvtest-none") == nil)
        #expect(try connection.nodeDeviceXML("pci_0000_00_10_0") == nil)
        #expect {
            try connection.destroyDomain("lvtest-none")
        } throws: { error in
            guard case .libvirt(let code, let name, let operation, let message)? = error as? XenError else { return false }
            return code == 42 && name == "VIR_ERR_NO_DOMAIN" && operation == "find domain lvtest-none on test:///default" && message == "Domain not found"
        }
    }

    @Test func anUnreachableHostIsATypedErrorNamingIt() throws {
        #expect {
            _ = try LibvirtConnection(uri: "xen+ssh://nobody@127.0.0.1:1/system?no_tty=1")
        } throws: { error in
            // The operation names the host. libvirt's message depends on a race: ssh's own refusal ("connect to host
            // 127.0.0.1 port 1: Connection refused") or, when libvirt writes first, "Cannot write data: Broken pipe"
            // (seen in the CI of 631518f).
            guard case .libvirt(_, _, let operation, let message)? = error as? XenError else { return false }
            return operation == "connect to xen+ssh://nobody@127.0.0.1:1/system?no_tty=1" && !message.isEmpty
        }
    }

    @Test func aForcedFailureNeverReachesLibvirt() throws {
        let connection = try LibvirtConnection(uri: "test:///default")
        let domain = try connection.createDomain(xml: Self.xml("lvtest-forced", metadata: false), name: "lvtest-forced")
        defer { try? connection.destroyDomain(domain.name) }
        let mocking = LibXLMocking()
        mocking.force("virDomainDestroy", code: LibvirtErrorCode.operationInvalid.rawValue)
        LibXLMocking.$current.withValue(mocking) {
            #expect(throws: XenError.libvirt(code: 55, name: "VIR_ERR_OPERATION_INVALID", operation: "destroy lvtest-forced on test:///default", message: "forced by a test")) {
                try connection.destroyDomain("lvtest-forced")
            }
        }
        #expect(mocking.trace == ["virDomainLookupByName", "virDomainDestroy"])
        #expect(try connection.domain(named: "lvtest-forced") != nil)
    }
}
