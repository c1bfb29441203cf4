import FoundationEssentials
import IOVMCore

/// The paper's minimal IOVM runtime ("only network, syslog and possibly sshd") as an initramfs: busybox
/// (init, syslogd, the shell), `xl devd` and the `xenstore-*` tools with their exact library closure,
/// iproute2's `ip` for the bridges, and iovm's agents (the counters agent a static program: no fork per sample).
/// Nothing else.
public struct MinimalRuntime: Sendable {
    /// A program taken from the sysroot: where it goes in the image, and where it is in the sysroot.
    public struct Program: Sendable, Equatable {
        /// Path in the image.
        public var destination: String
        /// Path in the sysroot (links followed).
        public var source: String
    }

    /// The programs, before their libraries.
    public static let programs: [Program] = [
        Program(destination: "/bin/busybox", source: "/bin/busybox"),
        Program(destination: "/usr/sbin/xl", source: "/usr/lib/xen-4.17/bin/xl"),
        Program(destination: "/usr/bin/xenstore", source: "/usr/bin/xenstore"),
        Program(destination: "/sbin/ip", source: "/sbin/ip"),
    ]
    /// `xenstore` is one program that acts by the name it is called as.
    public static let xenstoreTools = ["read", "write", "rm", "list", "ls", "exists", "watch", "chmod"]
    /// The busybox applets the runtime uses (init, syslogd, the shell, and what the scripts call).
    public static let applets = [
        "sh", "ash", "init", "syslogd", "logread", "mount", "umount", "mkdir", "mkfifo", "mktemp", "mknod", "ln", "rm", "mv", "cp", "cat",
        "ls", "ps", "top", "free", "kill", "sleep", "tail", "head", "grep", "sed", "awk", "tr", "printf", "echo", "readlink",
        "hostname", "uname", "date", "seq", "sort", "dmesg", "nproc", "wc", "cut", "basename", "dirname", "test", "[",
        "true", "false", "reboot", "poweroff", "halt", "uptime", "env", "id", "vi", "less", "brctl", "ping", "ifconfig",
    ]
    /// iovm's own files, from `Agents/` (embedded in the binary), and where they go.
    public static let agents: [(name: String, destination: String)] = [
        ("iovm-init", "/etc/iovm/rc"),
        ("iovm-devd", "/usr/lib/iovm/iovm-devd"),
    ]
    /// Where the counters agent (`Agents/iovm-counters.c`, compiled static by ``AgentCompiler``) goes.
    public static let countersAgentPath = "/usr/lib/iovm/iovm-counters"
    /// Where the vif hotplug program (`Agents/iovm-vif.c`, compiled static) goes: the script every guest vif names
    /// (``IOVMCore/VifSpec/iovmScript``). The stock IOVM runs `Agents/iovm-vif`, the shell script of the same contract;
    /// here it would start four processes per vif, three of them dynamically linked.
    public static let vifHotplugPath = "/etc/xen/scripts/iovm-vif"
    /// busybox init's table: the runtime's whole process list.
    public static let inittab = """
        # iovm minimal IOVM runtime: init, syslogd, xl devd (via iovm-devd), the counters agent, a console shell.
        ::sysinit:/bin/sh /etc/iovm/rc
        ::respawn:/sbin/syslogd -n -C64
        ::respawn:/bin/sh /usr/lib/iovm/iovm-devd
        ::respawn:/usr/lib/iovm/iovm-counters -i 1
        hvc0::respawn:-/bin/sh
        ::shutdown:/bin/umount -a -r

        """

    /// The sysroot the programs and libraries come from.
    public var sysroot: Sysroot
    /// The programs taken from it (``programs`` unless a test says otherwise).
    public var programs: [Program]
    /// The counters agent's static program (``AgentCompiler`` builds it from `Agents/iovm-counters.c`).
    public var countersAgent: [UInt8]
    /// The vif hotplug program (``AgentCompiler`` builds it from `Agents/iovm-vif.c`).
    public var vifHotplug: [UInt8]

    /// A runtime from `sysroot`'s programs and the compiled agents.
    public init(sysroot: Sysroot, programs: [Program] = MinimalRuntime.programs, countersAgent: [UInt8], vifHotplug: [UInt8]) {
        self.sysroot = sysroot
        self.programs = programs
        self.countersAgent = countersAgent
        self.vifHotplug = vifHotplug
    }

