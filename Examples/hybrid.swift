// Table 3 "Default": the Hybrid configuration with 2 IOVMs of 2 NICs each, 4 guests,
// everything left to the credit scheduler with its default weights (paper Section 4.5, Table 3).
import IOVMDescription

let nics = ["0000:00:10.0", "0000:00:11.0", "0000:00:12.0", "0000:00:13.0"]

let topology = Topology("paper-hybrid") {
    Host(cores: 4, memory: .gib(4), scheduler: "credit")
    Defaults(kernel: "/var/lib/xen/guest/vmlinux", ramdisk: "/var/lib/xen/guest/initrd.img", iovmImage: .minimal,
             iovmMemory: 256, guestMemory: 256)
    Configuration.hybrid(groups: 2)
    for pci in nics { NIC(pci) }
    for (index, pci) in nics.enumerated() { Guest("guest\(index + 1)", nic: pci) }
    Placement.credit()
}
