import Foundation
import IOVMCore
import Testing

/// Variables looked up one at a time, from the process or from a dictionary.
@Suite("Environment lookup")
struct EnvironmentLookupTests {
    @Test("the process's variables are what ProcessInfo lists; a dictionary's are its own")
    func lookups() {
        let listed = ProcessInfo.processInfo.environment
        for name in ["PATH", "HOME", "IOVM_NO_SUCH_VARIABLE_\(UUID().uuidString.prefix(8))"] {
            #expect(EnvironmentLookup.process[name] == listed[name], "\(name)")
        }
        let values = EnvironmentLookup(["IOVM_CACHE_DIR": "/c", "HOME": "/h"])
        #expect(values["IOVM_CACHE_DIR"] == "/c")
        #expect(values["PATH"] == nil)
        #expect(TopologyLoader.cacheDirectory(environment: values)?.path == "/c")
        #expect(TopologyLoader.cacheDirectory(environment: EnvironmentLookup(["XDG_CACHE_HOME": "/x", "HOME": "/h"]))?.path == "/x/iovm")
        #expect(TopologyLoader.cacheDirectory(environment: EnvironmentLookup(["HOME": "/h"]))?.path == "/h/.cache/iovm")
        #expect(TopologyLoader.cacheDirectory(environment: EnvironmentLookup([:]), effectiveUID: 1000) == nil)
    }

    @Test("under sudo the cache is root's own, whatever HOME and XDG_CACHE_HOME the caller kept (sudo -E)")
    func cacheUnderSudo() {
        let kept = EnvironmentLookup(["SUDO_UID": "1000", "HOME": "/home/op", "XDG_CACHE_HOME": "/home/op/.cache"])
        #expect(TopologyLoader.cacheDirectory(environment: kept, effectiveUID: 0, rootHome: { "/root" })?.path == "/root/.cache/iovm")
        // The caller's own runs, and root's without sudo, keep the usual places; IOVM_CACHE_DIR still wins.
        #expect(TopologyLoader.cacheDirectory(environment: kept, effectiveUID: 1000, rootHome: { "/root" })?.path == "/home/op/.cache/iovm")
        #expect(TopologyLoader.cacheDirectory(environment: EnvironmentLookup(["HOME": "/root"]), effectiveUID: 0, rootHome: { nil })?.path == "/root/.cache/iovm")
        let explicit = EnvironmentLookup(["SUDO_UID": "1000", "IOVM_CACHE_DIR": "/c"])
        #expect(TopologyLoader.cacheDirectory(environment: explicit, effectiveUID: 0, rootHome: { "/root" })?.path == "/c")
        #expect(TopologyLoader.cacheDirectory(environment: EnvironmentLookup(["SUDO_UID": "1000"]), effectiveUID: 0, rootHome: { nil }) == nil)
        #expect(TopologyLoader.rootHome() != nil)
    }
}
