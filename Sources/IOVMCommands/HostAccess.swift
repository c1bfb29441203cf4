import FoundationEssentials
import IOVMControl
import IOVMCore
import IOVMMonitor
import IOVMWireFormat
import IOVMXen
import Logging
import Synchronization
import XenKit

#if canImport(Glibc)
    import Glibc
#endif

/// The one place commands get the host: the real backend (libxl, xenstore, sysfs) behind the
/// `XenBackend` seam, engines over it with the host lock, and the read-only `HostQueries`.
/// Commands parse and print; what they change goes through an engine. The only file of
/// IOVMCommands that imports IOVMXen or XenKit.
enum HostAccess {
    /// What commands ask of this host without changing it; libxl's messages are entries of `logger`'s log when given
    /// (else libxl writes its errors to standard error).
    static func queries(logger: Logger? = nil) -> any HostQueries {
        XenHostQueries(logger: logger)
    }

    /// What Xen says of this dom0, or of the libvirt host at `connect`: its cores and Pool-0's scheduler (Domain-0's),
    /// read through libvirt; `notDom0` says why when it cannot be reached.
    static func facts(connect: String?, logger: Logger? = nil) -> XenFacts {
        guard let connect else { return queries(logger: logger).facts() }
        do {
            let (cores, scheduler) = try LibvirtBackend.hostFacts(uri: connect)
            return XenFacts(scheduler: scheduler, cores: cores)
        } catch {
            return XenFacts(notDom0: "\(error)")
        }
    }

    /// Xen's facts of this dom0, through `engine`'s open libxl context when it has one.
    static func facts(of engine: ApplyEngine?) -> XenFacts {
        (engine?.backend as? LibXLBackend)?.facts() ?? queries().facts()
    }

    /// `iovm doctor`'s checks of this dom0, or of the libvirt host at `connect`.
    static func doctorChecks(plan: Plan?, allowNoIOMMU: Bool, connect: String?, logger: Logger? = nil) -> [DoctorCheck] {
        guard let connect else { return queries(logger: logger).doctorChecks(plan: plan, allowNoIOMMU: allowNoIOMMU) }
        return LibvirtBackend.doctorChecks(uri: connect, plan: plan)
    }

    /// The backend of this dom0, or of the libvirt host at `connect` (`xen+ssh://root@host/system`).
    static func backend(logger: Logger, strictReset: Bool = true, connect: String? = nil) throws -> any XenBackend {
        if let connect { return try LibvirtBackend(uri: connect, logger: logger) }
        return try LibXLBackend(logger: logger, strictReset: strictReset)
    }

    /// dom0's bridges (sysfs, `ip`, iovm's tags in xenstore).
    static func dom0Network(logger: Logger, connect: String? = nil) -> any Dom0Network {
        if let connect { return RemoteDom0Network(uri: connect) }
        return IPRouteDom0Network(logger: logger)
    }

    /// What wakes `iovm watch`: xenstore watches on `@releaseDomain` and iovm's tags, and a re-check
    /// every `recheck` seconds.
    static func domainEvents(recheck: Double) throws -> any DomainEvents {
        try XenStoreDomainEvents(recheck: recheck)
    }

    /// The workload's driver: the load agents of this host's guests over xenstore, or a command template run in dom0.
    static func loadDriver(_ workload: WorkloadDocument) throws -> any LoadDriver {
        switch workload.kind {
        case .iperf3: try XenStoreLoadDriver()
        case .command: CommandLoadDriver(template: workload.template ?? "")
        }
    }

    /// The IOVMs' CPU time (libxenctrl) and NIC counters (their counters agents), for an experiment's cells.
    static func cellMeter() throws -> any CellMeter {
        XenCellMeter()
    }

    /// The PCI vendor:device ids of a device on this machine, from sysfs; nil when it is not here.
    ///
    /// A device found here is read once per process: an apply asks for each NIC twice (the images it boots, then
    /// whether the NICs are here), two sysfs reads each time, which cost a no-op re-apply a few ms in dom0 under TCG
    /// (issue 16). One not found is looked for again (`iovm watch` runs for months; a NIC may be plugged in). A NIC
    /// swapped for another model at the same address keeps its old ids in a running watch until it restarts.
    static func pciIDs(_ pci: PCIAddress, connect: String? = nil) -> String? {
        if let connect { return LibvirtBackend.pciIDs(pci, uri: connect) }
        if let known = localPCIIDs.withLock({ $0[pci] }) { return known }
        let ids = queries().pciIDs(pci)
        if let ids { localPCIIDs.withLock { $0[pci] = ids } }
        return ids
    }

    /// ``pciIDs(_:connect:)``'s answers for the devices found on this machine.
    private static let localPCIIDs = Mutex<[PCIAddress: String]>([:])

    /// Where `iovm watch` serves the live verbs unless told otherwise: `$IOVM_CONTROL_SOCKET`, or
    /// ``IOVMXen/ControlSocket/defaultPath``.
    static let defaultControlSocket = getenv("IOVM_CONTROL_SOCKET").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? ControlSocket.defaultPath

