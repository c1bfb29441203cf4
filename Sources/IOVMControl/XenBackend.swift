public import CPUSets
public import IOVMCore

/// The privileged boundary: everything iovm asks of Xen goes through one of these.
///
/// `LibXLBackend` (in the `IOVMXen` target) is the real one, over libxl, libxenstore and sysfs;
/// unit tests use `FakeXenBackend`, an in-memory stand-in that is named as a fake.
public protocol XenBackend: Sendable {
    /// Takes the plan an apply is about to carry out, before anything is touched; throws when this backend
    /// cannot carry it out at all (libvirt: cpupools, rtds). The libxl backend needs nothing.
    func prepare(_ plan: Plan) throws
    /// The host now: domains with their tags, pools, and the bindings of `nics`.
    func observe(nics: [PCIAddress]) throws -> ObservedHost
    /// The domain named `nameOrID` (a name or a domid), without observing the whole host; nil when
    /// there is none, an error when it exists but iovm did not create it.
    func managedDomain(_ nameOrID: String) throws -> ManagedDomain?
    /// The domains named `namesOrIDs`, in order, looked up together (the live verbs' one lookup): nil for a name no
    /// domain has, an error for one iovm did not create. Each one's credit cap is read only `withCap`.
    func managedDomains(_ namesOrIDs: [String], withCap: Bool) throws -> [ManagedDomain?]

    /// Creates a cpupool (moving its cores out of Pool-0 first) and tags it as the topology's.
    func createPool(_ pool: CPUPoolSpec, topology: String) throws
    /// Destroys a pool iovm created, its cores going back to Pool-0.
    func destroyPool(named name: String) throws

    /// Makes a NIC assignable to domains (binds it to pciback), recording its previous driver and `topology`, whose
    /// apply does it (``NICBinding/madeAssignableFor``; nil only when a rollback restores an older iovm's mark).
    func makeAssignable(_ pci: PCIAddress, for topology: String?) throws
    /// Rewrites the mark of a NIC iovm made assignable so that it names `topology` (nil: no topology, an older iovm's
    /// mark), keeping the driver it records: the NIC's IOVM is now `topology`'s, and its destroy gives the NIC back.
    func markNIC(_ pci: PCIAddress, for topology: String?) throws
    /// Gives a NIC iovm made assignable back to dom0's driver.
    func releaseNIC(_ pci: PCIAddress) throws

    /// Creates a domain from its spec and libxl JSON config, tags it, and leaves it running. Returns its domid.
    func createDomain(_ spec: DomainSpec, libxlJSON: String, tag: ManagedTag) throws -> UInt32
    /// Waits until a driver domain serves vif backends (its `xl devd` has started), or throws after `timeout` seconds.
    func waitForDriverDomain(domid: UInt32, timeout: Double) throws
    /// Waits until a driver domain's kernel takes vif backends (its netback probes them), which may be before its
    /// `xl devd` serves them (``waitForDriverDomain(domid:timeout:)``), or throws after `timeout` seconds.
    ///
    /// A vif added from then on waits in its backend until `xl devd` starts and runs its hotplug script (libxl's
    /// `libxl_device_events_handler` takes the backends already there), so guests and re-attached vifs need not
    /// wait for `xl devd`. The default waits for `xl devd`.
    func waitForVifBackends(domid: UInt32, timeout: Double) throws
    /// Waits until every vif of a guest is connected in its backend (state 4), or throws after `timeout` seconds.
    /// libxl returns from creating a guest once its backend exists; the driver domain's hotplug script
    /// may still fail afterwards, leaving the guest without network.
    func waitForGuestNetwork(domid: UInt32, timeout: Double) throws
    /// Destroys a domain iovm created and removes its tag.
    func destroyDomain(domid: UInt32) throws
    /// Replaces vif `devid` of running guest `domid`, whose backend died or broke, by one with the same MAC,
    /// bridge and devid in `vif`'s backend: the stale one is removed (libxl cleans up the frontend alone when
    /// its backend is gone), the new one added. Does not wait for it to connect (``waitForGuestNetwork``).
    func reattachVif(domid: UInt32, devid: Int, staleBackend: UInt32?, to vif: VifSpec) throws
    /// Removes vif `devid` of running guest `domid` whose backend domain `staleBackend` no longer exists, or no longer
    /// has its backend directory (libxl cleans up the frontend alone), ahead of ``reattachVif(domid:devid:staleBackend:to:)``, which
    /// then only adds; nothing when the vif is gone already. Apply runs it while the dead IOVM is made again.
    func removeDeadVif(domid: UInt32, devid: Int, staleBackend: UInt32) throws

