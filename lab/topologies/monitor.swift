// For checking `iovm monitor` against iperf3 and xentop (issue 5): one Monolithic IOVM with two NICs;
// guest1 sends to the host through the first (Tx: guest -> client), guest2 receives from the host
// through the second (Rx: client -> guest, iperf3 -R). Both run 60 s of iperf3 right after boot.
import IOVMDescription

let topology = Topology("lab-monitor") {
    Host(cores: 4, memory: .mib(4096))
    Defaults(kernel: "/lab/vmlinux", ramdisk: "/lab/guest-initrd.img",
             iovmImage: .minimal, guestMemory: 256)
    Configuration.monolithic()
    NIC("0000:00:10.0")
    NIC("0000:00:11.0")
    Guest("guest1", nic: "0000:00:10.0", cmdline: "console=hvc0 lab.ip=10.0.2.21/24 lab.iperf=10.0.2.100:5201 lab.secs=60")
    Guest("guest2", nic: "0000:00:11.0", cmdline: "console=hvc0 lab.ip=10.0.2.22/24 lab.iperf=10.0.2.100:5201 lab.secs=60 lab.reverse=1")
    Placement.iovmAffinity()
}
