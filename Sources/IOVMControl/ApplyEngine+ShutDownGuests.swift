public import IOVMCore

extension ApplyEngine {
    /// Destroys guest `name` of `plan`'s topology, under the host lock, if it still is domain `domid`, iovm made it for
    /// that topology, and it shut down (not `dying`, not `suspend`): what its `on_poweroff` and `on_crash` (`destroy`)
    /// say, which nothing does for a domain libxl created. The host must still record what `expectingApplied` says
    /// (as for a recovery's apply).
    ///
    /// - Returns: false when the host no longer shows it so (gone, running again, or another domain), or records
    ///   another plan as applied: nothing was done.
    public func destroyShutDownGuest(_ plan: Plan, name: String, domid: UInt32, expectingApplied: AppliedExpectation) throws -> Bool {
        let hold = try lock.acquire(timeout: lockTimeout)
        defer { hold.release() }
        let host = try backend.observe(nics: [])
        guard expectingApplied.holds(for: host.applied[plan.topology]), let domain = host.domains.first(where: { $0.domid == domid }), domain.name == name,
            plan.domain(name)?.role == .guest,
            domain.isManaged(by: plan.topology), domain.tag?.incomplete != true, let reason = domain.shutdownReason,
            !Reconciler.heldShutDownReasons.contains(reason)
        else { return false }
        logger.info("destroy guest \(name) (\(domid)), which shut down (\(reason))")
        try backend.destroyDomain(domid: domid)
        return true
    }
}
