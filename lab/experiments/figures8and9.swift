// Figs. 8/9 at lab scale (CI's reduced matrix): Multiple Small IOVMs with 2 NICs under co-locate, separate and
// IOVM-affinity, Rx and Tx, one short repetition. See table3.swift for the guests and the traffic's path.
import IOVMDescription

let nics = ["0000:00:10.0", "0000:00:11.0"]

let base = Topology("lab-exp-multiple-small") {
    Host(cores: 4, memory: .mib(4096), scheduler: "credit")
    Defaults(kernel: "/lab/vmlinux", ramdisk: "/lab/guest-initrd.img", iovmImage: .minimal, guestMemory: 256)
    Configuration.multipleSmall()
    for pci in nics { NIC(pci) }
    for (index, pci) in nics.enumerated() { Guest("guest\(index + 1)", nic: pci, cmdline: "console=hvc0 lab.ip=10.0.2.\(21 + index)/24") }
    Placement.iovmAffinity()
}

let experiment = Experiment("lab-figures8and9") {
    Base(base)
    Vary(.placement([.coLocate(), .separate(), .iovmAffinity()]))
    Directions(.rx, .tx)
    Workload.iperf3(parallel: 4, length: 1024, server: "10.0.2.100:5201")
    Timing(duration: .seconds(10), warmUp: .seconds(3), repetitions: 1)
}
