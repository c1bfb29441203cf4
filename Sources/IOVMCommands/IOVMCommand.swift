import ArgumentParser
import Glibc
import IOVMCore
import Logging
import XenKit

/// The `iovm` command: builds network IOVMs (driver domains) on Xen from a topology file.
public struct IOVMCommand: ParsableCommand {
    /// Subcommands and help.
    public static let configuration = CommandConfiguration(
        commandName: "iovm",
        abstract: "Build I/O virtual machines (network driver domains) on Xen from a Swift topology file.",
        discussion: """
            A topology file declares IOVMs, the NICs each owns, guests and the IOVM that backs them, one of the
            paper's configurations (Monolithic, Multiple Small, Hybrid, or dom0-centralized) and a placement
            (co-locate, separate, IOVM-affinity, credit, hybrid pinning). See Examples/.

            Exit codes: 0 success, 1 failure, 64 usage error, 65 invalid topology or experiment (nothing was touched),
            69 not available yet (running an experiment's cells).
            Human output and logs go to stderr; JSON goes to stdout.
            """,
        version: IOVMVersion.current,
        subcommands: [
            SynthCommand.self, PlanCommand.self, RenderCommand.self, KernelConfigCommand.self, ImageCommand.self, HostCommand.self, DoctorCommand.self,
            ApplyCommand.self, DestroyCommand.self, StatusCommand.self, PinCommand.self, UnpinCommand.self, WeightCommand.self, WatchCommand.self, MonitorCommand.self,
            ReportCommand.self, ExperimentCommand.self,
        ]
    )

    /// Creates the command (ArgumentParser needs it).
    public init() {}
}

/// Exit code for an invalid topology or experiment (`EX_DATAERR`).
let invalidTopologyExitCode: Int32 = 65

/// Exit code for what this iovm cannot do yet (`EX_UNAVAILABLE`): running an experiment's cells.
let unavailableExitCode: Int32 = 69

/// Options every command shares.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error. At trace, also dom0's libxl debug log (as xl -vvv; not with --connect).")
    var logLevel: Logger.Level = .notice

    @Flag(name: .shortAndLong, help: "Same as --log-level debug.")
    var verbose = false

    /// A logger writing to stderr at the chosen level.
    func logger(_ label: String) -> Logger {
        LoggingBootstrap.once()
        var logger = Logger(label: label)
        logger.logLevel = verbose ? .debug : logLevel
        return logger
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Bootstraps swift-log once per process, to stderr, with the time to the millisecond (``StandardErrorLogHandler``).
enum LoggingBootstrap {
    private static let done: Void = {
        LoggingSystem.bootstrap { label in StandardErrorLogHandler(label: label) }
    }()

    static func once() { _ = done }
}

extension IOVMCommand {
    /// The commands whose start-up is a goal of its own (issue 16: the live verbs race `xl`, and a no-op re-apply
    /// has 0.3 s), parsed without the root's tree.
    static let directCommands: [String: any ParsableCommand.Type] = [
        "pin": PinCommand.self, "unpin": UnpinCommand.self, "weight": WeightCommand.self,
        "apply": ApplyCommand.self, "destroy": DestroyCommand.self, "status": StatusCommand.self,
    ]

    /// Runs `iovm` with `arguments` (the process's, without its name) and exits.
    ///
    /// The live verbs' plainest forms (no option) go straight to a running `iovm watch` (``liveVerbShortcut(_:)``), and
    /// plain `apply` and `destroy` are read without ArgumentParser (``plainParse(_:)``). Else
    /// the ``directCommands`` are parsed by their own command when that succeeds: the same parser, options
    /// and validation, without the root walking every subcommand's options first (about half of their start-up). Help,
    /// `--version`, and every parse error go through the whole tree, so that they read as they always have.
    public static func run(arguments: [String] = Array(CommandLine.arguments.dropFirst())) -> Never {
        if let request = liveVerbShortcut(arguments) { runThroughWatch(request) }
        // Every other command touches more of iovm's zero-initialized data than a live verb's client: map it whole in
        // one system call rather than a page fault or two at a time (issue 16; a live verb's client touches too few).
        ProcessMemory.populateZeroData()
        do {
            if var command = plainParse(arguments) {
                try command.run()
            } else if let verb = arguments.first.flatMap({ directCommands[$0] }), var command = try? verb.parse(Array(arguments.dropFirst())) {
                try command.run()
            } else {
                var command = try parseAsRoot(arguments)
                try command.run()
            }
            exit()
        } catch {
            exitShowing(error)
        }
    }

    /// Exits for `error` as ArgumentParser's `exit(withError:)` does (help and `--version` to stdout with status 0,
    /// the rest to stderr with its exit code), its message written as ``TerminalText`` shows it: a parse error quotes
    /// the value it refused, which may hold escape sequences.
    static func exitShowing(_ error: any Error) -> Never {
        let message = fullMessage(for: error)
        let code = exitCode(for: error)
        if !message.isEmpty {
            if code == .success {
                print(message)
            } else {
                FileBytes.writeStandardError(message + "\n")
            }
        }
        Glibc.exit(code.rawValue)
    }
}
