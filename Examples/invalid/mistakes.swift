// Deliberately wrong in many ways at once: iovm reports every problem with its line, exits 65,
// and touches nothing.
import IOVMDescription

let topology = Topology("mistakes") {
    Host(cores: 4, memory: .gib(1))
    Defaults(kernel: "/var/lib/iovm/vmlinux")
    IOVM("net-a") {
        NIC("0000:00:10.0")
        NIC("0000:00:10.0.1")      // malformed PCI address
    }
    IOVM("net-b") {
        NIC("0000:00:10.0")       // claimed twice
    }
    Guest("guest1", backend: "net-c")    // unknown IOVM
    Guest("guest2", backend: "net-a", vcpus: 8)   // more vCPUs than the host has
    Guest("guest2", backend: "net-b", memory: .gib(2))   // duplicate name, and too much memory
    Placement.coLocate()
}
