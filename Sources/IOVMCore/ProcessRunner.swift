public import FoundationEssentials
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// The result of a finished child process.
public struct ProcessOutcome: Sendable {
    /// Exit status, or 128 + signal number when killed.
    public var status: Int32
    /// Whether it was killed for running past its time limit.
    public var timedOut: Bool
    /// Everything it wrote to stdout and stderr.
    public var output: String
    /// Whether it exited 0 in time.
    public var succeeded: Bool { status == 0 && !timedOut }

    /// Creates an outcome (what a stand-in for a process returns in tests).
    public init(status: Int32, timedOut: Bool = false, output: String) {
        self.status = status
        self.timedOut = timedOut
        self.output = output
    }
}

/// Errors from starting a process.
public struct ProcessRunnerError: Error, CustomStringConvertible, Sendable {
    /// What was being started.
    public var executable: String
    /// errno from posix_spawn or open.
    public var code: Int32

    /// Human-readable text.
    public var description: String { "cannot run \(executable): \(Errno(rawValue: code).description)" }
}

/// Runs a child process with `posix_spawn`, its stdout and stderr captured, and extra file
/// descriptors handed down at fixed numbers (how a topology returns its document on fd 3).
public enum ProcessRunner {
    /// Runs `executable` with `arguments` and waits, killing it after `timeout` seconds.
    /// - Parameters:
    ///   - extraDescriptors: child fd number → parent fd to duplicate there.
    ///   - environment: the child's whole environment.
    public static func run(
        _ executable: String, _ arguments: [String], environment: [String: String],
        extraDescriptors: [Int32: Int32] = [:], timeout: Double
    ) throws(ProcessRunnerError) -> ProcessOutcome {
        let logPath = FileManager.default.temporaryDirectory.appending(path: "iovm-run-\(getpid())-\(UUID().uuidString)").path
        let logFD = open(logPath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard logFD >= 0 else { throw ProcessRunnerError(executable: executable, code: errno) }
        unlink(logPath)
        defer { close(logFD) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, logFD, 1)
        posix_spawn_file_actions_adddup2(&actions, logFD, 2)
        for (child, parent) in extraDescriptors.sorted(by: { $0.key < $1.key }) {
            posix_spawn_file_actions_adddup2(&actions, parent, child)
        }
        // Every descriptor this process opens for a child is O_CLOEXEC; dup2 above clears it on the copies.

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group, so a timeout kills everything it started. SIGPIPE back to its default: this process
        // ignores it once libvirt is loaded (CVirtShim), and a child would inherit that (a pipeline's writer would
        // get EPIPE errors instead of ending quietly).
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard spawned == 0 else { throw ProcessRunnerError(executable: executable, code: spawned) }

        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        var timedOut = false
        while true {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid { break }
            if result < 0 && errno != EINTR {
                status = 0x7f00
                break
            }
            if Date() > deadline && !timedOut {
                timedOut = true
                kill(-pid, SIGKILL)
            }
            usleep(timedOut ? 1_000 : 5_000)
        }
        return ProcessOutcome(status: exitStatus(status), timedOut: timedOut, output: contents(of: logFD))
    }

    /// A `waitpid` status as a shell reports it: the exit code, or 128 + the signal that killed it.
    static func exitStatus(_ status: Int32) -> Int32 {
        (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    /// Everything in the file `fd`, from its start, as UTF-8 text.
    static func contents(of fd: Int32) -> String {
        lseek(fd, 0, SEEK_SET)
        return String(decoding: (try? FileBytes.read(FileDescriptor(rawValue: fd))) ?? Data(), as: UTF8.self)
    }

    /// The full path of `name` on `PATH`, if any.
    public static func which(_ name: String, path: String? = ProcessInfo.processInfo.environment["PATH"]) -> String? {
        for directory in (path ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }
}
