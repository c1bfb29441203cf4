// Bad input only the host can refuse (lab/test-apply, "bad inputs"): 16 GiB of guests on a host with about 4 GiB
// free. No Host(...): planned for the memory Xen reports free. Must exit 65, the host untouched.
import IOVMDescription

let topology = Topology("lab-bad-memory") {
    Defaults(kernel: "/lab/vmlinux", ramdisk: "/lab/guest-initrd.img", iovmImage: .minimal, guestMemory: 256)
    IOVM("iovm0") {
        NIC("0000:00:10.0")
    }
    Guest("guest1", backend: "iovm0", memory: .gib(8))
    Guest("guest2", backend: "iovm0", memory: .gib(8))
    Placement.credit()
}
