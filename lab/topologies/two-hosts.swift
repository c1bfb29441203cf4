// One topology over two Xen hosts (issue 15): the two labs of lab/test-hosts, side by side on this machine
// (LAB_INSTANCE 1 and 2: dom0's ssh at 127.0.0.1:2222 and :2223, each lab's own key under lab/var*/ssh).
// Run iovm from the repository's root: the key files are named relative to it.
// The labs are identical, so their NICs have the same addresses: each host's NICs are its own. Each host gets one
// IOVM with both its NICs (monolithic per host; generated IOVMs are numbered across hosts: iovm0 on xen-a, iovm1
// on xen-b) and two guests, one per NIC, each running one iperf3 to this machine through its NIC (lab/hostshape.env:
// NIC n of instance N forwards to 127.0.0.1:LAB_NIC<n>_HOSTPORT + 10 (N - 1)).
// Both labs boot with their NICs behind PCIe root ports (LAB_NIC_ROOT_PORTS=1): libvirt resets what it passes through.
import IOVMDescription

let ssh = "no_verify=1&no_tty=1"
let nics = ["0000:01:00.0", "0000:02:00.0"]

let topology = Topology("lab-two-hosts") {
    Host("xen-a", connect: "xen+ssh://root@127.0.0.1:2222/system?keyfile=lab/var/ssh/id_ed25519&\(ssh)", cores: 4, memory: .mib(4096))
    Host("xen-b", connect: "xen+ssh://root@127.0.0.1:2223/system?keyfile=lab/var-2/ssh/id_ed25519&\(ssh)", cores: 4, memory: .mib(4096))
    Defaults(kernel: "/lab/vmlinux", ramdisk: "/lab/guest-initrd.img", iovmImage: .minimal, guestMemory: 256)
    Configuration.monolithic()
    for host in ["xen-a", "xen-b"] {
        for pci in nics { NIC(pci, driver: "e1000", host: host) }
    }
    for (index, pci) in nics.enumerated() {
        Guest("a\(index + 1)", host: "xen-a", nic: pci,
              cmdline: "console=hvc0 lab.ip=10.0.2.\(21 + index)/24 lab.iperf=10.0.2.100:5201 lab.secs=5")
        Guest("b\(index + 1)", host: "xen-b", nic: pci,
              cmdline: "console=hvc0 lab.ip=10.0.2.\(21 + index)/24 lab.iperf=10.0.2.100:5201 lab.secs=5")
    }
    Placement.hybridPinned()
    Scheduling(iovmWeight: 512, guestWeight: 256)
}
