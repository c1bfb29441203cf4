// Bad input only the host can refuse (lab/test-apply, "bad inputs"): NIC 0000:00:1e.0 is not on the lab host.
// No Host(...): planned for what Xen reports. Must exit 65 at the NIC's line, the host untouched.
import IOVMDescription

let topology = Topology("lab-bad-nic-missing") {
    Defaults(kernel: "/lab/vmlinux", ramdisk: "/lab/guest-initrd.img", iovmImage: .minimal, guestMemory: 256)
    IOVM("iovm0") {
        NIC("0000:00:10.0")
        NIC("0000:00:1e.0")
    }
    Guest("guest1", backend: "iovm0")
    Placement.credit()
}
