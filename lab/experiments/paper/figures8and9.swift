// Figs. 8/9 at lab scale (`lab/experiment paper`): Multiple Small IOVMs with 1, 2 and 3 NICs under co-locate,
// separate and IOVM-affinity, Rx and Tx. One repetition of 20 s per cell (the paper: 60 s): another NIC count
// recreates every domain (about 80 s under TCG), and the shuffled order asks for many.
import IOVMDescription

let nics = ["0000:00:10.0", "0000:00:11.0", "0000:00:12.0"]

let base = Topology("lab-exp-multiple-small") {
    Host(cores: 4, memory: .mib(4096), scheduler: "credit")
    Defaults(kernel: "/lab/vmlinux", ramdisk: "/lab/guest-initrd.img", iovmImage: .minimal, guestMemory: 256)
    Configuration.multipleSmall()
    for pci in nics { NIC(pci) }
    for (index, pci) in nics.enumerated() { Guest("guest\(index + 1)", nic: pci, cmdline: "console=hvc0 lab.ip=10.0.2.\(21 + index)/24") }
    Placement.iovmAffinity()
}

let experiment = Experiment("lab-paper-figures8and9") {
    Base(base)
    Vary(.placement([.coLocate(), .separate(), .iovmAffinity()]))
    Vary(.nicCount(1...3))
    Directions(.rx, .tx)
    Workload.iperf3(parallel: 4, length: 1024, server: "10.0.2.100:5201")
    Timing(duration: .seconds(20), warmUp: .seconds(5), repetitions: 1)
}
