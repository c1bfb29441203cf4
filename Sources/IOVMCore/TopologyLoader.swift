public import FoundationEssentials
public import IOVMWireFormat
import Logging
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// Reads a topology: a Swift DSL file (compiled and run like a Package.swift) or its JSON document.
///
/// A `.swift` file is compiled with `swiftc` against the `IOVMDescription` library, run as an
/// unprivileged user (`nobody`, with `no_new_privs`) and its ``TopologyDocument`` read back through
/// file descriptor 3. Documents are cached by the file's contents, its path, the iovm version and the
/// compiler version, so a second run costs no compilation.
public struct TopologyLoader: Sendable {
    /// Where the DSL module and library are: looked for at each read (a Swift file reads it once; a JSON topology
    /// never), or as set.
    public var dsl: DSLLocation? {
        get { dslSet ?? DSLLocation.find(environment: environment) }
        set { dslSet = .some(newValue) }
    }
    /// The compiler: `$SWIFTC`, else `swiftc` on `PATH`, else `/opt/swift/usr/bin/swiftc`, looked for at each read;
    /// or as set.
    public var swiftc: String? {
        get {
            swiftcSet
                ?? environment["SWIFTC"] ?? ProcessRunner.which("swiftc", path: environment["PATH"])
                ?? (FileManager.default.isExecutableFile(atPath: "/opt/swift/usr/bin/swiftc") ? "/opt/swift/usr/bin/swiftc" : nil)
        }
        set { swiftcSet = .some(newValue) }
    }
    /// The environment the DSL and the compiler are looked for in.
    private let environment: EnvironmentLookup
    private var dslSet: DSLLocation??
    private var swiftcSet: String??
    /// Cache directory; nil disables caching.
    public var cacheDirectory: URL?
    /// Seconds a compilation may take.
    public var compileTimeout: Double = 300
    /// What the compiled topology may use while it runs (wall time, CPU, memory, processes, output).
    public var limits = EvaluationLimits()
    /// Logs progress at debug level.
    public var logger: Logger

    /// Where the `IOVMDescription` module (`.swiftmodule`) and static library (`.a`) are.
    public struct DSLLocation: Sendable, Equatable {
        /// Directory with `IOVMDescription.swiftmodule` and `IOVMWireFormat.swiftmodule`.
        public var modules: URL
        /// Directory with `libIOVMDescription.a`.
        public var library: URL

        /// Finds the DSL: `$IOVM_DSL_DIR`, then beside the running executable (a SwiftPM build
        /// directory), then `<prefix>/lib/iovm`.
        public static func find(environment: EnvironmentLookup = .process) -> DSLLocation? {
            var candidates: [URL] = []
            if let explicit = environment["IOVM_DSL_DIR"] { candidates.append(URL(fileURLWithPath: explicit)) }
            let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            let running = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? executable.path
            let directory = URL(fileURLWithPath: running).resolvingSymlinksInPath().deletingLastPathComponent()
            candidates.append(directory)
            candidates.append(executable.deletingLastPathComponent())
            candidates.append(directory.deletingLastPathComponent().appending(path: "lib/iovm"))
            for base in candidates {
                for modules in [base.appending(path: "Modules"), base] {
                    let module = modules.appending(path: "IOVMDescription.swiftmodule")
                    let library = base.appending(path: "libIOVMDescription.a")
                    if FileManager.default.fileExists(atPath: module.path) && FileManager.default.fileExists(atPath: library.path) {
                        return DSLLocation(modules: modules, library: base)
                    }
                }
            }
            return nil
        }
    }

    /// Creates a loader with the DSL and compiler found in the usual places of `environment` (nil: the process's).
    public init(
        logger: Logger = Logger(label: "iovm.loader"),
        environment: [String: String]? = nil
    ) {
        self.logger = logger
        // The DSL and the compiler are looked for when a Swift file is loaded (``dsl``, ``swiftc``): a JSON topology,
        // the no-op re-apply's, needs neither (their search is a few % of its start natively).
        self.environment = environment.map(EnvironmentLookup.init) ?? .process
        cacheDirectory = Self.cacheDirectory(environment: self.environment)
    }

