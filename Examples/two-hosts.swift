// One topology over two Xen hosts, applied from anywhere through libvirt (`iovm apply Examples/two-hosts.swift`):
// each host gets one IOVM with its NICs and the guests behind them. Identical hosts have identical PCI addresses:
// every NIC names its host. `iovm plan` prints each host's share; `--on-host NAME` takes one.
import IOVMDescription

let nics = ["0000:03:00.0", "0000:04:00.0"]

let topology = Topology("fleet") {
    Host("xen-a", connect: "xen+ssh://root@xen-a.example.org/system?keyfile=/root/.ssh/iovm", cores: 8, memory: .gib(16))
    Host("xen-b", connect: "xen+ssh://root@xen-b.example.org/system?keyfile=/root/.ssh/iovm", cores: 8, memory: .gib(16))
    Defaults(kernel: "/var/lib/xen/guest/vmlinux", ramdisk: "/var/lib/xen/guest/initrd.img", iovmImage: .minimal)
    Configuration.monolithic()
    for host in ["xen-a", "xen-b"] {
        for pci in nics { NIC(pci, driver: "ixgbe", host: host) }
    }
    Guest("web1", host: "xen-a", nic: nics[0])
    Guest("web2", host: "xen-a", nic: nics[1])
    Guest("db1", host: "xen-b", nic: nics[0])
    Guest("db2", host: "xen-b", nic: nics[1])
    Placement.hybridPinned()
    Scheduling(iovmWeight: 512)
}
