// Section 4.2: one Monolithic IOVM owns all 3 NICs; each of 3 guests uses one NIC.
import IOVMDescription

let topology = Topology("paper-monolithic") {
    Host(cores: 4, memory: .gib(4), scheduler: "credit")
    Defaults(kernel: "/var/lib/xen/guest/vmlinux", ramdisk: "/var/lib/xen/guest/initrd.img", iovmImage: .minimal)
    Configuration.monolithic()
    NIC("0000:00:10.0")
    NIC("0000:00:11.0")
    NIC("0000:00:12.0")
    Guest("guest1")
    Guest("guest2")
    Guest("guest3")
    Placement.credit()
}
