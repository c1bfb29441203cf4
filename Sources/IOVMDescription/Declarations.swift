import IOVMWireFormat

/// An amount of memory; integer literals are MiB.
public struct Memory: Sendable, Hashable, ExpressibleByIntegerLiteral {
    /// The amount in MiB.
    public let mebibytes: Int
    /// `n` MiB.
    public static func mib(_ n: Int) -> Memory { Memory(mebibytes: n) }
    /// `n` GiB.
    public static func gib(_ n: Int) -> Memory { Memory(mebibytes: n * 1024) }
    /// An integer literal is MiB.
    public init(integerLiteral value: Int) { self.mebibytes = value }
    init(mebibytes: Int) { self.mebibytes = mebibytes }
}

/// The physical host: cores, memory, what dom0 keeps.
public struct Host: TopologyComponent {
    let document: HostDocument
    /// Describes the host.
    /// - Parameters:
    ///   - cores: Physical cores Xen schedules on (the paper's host has 4).
    ///   - memory: Memory available to domains besides dom0.
    ///   - dom0Memory: What dom0 keeps (counted against `memory` only if given).
    ///   - reservedCores: Cores placement leaves to dom0.
    ///   - scheduler: The scheduler the topology's domains run under: `"credit"`, `"credit2"` (Xen 4.17's
    ///     default) or `"rtds"`. When the host's Pool-0 runs another one, apply puts the domains in a cpupool
    ///     running this one (on the cores the placement uses; dom0 keeps the rest), or the placement's
    ///     dedicated pool gets it. Unset: the domains run under whatever Pool-0 runs.
    ///   - schedulerPool: Name of that cpupool (default `iovm-<scheduler>`).
    public init(
        cores: Int, memory: Memory? = nil, dom0Memory: Memory? = nil, reservedCores: [Int] = [],
        scheduler: String? = nil, schedulerPool: String? = nil, file: String = #filePath, line: Int = #line
    ) {
        document = HostDocument(
            cores: cores, memoryMiB: memory?.mebibytes, dom0MemoryMiB: dom0Memory?.mebibytes,
            reservedCores: reservedCores.isEmpty ? nil : reservedCores, scheduler: scheduler,
            schedulerPool: schedulerPool, source: SourceLocation(file: file, line: line))
    }
    /// Describes one of several hosts a topology spans: the NICs, IOVMs and guests that name it (`host: "xen-a"`)
    /// are planned and applied there, through libvirt at `connect` (`xen+ssh://root@a/system`), or through libxl
    /// in the local dom0 when `connect` is nil. The other parameters are as for a single host.
    public init(
        _ name: String, connect: String? = nil, cores: Int, memory: Memory? = nil, dom0Memory: Memory? = nil, reservedCores: [Int] = [],
        scheduler: String? = nil, schedulerPool: String? = nil, file: String = #filePath, line: Int = #line
    ) {
        document = HostDocument(
            cores: cores, memoryMiB: memory?.mebibytes, dom0MemoryMiB: dom0Memory?.mebibytes,
            reservedCores: reservedCores.isEmpty ? nil : reservedCores, scheduler: scheduler,
            schedulerPool: schedulerPool, name: name, connect: connect, source: SourceLocation(file: file, line: line))
    }
    /// The element.
    public var topologyElement: TopologyElement { TopologyElement(storage: .host(document)) }
}

/// An image an IOVM boots instead of a kernel named in the topology.
public enum IOVMImage: String, Sendable {
    /// iovm's minimal IOVM (paper Section 3): a uniprocessor kernel from `allnoconfig` plus the NICs' drivers,
    /// and a runtime in RAM of busybox, syslogd, `xl devd` and the counters agent. `iovm image build` makes it.
    case minimal
}