    /// Sets every vCPU's hard affinity (nil: all cores) live.
    func setAffinity(domid: UInt32, vcpus: Int, hard: CPUSet?) throws
    /// Sets each vCPU's hard affinity live, vCPU `i` to `perVCPU[i]`: a rollback's, giving back affinities that
    /// differed between the vCPUs.
    func setAffinity(domid: UInt32, perVCPU: [CPUSet]) throws
    /// Sets credit weight and cap live.
    func setSchedule(domid: UInt32, weight: Int, cap: Int) throws
    /// Sets the rtds period, budget and extratime live (the domain's cpupool runs rtds).
    func setRTDS(domid: UInt32, to parameters: RTDSParameters) throws
    /// Sets each vCPU's rtds reservation live, vCPU `i` to `perVCPU[i]`: a rollback's, giving back reservations that
    /// differed between the vCPUs.
    func setRTDS(domid: UInt32, perVCPU: [RTDSParameters]) throws
    /// Moves a domain to another cpupool live.
    func moveToPool(domid: UInt32, pool: String) throws
    /// Tidies the records no domain answers to any more: removes creation intents whose domain does not exist (an
    /// apply was killed after recording one); moves a tag to its domain's new ID (`xl restore`); parks a tag whose
    /// domain is gone (something else destroyed or saved it), or removes it once iovm made that name again; tags a
    /// domain that came back with a parked tag's UUID and name. Called under the host lock, when no creation is in
    /// flight.
    func removeStaleRecords() throws
    /// ``removeStaleRecords()``, then ``observe(nics:)``, in one hold of the host lock. A backend may answer the
    /// observation's reads of iovm's own records from what the removal read, when it changed none. A failed removal
    /// is told to `removalFailed`, and the observation goes on.
    func removeStaleRecordsThenObserve(nics: [PCIAddress], removalFailed: (any Error) -> Void) throws -> ObservedHost
    /// Removes what iovm kept of `topology`'s domains that vanished without iovm destroying them (parked tags: an
    /// `xl save`d guest is iovm's again when `xl restore` brings it back). Called once a destroy of `topology` ended;
    /// the default keeps nothing.
    func removeParkedTags(of topology: String) throws
    /// Every domain's domid and whether it runs, from one listing of Xen's domains, and the plans recorded as applied
    /// (no tag, vif or device read): what `iovm watch` looks at first when an event comes. The default observes the
    /// whole host.
    func glance() throws -> HostGlance
    /// Records that the plan of `fingerprint` (``IOVMCore/Plan/appliedFingerprint``) is now applied whole for `topology`; nil:
    /// `topology` was destroyed. Read back in ``ObservedHost/applied``, by `iovm watch`.
    func recordApplied(topology: String, fingerprint: String?) throws
    /// The NICs whose mark names `topology` (``NICBinding/madeAssignableFor``), whichever file lists them: its
    /// `iovm destroy` gives them back.
    func nicsMarked(for topology: String) throws -> [PCIAddress]
}

extension XenBackend {
    /// Needs nothing.
    public func prepare(_ plan: Plan) throws {}

    /// The two calls one after the other.
    public func removeStaleRecordsThenObserve(nics: [PCIAddress], removalFailed: (any Error) -> Void) throws -> ObservedHost {
        do { try removeStaleRecords() } catch { removalFailed(error) }
        return try observe(nics: nics)
    }

    /// Keeps nothing.
    public func removeParkedTags(of topology: String) throws {}

    /// Records nothing.
    public func recordApplied(topology: String, fingerprint: String?) throws {}

    /// None: destroy gives back the NICs of the topology's file only.
    public func nicsMarked(for topology: String) throws -> [PCIAddress] { [] }

    /// ``waitForDriverDomain(domid:timeout:)``: without a sign from the image, only `xl devd` tells.
    public func waitForVifBackends(domid: UInt32, timeout: Double) throws {
        try waitForDriverDomain(domid: domid, timeout: timeout)
    }

    /// What ``observe(nics:)`` shows.
    public func glance() throws -> HostGlance {
        let host = try observe(nics: [])
        return HostGlance(domains: host.domains.map { DomainLife(domid: $0.domid, shutdownReason: $0.shutdownReason) }, applied: host.applied)
    }

    /// Nothing: ``reattachVif(domid:devid:staleBackend:to:)`` removes the stale vif itself.
    public func removeDeadVif(domid: UInt32, devid: Int, staleBackend: UInt32) throws {}

    /// ``managedDomain(_:)`` of each name, one after the other.
    public func managedDomains(_ namesOrIDs: [String], withCap: Bool) throws -> [ManagedDomain?] {
        try namesOrIDs.map { try managedDomain($0) }
    }
}

/// The host at a glance (``XenBackend/glance()``): its domains, and the plans recorded as applied.
public struct HostGlance: Sendable, Equatable {
    /// Every domain.
    public var domains: [DomainLife]
    /// As ``ObservedHost/applied``.
    public var applied: [String: String]

    /// Creates one.
    public init(domains: [DomainLife], applied: [String: String]) {
        self.domains = domains
        self.applied = applied
    }
}

/// A domain as one listing of Xen's domains shows it.
public struct DomainLife: Sendable, Equatable {
    /// Its domid.
    public var domid: UInt32
    /// nil while it runs; else `dying`, or why it shut down (`crash`, `poweroff`, ...), as in ``ObservedDomain``.
    public var shutdownReason: String?

    /// Creates one.
    public init(domid: UInt32, shutdownReason: String?) {
        self.domid = domid
        self.shutdownReason = shutdownReason
    }
}

/// A named point after a step that changed the host (see ``ApplyEngine/crashPoint``).
public typealias CrashPoint = @Sendable (String) -> Void

/// A host-wide lock so two applies never interleave.
public protocol HostLock: Sendable {
    /// Takes the lock, waiting at most `timeout` seconds; throws when another holder keeps it.
    func acquire(timeout: Double) throws -> any HostLockHold
}

/// A held lock; released by `release()`.
public protocol HostLockHold: Sendable {
    /// Releases the lock.
    func release()
}
