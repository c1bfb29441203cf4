// Table 3 "Core Pinning": the same Hybrid configuration, each IOVM pinned to its own core
// (the first to core 3, the second to core 2), guests left to the credit scheduler on cores 0-1.
import IOVMDescription

let nics = ["0000:00:10.0", "0000:00:11.0", "0000:00:12.0", "0000:00:13.0"]

let topology = Topology("paper-hybrid-pinned") {
    Host(cores: 4, memory: .gib(4), scheduler: "credit")
    Defaults(kernel: "/var/lib/xen/guest/vmlinux", ramdisk: "/var/lib/xen/guest/initrd.img", iovmImage: .minimal,
             iovmMemory: 256, guestMemory: 256)
    Configuration.hybrid(groups: 2)
    for pci in nics { NIC(pci) }
    for (index, pci) in nics.enumerated() { Guest("guest\(index + 1)", nic: pci) }
    Placement.hybridPinned()
    Scheduling(iovmWeight: 512, guestWeight: 256)
}
