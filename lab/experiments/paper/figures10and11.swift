// Figs. 10/11 at lab scale (`lab/experiment paper`): the Monolithic IOVM with every domain on a fixed core against
// credit, with 1, 2 and 3 NICs, Rx and Tx, one repetition of 20 s per cell (the paper: 60 s). The paper's static
// scheduler, SEDF, is gone from Xen, and its successor rtds is not in the lab's Xen (Debian's 4.17 is built with
// credit and credit2 only: `xenhypfs cat /buildinfo/config`; `iovm experiment` refuses an rtds cell before it
// starts). So "pinned credit" stands for the static scheduler here: IOVM-affinity under credit, cores 1-3 (core 0
// stays with dom0); "credit" leaves every domain unpinned. `Experiment.paper.figures10and11` adds rtds.
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
            Variant("pinned credit", placement: .iovmAffinity(), scheduler: .credit()),
            Variant("credit", placement: .credit(), scheduler: .credit()),
        ]))
    Vary(.nicCount(1...3))
    Directions(.rx, .tx)
    Workload.iperf3(parallel: 4, length: 1024, server: "10.0.2.100:5201")
    Timing(duration: .seconds(20), warmUp: .seconds(5), repetitions: 1)
}