    /// iovm's cache: `$IOVM_CACHE_DIR`, else `$XDG_CACHE_HOME/iovm`, else `~/.cache/iovm`; nil without any of them.
    ///
    /// Under sudo (`effectiveUID` 0 and `SUDO_UID` set) it is `.cache/iovm` in root's own home (`rootHome`), whatever
    /// `HOME` and `XDG_CACHE_HOME` say: `sudo -E` keeps the caller's, and root's entries would land in the caller's
    /// home, owned by root, where the caller's own runs can no longer write.
    public static func cacheDirectory(
        environment: EnvironmentLookup = .process, effectiveUID: UInt32 = geteuid(), rootHome: () -> String? = TopologyLoader.rootHome
    ) -> URL? {
        if let explicit = environment["IOVM_CACHE_DIR"] { return URL(fileURLWithPath: explicit) }
        if effectiveUID == 0 && environment["SUDO_UID"] != nil {
            return rootHome().map { URL(fileURLWithPath: $0).appending(path: ".cache/iovm") }
        }
        if let xdg = environment["XDG_CACHE_HOME"] { return URL(fileURLWithPath: xdg).appending(path: "iovm") }
        if let home = environment["HOME"] { return URL(fileURLWithPath: home).appending(path: ".cache/iovm") }
        return nil
    }

    /// Root's home directory from the password database (`getpwuid_r` of UID 0: callers may run at once); nil when it
    /// has none.
    public static func rootHome() -> String? {
        var entry = passwd()
        var found: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        // The entry's strings live in `buffer`: read while it is lent.
        return buffer.withUnsafeMutableBufferPointer { bytes -> String? in
            guard let base = bytes.baseAddress, getpwuid_r(0, &entry, base, bytes.count, &found) == 0, found != nil, let directory = entry.pw_dir else {
                return nil
            }
            return String(cString: directory)
        }
    }

    /// Loads `path`: `.json` as a document, ``standardInput`` as the document on stdin, anything else as a Swift
    /// topology file.
    public func load(_ path: String) throws(TopologyError) -> TopologyDocument {
        if path == Self.standardInput { return try Self.decode(try Self.readStandardInput(), file: "<stdin>") }
        let url = URL(fileURLWithPath: path).standardizedFileURL
        guard FileManager.default.isReadableFile(atPath: url.path) else {
            throw .unreadableDocument(file: path, reason: "no such readable file")
        }
        if url.pathExtension == "json" { return try loadJSON(url) }
        return try loadSwift(url)
    }

    /// The path that names standard input: its document is JSON (a Swift file is compiled from a file).
    public static let standardInput = "-"

    /// The document on standard input, up to one byte past ``DocumentLimits/maximumBytes``. A terminal is refused
    /// rather than waited on, and a read that fails says why.
    static func readStandardInput() throws(TopologyError) -> Data {
        if isatty(STDIN_FILENO) == 1 {
            throw .unreadableDocument(file: "<stdin>", reason: "standard input is a terminal: pipe the document in (`iovm synth FILE | iovm plan -`)")
        }
        do { return try FileBytes.read(.standardInput, upTo: DocumentLimits.maximumBytes + 1) } catch {
            throw .unreadableDocument(file: "<stdin>", reason: "cannot read it: \(FileBytes.reason(error))")
        }
    }

    /// Decodes a JSON topology document, checking its schema version.
    public func loadJSON(_ url: URL) throws(TopologyError) -> TopologyDocument {
        // Pipes too (`--topology-json <(iovm synth …)`). One byte past the limit is enough to refuse it,
        // without reading a huge file whole.
        guard let data = FileBytes.read(url.path, upTo: DocumentLimits.maximumBytes + 1) else {
            throw .unreadableDocument(file: url.path, reason: "cannot open it for reading")
        }
        return try Self.decode(data, file: url.path)
    }

    /// Decodes a document, with readable errors for a wrong schema version or shape.
    ///
    /// `locate`: give the parts without a `source` the lines of `file` they start on (a JSON document written by hand;
    /// a Swift file's document carries its own lines).
    public static func decode(_ data: Data, file: String, locate: Bool = true) throws(TopologyError) -> TopologyDocument {
        let (text, probe) = try Self.probe(data, file: file)
        if probe.kind == ExperimentDocument.kindName {
            throw .unreadableDocument(file: file, reason: "it is an experiment document: `iovm experiment \(file)` reads it")
        }
        guard let version = probe.schemaVersion else { throw .unreadableDocument(file: file, reason: "no schemaVersion") }
        guard version == TopologyDocument.currentSchemaVersion else {
            throw .unreadableDocument(file: file, reason: "schema version \(version); this iovm reads version \(TopologyDocument.currentSchemaVersion)")
        }
        let (document, keys) = try decodeReadingEveryKey(TopologyDocument.self, data, text: text, file: file)
        guard let text, let keys else { return document }
        return locate ? locating(document, in: text, keys: keys, file: file) : document
    }

