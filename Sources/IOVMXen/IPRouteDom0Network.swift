import FoundationEssentials
public import IOVMControl
public import IOVMCore
public import Logging
import SystemPackage
import XenKit

#if canImport(Glibc)
    import Glibc
#endif

/// The real ``Dom0Network``: sysfs for a NIC's interface and a bridge's ports, iproute2's `ip` for what it
/// changes, and iovm's tags in dom0's own xenstore subtree, next to those of domains and pools:
/// `/local/domain/0/iovm/bridges/<name>` = the topology the bridge was made for (`.` in the name as `@`).
///
/// A bridge is tagged before it is made: an apply killed in between leaves a tag for no bridge (the next apply
/// makes it; destroy only removes the tag) or a bridge of iovm's that the next apply completes, never a bridge
/// iovm made and would not know as its own.
public final class IPRouteDom0Network: Dom0Network, @unchecked Sendable {
    /// Runs a program (`ip`, `modprobe`) with these arguments.
    typealias Runner = @Sendable ([String]) throws -> ProcessOutcome

    /// The sysfs mount, normally `/sys`.
    let root: String
    let openStore: @Sendable (_ readOnly: Bool) throws(XenError) -> any TagStore
    let ip: Runner
    let modprobe: Runner
    /// Seconds to wait for a NIC's interface once its driver is loaded.
    var driverTimeout: Double = 10
    /// Waits until udev has handled the kernel's events (a NIC given back to its driver is renamed by udev).
    let settle: @Sendable () -> Void
    let logger: Logger

    static let tagRoot = "/local/domain/0/iovm/bridges"

