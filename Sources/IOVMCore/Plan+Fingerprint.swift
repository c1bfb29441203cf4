import FoundationEssentials

extension Plan {
    /// Fingerprint of what an apply of this plan makes of the host: its cpupools and its domains (specs, placement,
    /// weights, caps, pools), where they were declared left out.
    ///
    /// `iovm apply` records it for the topology; `iovm watch` recovers only with the plan last applied, so a
    /// recovery never undoes a newer apply.
    public var appliedFingerprint: String {
        var domains = self.domains
        for index in domains.indices { domains[index].source = nil }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let text = (try? encoder.encode(Applied(topology: topology, cpupools: cpupools, domains: domains))).map { String(decoding: $0, as: UTF8.self) } ?? ""
        return String(StableHash.fnv1a(text), radix: 16)
    }

    private struct Applied: Encodable {
        var topology: String
        var cpupools: [CPUPoolSpec]
        var domains: [DomainSpec]
    }
}
