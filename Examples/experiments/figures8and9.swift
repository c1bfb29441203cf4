// Figs. 8 and 9 (paper Section 4.3): Multiple Small IOVMs under the static core assignment schemes of
// Table 2 (co-locate, separate, IOVM-affinity), with 1, 2 and 3 NICs, in Rx and Tx.
// The base is Examples/multiple-small.swift; the same experiment is `Experiment.paper.figures8and9`.
import IOVMDescription

let nics = ["0000:00:10.0", "0000:00:11.0", "0000:00:12.0"]

let base = Topology("paper-multiple-small") {
    Host(cores: 4, memory: .gib(4), scheduler: "credit")
    Defaults(kernel: "/var/lib/xen/guest/vmlinux", ramdisk: "/var/lib/xen/guest/initrd.img", iovmImage: .minimal)
    Configuration.multipleSmall()
    for pci in nics { NIC(pci) }
    for (index, pci) in nics.enumerated() { Guest("guest\(index + 1)", nic: pci) }
    Placement.iovmAffinity()
}

let experiment = Experiment("paper-figures8and9") {
    Base(base)
    Vary(.placement([.coLocate(), .separate(), .iovmAffinity()]))
    Vary(.nicCount(1...3))
    Directions(.rx, .tx)
    Workload.iperf3(parallel: 4, length: 1024)
    Timing(duration: .seconds(60), warmUp: .seconds(10), repetitions: 3)
}
