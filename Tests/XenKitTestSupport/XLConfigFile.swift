import CLibXen
import Synchronization
import SystemPackage
public import XenKit

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// An xl.cfg text parsed by libxlutil, the parser `xl create` itself uses.
///
/// Test support: iovm itself never reads xl.cfg text back, so this lives with the tests, not in
/// XenKit. Parsing needs no hypervisor and no libxl context, so it works on any machine with
/// libxlutil: renderer tests check every xl.cfg iovm produces. Parse errors come back in the thrown
/// ``XenError/configParse(name:message:)`` with libxlutil's own text, e.g.
/// `"iovm0.cfg:3: config parsing error near `=': syntax error"`, instead of going to stderr.
///
/// ```swift
/// let cfg = try XLConfigFile.parse(text, name: "iovm0.cfg")
/// cfg.string("type")   // "pv"
/// cfg.int("vcpus")     // 1
/// cfg.list("pci")      // ["0000:00:04.0"]
/// ```
///
/// A value is immutable after parsing; copies share one `XLU_Config`, and the getters take a lock,
/// so it is `Sendable`.
public struct XLConfigFile: Sendable {
    private let storage: Storage

    /// Parses xl.cfg text with `xlu_cfg_readdata`; `name` labels it in error messages.
    ///
    /// - Throws: ``XenError/configParse(name:message:)`` carrying libxlutil's report (with line
    ///   numbers) when the text does not parse; ``XenError/errno(_:operation:)`` if the report
    ///   stream or the parser cannot be created.
    public static func parse(_ text: String, name: String) throws(XenError) -> XLConfigFile {
        let report = try ReportStream()
        guard let cfg = xlu_cfg_init(report.file, name) else {
            throw XenError.currentErrno(operation: "xlu_cfg_init")
        }
        var bytes = Array(text.utf8)
        guard bytes.count <= Int(Int32.max) else {
            xlu_cfg_destroy(cfg)
            throw XenError.configParse(name: name, message: "config text is larger than 2 GiB")
        }
        let length = Int32(bytes.count)
        if bytes.isEmpty { bytes.append(0) }  // a valid pointer even for an empty config
        let rc = bytes.withUnsafeBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
                xlu_cfg_readdata(cfg, $0, length)
            }
        }
        if rc != 0 {
            xlu_cfg_destroy(cfg)
            var message = report.contents().trimmingTrailingNewlines()
            if message.isEmpty {
                message = "xlu_cfg_readdata: \(Errno(rawValue: rc))"
            }
            throw XenError.configParse(name: name, message: message)
        }
        return XLConfigFile(storage: Storage(cfg: cfg, report: report))
    }

    /// The value of `key` if it is a single value (`key = "text"` or `key = 3`), else `nil`.
    ///
    /// Numbers are returned as written (`vcpus = 2` → `"2"`). `nil` when the key is absent or is
    /// a list.
    public func string(_ key: String) -> String? {
        guard key.isCKey else { return nil }
        return storage.withConfig { cfg in
            var value: UnsafePointer<CChar>? = nil
            guard xlu_cfg_get_string(cfg, key, &value, 1) == 0, let value else { return nil }
            return String(cString: value)
        }
    }

    /// The value of `key` as an integer (`strtol` base 0, so `0x10` works), else `nil`.
    ///
    /// `nil` when the key is absent, is a list, or is not entirely a number.
    public func int(_ key: String) -> Int? {
        guard key.isCKey else { return nil }
        return storage.withConfig { cfg in
            var value: CLong = 0
            guard xlu_cfg_get_long(cfg, key, &value, 1) == 0 else { return nil }
            return Int(value)
        }
    }

    /// The string items of `key` if it is a list (`pci = ['0000:00:04.0']`), else `nil`.
    ///
    /// An empty list gives `[]`. Nested lists, which xl.cfg allows only in a few keys such as
    /// `vnuma`, have no string form here and are left out.
    public func list(_ key: String) -> [String]? {
        guard key.isCKey else { return nil }
        return storage.withConfig { cfg in
            var list: OpaquePointer? = nil
            var count: Int32 = 0
            guard xlu_cfg_get_list(cfg, key, &list, &count, 1) == 0, let list else { return nil }
            var items: [String] = []
            items.reserveCapacity(Int(count))
            for index in 0..<count {
                if let item = xlu_cfg_get_listitem(list, index) {
                    items.append(String(cString: item))
                }
            }
            return items
        }
    }

    /// Whether `key` is set at all, to a single value or a list.
    public func contains(_ key: String) -> Bool {
        string(key) != nil || list(key) != nil
    }

    /// Owns the `XLU_Config` and its report stream; one lock serialises every libxlutil call.
    private final class Storage: @unchecked Sendable {
        // `cfg` is only touched inside `lock`; `report` only in deinit.
        private let lock = Mutex(())
        private let cfg: OpaquePointer
        private let report: ReportStream

        init(cfg: OpaquePointer, report: ReportStream) {
            self.cfg = cfg
            self.report = report
        }

        func withConfig<R: Sendable>(_ body: (OpaquePointer) -> R) -> R {
            lock.withLock { _ in body(cfg) }
        }

        deinit {
            // libxlutil requires the report FILE to stay open until the config is destroyed.
            xlu_cfg_destroy(cfg)
            _ = report
        }
    }
}

/// An in-memory `FILE*` (`open_memstream`) that collects libxlutil's report text.
final class ReportStream {
    let file: UnsafeMutablePointer<FILE>
    private let buffer: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
    private let size: UnsafeMutablePointer<Int>

    init() throws(XenError) {
        buffer = .allocate(capacity: 1)
        buffer.initialize(to: nil)
        size = .allocate(capacity: 1)
        size.initialize(to: 0)
        guard let file = open_memstream(buffer, size) else {
            let error = XenError.currentErrno(operation: "open_memstream")
            buffer.deallocate()
            size.deallocate()
            throw error
        }
        self.file = file
    }

    /// Everything written so far.
    func contents() -> String {
        fflush(file)
        guard let base = buffer.pointee, size.pointee > 0 else { return "" }
        let bytes = UnsafeRawBufferPointer(start: base, count: size.pointee)
        return String(decoding: bytes, as: UTF8.self)
    }

    deinit {
        fclose(file)
        free(buffer.pointee)
        buffer.deallocate()
        size.deallocate()
    }
}

extension String {
    /// Whether the string survives conversion to a C string intact (no embedded NUL).
    var isCKey: Bool { !utf8.contains(0) }

    func trimmingTrailingNewlines() -> String {
        var result = Substring(self)
        while let last = result.last, last == "\n" || last == "\r" { result = result.dropLast() }
        return String(result)
    }
}
