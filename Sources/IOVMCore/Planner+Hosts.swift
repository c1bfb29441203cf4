public import IOVMWireFormat

/// One host's share of a topology that spans several (`Host("xen-a", connect: …)`): planned like a topology of its
/// own, and applied there.
public struct HostPlan: Sendable, Codable, Equatable {
    /// The host's name in the topology.
    public var host: String
    /// The libvirt URI iovm drives it through; nil: libxl in the local dom0.
    public var connect: String?
    /// Its domains, cores and NICs.
    public var plan: Plan

    /// Creates a host's share.
    public init(host: String, connect: String?, plan: Plan) {
        self.host = host
        self.connect = connect
        self.plan = plan
    }
}

extension TopologyDocument {
    /// Whether it declares named hosts (`Host("xen-a", …)`).
    public var spansHosts: Bool { !(hosts ?? []).isEmpty }
}

extension Planner {
    /// Splits a topology over named hosts into one document per host, in declaration order: each keeps the
    /// defaults, configuration, placement and scheduling, and gets the NICs, IOVMs and guests that name the host
    /// (all of them when only one host is named). Refuses, naming the line, a component that names no host or an
    /// unknown one, a guest whose IOVM or NIC is on another host, a name used on two hosts, and two hosts of one name.
    public static func splitByHost(_ document: TopologyDocument) throws(TopologyError) -> [(host: HostDocument, document: TopologyDocument)] {
        let hosts = document.hosts ?? []
        var diagnostics: [Diagnostic] = []
        if let single = document.host { diagnostics.append(.unnamedHostBesideNamed(at: single.source)) }
        var names: [String: HostDocument] = [:]
        for host in hosts {
            let name = host.name ?? ""
            if names[name] != nil { diagnostics.append(.hostDeclaredTwice(name, at: host.source)) }
            names[name] = names[name] ?? host
        }
        let listed = hosts.compactMap(\.name)
        /// The host a component is on: the one it names, or the only host; nil (with a diagnostic) otherwise.
        func host(of named: String?, _ what: String, at location: SourceLocation?) -> String? {
            if let named {
                guard names[named] != nil else {
                    diagnostics.append(.unknownHost(named, of: what, hosts: listed, at: location))
                    return nil
                }
                return named
            }
            if listed.count == 1 { return listed[0] }
            diagnostics.append(.componentWithoutHost(what, hosts: listed, at: location))
            return nil
        }
        // A NIC is a PCI address on one host: identical hosts have the same addresses, so NICs are keyed by both.
        var nicHosts: [String: Set<String>] = [:]
        var declaredNICHost: [String?] = []
        var iovmHost: [String: String] = [:]
        var domainHost: [String: (host: String, location: SourceLocation?)] = [:]
        func claim(_ name: String, _ what: String, on host: String, at location: SourceLocation?) {
            if let first = domainHost[name], first.host != host {
                diagnostics.append(.domainOnTwoHosts(what, first: first.host, second: host, at: location))
            }
            domainHost[name] = domainHost[name] ?? (host, location)
        }
        for nic in document.nics {
            let host = host(of: nic.host, "NIC \(nic.pci)", at: nic.source)
            declaredNICHost.append(host)
            if let host { nicHosts[nic.pci, default: []].insert(host) }
        }
        for iovm in document.iovms {
            guard let host = host(of: iovm.host, "IOVM \(iovm.name)", at: iovm.source) else { continue }
            iovmHost[iovm.name] = host
            claim(iovm.name, "IOVM \(iovm.name)", on: host, at: iovm.source)
            for nic in iovm.nics {
                if let other = nic.host, other != host { diagnostics.append(.nicOnOtherHost(nic.pci, of: "IOVM \(iovm.name)", host: host, nicHost: other, at: nic.source)) }
                nicHosts[nic.pci, default: []].insert(host)
            }
        }
        var guestHost: [String: String] = [:]
        for guest in document.guests {
            guard let host = host(of: guest.host, "guest \(guest.name)", at: guest.source) else { continue }
            guestHost[guest.name] = host
            claim(guest.name, "guest \(guest.name)", on: host, at: guest.source)
            if let backend = guest.backend, let other = iovmHost[backend], other != host {
                diagnostics.append(.iovmOnOtherHost(guest: guest.name, host: host, iovm: backend, iovmHost: other, at: guest.source))
            }
            if let nic = guest.nic, let hosts = nicHosts[nic], !hosts.contains(host), let other = hosts.sorted().first {
                diagnostics.append(.nicOnOtherHost(nic, of: "guest \(guest.name)", host: host, nicHost: other, at: guest.source))
            }
        }
        if diagnostics.contains(where: { $0.severity == .error }) { throw .invalid(diagnostics) }
        return hosts.compactMap { host -> (HostDocument, TopologyDocument)? in
            guard let name = host.name, names[name] == host else { return nil }
            var share = document
            share.hosts = nil
            share.host = host
            share.nics = zip(document.nics, declaredNICHost).filter { $0.1 == name }.map(\.0)
            share.iovms = document.iovms.filter { iovmHost[$0.name] == name }
            share.guests = document.guests.filter { guestHost[$0.name] == name }
            return (host, share)
        }
    }

