// Table 3 at lab scale (`lab/experiment paper`): as ../table3.swift with the paper's 3 repetitions of 20 s each
// (the paper measured 60 s; 20 s keeps the lab's whole paper run near an hour under TCG).
import IOVMDescription

let nics = ["0000:00:10.0", "0000:00:11.0", "0000:00:12.0", "0000:00:13.0"]

let base = Topology("lab-exp-hybrid") {
    Host(cores: 4, memory: .mib(4096), scheduler: "credit")
    Defaults(kernel: "/lab/vmlinux", ramdisk: "/lab/guest-initrd.img", iovmImage: .minimal, guestMemory: 256)
    Configuration.hybrid(groups: 2)
    for pci in nics { NIC(pci) }
    for (index, pci) in nics.enumerated() { Guest("guest\(index + 1)", nic: pci, cmdline: "console=hvc0 lab.ip=10.0.2.\(21 + index)/24") }
    Placement.credit()
}

let experiment = Experiment("lab-paper-table3") {
    Base(base)
    Vary(
        .variants([
            Variant("Default", placement: .credit(), weights: Weights()),
            Variant("Core Pinning", placement: .hybridPinned(), weights: Weights(iovm: 512, guest: 256)),
        ]))
    Directions(.rx, .tx)
    Workload.iperf3(parallel: 4, length: 1024, server: "10.0.2.100:5201")
    Timing(duration: .seconds(20), warmUp: .seconds(5), repetitions: 3)
}
