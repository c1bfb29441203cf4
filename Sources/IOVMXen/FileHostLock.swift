import FoundationEssentials
public import IOVMControl
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// The host lock as a `flock` on a file (default `/run/lock/iovm.lock`): a second apply waits or refuses.
public struct FileHostLock: HostLock {
    /// The lock file.
    public var path: String

    /// Creates a lock on `path`.
    public init(path: String = "/run/lock/iovm.lock") {
        self.path = path
    }

    /// A held flock; closing the descriptor releases it.
    struct Hold: HostLockHold {
        let fd: Int32
        func release() {
            flock(fd, LOCK_UN)
            close(fd)
        }
    }

    /// Takes the lock, polling until `timeout` seconds have passed.
    public func acquire(timeout: Double) throws -> any HostLockHold {
        try? FileManager.default.createDirectory(atPath: FilePath(path).removingLastComponent().string, withIntermediateDirectories: true)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ApplyError.busy("cannot open \(path): \(Errno(rawValue: errno).description)") }
        let deadline = Date().addingTimeInterval(timeout)
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                let reason = Errno(rawValue: errno).description
                close(fd)
                throw ApplyError.busy("flock \(path): \(reason)")
            }
            if Date() >= deadline {
                close(fd)
                throw ApplyError.busy("\(path) is held by another iovm (use --wait SECONDS to wait for it)")
            }
            usleep(100_000)
        }
        let pid = "\(getpid())\n"
        ftruncate(fd, 0)
        _ = pid.withCString { write(fd, $0, strlen($0)) }
        return Hold(fd: fd)
    }
}
