import FoundationEssentials

/// Whether the nominal CPU frequency can be trusted for turning CPU time into cycles.
///
/// Xen reports the nominal frequency; with frequency scaling the cores may run slower
/// (or faster, with turbo), and cycles = CPU time × nominal Hz is then wrong by that ratio. The
/// check looks for dom0's cpufreq governors; a governor other than `performance` earns a warning.
/// (When Xen itself manages frequency, dom0 has no cpufreq directory: check `xenpm get-cpufreq-para`.)
public struct FrequencyScalingCheck: Sendable {
    /// The sysfs CPU directory (injectable for tests).
    public var cpuRoot: String

    /// The note every report carries.
    public static let nominalNote = "cycles = CPU time × nominal Hz (xc_physinfo cpu_khz); with frequency scaling or turbo the true cycle count differs"

    /// Creates a check over `cpuRoot`.
    public init(cpuRoot: String = "/sys/devices/system/cpu") {
        self.cpuRoot = cpuRoot
    }

    /// A warning when some CPU has a cpufreq governor other than `performance`, else nil.
    public func warning() -> String? {
        let files = FileManager.default
        guard let entries = try? files.contentsOfDirectory(atPath: cpuRoot) else { return nil }
        var governors: [String: [String]] = [:]
        for cpu in entries.sorted() where cpu.hasPrefix("cpu") && cpu.dropFirst(3).allSatisfy(\.isNumber) && cpu.count > 3 {
            let path = "\(cpuRoot)/\(cpu)/cpufreq/scaling_governor"
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
            governors[text.trimmingWhitespace(), default: []].append(cpu)
        }
        let others = governors.filter { $0.key != "performance" }
        guard !others.isEmpty else { return nil }
        let list = others.keys.sorted().map { "\($0) on \(others[$0]!.count) CPU(s)" }.joined(separator: ", ")
        return
            "frequency scaling is active (cpufreq governor \(list)): cycles from the nominal Hz may overstate the real cycles; set the governor to performance (or xenpm set-scaling-governor performance) for the paper's figures"
    }
}
