// Table 3 at lab scale (CI's reduced matrix): the Hybrid configuration, 2 IOVMs of 2 e1000 NICs each, 4 guests;
// "Default" (credit, default weights) against "Core Pinning" (IOVMs on cores 3 and 2, weights 512/256).
// Guests run iovm's load agent (lab/build puts it in their ramdisk); each guest's iperf3 goes through its NIC to
// 10.0.2.100:5201, which QEMU forwards to the host's iperf3 server of that NIC (lab/hostshape.env).
// Cells are short (3 s warm-up, 10 s measured, one repetition): CI checks the report is complete, not the ordering.
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

let experiment = Experiment("lab-table3") {
    Base(base)
    Vary(
        .variants([
            Variant("Default", placement: .credit(), weights: Weights()),
            Variant("Core Pinning", placement: .hybridPinned(), weights: Weights(iovm: 512, guest: 256)),
        ]))
    Directions(.rx, .tx)
    Workload.iperf3(parallel: 4, length: 1024, server: "10.0.2.100:5201")
    Timing(duration: .seconds(10), warmUp: .seconds(3), repetitions: 1)
}
