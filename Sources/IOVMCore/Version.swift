/// The iovm release, written into rendered files and the topology cache key.
public enum IOVMVersion {
    /// Semantic version of this build.
    public static let current = "0.1.0"
}
