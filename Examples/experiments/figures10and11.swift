// Figs. 10 and 11 (paper Section 4.4): a static scheduler against the credit scheduler, on the Monolithic
// configuration, with 1, 2 and 3 NICs, in Rx and Tx. The paper's static scheduler, SEDF, is gone from Xen:
// "static" is rtds, its EDF successor, with every domain on a fixed core (IOVM-affinity); it runs in a cpupool
// of its own on cores 1-3, since Pool-0 runs credit and dom0 keeps core 0. "pinned credit" keeps those fixed
// cores under credit, and "credit" leaves every domain unpinned under credit. Each variant sets the scheduler
// and the placement together. rtds is an unsupported scheduler that release builds of Xen leave out (Debian's
// has credit and credit2 only: `iovm doctor` says which this host has, `iovm experiment` refuses the rtds cells
// before anything starts); on such a host, drop the "static" variant.
// The same experiment is `Experiment.paper.figures10and11`.
import IOVMDescription

let base = Topology("paper-monolithic") {
    Host(cores: 4, memory: .gib(4), reservedCores: [0], scheduler: "credit")
    Defaults(kernel: "/var/lib/xen/guest/vmlinux", ramdisk: "/var/lib/xen/guest/initrd.img", iovmImage: .minimal)
    Configuration.monolithic()
    NIC("0000:00:10.0")
    NIC("0000:00:11.0")
    NIC("0000:00:12.0")
    Guest("guest1")
    Guest("guest2")
    Guest("guest3")
    Placement.credit()
}

let experiment = Experiment("paper-figures10and11") {
    Base(base)
    Vary(.variants([
        Variant("static", placement: .iovmAffinity(), scheduler: .rtds()),
        Variant("pinned credit", placement: .iovmAffinity(), scheduler: .credit()),
        Variant("credit", placement: .credit(), scheduler: .credit()),
    ]))
    Vary(.nicCount(1...3))
    Directions(.rx, .tx)
    Workload.iperf3(parallel: 4, length: 1024)
    Timing(duration: .seconds(60), warmUp: .seconds(10), repetitions: 3)
}
