import FoundationEssentials
public import IOVMControl
import IOVMCore
import Synchronization
import XenKit

/// The real ``DomainEvents`` of `iovm watch`: xenstore watches on `@releaseDomain` (a domain shut
/// down, crashed or was destroyed) and on iovm's tags (`/local/domain/0/iovm/managed`), and a
/// re-check every `recheck` seconds without an event, as a safety net.
///
/// A thread of its own waits on the watches (poll(2) on libxenstore's descriptor, half a second at a
/// time, so it stops soon after the source is dropped) and hands events over through a stream that
/// keeps only the newest one: a burst of events (a recovery rewriting the tags) is read as one.
public final class XenStoreDomainEvents: DomainEvents, @unchecked Sendable {
    /// The watched paths.
    public static let paths = ["@releaseDomain", "/local/domain/0/iovm/managed", "/local/domain/0/iovm/applied"]
    static let token = "iovm-watch"

    /// Read only by `next()`, which the supervisor awaits one call at a time.
    private var iterator: AsyncThrowingStream<DomainEvent, any Error>.Iterator
    private let stop: StopFlag

    final class StopFlag: Sendable {
        let value = Atomic<Bool>(false)
    }

    /// Connects to xenstored and sets the watches.
    ///
    /// - Throws: ``XenError`` when xenstore cannot be opened or a watch cannot be set.
    public init(recheck: Double = 5) throws {
        let client = try XenStoreClient()
        for path in Self.paths { try client.watch(path, token: Self.token) }
        let stop = StopFlag()
        self.stop = stop
        let (stream, continuation) = AsyncThrowingStream<DomainEvent, any Error>.makeStream(bufferingPolicy: .bufferingNewest(1))
        continuation.onTermination = { _ in stop.value.store(true, ordering: .relaxed) }
        nonisolated(unsafe) let owned = client  // from here on, only the reader thread uses it
        let thread = PThread {
            var quietSince = Date()
            while !stop.value.load(ordering: .relaxed) {
                do {
                    if let event = try owned.nextWatchEvent(timeout: 0.5) {
                        quietSince = Date()
                        continuation.yield(.fired(path: event.path))
                    } else if Date().timeIntervalSince(quietSince) >= recheck {
                        quietSince = Date()
                        continuation.yield(.recheck)
                    }
                } catch {
                    continuation.finish(throwing: error)
                    return
                }
            }
            continuation.finish()
        }
        thread.name = "iovm-watch-xenstore"
        thread.start()
        iterator = stream.makeAsyncIterator()
    }

    deinit {
        stop.value.store(true, ordering: .relaxed)
    }

    /// The next event; nil when the source stopped; throws the xenstore error that stopped it.
    public func next() async throws -> DomainEvent? {
        let event = try await iterator.next()
        try Task.checkCancellation()
        return event
    }
}
