import ArgumentParser
import Logging

/// `apply` and `destroy` read without ArgumentParser in their plain forms (issue 16).
///
/// ArgumentParser builds a command's argument tree by reflection before it reads a word: every property wrapper of
/// every option group is cast to its protocols, and each first cast scans the binary's conformance records. For
/// `iovm apply --topology-json FILE` that was 44% of the instructions before libxl opens (natively, callgrind), and a
/// no-op re-apply has 0.3 s. These forms are what an operator's script repeats.
extension IOVMCommand {
    /// The command `arguments` give when they are a plain `apply` or `destroy`, or nil.
    ///
    /// Plain: long options each given once, as `--name value` (a value not starting with `-`, except `-` itself) or
    /// `--name=value` (a value not empty), the flags, `-v`, and at most one topology file. Each value is converted as ArgumentParser converts
    /// it (``ExpressibleByArgument``), and the option groups' own `validate()` must pass. Anything else (help, `--`,
    /// an unknown or repeated option, a value that does not convert, a check that fails) is nil: the command's parser
    /// reads it, with its errors and messages.
    static func plainParse(_ arguments: [String]) -> (any ParsableCommand)? {
        guard let verb = arguments.first, verb == "apply" || verb == "destroy" else { return nil }
        guard var words = PlainWords(Array(arguments.dropFirst()), valued: PlainWords.valuedOptions, flags: verb == "apply" ? PlainWords.applyFlags : PlainWords.hostFlags)
        else { return nil }
        guard let topology = words.topologyOptions(), var host = words.hostChangeOptions(), var global = words.globalOptions() else { return nil }
        let dryRun = words.flag("--dry-run")
        guard words.isEmpty, (try? topology.validate()) != nil, (try? host.validate()) != nil, (try? global.validate()) != nil else { return nil }
        if verb == "apply" {
            var command = ApplyCommand()
            command.topology = topology
            command.host = host
            command.global = global
            command.dryRun = dryRun
            return command
        }
        var command = DestroyCommand()
        command.topology = topology
        command.host = host
        command.global = global
        return command
    }
}

/// A plain argument list split into options, flags and one operand; taken from as each option group is built, so
/// that a word no group takes is left over.
struct PlainWords {
    /// The options that take a value, of ``TopologyOptions``, ``HostChangeOptions`` and ``GlobalOptions``.
    static let valuedOptions: Set<String> = [
        "--topology-json", "--host-cores", "--host-memory", "--host-scheduler", "--on-host", "--images",
        "--wait", "--driver-domain-timeout", "--guest-network-timeout", "--crash-after", "--connect", "--log-level",
    ]
    /// The flags of `destroy` (``HostChangeOptions`` and ``GlobalOptions``).
    static let hostFlags: Set<String> = ["--allow-no-iommu", "--allow-unresettable-nics", "--verbose"]
    /// The flags of `apply`: `destroy`'s and `--dry-run`.
    static let applyFlags: Set<String> = hostFlags.union(["--dry-run"])

    private var values: [String: String] = [:]
    private var flags: Set<String> = []
    private var operand: String?

    /// Splits `arguments`; nil when one is not plain.
    init?(_ arguments: [String], valued: Set<String>, flags known: Set<String>) {
        var index = 0
        while index < arguments.count {
            var word = arguments[index]
            index += 1
            if word == "-v" { word = "--verbose" }
            guard word.hasPrefix("-") && word != "-" else {
                guard operand == nil else { return nil }
                operand = word
                continue
            }
            guard word.hasPrefix("--"), word != "--" else { return nil }
            if let equals = word.firstIndex(of: "=") {
                let name = String(word[..<equals])
                // `--name=` with nothing after it is the bare `--name` to ArgumentParser (the next word is its value).
                let value = String(word[word.index(after: equals)...])
                guard valued.contains(name), values[name] == nil, !value.isEmpty else { return nil }
                values[name] = value
            } else if valued.contains(word) {
                guard values[word] == nil, index < arguments.count else { return nil }
                let value = arguments[index]
                guard !value.hasPrefix("-") || value == "-" else { return nil }
                values[word] = value
                index += 1
            } else {
                guard known.contains(word), !flags.contains(word) else { return nil }
                flags.insert(word)
            }
        }
    }

    /// Nothing is left that no group took.
    var isEmpty: Bool { values.isEmpty && flags.isEmpty && operand == nil }

    /// Takes flag `name`: whether it was given.
    mutating func flag(_ name: String) -> Bool { flags.remove(name) != nil }

    /// Takes option `name`: .some(nil) when it was not given, nil when its value does not convert to `Value`.
    mutating func value<Value: ExpressibleByArgument>(_ name: String, as: Value.Type = Value.self) -> Value?? {
        guard let text = values.removeValue(forKey: name) else { return .some(nil) }
        guard let value = Value(argument: text) else { return nil }
        return .some(value)
    }

    /// ``TopologyOptions``, every property set.
    mutating func topologyOptions() -> TopologyOptions? {
        guard let hostCores = value("--host-cores", as: Int.self), let hostMemory = value("--host-memory", as: Int.self),
            let topologyJSON = value("--topology-json", as: String.self), let hostScheduler = value("--host-scheduler", as: String.self),
            let onHost = value("--on-host", as: String.self), let images = value("--images", as: String.self)
        else { return nil }
        var options = TopologyOptions()
        options.file = operand
        operand = nil
        options.topologyJSON = topologyJSON
        options.hostCores = hostCores
        options.hostMemory = hostMemory
        options.hostScheduler = hostScheduler
        options.onHost = onHost
        options.images = images
        return options
    }

    /// ``HostChangeOptions``, every property set (a default where the option was not given).
    mutating func hostChangeOptions() -> HostChangeOptions? {
        guard let wait = value("--wait", as: Double.self), let driverDomainTimeout = value("--driver-domain-timeout", as: Double.self),
            let guestNetworkTimeout = value("--guest-network-timeout", as: Double.self), let crashAfter = value("--crash-after", as: String.self),
            let connect = value("--connect", as: String.self)
        else { return nil }
        var options = HostChangeOptions()
        options.wait = wait ?? 0
        options.driverDomainTimeout = driverDomainTimeout ?? 120
        options.guestNetworkTimeout = guestNetworkTimeout ?? 120
        options.allowNoIOMMU = flag("--allow-no-iommu")
        options.allowUnresettableNICs = flag("--allow-unresettable-nics")
        options.crashAfter = crashAfter
        options.connect = connect
        return options
    }

    /// ``GlobalOptions``, every property set.
    mutating func globalOptions() -> GlobalOptions? {
        guard let logLevel = value("--log-level", as: Logger.Level.self) else { return nil }
        var options = GlobalOptions()
        options.logLevel = logLevel ?? .notice
        options.verbose = flag("--verbose")
        return options
    }
}
