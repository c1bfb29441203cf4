// The Hybrid configuration under rtds, the EDF scheduler that succeeded SEDF (Figs. 10/11 compare rtds,
// pinned credit and credit): each IOVM pinned to its own core with 4 ms of CPU guaranteed every 10 ms,
// each guest 2 ms every 10 ms, both free to use idle time beyond that (extratime).
// On a host whose Pool-0 runs another scheduler, apply puts every domain in cpupool iovm-rtds on cores 1-3;
// core 0 stays with dom0 in Pool-0.
import IOVMDescription

let nics = ["0000:00:10.0", "0000:00:11.0", "0000:00:12.0", "0000:00:13.0"]

let topology = Topology("paper-hybrid-rtds") {
    Host(cores: 4, memory: .gib(4), reservedCores: [0], scheduler: "rtds")
    Defaults(kernel: "/var/lib/xen/guest/vmlinux", ramdisk: "/var/lib/xen/guest/initrd.img", iovmImage: .minimal,
             iovmMemory: 256, guestMemory: 256)
    Configuration.hybrid(groups: 2)
    for pci in nics { NIC(pci) }
    for (index, pci) in nics.enumerated() { Guest("guest\(index + 1)", nic: pci) }
    Placement.hybridPinned()
    Scheduling.rtds(
        iovm: .init(periodMicroseconds: 10_000, budgetMicroseconds: 4_000, extratime: true),
        guest: .init(periodMicroseconds: 10_000, budgetMicroseconds: 2_000, extratime: true))
}
