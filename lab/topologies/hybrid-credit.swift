// The paper's Table 3 host in the lab: 2 IOVMs with 2 e1000 NICs each, 4 guests, 4 cores.
// Table 3 "Default": everything left to the scheduler, default credit weights (256) for every domain.
// IOVMs boot iovm's minimal image (`iovm image build`: each NIC in the bridge the plan names,
// xen-netback, xl devd, the counters agent, in the planner's default memory); guests boot a busybox + iperf3 ramdisk
// that runs one iperf3 to the host through its NIC (lab/hostshape.env).
import IOVMDescription

let nics = ["0000:00:10.0", "0000:00:11.0", "0000:00:12.0", "0000:00:13.0"]

let topology = Topology("lab-hybrid") {
    Host(cores: 4, memory: .mib(4096))
    Defaults(kernel: "/lab/vmlinux", ramdisk: "/lab/guest-initrd.img",
             iovmImage: .minimal, guestMemory: 256)
    Configuration.hybrid(groups: 2)
    for pci in nics { NIC(pci) }
    for (index, pci) in nics.enumerated() {
        Guest("guest\(index + 1)", nic: pci,
              cmdline: "console=hvc0 lab.ip=10.0.2.\(21 + index)/24 lab.iperf=10.0.2.100:5201 lab.secs=5")
    }
    Placement.credit()
}