    /// dom0's network: sysfs under `/sys`, `ip` and `udevadm` from iproute2 and udev, tags in xenstore.
    public convenience init(logger: Logger) {
        let environment = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
        let ip = Self.executable(["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]) ?? "/sbin/ip"
        let udevadm = Self.executable(["/usr/bin/udevadm", "/bin/udevadm", "/sbin/udevadm", "/usr/sbin/udevadm"])
        self.init(
            root: "/sys", openStore: { readOnly throws(XenError) in try XenStoreTags(readOnly: readOnly) },
            ip: { arguments in try ProcessRunner.run(ip, arguments, environment: environment, timeout: 30) },
            modprobe: { arguments in try ProcessRunner.run("/sbin/modprobe", arguments, environment: environment, timeout: 60) },
            settle: {
                guard let udevadm else { return }
                _ = try? ProcessRunner.run(udevadm, ["settle", "--timeout=10"], environment: environment, timeout: 15)
            }, logger: logger)
    }

    /// A network over any sysfs tree, tag store and `ip` (tests give them fakes).
    init(
        root: String, openStore: @escaping @Sendable (_ readOnly: Bool) throws(XenError) -> any TagStore, ip: @escaping Runner,
        modprobe: @escaping Runner = { _ in ProcessOutcome(status: 1, output: "no modprobe") }, settle: @escaping @Sendable () -> Void = {},
        logger: Logger
    ) {
        self.root = root
        self.openStore = openStore
        self.ip = ip
        self.modprobe = modprobe
        self.settle = settle
        self.logger = logger
    }

    static func executable(_ candidates: [String]) -> String? {
        candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// A bridge name as a xenstore path element (xenstore allows letters, digits and `-/_@`; bridge names
    /// letters, digits and `_.-`).
    static func key(_ bridge: String) -> String { bridge.replacing(".", with: "@") }
    /// The bridge name of a tag's path element.
    static func name(ofKey key: String) -> String { key.replacing("@", with: ".") }

    static func tagPath(_ bridge: String) -> String { "\(tagRoot)/\(key(bridge))" }

    // MARK: Observe

    public func interface(of pci: PCIAddress) throws -> Dom0Interface? {
        let manager = FileManager.default
        let device = "\(root)/bus/pci/devices/\(pci)"
        // A virtio NIC's interface hangs below its virtio device (`<bdf>/virtio0/net/eth0`), others' below the PCI one.
        let virtio = ((try? manager.contentsOfDirectory(atPath: device)) ?? []).filter { $0.hasPrefix("virtio") }.sorted().map { "\(device)/\($0)/net" }
        let names = (["\(device)/net"] + virtio).lazy.compactMap { try? manager.contentsOfDirectory(atPath: $0) }.first { !$0.isEmpty }
        guard let name = names?.sorted().first else { return nil }
        let master = (try? manager.destinationOfSymbolicLink(atPath: "\(root)/class/net/\(name)/master")).map { FilePath($0).lastComponent?.string ?? $0 }
        return Dom0Interface(name: name, master: master, addresses: try addresses(of: name))
    }

    public func defaultRouteInterfaces() throws -> Set<String> {
        var found: Set<String> = []
        for family in [["-4"], ["-6"]] {
            let outcome = try ip(["-o"] + family + ["route", "show", "default"])
            guard outcome.succeeded else { throw XenError.failed(operation: "ip \(family[0]) route show default", detail: outcome.output) }
            found.formUnion(Self.devices(inRouteOutput: outcome.output))
        }
        return found
    }

    /// The devices in `ip route` lines: the word after each `dev`.
    static func devices(inRouteOutput output: String) -> Set<String> {
        Set(
            output.split(separator: "\n").compactMap { line in
                let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                guard let index = words.firstIndex(of: "dev"), index + 1 < words.count else { return nil }
                return String(words[index + 1])
            })
    }

    /// The global IPv4 and IPv6 addresses of interface `name` (`ip -o address show dev NAME scope global`).
    func addresses(of name: String) throws -> [String] {
        let outcome = try ip(["-o", "address", "show", "dev", name, "scope", "global"])
        guard outcome.succeeded else { throw XenError.failed(operation: "ip address show dev \(name)", detail: outcome.output) }
        return Self.addresses(inIPOutput: outcome.output)
    }

    /// The addresses in `ip -o address` lines: the word after each `inet` or `inet6`.
    static func addresses(inIPOutput output: String) -> [String] {
        output.split(separator: "\n").compactMap { line in
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let index = words.firstIndex(where: { $0 == "inet" || $0 == "inet6" }), index + 1 < words.count else { return nil }
            return String(words[index + 1])
        }
    }

    public func bridge(named name: String) throws -> ObservedBridge? {
        let manager = FileManager.default
        let directory = "\(root)/class/net/\(name)"
        guard manager.fileExists(atPath: directory) else { return nil }
        let ports = ((try? manager.contentsOfDirectory(atPath: "\(directory)/brif")) ?? []).sorted()
        let owner = try openStore(true).read(Self.tagPath(name))
        return ObservedBridge(name: name, isBridge: manager.fileExists(atPath: "\(directory)/bridge"), ports: ports, managedBy: owner)
    }

    public func managedBridges() throws -> [String: String] {
        let store = try openStore(true)
        var bridges: [String: String] = [:]
        for key in try store.directory(Self.tagRoot) ?? [] {
            if let topology = try store.read("\(Self.tagRoot)/\(key)") { bridges[Self.name(ofKey: key)] = topology }
        }
        return bridges
    }

    // MARK: Change

    public func createBridge(_ name: String, on pci: PCIAddress, topology: String) throws -> String {
        let operation = "make bridge \(name) on NIC \(pci)"
        settle()  // a NIC just given back to its driver gets its final name from udev
        var found = try interface(of: pci)
        if found == nil && driver(of: pci) == nil { found = try loadDriver(of: pci) }
        guard let interface = found else {
            let driver = driver(of: pci).map { "bound to \($0)" } ?? "bound to no driver"
            throw XenError.failed(operation: operation, detail: "the NIC has no network interface in dom0 (\(driver))")
        }
        if let master = interface.master, master != name {
            throw XenError.failed(operation: operation, detail: "its interface \(interface.name) is a port of \(master)")
        }
        guard interface.addresses.isEmpty else {
            throw XenError.failed(operation: operation, detail: "its interface \(interface.name) has addresses (\(interface.addresses.joined(separator: ", "))): dom0 uses it")
        }
        let existing = try bridge(named: name)
        if let existing, !existing.isBridge || existing.managedBy != topology {
            throw XenError.failed(operation: operation, detail: "\(name) exists and iovm did not make it for \(topology)")
        }
        let store = try openStore(false)
        try store.write(Self.tagPath(name), topology)
        var made = false
        do {
            if existing == nil {
                try run(["link", "add", "name", name, "type", "bridge", "stp_state", "0", "forward_delay", "0"])
                made = true
            }
            if interface.master != name { try run(["link", "set", "dev", interface.name, "master", name]) }
            try run(["link", "set", "dev", interface.name, "up"])
            try run(["link", "set", "dev", name, "up"])
        } catch {
            if made { _ = try? run(["link", "delete", "dev", name]) }
            if existing == nil { _ = try? store.remove(Self.tagPath(name)) }
            throw error
        }
        logger.info("made bridge \(name) in dom0 with \(interface.name) (NIC \(pci)) for \(topology)")
        return interface.name
    }

    public func removeBridge(named name: String) throws {
        let store = try openStore(false)
        guard try store.read(Self.tagPath(name)) != nil else {
            throw XenError.failed(operation: "remove bridge \(name)", detail: "iovm did not make it; refusing")
        }
        if let bridge = try bridge(named: name) {
            guard bridge.isBridge else { throw XenError.failed(operation: "remove bridge \(name)", detail: "\(name) is not a bridge; refusing") }
            try run(["link", "delete", "dev", name])
        }
        try store.remove(Self.tagPath(name))
    }

    /// The driver bound to NIC `pci` now; nil when none.
    func driver(of pci: PCIAddress) -> String? {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "\(root)/bus/pci/devices/\(pci)/driver")).map { FilePath($0).lastComponent?.string ?? $0 }
    }

    /// Gives NIC `pci`, bound to no driver, the one its PCI ids name: `modprobe` of its modalias (which respects
    /// dom0's blacklists), then `drivers_probe` (the module may be loaded already); waits for its interface.
    func loadDriver(of pci: PCIAddress) throws -> Dom0Interface? {
        let device = "\(root)/bus/pci/devices/\(pci)"
        guard let alias = try? String(contentsOfFile: "\(device)/modalias", encoding: .utf8).trimmingWhitespace(), !alias.isEmpty else {
            return nil
        }
        logger.info("NIC \(pci) is bound to no driver: loading the one its ids name (\(alias))")
        let outcome = try modprobe(["-q", alias])
        if !outcome.succeeded { logger.warning("modprobe \(alias): \(outcome.output.trimmingWhitespace())") }
        if driver(of: pci) == nil {
            let probe = "\(root)/bus/pci/drivers_probe"
            let fd = open(probe, O_WRONLY | O_CLOEXEC)
            if fd >= 0 {
                let text = pci.description
                if write(fd, text, text.utf8.count) < 0 { logger.warning("writing \(pci) to \(probe): \(String(cString: strerror(errno)))") }
                close(fd)
            }
        }
        let deadline = Date().addingTimeInterval(driverTimeout)
        repeat {
            settle()
            if let interface = try interface(of: pci) { return interface }
            usleep(200_000)
        } while Date() < deadline
        return nil
    }

    private func run(_ arguments: [String]) throws {
        let outcome = try ip(arguments)
        guard outcome.succeeded else {
            throw XenError.failed(operation: "ip " + arguments.joined(separator: " "), detail: outcome.output.trimmingWhitespace())
        }
    }
}