    /// Compiles and runs a Swift topology file (or takes its document from the cache).
    public func loadSwift(_ url: URL) throws(TopologyError) -> TopologyDocument {
        try evaluateSwift(url, asking: .topology) { data, file throws(TopologyError) in try Self.decode(data, file: file, locate: false) }
    }

    /// Which document a Swift file is run for: the file's `Topology`, or its `Experiment`.
    enum Declaration: String {
        case topology
        case experiment

        /// What the file is run with, after `-fileno 3` (the DSL writes the document asked for).
        var arguments: [String] { self == .topology ? [] : ["-experiment"] }
        /// The cache's subdirectory.
        var cacheDirectory: String { self == .topology ? "topologies" : "experiments" }
        /// What a file that wrote nothing should declare.
        var hint: String { self == .topology ? "`let topology = Topology(…) { … }`" : "`let experiment = Experiment(…) { … }`" }
    }

    /// Compiles and runs a Swift file for the document `declaration` names, and decodes it with `decode`
    /// (or takes it from the cache): what topology and experiment files share.
    func evaluateSwift<Document>(
        _ url: URL, asking declaration: Declaration, decode: (Data, String) throws(TopologyError) -> Document
    ) throws(TopologyError) -> Document {
        let dsl = self.dsl
        let swiftc = self.swiftc
        guard let dsl else {
            throw .evaluationFailed(
                file: url.path,
                reason:
                    "the IOVMDescription library was not found beside iovm; set IOVM_DSL_DIR to a directory holding Modules/IOVMDescription.swiftmodule and libIOVMDescription.a, or pass the topology as JSON (iovm synth elsewhere)"
            )
        }
        guard let swiftc else {
            throw .evaluationFailed(file: url.path, reason: "no swiftc on PATH (set SWIFTC); a host without a Swift toolchain takes the JSON from `iovm synth` instead")
        }
        let source: Data
        do { source = try Data(contentsOf: url) } catch {
            throw .unreadableDocument(file: url.path, reason: FileBytes.reason(error))
        }
        let compilerVersion = Self.compilerVersion(swiftc)
        var material = "iovm \(IOVMVersion.current)\ncompiler \(compilerVersion)\npath \(url.path)\ndsl \(Self.fingerprint(dsl.library.appending(path: "libIOVMDescription.a")))\n"
        if declaration != .topology { material += "declaration \(declaration.rawValue)\n" }
        material += String(decoding: source, as: UTF8.self)
        let entry = cacheDirectory?.appending(path: "\(declaration.cacheDirectory)/\(Self.fnv1a(material))")
        if let entry, let cached = try? String(contentsOf: entry.appending(path: "key"), encoding: .utf8), cached == material,
            let data = try? Data(contentsOf: entry.appending(path: "document.json")),
            let document = try? decode(data, url.path)
        {
            logger.debug("\(declaration.rawValue) cache hit", metadata: ["file": "\(url.path)", "entry": "\(entry.path)"])
            return document
        }

        let work = FileManager.default.temporaryDirectory.appending(path: "iovm-topology-\(getpid())-\(UUID().uuidString)")
        do { try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true) } catch {
            throw .evaluationFailed(file: url.path, reason: "cannot create \(work.path): \(error)")
        }
        defer { try? FileManager.default.removeItem(at: work) }
        chmod(work.path, 0o755)  // the unprivileged user runs the binary from here
        let binary = work.appending(path: "topology").path
        let environment = ["PATH": "/usr/bin:/bin", "HOME": work.path, "LANG": "C.UTF-8"]

        logger.debug("compiling \(declaration.rawValue) file", metadata: ["file": "\(url.path)", "swiftc": "\(swiftc)"])
        let compile: ProcessOutcome
        do {
            compile = try ProcessRunner.run(
                swiftc,
                [
                    "-swift-version", "6", "-Onone", "-module-name", "TopologyFile",
                    "-I", dsl.modules.path, "-L", dsl.library.path, "-lIOVMDescription",
                    url.path, "-o", binary,
                ], environment: ["PATH": URL(fileURLWithPath: swiftc).deletingLastPathComponent().path + ":/usr/bin:/bin", "HOME": work.path, "TMPDIR": work.path],
                timeout: compileTimeout)
        } catch {
            throw .evaluationFailed(file: url.path, reason: "\(error)")
        }
        guard compile.succeeded else {
            let output = compile.timedOut ? "swiftc ran past \(Int(compileTimeout)) s and was stopped" : compile.output
            throw .compilationFailed(file: url.path, output: output)
        }

