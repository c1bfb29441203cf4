/// A live verb (`iovm pin`, `unpin`, `weight`) sent over `iovm watch`'s control socket: version 1 of the wire
/// format, one JSON document per connection.
///
/// `{"version":1,"verb":"pin","targets":[{"domain":"iovm0","cores":"2"}],"wait":0}`; a target without `cores`
/// is unpinned (every core). `weight` takes `weight` in each target and an optional `cap` for all.
public struct LiveVerbRequest: Codable, Sendable, Equatable {
    /// The version this iovm writes and reads.
    public static let currentVersion = 1

    /// What to change.
    public enum Verb: String, Codable, Sendable {
        /// Hard affinity of every vCPU (`pin`, and `unpin` with no cores).
        case pin
        /// Credit weight, and the cap when given.
        case weight
    }

    /// One domain and what it gets.
    public struct Target: Codable, Sendable, Equatable {
        /// Name or domain id.
        public var domain: String
        /// Cores, xl style (`2-3`); nil: every core.
        public var cores: String?
        /// Credit weight (`weight` only).
        public var weight: Int?

        /// Creates one.
        public init(domain: String, cores: String? = nil, weight: Int? = nil) {
            self.domain = domain
            self.cores = cores
            self.weight = weight
        }
    }

    /// Wire format version.
    public var version: Int
    /// The verb.
    public var verb: Verb
    /// The domains, in the order given.
    public var targets: [Target]
    /// Cap in percent of one pCPU for every target (`weight` only); nil keeps each one's.
    public var cap: Int?
    /// Seconds to wait for the host lock.
    public var wait: Double

    /// Creates a request of the current version.
    public init(verb: Verb, targets: [Target], cap: Int? = nil, wait: Double = 0) {
        self.version = Self.currentVersion
        self.verb = verb
        self.targets = targets
        self.cap = cap
        self.wait = wait
    }
}

/// The answer to a ``LiveVerbRequest``: what changed, or the error as the verb run in-process prints it.
public struct LiveVerbReply: Codable, Sendable, Equatable {
    /// One change made.
    public struct Change: Codable, Sendable, Equatable {
        /// The line `iovm pin` prints for it: `iovm0 (3): pinned to cores 2 in 4.1 ms`.
        public var line: String
        /// Domain id changed.
        public var domid: UInt32

        /// Creates one.
        public init(line: String, domid: UInt32) {
            self.line = line
            self.domid = domid
        }
    }

    /// Wire format version.
    public var version: Int
    /// What changed, in the request's order; empty on error.
    public var changes: [Change]
    /// The error's text (its lines as the command prints them); nil on success.
    public var error: String?
    /// The serving process's id.
    public var pid: Int32

    /// Creates a reply of the current version.
    public init(changes: [Change], error: String? = nil, pid: Int32) {
        self.version = LiveVerbRequest.currentVersion
        self.changes = changes
        self.error = error
        self.pid = pid
    }
    /// A request refused: no change, the error as the verb prints it (`iovm: error: TEXT`).
    public static func refused(_ text: String, pid: Int32) -> LiveVerbReply {
        LiveVerbReply(changes: [], error: "iovm: error: \(text)", pid: pid)
    }

    /// The reply as its one line of JSON, without the newline.
    public func document() -> [UInt8] {
        Array(JSONLineWriter.line(self).utf8)
    }
}

// The live verbs' messages are written by hand, as ``JSONText/line(_:)`` writes them byte for byte: a live verb's
// client writes one request per process, and the encoder's first use costs its start-up (issue 16).

extension LiveVerbRequest: JSONLineWritable {
    /// Writes the request, its keys sorted.
    public func write(to writer: inout JSONLineWriter) {
        writer.object { w in
            w.field("cap", cap)
            w.field("targets", targets)
            w.field("verb", verb.rawValue)
            w.field("version", version)
            w.field("wait", wait)
        }
    }
}

extension LiveVerbRequest.Target: JSONLineWritable {
    /// Writes the target, its keys sorted.
    public func write(to writer: inout JSONLineWriter) {
        writer.object { w in
            w.field("cores", cores)
            w.field("domain", domain)
            w.field("weight", weight)
        }
    }
}

extension LiveVerbReply: JSONLineWritable {
    /// Writes the reply, its keys sorted.
    public func write(to writer: inout JSONLineWriter) {
        writer.object { w in
            w.field("changes", changes)
            w.field("error", error)
            w.field("pid", Int(pid))
            w.field("version", version)
        }
    }
}

extension LiveVerbReply.Change: JSONLineWritable {
    /// Writes the change, its keys sorted.
    public func write(to writer: inout JSONLineWriter) {
        writer.object { w in
            w.field("domid", UInt64(domid))
            w.field("line", line)
        }
    }
}
