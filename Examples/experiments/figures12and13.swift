// Figs. 12 and 13 (paper Section 4.4): Monolithic, Multiple Small IOVMs and Hybrid (2 IOVMs: one with 2 NICs,
// one with 1) under the credit scheduler, with 3 test loads, in Rx and Tx.
// The base is Examples/monolithic.swift; the same experiment is `Experiment.paper.figures12and13`.
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

let experiment = Experiment("paper-figures12and13") {
    Base(base)
    Vary(.configuration([.monolithic(), .multipleSmall(), .hybrid(groups: 2)]))
    Directions(.rx, .tx)
    Workload.iperf3(parallel: 4, length: 1024)
    Timing(duration: .seconds(60), warmUp: .seconds(10), repetitions: 3)
}
