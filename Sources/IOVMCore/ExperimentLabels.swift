import FoundationEssentials
public import IOVMWireFormat

// How cells, factors and workloads are named in tables, messages and results.

extension FactorDocument.Kind {
    /// The factor's name in the cells table and in messages.
    public var label: String {
        switch self {
        case .configuration: "configuration"
        case .placement: "placement"
        case .scheduler: "scheduler"
        case .nicCount: "NIC count"
        case .iovmImage: "image"
        case .weights: "weights"
        case .variants: "variant"
        }
    }
}

extension ConfigurationDocument {
    /// `centralized`, `monolithic`, `multiple-small`, `hybrid(2)`, `explicit`.
    public var label: String {
        switch kind {
        case .explicit: "explicit"
        case .centralized: "centralized"
        case .monolithic: "monolithic"
        case .multipleSmall: "multiple-small"
        case .hybrid: "hybrid(\(groups.map(String.init) ?? "?"))"
        }
    }
}

extension PlacementDocument {
    /// `credit`, `co-locate`, `separate`, `IOVM-affinity` (`+pool` with a dedicated pool), `hybrid-pinned`.
    public var label: String {
        switch kind {
        case .credit: "credit"
        case .coLocate: "co-locate"
        case .separate: "separate"
        case .iovmAffinity: dedicatedPool == true ? "IOVM-affinity+pool" : "IOVM-affinity"
        case .hybridPinned: "hybrid-pinned"
        }
    }
}

extension WeightsDocument {
    /// The weights and caps `scheduling` sets.
    init(of scheduling: SchedulingDocument) {
        self.init(iovmWeight: scheduling.iovmWeight, iovmCap: scheduling.iovmCap, guestWeight: scheduling.guestWeight, guestCap: scheduling.guestCap)
    }

    /// `default` (credit's: 256, no cap), or what differs: `iovm 512, guest 256`, `guest cap 50`.
    public var label: String {
        let parts = [
            iovmWeight.map { "iovm \($0)" }, guestWeight.map { "guest \($0)" },
            iovmCap.map { "iovm cap \($0)" }, guestCap.map { "guest cap \($0)" },
        ].compactMap { $0 }
        return parts.isEmpty ? "default" : parts.joined(separator: ", ")
    }
}

extension FactorValueDocument {
    /// How cells name this value of a factor of `kind`.
    public func label(of kind: FactorDocument.Kind) -> String {
        switch kind {
        case .configuration: configuration?.label ?? "?"
        case .placement: placement?.label ?? "?"
        case .scheduler:
            scheduler.map { scheduler in
                scheduler.iovmRTDS == nil && scheduler.guestRTDS == nil ? scheduler.name : "\(scheduler.name) (reservations)"
            } ?? "?"
        case .nicCount: nicCount.map(String.init) ?? "?"
        case .iovmImage: iovmImage?.label ?? "?"
        case .weights: weights?.label ?? "?"
        case .variants: label ?? "?"
        }
    }

    /// Whether the value sets `aspect` of the topology.
    func sets(_ aspect: FactorDocument.Kind) -> Bool {
        switch aspect {
        case .configuration: configuration != nil
        case .placement: placement != nil
        case .scheduler: scheduler != nil
        case .nicCount: nicCount != nil
        case .iovmImage: iovmImage != nil
        case .weights: weights != nil
        case .variants: label != nil
        }
    }

    /// The value without where it was written, to find one listed twice.
    var withoutSources: FactorValueDocument {
        var value = self
        value.source = nil
        value.configuration?.source = nil
        value.placement?.source = nil
        return value
    }
}

