import FoundationEssentials
import IOVMControl
import IOVMCore
import SystemPackage
import XenKit

#if canImport(Glibc)
    import Glibc
#endif

/// A ``TagStore`` on another host's xenstore, through `ssh` and its `xenstore-*` commands.
///
/// libvirt cannot read or write xenstore: an IOVM's `data/iovm/devd`, a vif backend's state and the
/// counters agents' nodes are only there. For a `xen+ssh://` connection iovm reaches them over the
/// same ssh access libvirt uses (user, host, port and `keyfile`/`no_verify` from the URI), one
/// multiplexed connection (`ControlMaster`) for all calls. Other transports have no such store.
struct SSHXenStore: RemoteDom0 {
    /// The `ssh` arguments before the remote command.
    let sshArguments: [String]
    /// `user@host:port`, for messages.
    let target: String

    /// The store behind a `xen+ssh://` URI; nil for any other transport.
    init?(uri: String) {
        guard let url = URLComponents(string: uri), url.scheme == "xen+ssh", let host = url.host, !host.isEmpty else { return nil }
        let query = Dictionary((url.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { a, _ in a })
        var arguments = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=20", "-o", "ControlMaster=auto", "-o", "ControlPersist=60"]
        arguments += ["-o", "ControlPath=\(FileManager.default.temporaryDirectory.path)/iovm-ssh-%C"]
        if let port = url.port { arguments += ["-p", String(port)] }
        if let user = url.user { arguments += ["-l", user] }
        if let key = query["keyfile"], !key.isEmpty { arguments += ["-i", key] }
        if query["no_verify"] == "1" { arguments += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"] }
        if let known = query["known_hosts"], !known.isEmpty { arguments += ["-o", "UserKnownHostsFile=\(known)"] }
        sshArguments = arguments + [host, "--"]
        target = "\(url.user.map { "\($0)@" } ?? "")\(host)\(url.port.map { ":\($0)" } ?? "")"
    }

    /// Runs `command` (words, quoted for the remote shell) on the host, its standard input `input` (a descriptor of
    /// this process) or nothing; its outcome.
    func run(_ words: [String], input: Int32? = nil, timeout: Double = 60) throws(XenError) -> ProcessOutcome {
        let command = words.map(Self.quoted).joined(separator: " ")
        do {
            return try ProcessRunner.run(
                "/usr/bin/ssh", sshArguments + [command], environment: ["PATH": "/usr/bin:/bin", "HOME": ProcessInfo.processInfo.environment["HOME"] ?? "/root"],
                extraDescriptors: input.map { [0: $0] } ?? [:], timeout: timeout)
        } catch {
            throw XenError.failed(operation: "ssh \(target) \(command)", detail: "\(error)")
        }
    }

    func read(_ path: String) throws(XenError) -> String? {
        let outcome = try run(["xenstore-read", path])
        if outcome.succeeded { return outcome.output.hasSuffix("\n") ? String(outcome.output.dropLast()) : outcome.output }
        if outcome.status == 255 { throw XenError.failed(operation: "ssh \(target) xenstore-read \(path)", detail: outcome.output) }
        return nil
    }

    func directory(_ path: String) throws(XenError) -> [String]? {
        let outcome = try run(["xenstore-list", path])
        if outcome.succeeded { return outcome.output.split(separator: "\n").map(String.init) }
        if outcome.status == 255 { throw XenError.failed(operation: "ssh \(target) xenstore-list \(path)", detail: outcome.output) }
        return nil
    }

    func write(_ path: String, _ value: String) throws(XenError) {
        let outcome = try run(["xenstore-write", path, value])
        guard outcome.succeeded else { throw XenError.failed(operation: "ssh \(target) xenstore-write \(path)", detail: outcome.output) }
    }

    func remove(_ path: String) throws(XenError) {
        _ = try run(["xenstore-rm", path])
    }

    /// Makes `/local/domain/<domid>/libxl` and `device-model` exist and belong to the domain, as libxl does for
    /// driver_domain=1 (libxl_create.c, libxl__domain_make: `rwperm`, the domain owning them).
    func makeDriverDomainNodes(_ domid: UInt32) throws(XenError) {
        let home = "/local/domain/\(domid)"
        let outcome = try run([
            "sh", "-c",
            "xenstore-write \(home)/libxl '' \(home)/device-model '' && xenstore-chmod \(home)/libxl n\(domid) && xenstore-chmod \(home)/device-model n\(domid)",
        ])
        guard outcome.succeeded else { throw XenError.failed(operation: "make \(home)/libxl the driver domain's own on \(target)", detail: outcome.output) }
    }

    /// Every domain Xen runs, by domid, with its name (from `/local/domain/<id>/name`), in one ssh call: libvirt's
    /// libxl driver lists only the domains libvirt itself started.
    func domainNames() throws(XenError) -> [UInt32: String] {
        let outcome = try run(["sh", "-c", "for d in $(xenstore-list /local/domain); do echo \"$d $(xenstore-read /local/domain/$d/name 2>/dev/null)\"; done"])
        guard outcome.succeeded else { throw XenError.failed(operation: "list the domains of \(target) from xenstore", detail: outcome.output) }
        var names: [UInt32: String] = [:]
        for line in outcome.output.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            guard let domid = parts.first.flatMap({ UInt32($0) }) else { continue }
            names[domid] = parts.count > 1 ? String(parts[1]) : ""
        }
        return names
    }

    /// The vifs of `domids` and their backends' states, in one ssh call (reading them one by one costs a round trip
    /// each); a domain without vifs has none.
    func vifs(of domids: [UInt32]) throws(XenError) -> [UInt32: [ObservedVif]] {
        guard !domids.isEmpty else { return [:] }
        let list = domids.map(String.init).joined(separator: " ")
        let outcome = try run(["sh", "-c", Self.vifsScript(domids)])
        guard outcome.succeeded else { throw XenError.failed(operation: "read the vifs of domains \(list) on \(target)", detail: outcome.output) }
        return Self.parseVifs(outcome.output, domids: domids)
    }

    /// The shell script of ``vifs(of:)``: a line per vif (``parseVifs(_:domids:)``).
    static func vifsScript(_ domids: [UInt32]) -> String {
        "r() { xenstore-read \"$1\" 2>/dev/null || echo -; }; for d in \(domids.map(String.init).joined(separator: " ")); do "
            + "for v in $(xenstore-list /local/domain/$d/device/vif 2>/dev/null); do "
            + "b=$(r /libxl/$d/device/vif/$v/backend); [ \"$b\" = - ] && b=$(r /local/domain/$d/device/vif/$v/backend); "
            + "echo \"$d $v $b $(r $b/state) $(r $b/hotplug-status)\"; done; done"
    }

    /// Lines `domid devid backend state hotplug-status` (`-` for a missing value) as vifs by domain. The backend is
    /// libxl's record of the vif, else the frontend's `backend` key, and it counts only with the shape of this vif's
    /// backend, its domain read from it (``LibXLBackend/vifBackend(of:devid:store:)``: the guest's own keys are not
    /// believed).
    static func parseVifs(_ text: String, domids: [UInt32]) -> [UInt32: [ObservedVif]] {
        var vifs = Dictionary(uniqueKeysWithValues: domids.map { ($0, [ObservedVif]()) })
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            guard fields.count >= 5, let domid = UInt32(fields[0]), let devid = Int(fields[1]) else { continue }
            // More fields: a backend value with spaces, which no backend path has (a guest's own key).
            guard fields.count == 5 else {
                vifs[domid, default: []].append(ObservedVif(devid: devid, backendDomid: nil, backendState: nil, hotplugStatus: nil))
                continue
            }
            let value = { (field: String) -> String? in field == "-" || field.isEmpty ? nil : field }
            guard let backend = LibXLBackend.backendDomid(ofVifBackend: fields[2], frontend: domid, devid: devid) else {
                vifs[domid, default: []].append(ObservedVif(devid: devid, backendDomid: nil, backendState: nil, hotplugStatus: nil))
                continue
            }
            vifs[domid, default: []].append(ObservedVif(devid: devid, backendDomid: backend, backendState: value(fields[3]), hotplugStatus: value(fields[4])))
        }
        return vifs.mapValues { $0.sorted { $0.devid < $1.devid } }
    }

