import FoundationEssentials
import IOVMCore
import SystemPackage

/// What dom0 can tell about a guest vif that did not connect: its backend's xenstore state, what the
/// IOVM's hotplug script and `xl devd` published, and the end of the IOVM's console log.
///
/// The hotplug script and `xl devd` run inside the IOVM, so their own logs are out of dom0's reach;
/// `Agents/iovm-vif` writes `hotplug-error` into the backend directory and `Agents/iovm-devd` writes
/// libxl's last error to `data/iovm/devd-error`. xenconsoled keeps the console when it logs guests.
public struct VifDiagnosis: Sendable, Equatable {
    /// The backend directory, `/local/domain/<iovm>/backend/vif/<guest>/<devid>`.
    public var backend: String
    /// The backend's xenbus state (`4` is connected), `?` when unreadable.
    public var state: String
    /// `hotplug-status` (`connected`, `error`, or empty while the script has not finished).
    public var hotplugStatus: String
    /// `hotplug-error`: the reason a script gave.
    public var hotplugError: String?
    /// The hotplug script libxl runs for it.
    public var script: String?
    /// `online <start> <end>` from `iovm-vif`: the IOVM's uptime when the script began and ended.
    public var hotplugTiming: String?
    /// The backend domain's name.
    public var iovm: String?
    /// The IOVM's `data/iovm/devd-error`: the last error libxl logged in `xl devd`.
    public var devdError: String?
    /// The last lines of the IOVM's console log in dom0.
    public var consoleTail: [String]

    /// Where xenconsoled writes a guest's console when it logs guests (`XENCONSOLED_TRACE=guest`).
    public static func consoleLog(of name: String) -> String { "/var/log/xen/console/guest-\(name).log" }

    /// Reads what is known about `backend` through `read` (a xenstore read) and `console` (the
    /// last lines of a file, or nothing).
    public static func gather(backend: String, read: (String) -> String?, console: (String) -> [String]) -> VifDiagnosis {
        let domain = Self.domainDirectory(of: backend)
        let name = domain.flatMap { read("\($0)/name") }
        let error = read("\(backend)/hotplug-error")
        return VifDiagnosis(
            backend: backend, state: read("\(backend)/state") ?? "?", hotplugStatus: read("\(backend)/hotplug-status") ?? "",
            hotplugError: error.flatMap { $0.isEmpty ? nil : $0 }, script: read("\(backend)/script"),
            hotplugTiming: read("\(backend)/iovm-hotplug"), iovm: name,
            devdError: domain.flatMap { read("\($0)/data/iovm/devd-error") }.flatMap { $0.isEmpty ? nil : $0 },
            consoleTail: name.map { console(Self.consoleLog(of: $0)) } ?? [])
    }

    /// `/local/domain/<n>` of a backend path under it.
    static func domainDirectory(of backend: String) -> String? {
        let parts = backend.split(separator: "/")
        guard parts.count >= 3, parts[0] == "local", parts[1] == "domain" else { return nil }
        return "/local/domain/\(parts[2])"
    }

    /// One line: the state, and whatever the IOVM said about it.
    public var summary: String {
        var text = "\(backend) state \(state)"
        text += hotplugStatus.isEmpty ? ", no hotplug-status (the script did not finish)" : ", hotplug-status \(hotplugStatus)"
        if let hotplugError { text += ", hotplug-error \"\(hotplugError)\"" }
        if let script { text += ", script \(script)" }
        if let devdError { text += "; \(iovm ?? "the IOVM")'s xl devd: \(devdError)" }
        return text
    }

    /// The summary, then the console tail indented, for an error message.
    public var report: String {
        guard !consoleTail.isEmpty, let iovm else { return summary }
        return summary + "\n  last lines of \(Self.consoleLog(of: iovm)):\n" + consoleTail.map { "    " + $0 }.joined(separator: "\n")
    }

    /// The last `count` non-empty lines of a text file (carriage returns dropped), or nothing.
    public static func tail(of path: String, lines count: Int = 8) -> [String] {
        guard let fd = try? FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec]) else { return [] }
        defer { try? fd.close() }
        let size = (try? fd.seek(offset: 0, from: .end)) ?? 0
        _ = try? fd.seek(offset: max(0, size - 16_384), from: .start)
        let data = (try? FileBytes.read(fd)) ?? Data()
        let text = String(decoding: data.filter { $0 != UInt8(ascii: "\r") }, as: UTF8.self)
        return Array(text.split(separator: "\n").map(String.init).filter { !$0.trimmingWhitespace().isEmpty }.suffix(count))
    }
}
