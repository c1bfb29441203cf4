#if canImport(Glibc)
    import Glibc
#endif

/// A detached POSIX thread for blocking work (libxl calls, xenstore waits), where Foundation's `Thread` is
/// not at hand: it lives in swift-corelibs-foundation, which iovm does not link (issue 16).
package final class PThread: @unchecked Sendable {
    private let body: @Sendable () -> Void
    /// The thread's name, as `ps -L` and `perf` show it (the kernel keeps 15 bytes); set before `start`.
    package var name: String?
    /// The stack's size in bytes; nil for the C library's default (8 MiB).
    package var stackSize: Int?

    /// A thread that will run `body` once started.
    package init(_ body: @escaping @Sendable () -> Void) { self.body = body }

    /// Starts the thread; it ends when `body` returns.
    package func start() {
        let context = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        if let stackSize { pthread_attr_setstacksize(&attributes, stackSize) }
        let status = pthread_create(
            &thread, &attributes,
            { raw in
                let thread = Unmanaged<PThread>.fromOpaque(raw!).takeRetainedValue()
                if let name = thread.name { PThread.setName(name) }
                thread.body()
                return nil
            }, context)
        precondition(status == 0, "pthread_create: \(String(cString: strerror(status)))")
        pthread_detach(thread)
    }

    /// Names the calling thread (`pthread_setname_np` is not imported into Swift: it writes the same file).
    private static func setName(_ name: String) {
        let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        let bytes = Array(name.utf8.prefix(15))
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    /// Starts a thread running `body`.
    package static func detach(name: String? = nil, _ body: @escaping @Sendable () -> Void) {
        let thread = PThread(body)
        thread.name = name
        thread.start()
    }

    /// Blocks the calling thread for `seconds`.
    package static func sleep(seconds: Double) {
        guard seconds > 0 else { return }
        var time = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - seconds.rounded(.down)) * 1e9))
        var left = timespec()
        while nanosleep(&time, &left) == -1 && errno == EINTR { time = left }
    }
}

/// A mutex with a condition variable (`pthread_mutex_t`, `pthread_cond_t`): lock, wait until signalled,
/// broadcast, unlock, as Foundation's `NSCondition`.
package final class PThreadCondition: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    /// A condition, unlocked.
    package init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        condition.deallocate()
    }

    /// Takes the mutex.
    package func lock() { pthread_mutex_lock(mutex) }
    /// Releases the mutex.
    package func unlock() { pthread_mutex_unlock(mutex) }
    /// Releases the mutex until signalled, then takes it again (callers loop on their predicate).
    package func wait() { pthread_cond_wait(condition, mutex) }
    /// Wakes every waiter.
    package func broadcast() { pthread_cond_broadcast(condition) }
    /// Wakes one waiter.
    package func signal() { pthread_cond_signal(condition) }
}