/// Defaults for every IOVM and guest that does not say otherwise.
public struct Defaults: TopologyComponent {
    let document: DefaultsDocument
    /// Sets defaults.
    /// - Parameters:
    ///   - kernel: PV kernel (in dom0's file system) for guests, and for IOVMs unless `iovmKernel` is set.
    ///   - ramdisk: Initial ramdisk for guests (and IOVMs unless `iovmRamdisk` is set).
    ///   - cmdline: Kernel command line for guests (and IOVMs unless `iovmCmdline` is set).
    ///   - iovmImage: The image IOVMs boot when they name no kernel of their own (`iovmKernel`, or a kernel
    ///     on the IOVM). `.minimal` is iovm's own (`iovm image build`); it is also what an IOVM boots when
    ///     nothing, not even `kernel`, names a kernel.
    ///   - iovmMemory: Memory of each IOVM (paper: 256 MiB).
    ///   - guestMemory: Memory of each guest (paper: 256 MiB).
    ///   - iovmDisks: Disks of each IOVM in xl's syntax, e.g. `["phy:/dev/vdb,xvda,r"]` for a root with `xl devd`.
    ///   - vifScript: The vif hotplug script the IOVMs run for their guests' vifs: a name in the IOVM's
    ///     `/etc/xen/scripts` or an absolute path there. Default: iovm's lean `iovm-vif` (`Agents/iovm-vif`);
    ///     `"vif-bridge"` for the distribution's.
    public init(
        kernel: String? = nil, ramdisk: String? = nil, cmdline: String? = nil,
        iovmKernel: String? = nil, iovmRamdisk: String? = nil, iovmCmdline: String? = nil, iovmImage: IOVMImage? = nil,
        iovmMemory: Memory? = nil, guestMemory: Memory? = nil,
        iovmVCPUs: Int? = nil, guestVCPUs: Int? = nil, iovmDisks: [String]? = nil, guestDisks: [String]? = nil,
        vifScript: String? = nil, file: String = #filePath, line: Int = #line
    ) {
        document = DefaultsDocument(
            kernel: kernel, ramdisk: ramdisk, cmdline: cmdline,
            iovmKernel: iovmKernel, iovmRamdisk: iovmRamdisk, iovmCmdline: iovmCmdline, iovmImage: iovmImage?.rawValue,
            iovmMemoryMiB: iovmMemory?.mebibytes, guestMemoryMiB: guestMemory?.mebibytes,
            iovmVCPUs: iovmVCPUs, guestVCPUs: guestVCPUs, iovmDisks: iovmDisks, guestDisks: guestDisks,
            vifScript: vifScript, source: SourceLocation(file: file, line: line))
    }
    /// The element.
    public var topologyElement: TopologyElement { TopologyElement(storage: .defaults(document)) }
}

/// One of the paper's IOVM configurations (Section 2.1), as a generator of IOVMs.
///
/// With a generator, list the physical NICs with top-level ``NIC`` declarations and the
/// guests with ``Guest``; the tool derives the IOVMs. Without one, declare ``IOVM``s.
public struct Configuration: TopologyComponent {
    let document: ConfigurationDocument
    /// dom0 is the single driver domain: the paper's centralized baseline (Fig. 1).
    public static func centralized(file: String = #filePath, line: Int = #line) -> Configuration {
        Configuration(document: .init(kind: .centralized, source: SourceLocation(file: file, line: line)))
    }
    /// One IOVM owns every NIC (Fig. 3).
    public static func monolithic(file: String = #filePath, line: Int = #line) -> Configuration {
        Configuration(document: .init(kind: .monolithic, source: SourceLocation(file: file, line: line)))
    }
    /// One IOVM per NIC (Fig. 4).
    public static func multipleSmall(file: String = #filePath, line: Int = #line) -> Configuration {
        Configuration(document: .init(kind: .multipleSmall, source: SourceLocation(file: file, line: line)))
    }
    /// `groups` IOVMs, the NICs split among them in order, as evenly as possible (Fig. 5).
    public static func hybrid(groups: Int, file: String = #filePath, line: Int = #line) -> Configuration {
        Configuration(document: .init(kind: .hybrid, groups: groups, source: SourceLocation(file: file, line: line)))
    }
    /// The element.
    public var topologyElement: TopologyElement { TopologyElement(storage: .configuration(document)) }
}

