// Section 4.3's best static scheme on the lab host: Multiple Small IOVMs (one per NIC) with
// IOVM-affinity, the IOVMs' core in a dedicated credit cpupool; two NICs, two guests.
import IOVMDescription

let topology = Topology("lab-affinity") {
    Host(cores: 4, memory: .mib(4096))
    Defaults(kernel: "/lab/vmlinux", ramdisk: "/lab/guest-initrd.img",
             iovmImage: .minimal, guestMemory: 256)
    Configuration.multipleSmall()
    NIC("0000:00:10.0")
    NIC("0000:00:11.0")
    Guest("guest1", cmdline: "console=hvc0 lab.ip=10.0.2.21/24")
    Guest("guest2", cmdline: "console=hvc0 lab.ip=10.0.2.22/24")
    Placement.iovmAffinity(dedicatedPool: true, poolName: "iovm-pool")
}
