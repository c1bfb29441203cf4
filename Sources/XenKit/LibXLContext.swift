import CLibXen
import CPUSets
import CXenShim
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A libxl context (`libxl_ctx`) and the xentoollog logger it writes to; the entry point for
/// talking to the hypervisor through libxenlight.
///
/// ```swift
/// let xl = try LibXLContext()          // throws .notXenDom0 off Xen
/// let info = try xl.physicalInfo()
/// for domain in try xl.domains() { print(domain.domid, domain.name ?? "?") }
/// ```
///
/// ## Child processes and SIGCHLD
/// At creation the context is switched to `libxl_sigchld_owner_libxl_always_selective_reap`
/// (libxl_event.h): libxl installs its SIGCHLD handler (`SA_RESTART | SA_NOCLDSTOP`) for the
/// context's lifetime and, on SIGCHLD, calls `waitpid` only on the pids of its own children
/// (hotplug scripts, bootloader, device model). iovm's own children, started with `posix_spawn`
/// and reaped synchronously with `waitpid(pid, …)`, are therefore never stolen, and libxl's are
/// never reaped by us. The default mode, `libxl_sigchld_owner_libxl`, reaps *every* child with
/// `wait()` while a libxl operation runs and requires the application to have no children then;
/// `_mainloop` would need us to own a SIGCHLD handler and forward statuses.
/// Consequences for the rest of the process:
/// - do not install another SIGCHLD handler, do not set SIGCHLD to `SIG_IGN` (children would be
///   auto-reaped and `waitpid` would fail with `ECHILD`), and never `waitpid(-1, …)`/`wait()`;
///   libxl asserts the handler it replaces is `SIG_DFL`/`SIG_IGN`;
/// - any further `LibXLContext` in the process uses the same mode (libxl requires that);
/// - `waitpid` may see `EINTR` only if a caller's own handler lacks `SA_RESTART`; retry on it.
///
/// ## Concurrency
/// libxl documents `libxl_ctx` as thread-safe; XenKit still serialises every call through this
/// object with one `Mutex`, so results read from libxl-owned memory (such as
/// `libxl_get_version_info`'s) are copied before another call can run. That lock is why the
/// class is `@unchecked Sendable`. Calls are synchronous and may block for as long as libxl does.
public final class LibXLContext: @unchecked Sendable {
    /// The minimum severity libxl messages need to reach standard error.
    public enum LogLevel: Sendable, Hashable {
        /// Everything, including debug chatter.
        case debug
        /// Verbose and above.
        case verbose
        /// Progress messages and above (what `xl` shows by default).
        case progress
        /// Warnings and above.
        case warning
        /// Errors and above (the default).
        case error
        /// Nothing at all.
        case silent

        var xtl: xentoollog_level {
            switch self {
            case .debug: return XTL_DEBUG
            case .verbose: return XTL_VERBOSE
            case .progress: return XTL_PROGRESS
            case .warning: return XTL_WARN
            case .error: return XTL_ERROR
            case .silent: return XTL_NUM_LEVELS
            }
        }
    }

    // Only touched with `lock` held (or in init/deinit, when no one else can see `self`).
    private let ctx: OpaquePointer
    /// Released after `ctx` is freed (deinit), which destroys it.
    private let logger: XenToolLogger
    private let lock = Mutex(())
    /// libxenctrl, opened on first need (``schedule(of:poolScheduler:)``, ``domains(names:)``); nil until it opens.
    private let control = Mutex<XenControl?>(nil)

    /// Opens a libxl context, logging to standard error at `logLevel` and above.
    ///
    /// - Throws: ``XenError/notXenDom0(reason:)`` when this is not a Xen dom0 (no `/proc/xen`
    ///   or privcmd, a domU, or `libxl_ctx_alloc` fails, e.g. with `ERROR_FAIL` (-3) off Xen or
    ///   when not root); ``XenError/errno(_:operation:)`` when the logger cannot be created;
    ///   ``XenError/failed(operation:detail:)`` when libxenlight or libxentoollog cannot be loaded.
    public convenience init(logLevel: LogLevel = .error) throws(XenError) {
        try self.init(logLevel: logLevel, checkHost: true)
    }

    /// Opens a libxl context whose messages at `logLevel` and above go to `sink`, one call per message (iovm writes each
    /// as a line of its own log: its time, escaped, never two messages mixed), rather than to standard error.
    public convenience init(logLevel: LogLevel, sink: @escaping LibXLLogSink) throws(XenError) {
        try self.init(logLevel: logLevel, checkHost: true, sink: sink)
    }

