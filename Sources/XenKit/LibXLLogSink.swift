import CLibXen
import CXenShim

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// One message libxl (or libxc, libxenstore, which log through it) logged, whole.
public struct LibXLLogMessage: Sendable, Hashable {
    /// How severe libxl says it is.
    public var level: LibXLContext.LogLevel
    /// The errno it names; nil for none.
    public var errno: Int32?
    /// The part that logged it (`libxl`, `xc`, `xenstore`, …); nil when libxl gave none.
    public var source: String?
    /// The message, formatted, without level, source or newline.
    public var text: String

    /// Creates a message.
    public init(level: LibXLContext.LogLevel, errno: Int32? = nil, source: String? = nil, text: String) {
        self.level = level
        self.errno = errno
        self.source = source
        self.text = text
    }

    /// The message as xentoollog's own stdio logger words it, without its level: `libxl: text: strerror`.
    public var line: String {
        var line = source.map { "\($0): " } ?? ""
        line += text
        if let errno { line += ": " + String(cString: strerror(errno)) }
        return line
    }
}

/// Where a ``LibXLContext`` hands each message libxl logs, rather than write it to standard error itself: one call per
/// message, from whichever thread libxl logged it on.
public typealias LibXLLogSink = @Sendable (LibXLLogMessage) -> Void

extension LibXLContext.LogLevel {
    /// The level of a message xentoollog logged at `level`.
    init(xtl level: xentoollog_level) {
        switch level {
        case XTL_DEBUG: self = .debug
        case XTL_VERBOSE, XTL_DETAIL: self = .verbose
        case XTL_PROGRESS, XTL_INFO, XTL_NOTICE: self = .progress
        case XTL_WARN: self = .warning
        default: self = .error
        }
    }
}

/// A xentoollog logger a ``LibXLContext`` gives libxl, destroyed with it: xentoollog's stdio logger, or one that hands each
/// message to a ``LibXLLogSink`` (the shim formats it, `cxenshim_logger_create_sink`).
final class XenToolLogger: @unchecked Sendable {
    /// What the shim keeps as the sink's context: retained while the logger lives.
    final class Box: Sendable {
        let sink: LibXLLogSink
        init(_ sink: @escaping LibXLLogSink) { self.sink = sink }
    }

    /// The logger libxl is given.
    let pointer: UnsafeMutablePointer<xentoollog_logger>
    /// The sink's, for a sink logger.
    private let box: Unmanaged<Box>?

    /// xentoollog's logger writing messages at `minimum` and above to `stream`; nil when it cannot allocate one.
    init?(stdio stream: UnsafeMutablePointer<FILE>, minimum: LibXLContext.LogLevel) {
        guard let created = cxenshim_logger_create_stdio(stream, minimum.xtl, 0) else { return nil }
        self.pointer = created
        self.box = nil
    }

    /// A logger passing messages at `minimum` and above to `sink`; nil when the shim cannot allocate one.
    init?(sink: @escaping LibXLLogSink, minimum: LibXLContext.LogLevel) {
        let box = Unmanaged.passRetained(Box(sink))
        let created = cxenshim_logger_create_sink(
            { context, level, errnoval, source, message in
                guard let context, let message else { return }
                let box = Unmanaged<XenToolLogger.Box>.fromOpaque(context).takeUnretainedValue()
                box.sink(
                    LibXLLogMessage(
                        level: LibXLContext.LogLevel(xtl: level), errno: errnoval >= 0 ? errnoval : nil, source: source.map { String(cString: $0) },
                        text: String(cString: message)))
            }, box.toOpaque(), minimum.xtl)
        guard let created else {
            box.release()
            return nil
        }
        self.pointer = created
        self.box = box
    }

    deinit {
        cxenshim_logger_destroy(pointer)
        box?.release()
    }
}
