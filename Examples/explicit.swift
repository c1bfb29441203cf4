// IOVMs declared one by one: the Hybrid setup of Section 4.4 (one IOVM with 2 NICs, one with 1),
// with a web guest weighted higher, and IOVMs on a kernel of the operator's own instead of iovm's image.
import IOVMDescription

let topology = Topology("explicit-hybrid") {
    Host(cores: 4, memory: .gib(4), dom0Memory: .gib(1), reservedCores: [0], scheduler: "credit")
    Defaults(kernel: "/var/lib/xen/guest/vmlinux", ramdisk: "/var/lib/xen/guest/initrd.img",
             iovmKernel: "/boot/vmlinuz-iovm", iovmRamdisk: "/boot/initrd-iovm.img", iovmCmdline: "console=hvc0 iovm=1")
    IOVM("net-a", memory: 256, weight: 768) {
        NIC("0000:00:10.0", bridge: "uplink0")
        NIC("0000:00:11.0", bridge: "uplink1")
    }
    IOVM("net-b", memory: 256) {
        NIC("0000:00:12.0")
    }
    Guest("web", backend: "net-a", bridge: "uplink0", weight: 512)
    Guest("db", backend: "net-a", bridge: "uplink1")
    Guest("batch", nic: "0000:00:12.0", cap: 50)
    Placement.hybridPinned()
}
