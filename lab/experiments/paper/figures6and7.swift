// Figs. 6/7 at lab scale (`lab/experiment paper`): the centralized baseline (dom0's e1000 drivers and bridges back
// every guest's vif; efficiency counts dom0's cycles) against one Monolithic IOVM, with 1, 2 and 3 NICs (one guest
// per NIC), Rx and Tx, one repetition of 20 s per cell (the paper: 60 s).
import IOVMDescription

let nics = ["0000:00:10.0", "0000:00:11.0", "0000:00:12.0"]

let base = Topology("lab-exp-monolithic") {
    Host(cores: 4, memory: .mib(4096), scheduler: "credit")
    Defaults(kernel: "/lab/vmlinux", ramdisk: "/lab/guest-initrd.img", iovmImage: .minimal, guestMemory: 256)
    Configuration.monolithic()
    for pci in nics { NIC(pci) }
    for (index, pci) in nics.enumerated() { Guest("guest\(index + 1)", nic: pci, cmdline: "console=hvc0 lab.ip=10.0.2.\(21 + index)/24") }
    Placement.credit()
}

let experiment = Experiment("lab-paper-figures6and7") {
    Base(base)
    Vary(.configuration([.centralized(), .monolithic()]))
    Vary(.nicCount(1...3))
    Directions(.rx, .tx)
    Workload.iperf3(parallel: 4, length: 1024, server: "10.0.2.100:5201")
    Timing(duration: .seconds(20), warmUp: .seconds(5), repetitions: 1)
}
