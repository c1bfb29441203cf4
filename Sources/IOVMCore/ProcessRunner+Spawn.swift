public import FoundationEssentials
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// A child process started with ``ProcessRunner/spawn(_:_:environment:)``: polled, not waited on, in a session (and
/// process group) of its own, without a controlling terminal, so that stopping it stops everything it started.
///
/// Its stdout and stderr go to two unlinked temporary files (no pipe to fill up while nobody reads). Not
/// `Sendable`: use it from one thread.
public final class ChildProcess {
    /// Its process id, also its process group's.
    public let pid: Int32
    private let outputFD: Int32
    private let errorFD: Int32
    private var finished: ProcessOutcome?
    private var errorText = ""

    init(pid: Int32, outputFD: Int32, errorFD: Int32) {
        self.pid = pid
        self.outputFD = outputFD
        self.errorFD = errorFD
    }

    deinit {
        if finished == nil {
            kill(-pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        close(outputFD)
        close(errorFD)
    }

    /// The outcome once it has exited (its stdout as ``ProcessOutcome/output``), else nil.
    public func poll() -> ProcessOutcome? {
        if let finished { return finished }
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        guard result == pid || (result < 0 && errno == ECHILD) else { return nil }
        if result < 0 { status = 0x7f00 }
        // Whatever the group's other members still write is not waited for.
        kill(-pid, SIGKILL)
        errorText = ProcessRunner.contents(of: errorFD)
        finished = ProcessOutcome(status: ProcessRunner.exitStatus(status), output: ProcessRunner.contents(of: outputFD))
        return finished
    }

    /// What it wrote to stderr, once it has exited.
    public var errorOutput: String { errorText }

    /// Sends `signal` to its whole process group (and SIGCONT after it, so that a stopped member gets it too).
    public func signal(_ signal: Int32 = SIGTERM) {
        guard finished == nil else { return }
        kill(-pid, signal)
        if signal != SIGKILL && signal != SIGCONT { kill(-pid, SIGCONT) }
    }
}

extension ProcessRunner {
    /// Starts `executable` with `arguments` and returns at once; stdin is /dev/null.
    /// - Parameters:
    ///   - environment: the child's whole environment.
    ///   - log: a file both stdout and stderr are appended to (created when missing), instead of the two temporary
    ///     files; the outcome's ``ProcessOutcome/output`` is then the whole file.
    public static func spawn(
        _ executable: String, _ arguments: [String], environment: [String: String], log: String? = nil
    ) throws(ProcessRunnerError) -> ChildProcess {
        func scratch() throws(ProcessRunnerError) -> Int32 {
            let path = FileManager.default.temporaryDirectory.appending(path: "iovm-child-\(getpid())-\(UUID().uuidString)").path
            let fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw ProcessRunnerError(executable: executable, code: errno) }
            unlink(path)
            return fd
        }
        if let log {
            // Opened twice, for stdout and stderr, each descriptor closed on exec (a dup would not be).
            let outputFD = open(log, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
            guard outputFD >= 0 else { throw ProcessRunnerError(executable: log, code: errno) }
            let errorFD = open(log, O_WRONLY | O_APPEND | O_CLOEXEC)
            guard errorFD >= 0 else {
                close(outputFD)
                throw ProcessRunnerError(executable: log, code: errno)
            }
            return try spawn(executable, arguments, environment: environment, outputFD: outputFD, errorFD: errorFD)
        }
        let outputFD = try scratch()
        let errorFD: Int32
        do { errorFD = try scratch() } catch {
            close(outputFD)
            throw error
        }
        return try spawn(executable, arguments, environment: environment, outputFD: outputFD, errorFD: errorFD)
    }

    /// Starts `executable` with stdout on `outputFD` and stderr on `errorFD`, which the child process owns from here on.
    private static func spawn(
        _ executable: String, _ arguments: [String], environment: [String: String], outputFD: Int32, errorFD: Int32
    ) throws(ProcessRunnerError) -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outputFD, 1)
        posix_spawn_file_actions_adddup2(&actions, errorFD, 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // A session of its own (so also a process group whose id is its pid): no controlling terminal, so a command
        // that would prompt (ssh asking about a host key) fails at once with its message instead of stopping on a
        // read from the terminal. POSIX_SPAWN_SETSID is glibc's 0x80 (spawn.h, _GNU_SOURCE).
        posix_spawnattr_setflags(&attributes, Int16(0x80))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard spawned == 0 else {
            close(outputFD)
            close(errorFD)
            throw ProcessRunnerError(executable: executable, code: spawned)
        }
        return ChildProcess(pid: pid, outputFD: outputFD, errorFD: errorFD)
    }
}