/// A physical NIC, by PCI address (`0000:03:00.0`).
public struct NIC: TopologyComponent {
    let document: NICDocument
    /// Declares a NIC.
    /// - Parameters:
    ///   - pci: PCI address in `DDDD:BB:DD.F` form.
    ///   - bridge: Bridge in the IOVM that joins this NIC and its guests' vifs (default `br<index>`).
    ///   - driver: Its Linux driver (`e1000`, `e1000e`, `igb`, `ixgbe`, `virtio`), for the IOVM kernel when
    ///     iovm cannot read the NIC's PCI ids (planning on another machine).
    ///   - host: The named ``Host`` it is in, when the topology spans several.
    public init(_ pci: String, bridge: String? = nil, driver: String? = nil, host: String? = nil, file: String = #filePath, line: Int = #line) {
        document = NICDocument(pci: pci, bridge: bridge, driver: driver, host: host, source: SourceLocation(file: file, line: line))
    }
    /// The element (a NIC for a configuration generator to place).
    public var topologyElement: TopologyElement { TopologyElement(storage: .nic(document)) }
}

/// An IOVM: a driver domain that owns NICs and backs guests' vifs.
public struct IOVM: TopologyComponent {
    let document: IOVMDocument
    /// Declares an IOVM.
    /// - Parameters:
    ///   - name: Domain name.
    ///   - memory: Memory (default from ``Defaults`` or 256 MiB).
    ///   - vcpus: vCPUs (default 1: the paper's IOVM runs a uniprocessor kernel).
    ///   - weight: Credit weight, overriding ``Scheduling``.
    ///   - cap: Credit cap in percent of a pCPU.
    ///   - cpus: Hard affinity, overriding the placement scheme.
    ///   - host: The named ``Host`` it runs on, when the topology spans several.
    ///   - nics: The NICs it owns.
    public init(
        _ name: String, host: String? = nil, memory: Memory? = nil, vcpus: Int? = nil, kernel: String? = nil,
        ramdisk: String? = nil, cmdline: String? = nil, weight: Int? = nil, cap: Int? = nil,
        cpus: [Int]? = nil, disks: [String]? = nil, file: String = #filePath, line: Int = #line,
        @NICBuilder nics: () -> [NIC] = { [] }
    ) {
        document = IOVMDocument(
            name: name,
            resources: DomainResources(
                memoryMiB: memory?.mebibytes, vcpus: vcpus, kernel: kernel, ramdisk: ramdisk,
                cmdline: cmdline, weight: weight, cap: cap, cpus: cpus, disks: disks),
            nics: nics().map(\.document), host: host,
            source: SourceLocation(file: file, line: line))
    }
    /// The element.
    public var topologyElement: TopologyElement { TopologyElement(storage: .iovm(document)) }
}

/// A guest domain whose vif an IOVM backs.
public struct Guest: TopologyComponent {
    let document: GuestDocument
    /// Declares a guest.
    /// - Parameters:
    ///   - name: Domain name.
    ///   - backend: The IOVM backing its vif (explicit configurations), or `"Domain-0"`.
    ///   - nic: PCI address of the NIC its traffic uses; in generated configurations this picks the IOVM.
    ///     Without `backend` or `nic`, guest *i* uses NIC *i* (mod the NIC count), as in the paper.
    ///   - bridge: Bridge its vif joins (default: its NIC's bridge).
    ///   - mac: MAC of its vif (default: a stable address in Xen's 00:16:3e range).
    ///   - host: The named ``Host`` it runs on, when the topology spans several.
    public init(
        _ name: String, host: String? = nil, backend: String? = nil, nic: String? = nil, bridge: String? = nil,
        mac: String? = nil, memory: Memory? = nil, vcpus: Int? = nil, kernel: String? = nil,
        ramdisk: String? = nil, cmdline: String? = nil, weight: Int? = nil, cap: Int? = nil,
        cpus: [Int]? = nil, disks: [String]? = nil, file: String = #filePath, line: Int = #line
    ) {
        document = GuestDocument(
            name: name,
            resources: DomainResources(
                memoryMiB: memory?.mebibytes, vcpus: vcpus, kernel: kernel, ramdisk: ramdisk,
                cmdline: cmdline, weight: weight, cap: cap, cpus: cpus, disks: disks),
            backend: backend, nic: nic, bridge: bridge, mac: mac, host: host,
            source: SourceLocation(file: file, line: line))
    }
    /// The element.
    public var topologyElement: TopologyElement { TopologyElement(storage: .guest(document)) }
}