    /// `checkHost: false` skips ``XenHost/requireDom0()`` and goes straight to
    /// `libxl_ctx_alloc` (tests use it to prove that path also fails cleanly).
    init(logLevel: LogLevel, checkHost: Bool, sink: LibXLLogSink? = nil) throws(XenError) {
        if checkHost { try XenHost.requireDom0() }
        try XenLibraries.load(.xentoollog, .xenlight)
        let logger: XenToolLogger
        if let sink {
            guard let created = XenToolLogger(sink: sink, minimum: logLevel) else {
                throw XenError.currentErrno(operation: "cxenshim_logger_create_sink")
            }
            logger = created
        } else {
            guard let stream = cxenshim_stderr() else {
                throw XenError.currentErrno(operation: "fdopen(dup(2)) for the libxl logger")
            }
            guard let created = XenToolLogger(stdio: stream, minimum: logLevel) else {
                throw XenError.currentErrno(operation: "xtl_createlogger_stdiostream")
            }
            logger = created
        }
        var ctx: OpaquePointer? = nil
        let rc = LibXLCalls.code("libxl_ctx_alloc") { libxl_ctx_alloc(&ctx, cxenshim_libxl_version(), 0, logger.pointer) }
        guard rc == 0, let ctx else {
            withExtendedLifetime(logger) { libxl_ctx_free(ctx) }  // the logger outlives what libxl may still log
            var reason = "libxl_ctx_alloc returned \(XenError.libxlErrorName(rc)) (\(rc))"
            if geteuid() != 0 { reason += "; not running as root" }
            throw XenError.notXenDom0(reason: reason)
        }
        cxenshim_childproc_set_selective_reap(ctx)
        self.ctx = ctx
        self.logger = logger
    }

    deinit {
        libxl_ctx_free(ctx)  // then `logger` is released, and destroyed
    }

    /// libxenctrl beside this context, opened on the first call that finds it closed; nil when it does not open (the
    /// next call tries again: a long-running `iovm watch` is not left on libxl's slower calls for good).
    func xenControl() -> XenControl? {
        control.withLock { opened in
            if let opened { return opened }
            opened = try? XenControl(checkHost: false)
            return opened
        }
    }

    /// Runs `body` with the raw `libxl_ctx *`, holding the context's lock: the escape hatch XenKit's
    /// own methods are written with (through ``LibXLCalls``). Do not let the pointer escape, and do
    /// not call other methods of this context from `body` (the lock is not recursive).
    func withUnsafeContext<R: Sendable>(
        _ body: (OpaquePointer) throws(XenError) -> R
    ) throws(XenError) -> R {
        try lock.withLock { _ throws(XenError) -> R in try body(ctx) }
    }

    /// Host CPUs, memory and virtualisation capabilities (`libxl_get_physinfo`).
    public func physicalInfo() throws(XenError) -> PhysInfo {
        try withUnsafeContext { ctx throws(XenError) in
            var info = libxl_physinfo()
            libxl_physinfo_init(&info)
            defer { libxl_physinfo_dispose(&info) }
            try LibXLCalls.check("libxl_get_physinfo", operation: "libxl_get_physinfo") { libxl_get_physinfo(ctx, &info) }
            return PhysInfo(info)
        }
    }

    /// The hypervisor's version and build (`libxl_get_version_info`).
    public func versionInfo() throws(XenError) -> XenVersion {
        try withUnsafeContext { ctx throws(XenError) in
            // The result is owned by the ctx and cached there; copy it while holding the lock.
            let info = try LibXLCalls.pointer("libxl_get_version_info", operation: "libxl_get_version_info", detail: "returned NULL") {
                libxl_get_version_info(ctx)
            }
            return XenVersion(info.pointee)
        }
    }

    /// The name of the hypervisor's default scheduler, as xl spells it (`"credit2"`, `"credit"`,
    /// …), from `libxl_get_scheduler`. cpupools may run other schedulers.
    public func schedulerName() throws(XenError) -> String {
        try withUnsafeContext { ctx throws(XenError) in
            let sched = try LibXLCalls.value("libxl_get_scheduler", operation: "libxl_get_scheduler") { libxl_get_scheduler(ctx) }
            guard let name = libxl_scheduler_to_string(libxl_scheduler(rawValue: UInt32(sched))) else {
                return "unknown(\(sched))"
            }
            return String(cString: name)
        }
    }

