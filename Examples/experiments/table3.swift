// Table 3 (paper Section 4.5): the Hybrid configuration, 2 IOVMs of 2 NICs each and 4 guests.
// "Default": everything left to the credit scheduler with its default weights (Examples/hybrid.swift);
// "Core Pinning": each IOVM on its own core (cores 3 and 2), the guests on the rest, the IOVMs weighted 512
// (Examples/hybrid-pinned.swift). Each variant sets the placement and the weights together; switching
// between them is live (pinning and weights), never a recreation.
// The same experiment is `Experiment.paper.table3`.
import IOVMDescription

let nics = ["0000:00:10.0", "0000:00:11.0", "0000:00:12.0", "0000:00:13.0"]

let base = Topology("paper-hybrid") {
    Host(cores: 4, memory: .gib(4), scheduler: "credit")
    Defaults(kernel: "/var/lib/xen/guest/vmlinux", ramdisk: "/var/lib/xen/guest/initrd.img", iovmImage: .minimal,
             iovmMemory: 256, guestMemory: 256)
    Configuration.hybrid(groups: 2)
    for pci in nics { NIC(pci) }
    for (index, pci) in nics.enumerated() { Guest("guest\(index + 1)", nic: pci) }
    Placement.credit()
}

let experiment = Experiment("paper-table3") {
    Base(base)
    Vary(.variants([
        Variant("Default", placement: .credit(), weights: Weights()),
        Variant("Core Pinning", placement: .hybridPinned(), weights: Weights(iovm: 512, guest: 256)),
    ]))
    Directions(.rx, .tx)
    Workload.iperf3(parallel: 4, length: 1024)
    Timing(duration: .seconds(60), warmUp: .seconds(10), repetitions: 3)
}
