// Section 4.3: Multiple Small IOVMs (one per NIC) with the IOVM-affinity scheme of Table 2,
// the most efficient static assignment: all IOVMs on one core, each guest on its own core.
import IOVMDescription

let topology = Topology("paper-multiple-small") {
    Host(cores: 4, memory: .gib(4), scheduler: "credit")
    Defaults(kernel: "/var/lib/xen/guest/vmlinux", ramdisk: "/var/lib/xen/guest/initrd.img", iovmImage: .minimal)
    Configuration.multipleSmall()
    NIC("0000:00:10.0")
    NIC("0000:00:11.0")
    NIC("0000:00:12.0")
    Guest("guest1", nic: "0000:00:10.0")
    Guest("guest2", nic: "0000:00:11.0")
    Guest("guest3", nic: "0000:00:12.0")
    Placement.iovmAffinity()
}