    /// The initramfs, and the list of what is in it (path, size, where it came from).
    public func archive() throws(ImageError) -> (archive: CPIOArchive, files: [ImageManifest.File]) {
        var archive = CPIOArchive()
        var files: [ImageManifest.File] = []
        for directory in ["/proc", "/sys", "/dev", "/run", "/tmp", "/root", "/var/log/xen", "/var/lib/xen", "/etc/xen/scripts", "/usr/lib/iovm"] {
            archive.add(.directory(directory, mode: directory == "/tmp" ? 0o1777 : 0o755))
        }
        archive.add(.characterDevice("/dev/console", mode: 0o600, major: 5, minor: 1))
        archive.add(.symlink("/var/run", target: "/run"))
        archive.add(.symlink("/init", target: "/bin/busybox"))

        func copy(_ source: String, to destination: String, mode: UInt32) throws(ImageError) {
            guard let real = sysroot.resolve(source) else { throw .missingInSysroot(source, sysroot: sysroot.root) }
            guard let data = FileManager.default.contents(atPath: sysroot.hostPath(real)) else { throw .unreadable(sysroot.hostPath(real)) }
            archive.add(.file(destination, mode: mode, contents: [UInt8](data)))
            files.append(ImageManifest.File(path: destination, size: data.count, from: real))
        }
        for program in programs { try copy(program.source, to: program.destination, mode: 0o755) }
        let closure = try LibraryClosure(programs: programs.map(\.source), sysroot: sysroot)
        var placed: [String: String] = [:]  // source → first destination: the loader is needed twice, as PT_INTERP and DT_NEEDED
        for library in closure.libraries {
            if let first = placed[library.source] {
                archive.add(.symlink(library.destination, target: first))
                continue
            }
            placed[library.source] = library.destination
            try copy(library.source, to: library.destination, mode: 0o755)
        }
        for applet in Self.applets { archive.add(.symlink(Self.appletPath(applet), target: "/bin/busybox")) }
        for tool in Self.xenstoreTools { archive.add(.symlink("/usr/bin/xenstore-\(tool)", target: "xenstore")) }

        for agent in Self.agents {
            guard let text = AgentFiles.text(agent.name) else { throw .unreadable("Agents/" + agent.name + " (not embedded in this build)") }
            archive.add(.file(agent.destination, mode: 0o755, contents: Array(text.utf8)))
            files.append(ImageManifest.File(path: agent.destination, size: text.utf8.count, from: "Agents/" + agent.name))
        }
        archive.add(.file(Self.countersAgentPath, mode: 0o755, contents: countersAgent))
        files.append(ImageManifest.File(path: Self.countersAgentPath, size: countersAgent.count, from: "Agents/iovm-counters.c (cc -static)"))
        archive.add(.file(Self.vifHotplugPath, mode: 0o755, contents: vifHotplug))
        files.append(ImageManifest.File(path: Self.vifHotplugPath, size: vifHotplug.count, from: "Agents/iovm-vif.c (cc -static)"))
        let generated: [(String, String)] = [
            ("/etc/inittab", Self.inittab),
            ("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
            ("/etc/group", "root:x:0:\n"),
            ("/etc/profile", "export PATH=/usr/sbin:/usr/bin:/sbin:/bin\nexport PS1='\\h# '\n"),
        ]
        for (path, text) in generated {
            archive.add(.file(path, mode: 0o644, contents: Array(text.utf8)))
            files.append(ImageManifest.File(path: path, size: text.utf8.count, from: "iovm"))
        }
        return (archive, files.sorted { $0.path < $1.path })
    }

    /// Where an applet's link goes: the directories a Debian system has them in.
    static func appletPath(_ applet: String) -> String {
        switch applet {
        case "init", "syslogd", "reboot", "poweroff", "halt", "mknod", "brctl", "ifconfig": "/sbin/" + applet
        case "sh", "ash", "mount", "umount", "mkdir", "ln", "rm", "mv", "cp", "cat", "ls", "ps", "kill", "sleep", "grep", "sed",
            "echo", "readlink", "hostname", "uname", "date", "dmesg", "true", "false", "vi", "ping":
            "/bin/" + applet
        default: "/usr/bin/" + applet
        }
    }
}
