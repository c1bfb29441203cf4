import FoundationEssentials

/// A root directory whose programs go into an image: `/` on a dom0, or a Debian tree such as
/// the lab's debootstrap root. Paths inside it are absolute ("/usr/sbin/xl"); symbolic links are
/// followed inside it, never out to the machine that runs iovm.
public struct Sysroot: Sendable {
    /// The directory, without a trailing slash ("" for `/`).
    public let root: String

    /// A sysroot at `directory`.
    public init(_ directory: String) {
        var root = directory
        while root.hasSuffix("/") { root.removeLast() }
        self.root = root
    }

    /// Where `path` (absolute, inside the sysroot) is on this machine, without following links.
    public func hostPath(_ path: String) -> String { root + path }

    /// `path` with every symbolic link followed inside the sysroot; nil when a component is missing.
    public func resolve(_ path: String) -> String? {
        var pending = path.split(separator: "/").map(String.init)
        var resolved: [String] = []
        var hops = 0
        while !pending.isEmpty {
            let component = pending.removeFirst()
            if component == "." || component.isEmpty { continue }
            if component == ".." {
                if !resolved.isEmpty { resolved.removeLast() }
                continue
            }
            let candidate = "/" + (resolved + [component]).joined(separator: "/")
            let onHost = hostPath(candidate)
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: onHost) {
                hops += 1
                if hops > 40 { return nil }
                let parts = target.split(separator: "/").map(String.init)
                if target.hasPrefix("/") { resolved = [] }
                pending = parts + pending
                continue
            }
            guard FileManager.default.fileExists(atPath: onHost) else { return nil }
            resolved.append(component)
        }
        return "/" + resolved.joined(separator: "/")
    }

    /// Installed package versions from the sysroot's dpkg database, for the names asked.
    public func packageVersions(_ names: [String]) -> [String: String] {
        guard let text = try? String(contentsOfFile: hostPath("/var/lib/dpkg/status"), encoding: .utf8) else { return [:] }
        let wanted = Set(names)
        var versions: [String: String] = [:]
        for stanza in text.split(separator: "\n\n") {
            var package: String?
            var version: String?
            var installed = false
            for line in stanza.split(separator: "\n") {
                if line.hasPrefix("Package: ") { package = String(line.dropFirst(9)) }
                if line.hasPrefix("Version: ") { version = String(line.dropFirst(9)) }
                if line.hasPrefix("Status: ") { installed = line.hasSuffix(" installed") }
            }
            if let package, let version, installed, wanted.contains(package) { versions[package] = version }
        }
        return versions
    }
}