        let documentPath = work.appending(path: "document.json").path
        let documentFD = open(documentPath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard documentFD >= 0 else { throw .evaluationFailed(file: url.path, reason: "cannot open \(documentPath): \(Errno(rawValue: errno).description)") }
        defer { close(documentFD) }
        let (executable, arguments) = Self.limited(Self.unprivileged(binary, ["-fileno", "3"] + declaration.arguments), limits)
        logger.debug("running \(declaration.rawValue) file", metadata: ["command": "\(([executable] + arguments).joined(separator: " "))"])
        let run: ProcessOutcome
        do {
            run = try ProcessRunner.run(
                executable, arguments, environment: environment,
                extraDescriptors: [3: documentFD], timeout: limits.wallSeconds)
        } catch {
            throw .evaluationFailed(file: url.path, reason: "\(error)")
        }
        guard run.succeeded else {
            let why =
                run.timedOut
                ? "it ran past \(Int(limits.wallSeconds)) s and was stopped"
                : limits.explain(status: run.status) ?? "it exited with status \(run.status)"
            throw .evaluationFailed(file: url.path, reason: "\(why)\n\(run.output.trimmingSuffixNewlines())")
        }
        if !run.output.isEmpty { logger.notice("\(declaration.rawValue) file printed: \(run.output.trimmingSuffixNewlines())") }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: documentPath)) } catch {
            throw .evaluationFailed(file: url.path, reason: "no document: \(error)")
        }
        // A write past RLIMIT_FSIZE is cut short at the limit; the writer may not notice.
        guard data.count < limits.fileBytes else {
            throw .evaluationFailed(file: url.path, reason: "it wrote more than \(limits.fileBytes >> 20) MiB of document and was stopped")
        }
        guard !data.isEmpty else {
            throw .evaluationFailed(file: url.path, reason: "it wrote no \(declaration.rawValue) document: does it declare \(declaration.hint)?")
        }
        let document = try decode(data, url.path)
        if let entry {
            try? FileManager.default.createDirectory(at: entry, withIntermediateDirectories: true)
            try? data.write(to: entry.appending(path: "document.json"), options: .atomic)
            try? Data(material.utf8).write(to: entry.appending(path: "key"), options: .atomic)
        }
        return document
    }

    /// The command that runs `binary` without privileges: as `nobody` with no_new_privs when root, else with no_new_privs.
    static func unprivileged(_ binary: String, _ arguments: [String]) -> (String, [String]) {
        guard let setpriv = ProcessRunner.which("setpriv", path: "/usr/bin:/bin:/usr/sbin:/sbin") else { return (binary, arguments) }
        if geteuid() == 0 {
            return (setpriv, ["--reuid=65534", "--regid=65534", "--clear-groups", "--no-new-privs", "--", binary] + arguments)
        }
        return (setpriv, ["--no-new-privs", "--", binary] + arguments)
    }

    /// `command` under `prlimit` with `limits` (as it is, where util-linux's prlimit is missing).
    static func limited(_ command: (String, [String]), _ limits: EvaluationLimits) -> (String, [String]) {
        guard let prlimit = ProcessRunner.which("prlimit", path: "/usr/bin:/bin:/usr/sbin:/sbin") else { return command }
        return (prlimit, limits.prlimitArguments() + ["--", command.0] + command.1)
    }

    /// First line of `swiftc --version`.
    static func compilerVersion(_ swiftc: String) -> String {
        let outcome = try? ProcessRunner.run(swiftc, ["--version"], environment: ["PATH": "/usr/bin:/bin"], timeout: 30)
        return outcome?.output.split(separator: "\n").first.map(String.init) ?? "unknown"
    }

    /// Size and modification time of a file, to notice a rebuilt DSL library.
    static func fingerprint(_ url: URL) -> String {
        var info = stat()
        guard stat(url.path, &info) == 0 else { return "missing" }
        return "\(info.st_size)-\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
    }

    /// FNV-1a, 64 bit, as hex: names cache entries (each entry keeps its full key and is compared on use).
    static func fnv1a(_ text: String) -> String {
        let hash = StableHash.fnv1a(text)
        return hex(Int(truncatingIfNeeded: hash >> 32), 8) + hex(Int(truncatingIfNeeded: hash & 0xffff_ffff), 8)
    }
}
