import Foundation
import IOVMCore
import IOVMWireFormat
import Testing

@testable import IOVMImage

@Suite struct ImageResolverTests {
    static func plan(defaults: DefaultsDocument?, nics: [NICDocument] = [NICDocument(pci: "0000:00:10.0"), NICDocument(pci: "0000:00:11.0")]) throws -> Plan {
        try Planner().plan(
            TopologyDocument(
                name: "t", host: HostDocument(cores: 4, memoryMiB: 8192), defaults: defaults,
                configuration: ConfigurationDocument(kind: .monolithic), nics: nics,
                guests: [GuestDocument(name: "g", resources: DomainResources(kernel: "/boot/guest"))], placement: PlacementDocument(kind: .credit)))
    }

    @Test("an IOVM that names no kernel boots the minimal image, with its NIC-to-bridge map on the command line")
    func planner() throws {
        let plan = try Self.plan(defaults: nil)
        let iovm = try #require(plan.iovms.first)
        #expect(iovm.image == ImageUse(kind: "minimal"))
        #expect(iovm.kernel.isEmpty && iovm.ramdisk == nil)
        #expect(iovm.cmdline == "console=hvc0 iovm.nics=0000:00:10.0=br0,0000:00:11.0=br1")
        #expect(iovm.memoryMiB == Planner.defaultMinimalIOVMMemoryMiB)
        #expect(plan.unresolvedImages.map(\.domain) == [iovm.name])
    }

    @Test("Defaults(kernel:) alone still boots IOVMs on that kernel; iovmImage wins over it; an IOVM kernel wins over both")
    func explicitKernels() throws {
        #expect(try Self.plan(defaults: DefaultsDocument(kernel: "/k")).iovms.first?.image == nil)
        #expect(try Self.plan(defaults: DefaultsDocument(kernel: "/k")).iovms.first?.kernel == "/k")
        #expect(try Self.plan(defaults: DefaultsDocument(kernel: "/k", iovmImage: "minimal")).iovms.first?.image?.kind == "minimal")
        #expect(try Self.plan(defaults: DefaultsDocument(iovmKernel: "/i", iovmImage: "minimal")).iovms.first?.kernel == "/i")
    }

    /// The planner's diagnostics for an IOVM topology with these defaults (empty when it plans).
    static func diagnostics(_ defaults: DefaultsDocument) -> [Diagnostic] {
        do {
            _ = try plan(defaults: defaults)
            return []
        } catch let error as TopologyError {
            guard case .invalid(let diagnostics) = error else { return [Diagnostic(.error, "unexpected \(error)", at: nil)] }
            return diagnostics
        } catch {
            return [Diagnostic(.error, "unexpected \(error)", at: nil)]
        }
    }

    @Test("an image IOVM below the image's floor is an error at the line that set its memory")
    func tooLittleMemory() {
        let diagnostics = Self.diagnostics(DefaultsDocument(iovmMemoryMiB: 40, source: SourceLocation(file: "t.swift", line: 5)))
        #expect(diagnostics.contains { $0.message.contains("has 40 MiB of memory; the minimal IOVM image needs at least 48 MiB") && $0.location?.line == 5 })
        #expect((try? Self.plan(defaults: DefaultsDocument(iovmMemoryMiB: 48))) != nil)
    }

    @Test("an unknown image is an error at the Defaults line")
    func unknownImage() {
        let diagnostics = Self.diagnostics(DefaultsDocument(iovmImage: "fat", source: SourceLocation(file: "t.swift", line: 4)))
        #expect(diagnostics.contains { $0.message.contains("unknown image \"fat\"") && $0.location?.line == 4 })
    }

    func store(with drivers: [String]) throws -> (ImageStore, String) {
        let root = FileManager.default.temporaryDirectory.appending(path: "iovm-resolve-\(UUID().uuidString)").path
        let store = ImageStore(root: root)
        _ = try store.build(
            nicDrivers: drivers,
            runtime: MinimalRuntime(
                sysroot: Sysroot("/"), programs: [.init(destination: "/bin/busybox", source: "/bin/busybox")], countersAgent: Array("agent".utf8), vifHotplug: Array("vif".utf8)),
            kernel: FakeKernel(directory: root + "-kernel"), progress: { _ in })
        return (store, root)
    }

    @Test("the store's image for the NICs' drivers becomes the IOVM's kernel and ramdisk")
    func resolves() throws {
        let (store, root) = try store(with: ["e1000"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let resolver = ImageResolver(
            store: store, table: NICDriverTable(modulesAlias: "alias pci:v00008086d0000100Esv*sd*bc*sc*i* e1000\n"), ids: { _ in "8086:100e" },
            buildCommand: { _ in "iovm image build t.swift" })
        let plan = resolver.resolve(try Self.plan(defaults: nil))
        let iovm = try #require(plan.iovms.first)
        let image = try #require(store.find(nicDrivers: ["e1000"]))
        #expect(iovm.image?.hash == image.manifest.hash && iovm.image?.nicDrivers == ["e1000"] && iovm.image?.problem == nil)
        #expect(iovm.kernel == image.directory + "/vmlinux" && iovm.ramdisk == image.directory + "/initrd.img")
        #expect(plan.unresolvedImages.isEmpty)
    }

    @Test("a missing image, an absent NIC and an unsupported NIC are each named with the fix")
    func problems() throws {
        let (store, root) = try store(with: ["igb"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let table = NICDriverTable(modulesAlias: "alias pci:v00008086d0000100Esv*sd*bc*sc*i* e1000\n")
        let notBuilt = ImageResolver(store: store, table: table, ids: { _ in "8086:100e" }, buildCommand: { _ in "iovm image build t.swift" }).resolve(try Self.plan(defaults: nil))
        #expect(notBuilt.unresolvedImages.first?.problem == "the minimal IOVM image for e1000 is not built in \(root): run `iovm image build t.swift`")
        let absent = ImageResolver(store: store, table: table, ids: { _ in nil }, buildCommand: { _ in "x" }).resolve(try Self.plan(defaults: nil))
        #expect(absent.unresolvedImages.first?.problem.contains("NIC 0000:00:10.0 is not on this host: name its driver") == true)
        let unsupported = ImageResolver(store: store, table: table, ids: { _ in "10ec:8139" }, buildCommand: { _ in "x" }).resolve(try Self.plan(defaults: nil))
        #expect(unsupported.unresolvedImages.first?.problem.contains("NIC 0000:00:10.0 (10ec:8139) is driven by none of the drivers") == true)
        let declared = ImageResolver(store: store, table: nil, ids: { _ in nil }, buildCommand: { _ in "x" }).resolve(
            try Self.plan(defaults: nil, nics: [NICDocument(pci: "0000:00:10.0", driver: "igb")]))
        #expect(declared.unresolvedImages.isEmpty && declared.iovms.first?.image?.nicDrivers == ["igb"])
    }
}
