// Figs. 10/11 at lab scale (`lab/experiment paper`): the Monolithic IOVM under a static scheduler against credit,
// with 1, 2 and 3 NICs, Rx and Tx, one repetition of 20 s per cell (the paper: 60 s). SEDF is gone from Xen:
// "static" is rtds with every domain on a fixed core (IOVM-affinity), in a cpupool of its own on cores 1-3 (core 0
// stays with dom0 under Pool-0's credit); "credit" leaves every domain unpinned under credit.
import IOVMDescription

let nics = ["0000:00:10.0", "0000:00:11.0", "0000:00:12.0"]

let base = Topology("lab-exp-monolithic") {
    Host(cores: 4, memory: .mib(4096), reservedCores: [0], scheduler: "credit")
    Defaults(kernel: "/lab/vmlinux", ramdisk: "/lab/guest-initrd.img", iovmImage: .minimal, guestMemory: 256)
    Configuration.monolithic()
    for pci in nics { NIC(pci) }
    for (index, pci) in nics.enumerated() { Guest("guest\(index + 1)", nic: pci, cmdline: "console=hvc0 lab.ip=10.0.2.\(21 + index)/24") }
    Placement.credit()
}

let experiment = Experiment("lab-paper-figures10and11") {
    Base(base)
    Vary(
        .variants([
            Variant("static", placement: .iovmAffinity(), scheduler: .rtds()),
            Variant("credit", placement: .credit(), scheduler: .credit()),
        ]))
    Vary(.nicCount(1...3))
    Directions(.rx, .tx)
    Workload.iperf3(parallel: 4, length: 1024, server: "10.0.2.100:5201")
    Timing(duration: .seconds(20), warmUp: .seconds(5), repetitions: 1)
}