/// What runs in a cell, in words, and the template's placeholders.
public enum ExperimentWorkload {
    /// Why `server` is not an iperf3 server as iovm passes it on (`HOST` or `HOST:PORT`: a host name, an IPv4 address
    /// or an IPv6 address without a port, and a port 1-65535); nil when it is one.
    public static func serverProblem(_ server: String) -> String? {
        let colons = server.filter { $0 == ":" }.count
        var host = Substring(server)
        if colons == 1, let colon = server.lastIndex(of: ":") {
            host = server[..<colon]
            let port = server[server.index(after: colon)...]
            guard port.allSatisfy(\.isASCII), let number = Int(port), (1...65535).contains(number) else {
                return "its port \(String(port).debugDescription) is not 1-65535"
            }
        }
        guard !host.isEmpty, host.count <= 253 else { return "its host must be 1-253 characters" }
        guard host.first != "-" else { return "its host starts with '-' (iperf3 would read it as an option)" }
        let allowed = colons > 1 ? "0123456789abcdefABCDEF:." : "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_"
        // An IPv6 address may name its interface after '%' (fe80::1%br0).
        let (address, zone) =
            colons > 1 ? (host.split(separator: "%", maxSplits: 1).first ?? "", host.contains("%") ? host.split(separator: "%", maxSplits: 1).last : nil) : (host, nil)
        let zoneOK = zone.map { !$0.isEmpty && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) } } ?? true
        guard address.allSatisfy({ allowed.contains($0) }), zoneOK else {
            return colons > 1 ? "an IPv6 address takes no port here, and only hex digits, ':' and '.'" : "its host has a character no host name has"
        }
        return nil
    }

    /// The placeholders of `Workload.command`.
    public static let placeholders = ["guest", "nic", "direction", "duration", "warmup", "server", "iperf3"]

    /// The pieces of a template: literal text and `{name}` placeholders. A placeholder is `{` letters and digits `}`
    /// not after a `$`; `{{` is a literal `{` (`{{guest}` is the text `{guest}`); every other brace is literal
    /// (`awk '{print $1}'` and `${HOME}` stay as written).
    public enum TemplatePiece: Equatable, Sendable {
        /// Text kept as written.
        case text(String)
        /// A `{name}`.
        case placeholder(String)
    }

    /// Splits `template` into literal text and placeholders.
    public static func pieces(of template: String) -> [TemplatePiece] {
        var pieces: [TemplatePiece] = []
        var text = ""
        let characters = Array(template)
        var index = 0
        while index < characters.count {
            let character = characters[index]
            if character == "{" && index + 1 < characters.count && characters[index + 1] == "{" {
                text.append(character)
                index += 2
                continue
            }
            if character == "{", index == 0 || characters[index - 1] != "$", let close = characters[(index + 1)...].firstIndex(of: "}"), close > index + 1,
                characters[(index + 1)..<close].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) })
            {
                if !text.isEmpty { pieces.append(.text(text)) }
                text = ""
                pieces.append(.placeholder(String(characters[(index + 1)..<close])))
                index = close + 1
                continue
            }
            text.append(character)
            index += 1
        }
        if !text.isEmpty { pieces.append(.text(text)) }
        return pieces
    }

    /// The `{names}` in `template`.
    static func placeholders(in template: String) -> [String] {
        pieces(of: template).compactMap { if case .placeholder(let name) = $0 { name } else { nil } }
    }

    /// `template` with each placeholder replaced by its value, shell-quoted (a list value, `{iperf3}`, word by word).
    public static func expand(_ template: String, values: [String: [String]]) -> String {
        pieces(of: template).map { piece in
            switch piece {
            case .text(let text): text
            case .placeholder(let name): (values[name] ?? []).map(shellQuoted).joined(separator: " ")
            }
        }.joined()
    }

    /// `word` as one shell word: as it is when it is plain, else in single quotes.
    public static func shellQuoted(_ word: String) -> String { ShellWord.quoted(word) }

    /// `iperf3 -P 4 -l 1024, one client per NIC`, or the command's template.
    public static func describe(_ workload: WorkloadDocument) -> String {
        switch workload.kind {
        case .iperf3:
            "iperf3 -P \(workload.parallel ?? WorkloadDocument.paperParallel) -l \(workload.length ?? WorkloadDocument.paperLength), one client per NIC"
                + (workload.server.map { ", server \($0)" } ?? "")
        case .command: "command \(workload.template ?? "")"
        }
    }

    /// `60 s`, `1.5 s`.
    public static func seconds(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? "\(Int(value)) s" : "\(value) s"
    }

    /// `45 s`, `12 min`, `1 h 35 min`: a duration as a person reads it, to the minute past a minute.
    public static func duration(_ value: Double) -> String {
        let total = Int(value.rounded())
        if total < 60 { return "\(total) s" }
        let minutes = (total + 30) / 60
        if minutes < 60 { return "\(minutes) min" }
        return minutes % 60 == 0 ? "\(minutes / 60) h" : "\(minutes / 60) h \(minutes % 60) min"
    }
}
