/// The paper's experiments (Section 4) as presets: `let experiment = Experiment.paper.figures8and9`.
///
/// Each is also written out as plain DSL in `Examples/experiments/` to copy and change; a unit test
/// checks that each file expands to the same cells as its preset. The bases are the topologies of
/// `Examples/`; every preset runs 60 s per cell after 10 s of warm-up, 3 repetitions (the paper does not say).
extension Experiment {
    /// The paper's experiments.
    public static var paper: PaperExperiments { PaperExperiments() }
}

/// The experiments of the paper's Section 4, Figs. 6-13 and Table 3.
public struct PaperExperiments: Sendable {
    static let nics3 = ["0000:00:10.0", "0000:00:11.0", "0000:00:12.0"]
    static let nics4 = ["0000:00:10.0", "0000:00:11.0", "0000:00:12.0", "0000:00:13.0"]
    static let kernel = "/var/lib/xen/guest/vmlinux"
    static let ramdisk = "/var/lib/xen/guest/initrd.img"

    /// `Examples/monolithic.swift`: one Monolithic IOVM owns 3 NICs, each of 3 guests uses one.
    static func monolithic(reservedCores: [Int] = []) -> Topology {
        Topology("paper-monolithic") {
            Host(cores: 4, memory: .gib(4), reservedCores: reservedCores, scheduler: "credit")
            Defaults(kernel: kernel, ramdisk: ramdisk, iovmImage: .minimal)
            Configuration.monolithic()
            for pci in nics3 { NIC(pci) }
            for index in 1...3 { Guest("guest\(index)") }
            Placement.credit()
        }
    }

    /// Figs. 6 and 7 (Section 4.2): the centralized baseline (dom0 as the one driver domain) against a
    /// Monolithic IOVM, with 1, 2 and 3 NICs (one guest and one iperf3 client per NIC), Rx and Tx.
    public var figures6and7: Experiment {
        let base = Self.monolithic()
        return Experiment("paper-figures6and7") {
            Base(base)
            Vary(.configuration([.centralized(), .monolithic()]))
            Vary(.nicCount(1...3))
            Directions(.rx, .tx)
            Workload.iperf3(parallel: 4, length: 1024)
            Timing(duration: .seconds(60), warmUp: .seconds(10), repetitions: 3)
        }
    }

    /// Figs. 8 and 9 (Section 4.3): Multiple Small IOVMs under the static core assignment schemes of
    /// Table 2 (co-locate, separate, IOVM-affinity), with 1, 2 and 3 NICs, Rx and Tx.
    public var figures8and9: Experiment {
        let base = Topology("paper-multiple-small") {
            Host(cores: 4, memory: .gib(4), scheduler: "credit")
            Defaults(kernel: Self.kernel, ramdisk: Self.ramdisk, iovmImage: .minimal)
            Configuration.multipleSmall()
            for pci in Self.nics3 { NIC(pci) }
            for (index, pci) in Self.nics3.enumerated() { Guest("guest\(index + 1)", nic: pci) }
            Placement.iovmAffinity()
        }
        return Experiment("paper-figures8and9") {
            Base(base)
            Vary(.placement([.coLocate(), .separate(), .iovmAffinity()]))
            Vary(.nicCount(1...3))
            Directions(.rx, .tx)
            Workload.iperf3(parallel: 4, length: 1024)
            Timing(duration: .seconds(60), warmUp: .seconds(10), repetitions: 3)
        }
    }

    /// Figs. 10 and 11 (Section 4.4): a static scheduler against the credit scheduler on the Monolithic
    /// configuration, with 1, 2 and 3 NICs, Rx and Tx. The paper's static scheduler, SEDF, is gone from Xen:
    /// "static" here is rtds, its EDF successor, with every domain on a fixed core (IOVM-affinity), in a
    /// cpupool of its own on cores 1-3 (core 0 stays with dom0 under Pool-0's credit); "pinned credit" keeps the
    /// same fixed cores under credit (Xen without rtds, such as Debian's, runs this one and "credit" only);
    /// "credit" leaves every domain unpinned under credit.
    public var figures10and11: Experiment {
        let base = Self.monolithic(reservedCores: [0])
        return Experiment("paper-figures10and11") {
            Base(base)
            Vary(
                .variants([
                    Variant("static", placement: .iovmAffinity(), scheduler: .rtds()),
                    Variant("pinned credit", placement: .iovmAffinity(), scheduler: .credit()),
                    Variant("credit", placement: .credit(), scheduler: .credit()),
                ]))
            Vary(.nicCount(1...3))
            Directions(.rx, .tx)
            Workload.iperf3(parallel: 4, length: 1024)
            Timing(duration: .seconds(60), warmUp: .seconds(10), repetitions: 3)
        }
    }

    /// Figs. 12 and 13 (Section 4.4): Monolithic, Multiple Small IOVMs and Hybrid (one IOVM with 2 NICs,
    /// one with 1) under the credit scheduler, 3 test loads, Rx and Tx.
    public var figures12and13: Experiment {
        let base = Self.monolithic()
        return Experiment("paper-figures12and13") {
            Base(base)
            Vary(.configuration([.monolithic(), .multipleSmall(), .hybrid(groups: 2)]))
            Directions(.rx, .tx)
            Workload.iperf3(parallel: 4, length: 1024)
            Timing(duration: .seconds(60), warmUp: .seconds(10), repetitions: 3)
        }
    }

    /// Table 3 (Section 4.5): the Hybrid configuration, 2 IOVMs of 2 NICs each and 4 guests, "Default"
    /// (everything left to the credit scheduler with its default weights, `Examples/hybrid.swift`) against
    /// "Core Pinning" (each IOVM on its own core, the IOVMs weighted 512, `Examples/hybrid-pinned.swift`).
    public var table3: Experiment {
        let base = Topology("paper-hybrid") {
            Host(cores: 4, memory: .gib(4), scheduler: "credit")
            Defaults(kernel: Self.kernel, ramdisk: Self.ramdisk, iovmImage: .minimal, iovmMemory: 256, guestMemory: 256)
            Configuration.hybrid(groups: 2)
            for pci in Self.nics4 { NIC(pci) }
            for (index, pci) in Self.nics4.enumerated() { Guest("guest\(index + 1)", nic: pci) }
            Placement.credit()
        }
        return Experiment("paper-table3") {
            Base(base)
            Vary(
                .variants([
                    Variant("Default", placement: .credit(), weights: Weights()),
                    Variant("Core Pinning", placement: .hybridPinned(), weights: Weights(iovm: 512, guest: 256)),
                ]))
            Directions(.rx, .tx)
            Workload.iperf3(parallel: 4, length: 1024)
            Timing(duration: .seconds(60), warmUp: .seconds(10), repetitions: 3)
        }
    }
}
