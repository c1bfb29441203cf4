import IOVMControl
import IOVMCore
import IOVMWireFormat
import Testing

/// One IOMMU policy for `iovm doctor`'s check and `iovm apply`'s refusal.
@Suite("IOMMU policy")
struct IOMMUPolicyTests {
    @Test(arguments: [(true, false), (true, true), (false, false), (false, true), (nil, false), (nil, true)] as [(Bool?, Bool)])
    func doctorAndApplyAgree(iommu: Bool?, allow: Bool) throws {
        let facts = XenFacts(iommu: iommu)
        let refused = facts.refusesPassthrough(allowNoIOMMU: allow)
        #expect(refused == (iommu != true && !allow))
        let check = facts.iommuCheck(allowNoIOMMU: allow)
        #expect(check.status == (iommu == true ? .ok : refused ? .failed : .warning))
        let plan = try ApplyEngineTests().plan(.credit)
        #expect(!plan.iovms.allSatisfy { $0.nics.isEmpty })
        #expect((facts.passthroughRefusal(plan, allowNoIOMMU: allow) != nil) == refused)
    }
}

/// The schedulers Xen was built with (hypfs `/buildinfo/config`), and the refusal of a cpupool under one it lacks.
@Suite("Xen's schedulers")
struct XenSchedulerFactsTests {
    /// Debian's Xen 4.17, as `xenhypfs cat /buildinfo/config` printed it in the lab (the scheduler lines).
    static let debian = """
        CONFIG_HAS_SCHED_GRANULARITY=y
        CONFIG_SCHED_CREDIT=y
        CONFIG_SCHED_CREDIT2=y
        # CONFIG_SCHED_RTDS is not set
        CONFIG_SCHED_DEFAULT="credit2"
        """

    @Test func buildConfig() {
        #expect(XenFacts.schedulers(fromBuildConfig: Self.debian) == ["credit", "credit2"])
        #expect(
            XenFacts.schedulers(fromBuildConfig: "CONFIG_SCHED_CREDIT=y\nCONFIG_SCHED_RTDS=y\nCONFIG_SCHED_ARINC653=y\nCONFIG_SCHED_NULL=y\n")
                == ["credit", "rtds", "arinc653", "null"])
        #expect(XenFacts.schedulers(fromBuildConfig: "") == nil)
        #expect(XenFacts.schedulers(fromBuildConfig: "CONFIG_SCHED_DEFAULT=\"credit2\"\n") == nil)
    }

    @Test("an rtds cpupool on a Xen without rtds is refused, naming the pool and what Xen has; credit pools and unknown schedulers pass")
    func refusal() throws {
        var document = TopologyDocument(
            name: "static", host: HostDocument(cores: 4, memoryMiB: 8192, scheduler: "rtds"), defaults: DefaultsDocument(kernel: "/k"),
            configuration: ConfigurationDocument(kind: .monolithic), nics: [NICDocument(pci: "0000:00:10.0")], guests: [GuestDocument(name: "g1")],
            placement: PlacementDocument(kind: .iovmAffinity))
        let rtds = try Planner(poolZeroScheduler: "credit").plan(document)
        #expect(rtds.cpupools.map(\.scheduler) == ["rtds"])
        let debian = XenFacts(schedulers: XenFacts.schedulers(fromBuildConfig: Self.debian))
        let refusal = try #require(debian.schedulerRefusal(rtds))
        #expect(refusal.hasPrefix("cpupool \(rtds.cpupools[0].name) needs the rtds scheduler, but Xen on this host was built without it"))
        #expect(refusal.contains("has credit, credit2"))
        #expect(XenFacts(schedulers: ["credit", "rtds"]).schedulerRefusal(rtds) == nil)
        #expect(XenFacts().schedulerRefusal(rtds) == nil)
        document.host?.scheduler = "credit"
        #expect(debian.schedulerRefusal(try Planner().plan(document)) == nil)
    }
}