    /// Gives NIC `pci` back to dom0's drivers when pciback still holds it after libvirt's `virNodeDeviceReAttach`
    /// (libvirt 9.0 with Linux 6.1: the NIC stays in pciback's `slots` and pciback takes it again at the probe):
    /// removes its slot, unbinds it and probes drivers for it.
    func releaseFromPciback(_ pci: PCIAddress) throws(XenError) {
        let bdf = pci.description
        let pciback = "/sys/bus/pci/drivers/pciback"
        let script =
            "if [ -e \(pciback)/\(bdf) ]; then echo \(bdf) >\(pciback)/remove_slot 2>/dev/null; echo \(bdf) >\(pciback)/unbind || exit 1; fi; "
            + "echo >/sys/bus/pci/devices/\(bdf)/driver_override 2>/dev/null; echo \(bdf) >/sys/bus/pci/drivers_probe 2>/dev/null; "
            + "[ ! -e \(pciback)/\(bdf) ]"
        let outcome = try run(["sh", "-c", script])
        guard outcome.succeeded else { throw XenError.failed(operation: "give \(bdf) back to dom0's drivers on \(target)", detail: "pciback keeps it \(outcome.output)") }
    }

    func missingFiles(_ paths: [String], sizes: [String: UInt64]) throws(XenError) -> [String] {
        guard !paths.isEmpty else { return [] }
        // One `f size` pair per path (size - when any size will do); a path is printed when it is not there as wanted.
        let pairs = paths.map { "\(Self.quoted($0)) \(sizes[$0].map(String.init) ?? "-")" }.joined(separator: " ")
        let script =
            "set -- \(pairs); while [ $# -gt 1 ]; do f=$1; n=$2; shift 2; "
            + "if [ -f \"$f\" ] && [ -s \"$f\" ] && { [ \"$n\" = - ] || [ \"$(wc -c <\"$f\")\" = \"$n\" ]; }; then :; else printf '%s\\n' \"$f\"; fi; done"
        let outcome = try run(["sh", "-c", script])
        guard outcome.succeeded else { throw XenError.failed(operation: "look for \(paths.joined(separator: ", ")) on \(target)", detail: outcome.output) }
        // Only the paths asked about: ssh may print its own lines (a ControlSocket race) into the same output.
        let asked = Set(paths)
        return outcome.output.split(separator: "\n").map(String.init).filter(asked.contains)
    }

