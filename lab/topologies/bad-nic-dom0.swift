// Bad input only the host can refuse (lab/test-apply, "bad inputs"): 0000:00:07.0 is dom0's own management NIC
// (virtio-net, with an address); passing it through would cut dom0 off. Must exit 65 at the NIC's line, the host
// untouched (and the suite still reaching dom0 proves it). The IOVM boots a kernel of its own: no image is chosen.
import IOVMDescription

let topology = Topology("lab-bad-nic-dom0") {
    Defaults(kernel: "/lab/vmlinux", ramdisk: "/lab/guest-initrd.img", guestMemory: 256)
    IOVM("iovm0", kernel: "/lab/vmlinux", ramdisk: "/lab/guest-initrd.img") {
        NIC("0000:00:07.0")
    }
    Guest("guest1", backend: "iovm0")
    Placement.credit()
}