/// How domains are assigned to cores (paper Table 2, Sections 4.4 and 4.5).
public struct Placement: TopologyComponent {
    let document: PlacementDocument
    /// Pin nothing; the credit scheduler balances all domains over all cores.
    public static func credit(file: String = #filePath, line: Int = #line) -> Placement {
        Placement(document: .init(kind: .credit, source: SourceLocation(file: file, line: line)))
    }
    /// Each guest on the same core as its IOVM.
    public static func coLocate(file: String = #filePath, line: Int = #line) -> Placement {
        Placement(document: .init(kind: .coLocate, source: SourceLocation(file: file, line: line)))
    }
    /// Each guest on a different core from its IOVM, sharing a core with a different IOVM.
    public static func separate(file: String = #filePath, line: Int = #line) -> Placement {
        Placement(document: .init(kind: .separate, source: SourceLocation(file: file, line: line)))
    }
    /// All IOVMs on one core, each guest on one of the remaining cores.
    /// - Parameter dedicatedPool: Put the IOVMs' core in its own cpupool, running `Host(scheduler:)` (credit when unset).
    public static func iovmAffinity(
        dedicatedPool: Bool = false, poolName: String? = nil,
        file: String = #filePath, line: Int = #line
    ) -> Placement {
        Placement(
            document: .init(
                kind: .iovmAffinity, dedicatedPool: dedicatedPool, poolName: poolName,
                source: SourceLocation(file: file, line: line)))
    }
    /// Each IOVM pinned to its own core; guests left to the credit scheduler on the rest (Table 3).
    public static func hybridPinned(file: String = #filePath, line: Int = #line) -> Placement {
        Placement(document: .init(kind: .hybridPinned, source: SourceLocation(file: file, line: line)))
    }
    /// The element.
    public var topologyElement: TopologyElement { TopologyElement(storage: .placement(document)) }
}

/// Scheduler parameters for IOVMs and guests: credit weights and caps, or rtds reservations.
public struct Scheduling: TopologyComponent {
    let document: SchedulingDocument

    /// An rtds (EDF) reservation: `budget` microseconds of CPU guaranteed in every `period`.
    public struct RTDS: Sendable, Hashable {
        /// The period in microseconds (Xen's default 10 000).
        public var periodMicroseconds: Int
        /// The budget per period in microseconds, at most the period (Xen's default 4 000).
        public var budgetMicroseconds: Int
        /// Whether the domain may also run beyond its budget on idle time (Xen's default: yes).
        public var extratime: Bool

        /// A reservation of `budgetMicroseconds` in every `periodMicroseconds`.
        public init(periodMicroseconds: Int, budgetMicroseconds: Int, extratime: Bool = true) {
            self.periodMicroseconds = periodMicroseconds
            self.budgetMicroseconds = budgetMicroseconds
            self.extratime = extratime
        }

        var document: RTDSDocument {
            RTDSDocument(periodMicroseconds: periodMicroseconds, budgetMicroseconds: budgetMicroseconds, extratime: extratime)
        }
    }

    /// rtds reservations for IOVMs and guests (use with `Host(scheduler: "rtds")`); a role left nil keeps
    /// Xen's default reservation (4 ms every 10 ms, extratime).
    public static func rtds(iovm: RTDS? = nil, guest: RTDS? = nil, file: String = #filePath, line: Int = #line) -> Scheduling {
        Scheduling(
            document: SchedulingDocument(iovmRTDS: iovm?.document, guestRTDS: guest?.document, source: SourceLocation(file: file, line: line)))
    }

    init(document: SchedulingDocument) { self.document = document }

    /// Sets weights (1-65535, credit default 256) and caps (percent of a pCPU, 0 = none).
    public init(
        iovmWeight: Int? = nil, iovmCap: Int? = nil, guestWeight: Int? = nil, guestCap: Int? = nil,
        file: String = #filePath, line: Int = #line
    ) {
        document = SchedulingDocument(
            iovmWeight: iovmWeight, iovmCap: iovmCap, guestWeight: guestWeight,
            guestCap: guestCap, source: SourceLocation(file: file, line: line))
    }
    /// The element.
    public var topologyElement: TopologyElement { TopologyElement(storage: .scheduling(document)) }
}