    /// Streams the file over the ssh connection into a name of its own beside `path`, then renames it once it has the
    /// whole size: two copies at once (two IOVMs of one image) both end well, and one cut short (the remote `cat` sees
    /// only an early end of input) leaves no file at `path`.
    func copy(_ path: String) throws(XenError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw XenError.failed(operation: "copy \(path) to \(target)", detail: "it cannot be read here: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw XenError.failed(operation: "copy \(path) to \(target)", detail: "its size cannot be read here") }
        let size = UInt64(status.st_size)
        let directory = FilePath(path).removingLastComponent().string
        let partial = "\(path).iovm-\(UUID().uuidString.prefix(8))"
        let (part, file) = (Self.quoted(partial), Self.quoted(path))
        let script = "mkdir -p \(Self.quoted(directory)) && cat >\(part) && [ \"$(wc -c <\(part))\" = \(size) ] && mv -f \(part) \(file) || { rm -f \(part); exit 1; }"
        let outcome = try run(["sh", "-c", script], input: fd, timeout: 600)
        guard outcome.succeeded else { throw XenError.failed(operation: "copy \(path) to \(target)", detail: outcome.output) }
    }

    /// One ssh call: each of `domids`' one-node sample (`S`, a line each) or, for an agent that publishes none, its counters and
    /// notifications directories (`L`), their values and the agent's `bits` and `uptime` (`V`); and every domain's name
    /// (`N`).
    func iovmData(of domids: [UInt32]) throws(XenError) -> IOVMData {
        let outcome = try run(["sh", "-c", Self.iovmDataScript(domids)])
        guard outcome.succeeded else { throw XenError.failed(operation: "read the IOVMs' counters on \(target)", detail: outcome.output) }
        return IOVMData.parse(outcome.output)
    }

    /// The shell script of ``iovmData(of:)``.
    static func iovmDataScript(_ domids: [UInt32]) -> String {
        let list = domids.map(String.init).joined(separator: " ")
        return
            "v() { x=$(xenstore-read \"$1\" 2>/dev/null) && printf 'V %s %s\\n' \"$1\" \"$x\"; }; for d in \(list); do r=/local/domain/$d/data/iovm; "
            + "if x=$(xenstore-read -R $r/sample 2>/dev/null); then printf '%s\\n' \"$x\" | while IFS= read -r l; do printf 'S %s %s\\n' $d \"$l\"; done; continue; fi; "
            + "for s in counters notifications; do if k=$(xenstore-list $r/$s 2>/dev/null); then echo L $r/$s $k; for n in $k; do v $r/$s/$n; done; fi; done; "
            + "v $r/agent/bits; v $r/agent/uptime; done; for d in $(xenstore-list /local/domain); do printf 'N %s %s\\n' $d \"$(xenstore-read /local/domain/$d/name 2>/dev/null)\"; done"
    }

    /// One ssh call: every child of `roots` with its value (``RemoteRecords``), the length counted in bytes.
    func records(under roots: [String]) throws(XenError) -> [String: [String: String]] {
        guard !roots.isEmpty else { return [:] }
        let outcome = try run(["env", "LC_ALL=C", "sh", "-c", Self.recordsScript(roots)])
        guard outcome.succeeded else { throw XenError.failed(operation: "read \(roots.joined(separator: ", ")) on \(target)", detail: outcome.output) }
        return RemoteRecords.parse(Array(outcome.output.utf8))
    }

    /// The shell script of ``records(under:)``, run with `LC_ALL=C` (`${#v}` then counts bytes). `$(…)` drops a value's
    /// trailing newlines, as ``read(_:)`` drops the one `xenstore-read` adds.
    static func recordsScript(_ roots: [String]) -> String {
        "for r in \(roots.map(Self.quoted).joined(separator: " ")); do for k in $(xenstore-list \"$r\" 2>/dev/null); do "
            + "v=$(xenstore-read \"$r/$k\" 2>/dev/null) || continue; printf '%s\\t%s\\t%s\\n%s\\n' \"$r\" \"$k\" \"${#v}\" \"$v\"; done; done"
    }

    /// `word` for a POSIX shell: as is when it is plain, else in single quotes.
    static func quoted(_ word: String) -> String { ShellWord.quoted(word) }
}
