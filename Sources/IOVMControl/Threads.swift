import Dispatch
import FoundationEssentials
import IOVMCore

/// Runs `body` for every element at once, one thread each, and returns the results in the elements' order.
///
/// For blocking work (libxl calls, waits of seconds to minutes): `DispatchQueue.concurrentPerform` would run only as
/// many at a time as dom0 has CPUs, and the cooperative pool must not block. The threads are named `<name>-<index>`.
func onThreads<Element: Sendable, T: Sendable>(
    _ elements: [Element], name: String, _ body: @escaping @Sendable (Element) throws -> T
) -> [Result<T, any Error>] {
    let done = PThreadCondition()
    nonisolated(unsafe) var results: [Int: Result<T, any Error>] = [:]
    for (index, element) in elements.enumerated() {
        let thread = PThread {
            let result = Result { try body(element) }
            done.lock()
            results[index] = result
            done.broadcast()
            done.unlock()
        }
        thread.name = "\(name)-\(index)"
        thread.start()
    }
    done.lock()
    while results.count < elements.count { done.wait() }
    let collected = results
    done.unlock()
    return elements.indices.map { collected[$0]! }
}
