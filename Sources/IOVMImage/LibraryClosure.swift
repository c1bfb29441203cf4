/// The exact shared-library closure of a set of programs: every library the dynamic loader maps to start
/// them, found as the loader would (RUNPATH, then the multiarch directories) inside a sysroot.
public struct LibraryClosure: Sendable, Equatable {
    /// One file of the closure.
    public struct Library: Sendable, Equatable {
        /// The name programs ask for (`libc.so.6`), or the loader's path for the interpreter.
        public var name: String
        /// The real file inside the sysroot, links followed.
        public var source: String
        /// Where it goes in the image.
        public var destination: String
    }

    /// The libraries and the loader, sorted by destination.
    public var libraries: [Library]

    /// Directories the loader searches after RUNPATH (Debian's multiarch layout).
    public static let searchPath = ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"]
    /// Where libraries go in the image: the loader's first default directory.
    public static let libraryDirectory = "/lib/x86_64-linux-gnu"

    /// Follows `DT_NEEDED` from `programs` (paths inside `sysroot`) until nothing new turns up.
    public init(programs: [String], sysroot: Sysroot) throws(ImageError) {
        var byDestination: [String: Library] = [:]
        var queue: [(path: String, elf: ELFFile)] = []
        for program in programs {
            guard let real = sysroot.resolve(program) else { throw .missingInSysroot(program, sysroot: sysroot.root) }
            queue.append((program, try ELFFile(contentsOf: sysroot.hostPath(real))))
        }
        var seen: Set<String> = []
        while !queue.isEmpty {
            let (path, elf) = queue.removeFirst()
            if let interpreter = elf.interpreter, byDestination[interpreter] == nil {
                guard let real = sysroot.resolve(interpreter) else { throw .missingInSysroot(interpreter, sysroot: sysroot.root) }
                byDestination[interpreter] = Library(name: interpreter, source: real, destination: interpreter)
            }
            for name in elf.needed where !seen.contains(name) {
                seen.insert(name)
                let origin = path.split(separator: "/").dropLast().joined(separator: "/")
                let directories = elf.runpath.map { $0.replacing("$ORIGIN", with: "/" + origin) } + Self.searchPath
                guard let real = directories.lazy.compactMap({ sysroot.resolve($0 + "/" + name) }).first else {
                    throw .libraryNotFound(name, neededBy: path, searched: directories)
                }
                byDestination[Self.libraryDirectory + "/" + name] = Library(name: name, source: real, destination: Self.libraryDirectory + "/" + name)
                queue.append((real, try ELFFile(contentsOf: sysroot.hostPath(real))))
            }
        }
        libraries = byDestination.values.sorted { $0.destination < $1.destination }
    }
}
