// Deliberately broken: memory takes a Memory (MiB or .gib(_)), not a String.
// `iovm plan Examples/invalid/type-error.swift` exits 65 with the compiler's file:line:col.
import IOVMDescription

let topology = Topology("broken") {
    Host(cores: 4)
    Configuration.monolithic()
    NIC("0000:00:10.0")
    Guest("guest1", memory: "lots")
}
