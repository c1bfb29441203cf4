import Synchronization

/// A trace of the libxl calls XenKit makes, and results forced into them, for tests only.
///
/// Installed per task, so tests that run in parallel do not see each other's calls:
///
/// ```swift
/// let mocking = LibXLMocking()
/// mocking.force("libxl_cpupool_cpuremove", code: -3, occurrence: 2)
/// try LibXLMocking.$current.withValue(mocking) { … }
/// #expect(mocking.trace == ["libxl_cpupool_cpuremove", "libxl_cpupool_cpuremove"])
/// ```
///
/// A forced call never reaches libxl: the funnel (``LibXLCalls``) returns the forced code instead
/// (or `NULL` for a call that returns a pointer).
final class LibXLMocking: Sendable {
    /// The trace of the current task; nil (the default) outside tests.
    @TaskLocal static var current: LibXLMocking?

    /// One result to force: `code` for the `occurrence`th call of `function` (1-based), or for
    /// every call of it when `occurrence` is nil.
    struct Forced: Sendable, Hashable {
        /// The C function's name, as the trace records it.
        var function: String
        /// Which call to force (1 is the first); nil forces every call.
        var occurrence: Int?
        /// The code to return instead of calling libxl.
        var code: Int32
    }

    private struct State {
        var trace: [String] = []
        var forced: [Forced] = []
    }

    private let state = Mutex(State())

    /// Creates an empty trace that forces nothing.
    init() {}

    /// The names of the libxl functions called so far, in order (forced ones included).
    var trace: [String] { state.withLock { $0.trace } }

    /// Makes the `occurrence`th call of `function` (every call when nil) return `code` without
    /// reaching libxl.
    func force(_ function: String, code: Int32, occurrence: Int? = nil) {
        state.withLock { $0.forced.append(Forced(function: function, occurrence: occurrence, code: code)) }
    }

    /// Records a call to `function`; returns the code forced for it, or nil to make the real call.
    func record(_ function: String) -> Int32? {
        state.withLock { state in
            state.trace.append(function)
            let occurrence = state.trace.lazy.filter { $0 == function }.count
            return state.forced.first { $0.function == function && ($0.occurrence == nil || $0.occurrence == occurrence) }?.code
        }
    }
}
