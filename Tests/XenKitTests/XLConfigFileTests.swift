import Testing
import XenKit
import XenKitTestSupport

@Suite("XLConfigFile (real libxlutil parser)")
struct XLConfigFileTests {
    static let driverDomain = """
        # iovm: network driver domain iovm0
        name = "iovm0"
        type = "pv"
        kernel = "/var/lib/iovm/kernels/vmlinux-6.1"
        extra = "console=hvc0 root=/dev/xvda ro"
        memory = 256
        maxmem = 0x100
        vcpus = 1
        cpus = "3"
        driver_domain = 1
        pci = [ '0000:00:04.0' ]
        disk = [ 'format=raw, vdev=xvda, access=ro, target=/var/lib/iovm/iovm0.img' ]
        vif = [ 'backend=iovm0,bridge=br0' ]
        on_crash = "destroy"
        empty = [ ]
        """

    @Test func parsesDriverDomainConfig() throws {
        let cfg = try XLConfigFile.parse(Self.driverDomain, name: "iovm0.cfg")
        #expect(cfg.string("name") == "iovm0")
        #expect(cfg.string("type") == "pv")
        #expect(cfg.string("kernel") == "/var/lib/iovm/kernels/vmlinux-6.1")
        #expect(cfg.string("extra") == "console=hvc0 root=/dev/xvda ro")
        #expect(cfg.int("memory") == 256)
        #expect(cfg.int("maxmem") == 256)
        #expect(cfg.int("vcpus") == 1)
        #expect(cfg.int("driver_domain") == 1)
        #expect(cfg.string("cpus") == "3")
        #expect(cfg.int("cpus") == 3)
        #expect(cfg.list("pci") == ["0000:00:04.0"])
        #expect(cfg.list("vif") == ["backend=iovm0,bridge=br0"])
        #expect(cfg.list("disk") == ["format=raw, vdev=xvda, access=ro, target=/var/lib/iovm/iovm0.img"])
        #expect(cfg.list("empty") == [])
        #expect(cfg.string("on_crash") == "destroy")
    }

    @Test func typeMismatchesAndMissingKeysAreNil() throws {
        let cfg = try XLConfigFile.parse(Self.driverDomain, name: "iovm0.cfg")
        #expect(cfg.string("pci") == nil)  // a list, not a single value
        #expect(cfg.list("name") == nil)  // a single value, not a list
        #expect(cfg.int("name") == nil)  // not a number
        #expect(cfg.string("nosuchkey") == nil)
        #expect(cfg.int("nosuchkey") == nil)
        #expect(cfg.list("nosuchkey") == nil)
        #expect(cfg.contains("pci"))
        #expect(cfg.contains("name"))
        #expect(!cfg.contains("nosuchkey"))
        #expect(cfg.string("name\u{0}junk") == nil)  // not silently read as "name"
    }

    @Test func laterAssignmentWinsAndAppendWorks() throws {
        let cfg = try XLConfigFile.parse(
            """
            vcpus = 1
            vcpus = 2
            vif = [ 'bridge=br0' ]
            vif += [ 'bridge=br1' ]
            """, name: "t.cfg")
        #expect(cfg.int("vcpus") == 2)
        #expect(cfg.list("vif") == ["bridge=br0", "bridge=br1"])
    }

    @Test func emptyConfigParses() throws {
        let cfg = try XLConfigFile.parse("", name: "empty.cfg")
        #expect(cfg.string("name") == nil)
        let comments = try XLConfigFile.parse("# nothing\n\n", name: "comments.cfg")
        #expect(comments.list("pci") == nil)
    }

    @Test func doubleEqualsIsRejectedWithLineNumber() {
        let text = """
            name = "bad"
            type = "pv"
            vcpus = = 2
            memory = 128
            """
        do {
            _ = try XLConfigFile.parse(text, name: "bad.cfg")
            Issue.record("a config with `vcpus = = 2` parsed")
        } catch {
            guard case .configParse(let name, let message) = error else {
                Issue.record("wrong error \(error)")
                return
            }
            #expect(name == "bad.cfg")
            #expect(message.contains("bad.cfg:3:"), "message: \(message)")
            #expect(message.contains("config parsing error"), "message: \(message)")
            #expect(error.description.contains("bad.cfg:3:"))
        }
    }

    @Test func unterminatedStringIsRejectedWithLineNumber() {
        let text = """
            name = "ok"
            kernel = "/boot/vmlinuz
            memory = 128
            """
        do {
            _ = try XLConfigFile.parse(text, name: "unterminated.cfg")
            Issue.record("a config with an unterminated string parsed")
        } catch {
            guard case .configParse(_, let message) = error else {
                Issue.record("wrong error \(error)")
                return
            }
            #expect(message.contains("unterminated.cfg:2:"), "message: \(message)")
        }
    }

    @Test func eachErrorCarriesOnlyItsOwnReport() async throws {
        // Many parses, good and bad, on concurrent tasks: every config keeps its own values and
        // every error its own report stream (name and line), nothing shared between them.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<40 {
                group.addTask {
                    let good = try XLConfigFile.parse("name = \"d\(index)\"\nvcpus = \(index)\n", name: "g\(index).cfg")
                    #expect(good.string("name") == "d\(index)")
                    #expect(good.int("vcpus") == index)
                    do {
                        _ = try XLConfigFile.parse("\n\nx = = \(index)\n", name: "b\(index).cfg")
                        Issue.record("b\(index).cfg parsed")
                    } catch {
                        guard case .configParse(_, let message)? = error as? XenError else {
                            Issue.record("\(error)")
                            return
                        }
                        #expect(message.hasPrefix("b\(index).cfg:3:"), "message: \(message)")
                        #expect(message.split(separator: "\n").count == 1, "message: \(message)")
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}
