// Figs. 6 and 7 (paper Section 4.2): the centralized baseline, dom0 as the one driver domain, against a
// Monolithic IOVM, with 1, 2 and 3 NICs (one guest and one iperf3 client per NIC), in Rx and Tx.
// The base is Examples/monolithic.swift. `iovm experiment Examples/experiments/figures6and7.swift --dry-run`
// lists the cells; the same experiment is `Experiment.paper.figures6and7`.
import IOVMDescription

let base = Topology("paper-monolithic") {
    Host(cores: 4, memory: .gib(4), scheduler: "credit")
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

let experiment = Experiment("paper-figures6and7") {
    Base(base)
    Vary(.configuration([.centralized(), .monolithic()]))
    Vary(.nicCount(1...3))                      // the base's first 1, 2, 3 NICs and the guests using them
    Directions(.rx, .tx)
    Workload.iperf3(parallel: 4, length: 1024)  // the paper's 4 TCP connections of 1024-byte buffers
    Timing(duration: .seconds(60), warmUp: .seconds(10), repetitions: 3)
}
