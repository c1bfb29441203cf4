// Table 3's hybrid (2 IOVMs with 2 e1000 NICs each, 4 guests, 4 cores, hybrid pinning as in hybrid-pinned.swift)
// for libvirt's libxl driver: `iovm render FILE --format libvirt --out DIR`, then `virsh create` from the host.
// The lab must boot with LAB_NIC_ROOT_PORTS=1 (lab/hostshape.env): each e1000 behind its own pcie-root-port,
// at LAB_NIC<n>_PORT_BDF. libvirt refuses a NIC on the root bus ("no FLR, PM reset or bus reset available");
// behind a root port it has a secondary bus reset.
// The NICs name their driver, so rendering on a host without them (no sysfs to read the PCI ids from) works.
// IOVMs boot iovm's minimal image (--images or IOVM_IMAGES: the store lab/image fills, lab/var/share/images on
// the host, /mnt/lab/images = /var/lib/iovm/images in dom0); guests boot a busybox + iperf3 ramdisk that runs
// one iperf3 to the host through its NIC (lab/hostshape.env: the host port is LAB_NIC<n>_HOSTPORT).
import IOVMDescription

let nics = ["0000:01:00.0", "0000:02:00.0", "0000:03:00.0", "0000:04:00.0"]

let topology = Topology("lab-libvirt-hybrid") {
    Host(cores: 4, memory: .mib(4096))
    Defaults(kernel: "/lab/vmlinux", ramdisk: "/lab/guest-initrd.img",
             iovmImage: .minimal, guestMemory: 256)
    Configuration.hybrid(groups: 2)
    for pci in nics { NIC(pci, driver: "e1000") }
    for (index, pci) in nics.enumerated() {
        Guest("guest\(index + 1)", nic: pci,
              cmdline: "console=hvc0 lab.ip=10.0.2.\(21 + index)/24 lab.iperf=10.0.2.100:5201 lab.secs=5")
    }
    Placement.hybridPinned()
    Scheduling(iovmWeight: 512, guestWeight: 256)
}
