/// iovm's scripts that run inside domains (`Agents/`), embedded in the binary so a dom0 without the
/// source tree can put them in an IOVM image.
public enum AgentFiles {
    /// The text of `Agents/<name>`, or nil when this build does not carry it.
    public static func text(_ name: String) -> String? {
        EmbeddedResources.files["Agents/" + name]
    }

    /// The names of every embedded agent file.
    public static var names: [String] {
        EmbeddedResources.files.keys.filter { $0.hasPrefix("Agents/") }.map { String($0.dropFirst("Agents/".count)) }.sorted()
    }
}