    /// The number of CPU ids the hypervisor may use (`libxl_get_max_cpus`), the size to give a
    /// bitmap of every CPU (a `nil` ``CPUSet``).
    public func maxCPUs() throws(XenError) -> Int {
        try withUnsafeContext { ctx throws(XenError) in
            Int(try LibXLCalls.value("libxl_get_max_cpus", minimum: 1, operation: "libxl_get_max_cpus") { libxl_get_max_cpus(ctx) })
        }
    }

    /// A `libxl_bitmap` sized by libxl for this host (`libxl_cpu_bitmap_alloc` with `max_cpus` 0)
    /// holding `cpus`, or every CPU below `libxl_get_max_cpus` when `nil` (the bitmap itself is
    /// rounded up to whole bytes, so it has more bits than the host has CPUs; those stay clear).
    /// The caller owns the result and must call `libxl_bitmap_dispose`.
    ///
    /// - Throws: ``XenError/libxl(code:name:operation:)`` if the CPU count or the allocation
    ///   fails; ``XenError/invalidCPUMap(_:reason:)`` if `cpus` names a CPU the host does not have.
    func makeCPUBitmap(_ cpus: CPUSet?) throws(XenError) -> libxl_bitmap {
        let cpuCount = try maxCPUs()
        if let cpus, let beyond = cpus.cores.first(where: { $0 < 0 || $0 >= cpuCount }) {
            let reason = beyond < 0 ? "CPU \(beyond) is negative" : "CPU \(beyond) is not below the host's \(cpuCount) CPUs"
            throw XenError.invalidCPUMap(cpus.description, reason: reason)
        }
        var bitmap = libxl_bitmap()
        libxl_bitmap_init(&bitmap)
        try withUnsafeContext { ctx throws(XenError) in
            try LibXLCalls.check("libxl_cpu_bitmap_alloc", operation: "libxl_cpu_bitmap_alloc") { libxl_cpu_bitmap_alloc(ctx, &bitmap, 0) }
        }
        let usable = min(cpuCount, Int(bitmap.size) * 8)
        for cpu in cpus?.cores.filter({ $0 < usable }) ?? Array(0..<usable) {
            libxl_bitmap_set(&bitmap, Int32(cpu))
        }
        return bitmap
    }

    /// Every domain, dom0 first, with names from `libxl_domid_to_name` (``domains(names:)``).
    public func domains() throws(XenError) -> [DomainInfo] { try domains(names: true) }

    /// Every domain, dom0 first, with names from `libxl_domid_to_name` unless
    /// `names` is false (a name is one xenstore request per domain; a sampler that caches names by
    /// domid lists without them).
    ///
    /// The listing itself is libxenctrl's (``XenControl/domainInfos()``: the same hypercall in a buffer of one page,
    /// without a security-label hypercall per domain), libxl's when libxenctrl does not answer.
    public func domains(names: Bool) throws(XenError) -> [DomainInfo] {
        if let listed = try? xenControl()?.domainInfos() {
            guard names else { return listed }
            return try withUnsafeContext { ctx in
                listed.map { domain in
                    var named = domain
                    named.name = Self.name(ctx, domain.domid)
                    return named
                }
            }
        }
        return try withUnsafeContext { ctx throws(XenError) in
            var count: Int32 = 0
            let list = try LibXLCalls.pointer("libxl_list_domain", operation: "libxl_list_domain", detail: "returned NULL (see libxl's log)") {
                libxl_list_domain(ctx, &count)
            }
            defer { libxl_dominfo_list_free(list, count) }
            var result: [DomainInfo] = []
            result.reserveCapacity(Int(count))
            for index in 0..<Int(count) {
                let entry = list[index]
                result.append(DomainInfo(entry, name: names ? Self.name(ctx, entry.domid) : nil))
            }
            return result
        }
    }

    /// The name of domain `domid`, or `nil` if it has none or does not exist.
    public func domainName(_ domid: UInt32) throws(XenError) -> String? {
        try withUnsafeContext { ctx in Self.name(ctx, domid) }
    }

    private static func name(_ ctx: OpaquePointer, _ domid: UInt32) -> String? {
        guard let raw = LibXLCalls.optionalPointer("libxl_domid_to_name", { libxl_domid_to_name(ctx, domid) }) else { return nil }
        defer { free(raw) }
        return String(cString: raw)
    }
}
