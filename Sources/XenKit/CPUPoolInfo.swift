public import CPUSets

/// One cpupool as `libxl_list_cpupool` reports it (`xl cpupool-list`).
public struct CPUPoolInfo: Sendable, Hashable {
    /// The pool's id (Pool-0 is 0).
    public var id: UInt32
    /// The pool's name (`"pool<id>"` when libxl reports none).
    public var name: String
    /// Its scheduler, as xl spells it (`"credit"`, `"credit2"`, …; `"unknown"` when libxl has no name).
    public var scheduler: String
    /// Its CPUs.
    public var cpus: CPUSet

    /// Creates a pool description.
    public init(id: UInt32, name: String, scheduler: String, cpus: CPUSet) {
        self.id = id
        self.name = name
        self.scheduler = scheduler
        self.cpus = cpus
    }
}
