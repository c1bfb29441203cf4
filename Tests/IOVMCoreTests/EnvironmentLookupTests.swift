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
        #expect(TopologyLoader.cacheDirectory(environment: EnvironmentLookup([:])) == nil)
    }
}
