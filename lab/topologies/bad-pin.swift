// Bad input only the host can refuse (lab/test-apply, "bad inputs"): a pin to core 7 of a 4-core host.
// No Host(...): planned for the cores Xen reports. Must exit 65 at the guest's line, the host untouched.
import IOVMDescription

let topology = Topology("lab-bad-pin") {
    Defaults(kernel: "/lab/vmlinux", ramdisk: "/lab/guest-initrd.img", iovmImage: .minimal, guestMemory: 256)
    IOVM("iovm0") {
        NIC("0000:00:10.0")
    }
    Guest("guest1", backend: "iovm0", cpus: [7])
    Placement.credit()
}