    /// Plans every host's share of a topology that spans several (see ``splitByHost(_:)``); the errors of all hosts
    /// together, each naming its line.
    public func planHosts(_ document: TopologyDocument) throws(TopologyError) -> [HostPlan] {
        var plans: [HostPlan] = []
        var diagnostics: [Diagnostic] = []
        var planner = self
        for (host, share) in try Self.splitByHost(document) {
            do {
                let planned = try planner.plan(share)
                planner.firstGeneratedIOVM += planned.iovms.count
                plans.append(HostPlan(host: host.name ?? "", connect: host.connect, plan: planned))
            } catch {
                if case .invalid(let found) = error { diagnostics += found } else { throw error }
            }
        }
        if !diagnostics.isEmpty { throw .invalid(diagnostics) }
        return plans
    }
}

extension Diagnostic {
    // MARK: Hosts

    static func unnamedHostBesideNamed(at location: SourceLocation?) -> Diagnostic {
        .init(.error, "Host(cores:) without a name beside named hosts: name every host (Host(\"xen-a\", connect: …, cores: …)) or declare just one", at: location)
    }
    static func hostDeclaredTwice(_ name: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "host \(name) is declared twice", at: location)
    }
    static func unknownHost(_ name: String, of what: String, hosts: [String], at location: SourceLocation?) -> Diagnostic {
        .init(.error, "\(what) names host \"\(name)\", which is not declared (hosts: \(hosts.joined(separator: ", ")))", at: location)
    }
    static func componentWithoutHost(_ what: String, hosts: [String], at location: SourceLocation?) -> Diagnostic {
        .init(.error, "\(what) names no host, and the topology spans \(hosts.joined(separator: ", ")): add host: \"\(hosts.first ?? "")\" (or another)", at: location)
    }
    static func domainOnTwoHosts(_ what: String, first: String, second: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "\(what) is declared on host \(first) and on host \(second): domain names are the topology's, one host each", at: location)
    }
    static func iovmOnOtherHost(guest: String, host: String, iovm: String, iovmHost: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "guest \(guest) is on host \(host), but its IOVM \(iovm) is on host \(iovmHost): a guest's IOVM must be on its own host", at: location)
    }
    static func nicOnOtherHost(_ nic: String, of what: String, host: String, nicHost: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "\(what) is on host \(host), but NIC \(nic) is on host \(nicHost)", at: location)
    }
    public static func spansHosts(_ hosts: [String], at location: SourceLocation?) -> Diagnostic {
        .init(
            .error,
            "the topology spans hosts \(hosts.joined(separator: ", ")): plan, apply and destroy take it whole; other commands take one host's share with --on-host NAME",
            at: location)
    }
}
