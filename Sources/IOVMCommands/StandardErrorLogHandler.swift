import IOVMCore
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// swift-log's `StreamLogHandler` line on standard error, with the time to the millisecond.
///
/// `2026-12-04T15:29:09.123+0000 notice iovm.watch: [IOVMControl] iovm watch: recovered iovm0 …`: the stream handler's
/// whole seconds blurred every duration read from the log, such as an IOVM's boot within a recovery (issue 13). One
/// `write(2)` per line, so lines of concurrent threads do not interleave.
struct StandardErrorLogHandler: LogHandler {
    /// The logger's label, printed after the level.
    let label: String
    /// The least severe level printed.
    var logLevel: Logger.Level = .info
    /// Metadata printed with every line, as `key=value` pairs sorted by key.
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let explicit = event.metadata { merged.merge(explicit) { _, explicit in explicit } }
        if let error = event.error {
            merged["error.message"] = "\(error)"
            merged["error.type"] = "\(String(reflecting: type(of: error)))"
        }
        var now = timeval()
        gettimeofday(&now, nil)
        FileBytes.writeStandardError(
            Self.line(time: now, level: event.level, label: label, metadata: merged, source: event.source, message: "\(event.message)"))
    }

    /// One line as `StreamLogHandler` words it, but for the time: `TIME LEVEL LABEL: [KEY=VALUE …] [SOURCE] MESSAGE`.
    ///
    /// A message or value of several lines (an error's report, what a topology file printed) goes on in lines indented
    /// by ``continuation``: no line of it can pass for an entry of its own.
    static func line(time: timeval, level: Logger.Level, label: String, metadata: Logger.Metadata, source: String, message: String) -> String {
        let pairs = metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let text = "\(label.isEmpty ? "" : " ")\(label):\(pairs.isEmpty ? "" : " " + pairs) [\(source)] \(message)"
        return "\(timestamp(time)) \(level)\(text.replacing("\n", with: "\n" + continuation))\n"
    }

    /// What the lines after the first of one entry begin with.
    static let continuation = "    | "

    /// Local time as `YYYY-MM-DDTHH:MM:SS.mmm±hhmm`.
    static func timestamp(_ time: timeval) -> String {
        var seconds = time.tv_sec
        var local = tm()
        guard localtime_r(&seconds, &local) != nil else { return "<unknown>" }
        func format(_ pattern: String) -> String {
            withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { buffer in
                let count = strftime(buffer.baseAddress!, buffer.count, pattern, &local)
                return String(decoding: UnsafeRawBufferPointer(start: buffer.baseAddress, count: count), as: UTF8.self)
            }
        }
        return format("%Y-%m-%dT%H:%M:%S") + String(cFormat: ".%03d", Int32(time.tv_usec / 1000)) + format("%z")
    }
}
