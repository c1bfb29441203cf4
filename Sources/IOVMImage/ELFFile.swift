import FoundationEssentials

/// What the dynamic loader needs to start an ELF64 program or library: its interpreter, the
/// libraries it names (`DT_NEEDED`) and where it asks to find them (`DT_RUNPATH`/`DT_RPATH`).
public struct ELFFile: Sendable, Equatable {
    /// `PT_INTERP`: the dynamic loader's path, for programs.
    public var interpreter: String?
    /// `DT_NEEDED` entries, in file order.
    public var needed: [String]
    /// `DT_RUNPATH` (or `DT_RPATH`) directories, unexpanded.
    public var runpath: [String]

    /// Parses `bytes`, the contents of the file at `path` (named in errors).
    public init(bytes: [UInt8], path: String) throws(ImageError) {
        guard bytes.count >= 64, bytes[0] == 0x7f, bytes[1] == 0x45, bytes[2] == 0x4c, bytes[3] == 0x46 else {
            throw .notELF(path, why: "no ELF magic")
        }
        guard bytes[4] == 2, bytes[5] == 1 else { throw .notELF(path, why: "not 64-bit little-endian ELF") }
        func u16(_ at: Int) throws(ImageError) -> Int {
            guard at >= 0, at <= bytes.count - 2 else { throw .notELF(path, why: "truncated at \(at)") }
            return Int(bytes[at]) | Int(bytes[at + 1]) << 8
        }
        func u64(_ at: Int) throws(ImageError) -> UInt64 {
            guard at >= 0, at <= bytes.count - 8 else { throw .notELF(path, why: "truncated at \(at)") }
            var value: UInt64 = 0
            for index in (0..<8).reversed() { value = value << 8 | UInt64(bytes[at + index]) }
            return value
        }
        func u32(_ at: Int) throws(ImageError) -> UInt32 {
            guard at >= 0, at <= bytes.count - 4 else { throw .notELF(path, why: "truncated at \(at)") }
            return UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
        }
        func string(_ at: Int) throws(ImageError) -> String {
            guard at >= 0, at < bytes.count else { throw .notELF(path, why: "string offset \(at) out of range") }
            guard let end = bytes[at...].firstIndex(of: 0) else { throw .notELF(path, why: "unterminated string at \(at)") }
            return String(decoding: bytes[at..<end], as: UTF8.self)
        }

        let phoff = Int(clamping: try u64(0x20))
        let phentsize = try u16(0x36)
        let phnum = try u16(0x38)
        guard phentsize >= 56 else { throw .notELF(path, why: "program header size \(phentsize)") }
        struct Segment {
            var type: UInt32, offset: UInt64, vaddr: UInt64, filesz: UInt64
        }
        var segments: [Segment] = []
        for index in 0..<phnum {
            let (at, overflow) = phoff.addingReportingOverflow(index * phentsize)
            guard !overflow else { throw .notELF(path, why: "program header table out of range") }
            segments.append(Segment(type: try u32(at), offset: try u64(at + 8), vaddr: try u64(at + 16), filesz: try u64(at + 32)))
        }
        func fileOffset(_ vaddr: UInt64) -> Int? {
            for segment in segments where segment.type == 1 && vaddr >= segment.vaddr && vaddr - segment.vaddr < segment.filesz {
                let (offset, overflow) = segment.offset.addingReportingOverflow(vaddr - segment.vaddr)
                return overflow ? nil : Int(clamping: offset)
            }
            return nil
        }

        interpreter = nil
        needed = []
        runpath = []
        if let interp = segments.first(where: { $0.type == 3 }) {
            interpreter = try string(Int(clamping: interp.offset))
        }
        guard let dynamic = segments.first(where: { $0.type == 2 }) else { return }  // static
        var neededOffsets: [UInt64] = []
        var runpathOffset: UInt64?
        var rpathOffset: UInt64?
        var strtab: UInt64?
        var at = Int(clamping: dynamic.offset)
        let end = min(bytes.count, at.addingReportingOverflow(Int(clamping: dynamic.filesz)).overflow ? bytes.count : at + Int(clamping: dynamic.filesz))
        while at <= end - 16 {
            let tag = try u64(at)
            let value = try u64(at + 8)
            switch tag {
            case 0: at = end
            case 1: neededOffsets.append(value)
            case 5: strtab = value
            case 15: rpathOffset = value
            case 29: runpathOffset = value
            default: break
            }
            at += 16
        }
        guard let strtab else {
            if neededOffsets.isEmpty { return }
            throw .notELF(path, why: "DT_NEEDED without DT_STRTAB")
        }
        guard let base = fileOffset(strtab) else { throw .notELF(path, why: "DT_STRTAB outside every PT_LOAD") }
        func position(_ offset: UInt64) throws(ImageError) -> Int {
            let (position, overflow) = base.addingReportingOverflow(Int(clamping: offset))
            guard !overflow else { throw .notELF(path, why: "string offset \(offset) out of range") }
            return position
        }
        needed = try neededOffsets.map { offset throws(ImageError) in try string(try position(offset)) }
        if let offset = runpathOffset ?? rpathOffset {
            runpath = try string(try position(offset)).split(separator: ":").map(String.init)
        }
    }

    /// Reads and parses the file at `path`.
    public init(contentsOf path: String) throws(ImageError) {
        guard let data = FileManager.default.contents(atPath: path) else { throw .unreadable(path) }
        try self.init(bytes: [UInt8](data), path: path)
    }
}
