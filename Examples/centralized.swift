// The paper's baseline (Fig. 1): dom0 is the one driver domain; its NICs stay in dom0 and
// every guest's vif is backed there, on dom0's bridges xenbr0..xenbr2 (xenbr<k> carries NIC k; apply makes
// those missing and destroy removes the ones it made).
import IOVMDescription

let topology = Topology("paper-centralized") {
    Host(cores: 4, memory: .gib(4), scheduler: "credit")
    Defaults(kernel: "/var/lib/xen/guest/vmlinux", ramdisk: "/var/lib/xen/guest/initrd.img", iovmImage: .minimal)
    Configuration.centralized()
    NIC("0000:00:10.0")
    NIC("0000:00:11.0")
    NIC("0000:00:12.0")
    Guest("guest1")
    Guest("guest2")
    Guest("guest3")
    Placement.credit()
}