    /// Sends a live verb to the process serving the control socket at `socket` (`iovm watch`) and returns its reply;
    /// nil when nothing serves it (nothing was sent).
    static func liveVerbThroughWatch(_ request: LiveVerbRequest, socket: String) throws -> LiveVerbReply? {
        let bytes = Array(JSONLineWriter.line(request).utf8)
        guard bytes.count <= ControlSocket.requestLimit else { return nil }  // too big to send: made in this process
        guard let reply = try ControlSocket.exchange(bytes, path: socket, timeout: request.wait + 120) else { return nil }
        do {
            return try JSONDecoder().decode(LiveVerbReply.self, from: Data(reply))
        } catch {
            throw ControlSocketError("\(socket): a reply this iovm cannot read (\(error)); whether the change was made is not known")
        }
    }

    /// Serves the live verbs on the control socket at `socket` with an engine of its own (its own libxl context,
    /// opened now), logging each request; returns what stops it and removes the socket.
    static func serveLiveVerbs(socket: String, logger: Logger) throws -> @Sendable () -> Void {
        let engine = try engine(logger: logger)
        let server = try ControlSocketServer(path: socket) { request, client in
            let reply: LiveVerbReply
            switch request {
            case .document(let bytes): reply = engine.serve(requestDocument: bytes, pid: getpid(), abandoned: { client.hungUp })
            case .refused(let why): reply = .refused(why, pid: getpid())
            }
            logger.notice("control socket: request of pid \(client.pid): \(reply.error ?? reply.changes.map(\.line).joined(separator: "; "))")
            return reply.document()
        }
        return { server.stop() }
    }

    /// An engine over this dom0's backend and the host lock, waiting `wait` seconds for the lock.
    /// `crashAfter` (the hidden `--crash-after STEP`, for the crash tests) kills the process with SIGKILL
    /// right after the step of that name (`create:iovm0`) or any step of that kind (`create`).
    ///
    /// With `connect`, the engine drives that libvirt host (``LibvirtBackend``): its lock is this machine's lock for
    /// that URI (applies from other machines are not serialized with it), and it makes no dom0 bridges.
    static func engine(logger: Logger, strictReset: Bool = true, wait: Double = 0, crashAfter: String? = nil, connect: String? = nil) throws
        -> ApplyEngine
    {
        if let connect {
            let backend = try LibvirtBackend(uri: connect, logger: logger)
            var engine = ApplyEngine(
                backend: backend, network: RemoteDom0Network(uri: connect), lock: FileHostLock(path: FileHostLock.path(for: connect)), logger: logger)
            engine.lockTimeout = wait
            return engine
        }
        let backend = try LibXLBackend(logger: logger, strictReset: strictReset)
        let crash: CrashPoint? = crashAfter.map { wanted in
            { @Sendable step in
                guard step == wanted || step.hasPrefix(wanted + ":") else { return }
                FileBytes.writeStandardError("iovm: crash point \(step): killing this process (--crash-after)\n")
                kill(getpid(), SIGKILL)
            }
        }
        backend.crashPoint = crash
        var engine = ApplyEngine(backend: backend, network: IPRouteDom0Network(logger: logger), lock: FileHostLock(), logger: logger)
        engine.lockTimeout = wait
        engine.crashPoint = crash
        return engine
    }
}

/// ``CellMeter`` over the monitor's ``XenCounterSource``: one source per set of domains, kept.
private final class XenCellMeter: CellMeter {
    private var sources: [[String]: XenCounterSource] = [:]

    func read(_ domains: [String]) throws -> MeterReading {
        let source: XenCounterSource
        if let known = sources[domains] {
            source = known
        } else {
            source = try XenCounterSource(selection: .named(domains))
            sources[domains] = source
        }
        let reading = try source.read()
        var counters: [String: MeterReading.Counters] = [:]
        for sample in reading.iovms { counters[sample.iovm] = MeterReading.Counters(sample) }
        return MeterReading(cpuHz: reading.cpuHz, domains: counters)
    }
}

extension MeterReading.Counters {
    /// The counters of one IOVM's sample: its CPU time, its NICs' traffic summed, and its vifs' notifications with the
    /// packets of the same vifs (those whose notifications were published; nil when none were).
    init(_ sample: IOVMSample) {
        let notified = sample.vifs.filter { $0.notifications != nil }
        self.init(
            cpuNanoseconds: sample.cpuNanoseconds, rxBytes: sample.nics.reduce(0) { $0 + $1.rxBytes },
            txBytes: sample.nics.reduce(0) { $0 + $1.txBytes }, rxPackets: sample.nics.reduce(0) { $0 + ($1.rxPackets ?? 0) },
            txPackets: sample.nics.reduce(0) { $0 + ($1.txPackets ?? 0) }, published: sample.countersPublished,
            counterTime: sample.counterTime, notifications: notified.isEmpty ? nil : notified.reduce(0) { $0 &+ ($1.notifications ?? 0) },
            vifPackets: notified.isEmpty ? nil : notified.reduce(0) { $0 &+ ($1.rxPackets ?? 0) &+ ($1.txPackets ?? 0) })
    }
}
