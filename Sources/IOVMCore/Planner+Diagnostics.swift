import IOVMWireFormat

/// Every diagnostic the planner gives, by name, as SwiftPM keeps its manifest diagnostics
/// (`PackageLoading/Diagnostics.swift`): the wording lives here once, the planner says which.
/// `what` is the domain as a person reads it ("guest web", "IOVM net-a").
extension Diagnostic {
    // MARK: Document and host

    static func unsupportedSchema(_ version: Int, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "schema version \(version) is not supported (this iovm reads version \(TopologyDocument.currentSchemaVersion))", at: location)
    }
    static func noHostShape(at location: SourceLocation?) -> Diagnostic {
        .init(.error, "no host shape: declare Host(cores:memory:) in the topology or pass --host-cores (on a Xen dom0 iovm reads it from Xen)", at: location)
    }
    static func tooFewCores(_ cores: Int, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "the host has \(cores) cores; it needs at least 1", at: location)
    }
    static func tooManyCores(_ cores: Int, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "the host has \(cores) cores; iovm takes at most \(Planner.maximumCores)", at: location)
    }
    static func tooMuchMemory(_ what: String, _ memory: Int, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "\(what) has \(memory) MiB of memory; iovm takes at most \(Planner.maximumMemoryMiB) MiB (64 TiB)", at: location)
    }
    static func dom0MemoryOutOfRange(_ memory: Int, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "dom0's memory is \(memory) MiB; it must be 0-\(Planner.maximumMemoryMiB) MiB", at: location)
    }
    static func nonPositiveHostMemory(_ memory: Int, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "host memory must be positive, not \(memory) MiB", at: location)
    }
    static func missingReservedCore(_ core: Int, cores: Int, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "reserved core \(core) does not exist: the host has cores 0-\(cores - 1)", at: location)
    }
    static func allCoresReserved(_ cores: Int, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "all \(cores) cores are reserved for dom0; placement needs at least one", at: location)
    }
    static func unknownScheduler(_ scheduler: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "unknown scheduler \"\(scheduler)\" (Xen offers credit, credit2, rtds, null)", at: location)
    }
    static func memoryOvercommitted(needed: Int, dom0: Int, host: Int, at location: SourceLocation?) -> Diagnostic {
        let dom0Text = dom0 > 0 ? " plus \(dom0) MiB for dom0" : ""
        return .init(.error, "the domains need \(needed) MiB\(dom0Text), more than the host's \(host) MiB", at: location)
    }

    // MARK: NICs and configurations

    static func notAPCIAddress(_ text: String, of owner: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "NIC \"\(text)\" of \(owner) is not a PCI address (expected DDDD:BB:DD.F, e.g. 0000:03:00.0)", at: location)
    }
    static func nicClaimedTwice(_ address: PCIAddress, first: String, second: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "NIC \(address) is claimed twice: by \(first) and by \(second)", at: location)
    }
    static func unplacedNIC(_ text: String, at location: SourceLocation?) -> Diagnostic {
        .init(
            .error,
            "NIC \(text) is declared outside any IOVM and no Configuration generator places it: move it into IOVM(\"…\") { NIC(…) } or add Configuration.monolithic(), .multipleSmall() or .hybrid(groups:)",
            at: location)
    }
    static func iovmWithoutNIC(_ name: String, at location: SourceLocation?) -> Diagnostic {
        .init(.warning, "IOVM \(name) owns no NIC: its guests reach only each other", at: location)
    }
    static func iovmBesideGenerator(_ name: String, configuration: String, at location: SourceLocation?) -> Diagnostic {
        .init(
            .error,
            "IOVM \(name) is declared by hand, but Configuration.\(configuration) derives the IOVMs from the NICs: declare NIC(…) at the top level, or drop the Configuration line",
            at: location)
    }
    static func unknownNICDriver(_ driver: String, nic: String, known: [String], at location: SourceLocation?) -> Diagnostic {
        .init(.error, "NIC \(nic) names driver \"\(driver)\", which has no IOVM kernel fragment (supported: \(known.joined(separator: ", ")))", at: location)
    }
    static func generatorWithoutNICs(_ configuration: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "Configuration.\(configuration) needs at least one NIC(…) to build IOVMs from", at: location)
    }
    static func hybridGroupCount(_ count: Int, nics: Int, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "Configuration.hybrid(groups: \(count)) needs between 1 and \(nics) groups for \(nics) NIC\(nics == 1 ? "" : "s")", at: location)
    }
    static func hybridIsMonolithic(at location: SourceLocation?) -> Diagnostic {
        .init(.warning, "hybrid with 1 group is the Monolithic configuration", at: location)
    }
    static func hybridIsMultipleSmall(at location: SourceLocation?) -> Diagnostic {
        .init(.warning, "hybrid with one group per NIC is the Multiple Small IOVMs configuration", at: location)
    }

    // MARK: Guests and their backends

    static func guestNICNotAPCIAddress(_ guest: String, _ text: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "guest \(guest) names NIC \"\(text)\", which is not a PCI address (expected DDDD:BB:DD.F)", at: location)
    }
    static func guestNICUnknown(_ guest: String, _ address: PCIAddress, generated: Bool, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "guest \(guest) uses NIC \(address), which no \(generated ? "NIC(…) declaration" : "IOVM") in the topology has", at: location)
    }
    static func unknownBackend(_ guest: String, _ named: String, known: [String], at location: SourceLocation?) -> Diagnostic {
        let hint = known.isEmpty ? "the topology has no IOVMs" : "known IOVMs: \(known.joined(separator: ", "))"
        return .init(.error, "guest \(guest) is backed by unknown IOVM \"\(named)\" (\(hint))", at: location)
    }
    static func nicOfAnotherBackend(_ guest: String, _ address: PCIAddress, owner: String, backend: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "guest \(guest) uses NIC \(address), but that NIC belongs to \(owner), not to its backend \(backend)", at: location)
    }
    static func noBackend(_ guest: String, iovms: Int, at location: SourceLocation?) -> Diagnostic {
        .init(
            .error,
            "guest \(guest) names no backend: say Guest(\"\(guest)\", backend: \"<IOVM>\") or nic: \"<PCI address>\" (the topology has \(iovms) IOVMs)",
            at: location)
    }
    static func backendInCentralized(_ guest: String, _ backend: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "guest \(guest) names backend \(backend), but the centralized configuration has dom0 as its only driver domain", at: location)
    }
    static func duplicateMAC(_ guest: String, _ mac: String, other: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "guest \(guest) has MAC \(mac), which guest \(other) has already", at: location)
    }
    static func malformedMAC(_ mac: String, guest: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "MAC \"\(mac)\" of guest \(guest) is not six hex octets like 00:16:3e:12:34:56", at: location)
    }
    static func zeroMAC(guest: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "MAC 00:00:00:00:00:00 of guest \(guest) is no address (netback and bridges drop it)", at: location)
    }
    static func multicastMAC(_ mac: String, guest: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "MAC \(mac) of guest \(guest) is a multicast address", at: location)
    }

    // MARK: Names and texts

    static func invalidName(_ name: String, what: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "\(what) name \"\(name)\" is not a valid domain name (use letters, digits, '_', '.', '-'; at most 64; not starting with '-' or '.')", at: location)
    }
    static func dom0Name(_ name: String, what: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "\(what) name \"\(name)\" is dom0's", at: location)
    }
    static func duplicateName(_ name: String, first: SourceLocation?, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "duplicate domain name \"\(name)\"\(first.map { " (first declared at \($0))" } ?? "")", at: location)
    }
    static func textXLCannotCarry(_ field: String, of domain: String, value: String, at location: SourceLocation?) -> Diagnostic {
        .init(
            .error, "\(field) of \(domain) contains a quote, backslash or control character (a newline, a NUL), which xl.cfg cannot carry: \(value.debugDescription)", at: location)
    }
    static func bridgeShared(_ bridge: String, first: PCIAddress, second: PCIAddress, owner: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "NIC \(second) of \(owner) would go into bridge \(bridge), which NIC \(first) has: each NIC needs a bridge of its own", at: location)
    }
    static func relativePath(_ field: String, of domain: String, path: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "\(field) of \(domain) is \(path.debugDescription), not an absolute path", at: location)
    }
    static func invalidVifScript(_ script: String, at location: SourceLocation?) -> Diagnostic {
        .init(
            .error,
            "vifScript \(script.debugDescription) is not a script name (e.g. \"vif-bridge\") or an absolute path in the IOVM (e.g. \"/etc/xen/scripts/iovm-vif\"): letters, digits, '_', '.', '-', '+' and '/' only, no '..'",
            at: location)
    }
    static func invalidBridge(_ bridge: String, of domain: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "bridge \"\(bridge)\" of \(domain) is not a Linux interface name (1-15 of letters, digits, '_', '.', '-')", at: location)
    }

    // MARK: Domain resources

    static func tooLittleMemoryForImage(_ what: String, _ memory: Int, at location: SourceLocation?) -> Diagnostic {
        .init(
            .error,
            "\(what) has \(memory) MiB of memory; the minimal IOVM image needs at least \(Planner.minimalImageFloorMiB) MiB (libxc loads its kernel and unpacks its initramfs into it; the default is \(Planner.defaultMinimalIOVMMemoryMiB))",
            at: location)
    }
    static func unknownImage(_ image: String, of what: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "\(what) boots unknown image \"\(image)\" (known: \(Planner.iovmImages.joined(separator: ", ")))", at: location)
    }
    static func noKernel(_ what: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "\(what) has no kernel: give kernel: or Defaults(kernel:)", at: location)
    }
    static func tooLittleMemory(_ what: String, _ memory: Int, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "\(what) has \(memory) MiB of memory; a PV Linux domain needs at least 32", at: location)
    }
    static func tooManyVCPUs(_ what: String, _ vcpus: Int, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "\(what) has \(vcpus) vCPUs; iovm takes at most \(Planner.maximumCores)", at: location)
    }
    static func tooFewVCPUs(_ what: String, _ vcpus: Int, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "\(what) has \(vcpus) vCPUs; it needs at least 1", at: location)
    }
    static func weightOutOfRange(_ weight: Int, of what: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "credit weight \(weight) of \(what) is out of range \(Planner.weightRange.lowerBound)-\(Planner.weightRange.upperBound)", at: location)
    }
    static func capOutOfRange(_ cap: Int, of what: String, vcpus: Int, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "credit cap \(cap) of \(what) is out of range 0-\(100 * max(vcpus, 1)) (percent of one pCPU per vCPU)", at: location)
    }
    static func smpIOVM(_ name: String, vcpus: Int, at location: SourceLocation?) -> Diagnostic {
        .init(.warning, "IOVM \(name) has \(vcpus) vCPUs; the paper's IOVMs run a uniprocessor kernel because SMP Linux forwarded less efficiently", at: location)
    }
    static func duplicateDisk(_ what: String, vdev: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "\(what) has two disks named \(vdev)", at: location)
    }
    static func malformedDisk(_ text: String, of what: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "disk \"\(text)\" of \(what) is not [phy:|file:]/PATH,VDEV,ACCESS or /PATH,FORMAT,VDEV,ACCESS (e.g. phy:/dev/vdb,xvda,r)", at: location)
    }
    static func moreVCPUsThanCores(_ what: String, vcpus: Int, cores: Int, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "\(what) has \(vcpus) vCPUs, more than the host's \(cores) cores", at: location)
    }
    static func pinnedToNoCore(_ what: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "\(what) is pinned to no core (cpus: [])", at: location)
    }
    static func pinnedToMissingCore(_ what: String, core: Int, cores: Int, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "\(what) is pinned to core \(core), but the host has cores 0-\(cores - 1)", at: location)
    }
    static func pinnedToReservedCore(_ what: String, core: Int, at location: SourceLocation?) -> Diagnostic {
        .init(.warning, "\(what) is pinned to core \(core), which is reserved for dom0", at: location)
    }

    // MARK: Placement

    static func placementWithoutIOVMs(_ placement: String, at location: SourceLocation?) -> Diagnostic {
        .init(
            .error,
            "placement \(placement) assigns IOVMs to cores, but this topology has none (in the centralized configuration dom0 is the driver domain, and iovm never pins dom0): use Placement.credit()",
            at: location)
    }
    static func dedicatedPoolOutsideAffinity(at location: SourceLocation?) -> Diagnostic {
        .init(.error, "dedicatedPool applies to Placement.iovmAffinity only", at: location)
    }
    static func coLocateCores(iovms: Int, available: Int, reserved: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "co-locate puts each IOVM and its guests on a core of their own: \(iovms) IOVMs need \(iovms) cores, the host has \(available)\(reserved)", at: location)
    }
    static func coLocateDom0Guest(_ guest: String, at location: SourceLocation?) -> Diagnostic {
        .init(.warning, "guest \(guest) is backed by dom0, which co-locate does not pin: it stays unpinned", at: location)
    }
    static func separateCores(iovms: Int, needed: Int, available: Int, reserved: String, at location: SourceLocation?) -> Diagnostic {
        .init(
            .error,
            "separate puts each guest on a different core from its IOVM: \(iovms) IOVM\(iovms == 1 ? "" : "s") need \(needed) cores, the host has \(available)\(reserved)",
            at: location)
    }
    static func separateWithOneIOVM(at location: SourceLocation?) -> Diagnostic {
        .init(.warning, "with one IOVM, separate cannot put a guest with a different IOVM: its guests go to a core of their own", at: location)
    }
    static func affinityCores(available: Int, reserved: String, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "IOVM-affinity puts all IOVMs on one core and the guests on the others: it needs 2 cores, the host has \(available)\(reserved)", at: location)
    }
    static func affinityGuestsShare(guests: Int, cores: Int, at location: SourceLocation?) -> Diagnostic {
        .init(.warning, "IOVM-affinity gives each guest a core of its own, but \(guests) guests share \(cores) cores", at: location)
    }
    static func dedicatedPoolIsPool0(at location: SourceLocation?) -> Diagnostic {
        .init(.error, "the dedicated cpupool cannot be Pool-0", at: location)
    }
    static func hybridPinnedCores(iovms: Int, available: Int, reserved: String, at location: SourceLocation?) -> Diagnostic {
        .init(
            .error,
            "hybrid pinning gives each IOVM a core of its own and leaves the guests at least one: \(iovms) IOVMs need \(iovms + 1) cores, the host has \(available)\(reserved)",
            at: location)
    }

    // MARK: Schedulers

    static func rtdsOutOfRange(_ field: String, of role: String, value: Int, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "rtds \(field) of \(role) must be \(PlanningRun.rtdsMinimumMicroseconds)-\(Int32.max) microseconds (rtds' minimum is 10), not \(value)", at: location)
    }
    static func rtdsBudgetOverPeriod(of role: String, budget: Int, period: Int, at location: SourceLocation?) -> Diagnostic {
        .init(.error, "rtds budget of \(role) (\(budget) us) is longer than its period (\(period) us)", at: location)
    }
    static func rtdsOutsideRTDS(_ role: String, scheduler: String, at location: SourceLocation?) -> Diagnostic {
        .init(
            .warning, "Scheduling.rtds sets a reservation for \(role), but they run under \(scheduler): it does not apply (Host(scheduler: \"rtds\") asks for rtds)", at: location)
    }
    static func schedulerPoolTakesEveryCore(
        _ scheduler: String, poolZero: String, pool: String, cores: Int, at location: SourceLocation?
    ) -> Diagnostic {
        .init(
            .error,
            "the host's Pool-0 runs \(poolZero), so the domains would run in cpupool \(pool) under \(scheduler), but the placement uses all \(cores) cores and dom0 must keep one in Pool-0: reserve one with Host(reservedCores: [0]), pin the domains to fewer cores, or boot Xen with sched=\(scheduler)",
            at: location)
    }
    static func schedulerPoolIsPool0(at location: SourceLocation?) -> Diagnostic {
        .init(.error, "the scheduler's cpupool cannot be Pool-0", at: location)
    }
    static func guestsStayInPool0(pool: String, scheduler: String, poolZero: String, at location: SourceLocation?) -> Diagnostic {
        .init(.warning, "only the IOVMs' dedicated cpupool \(pool) runs \(scheduler); the guests stay in Pool-0 under \(poolZero)", at: location)
    }
}
