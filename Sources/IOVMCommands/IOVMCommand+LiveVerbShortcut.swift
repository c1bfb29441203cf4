import ArgumentParser
import IOVMWireFormat

extension IOVMCommand {
    /// The request of a live verb in its plainest form, read without ArgumentParser, or nil.
    ///
    /// `iovm pin iovm0=2 iovm1=3`, `iovm unpin iovm0 iovm1`, `iovm weight iovm0 iovm1 512` and
    /// `iovm weight iovm0=512 iovm1=256`: no option at all, and targets that pass the commands' own checks
    /// (``PinCommand/targets(_:cpus:)``, ``WeightCommand/targets(_:)``). Anything else is nil, and the command's
    /// parser reads it as before, with its options, help and error messages. Parsing a subcommand builds its
    /// argument tree by reflection; this form is what an operator's script repeats, and it races `xl` (issue 16).
    static func liveVerbShortcut(_ arguments: [String]) -> LiveVerbRequest? {
        guard let verb = arguments.first else { return nil }
        let operands = Array(arguments.dropFirst())
        guard !operands.isEmpty, !operands.contains(where: { $0.isEmpty || $0.hasPrefix("-") }) else { return nil }
        switch verb {
        case "pin":
            guard let targets = try? PinCommand.targets(operands, cpus: nil) else { return nil }
            return PinCommand.request(targets)
        case "unpin":
            return UnpinCommand.request(operands)
        case "weight":
            guard let targets = try? WeightCommand.targets(operands) else { return nil }
            return WeightCommand.request(targets)
        default:
            return nil
        }
    }

    /// Sends a ``liveVerbShortcut(_:)`` request to the `iovm watch` serving the default control socket and exits
    /// as the command would; returns only when none serves it (nothing was sent: the command makes the change).
    static func runThroughWatch(_ request: LiveVerbRequest) {
        let reply: LiveVerbReply?
        do {
            reply = try HostAccess.liveVerbThroughWatch(request, socket: HostAccess.defaultControlSocket)
        } catch {
            printError("iovm: error: \(error)")
            exit(withError: ExitCode.failure)
        }
        guard let reply else { return }
        for change in reply.changes { printError(change.line) }
        if let error = reply.error {
            printError(error)
            exit(withError: ExitCode.failure)
        }
        exit()
    }
}
