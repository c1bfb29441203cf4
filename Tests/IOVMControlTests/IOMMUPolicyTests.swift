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
