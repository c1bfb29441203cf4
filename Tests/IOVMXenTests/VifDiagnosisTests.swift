import Foundation
import IOVMXen
import Testing

/// The message dom0 gives for a vif that did not connect, from a fake xenstore and console.
@Suite("Vif diagnosis")
struct VifDiagnosisTests {
    let backend = "/local/domain/2/backend/vif/3/0"

    @Test("a killed hotplug script: state 2, no hotplug-status, libxl's error from the IOVM, the console's last lines")
    func killedScript() {
        let store = [
            "\(backend)/state": "2", "\(backend)/script": "/etc/xen/scripts/vif-bridge", "/local/domain/2/name": "iovm0",
            "/local/domain/2/data/iovm/devd-error":
                "libxl: error: libxl_aoutils.c:646:async_exec_timeout: killing execution of /etc/xen/scripts/vif-bridge online because of timeout",
        ]
        var asked: [String] = []
        let diagnosis = VifDiagnosis.gather(
            backend: backend, read: { store[$0] },
            console: { path in
                asked.append(path)
                return ["[  31.2] xen_netback: vif3.0 waiting", "iovm-devd: xl devd serves (pid 212)"]
            })
        #expect(asked == ["/var/log/xen/console/guest-iovm0.log"])
        #expect(
            diagnosis.summary
                == "/local/domain/2/backend/vif/3/0 state 2, no hotplug-status (the script did not finish), script /etc/xen/scripts/vif-bridge; iovm0's xl devd: libxl: error: libxl_aoutils.c:646:async_exec_timeout: killing execution of /etc/xen/scripts/vif-bridge online because of timeout"
        )
        #expect(
            diagnosis.report.hasSuffix("last lines of /var/log/xen/console/guest-iovm0.log:\n    [  31.2] xen_netback: vif3.0 waiting\n    iovm-devd: xl devd serves (pid 212)"))
    }

    @Test("a failed script names its reason")
    func failedScript() {
        let store = [
            "\(backend)/state": "2", "\(backend)/hotplug-status": "error",
            "\(backend)/hotplug-error": "no bridge in backend/vif/3/0/bridge",
        ]
        let diagnosis = VifDiagnosis.gather(backend: backend, read: { store[$0] }, console: { _ in ["never asked"] })
        #expect(diagnosis.summary == "/local/domain/2/backend/vif/3/0 state 2, hotplug-status error, hotplug-error \"no bridge in backend/vif/3/0/bridge\"")
        #expect(diagnosis.consoleTail.isEmpty)  // no name, no console to look for
        #expect(diagnosis.report == diagnosis.summary)
    }

    @Test("tail reads the last non-empty lines of a file without carriage returns, and nothing of a missing file")
    func tail() throws {
        let path = FileManager.default.temporaryDirectory.appending(path: "iovm-console-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let lines = (1...40).map { "line \($0)\r" }.joined(separator: "\n") + "\n\n"
        try lines.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(VifDiagnosis.tail(of: path, lines: 3) == ["line 38", "line 39", "line 40"])
        #expect(VifDiagnosis.tail(of: path + ".missing").isEmpty)
    }
}
