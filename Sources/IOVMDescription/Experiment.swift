public import IOVMWireFormat

/// A declared experiment: a base topology, the factors to vary, the directions, the workload and the
/// timing. The one value an experiment file creates; `iovm experiment FILE` reads it.
///
/// ```swift
/// import IOVMDescription
///
/// let nics = ["0000:00:10.0", "0000:00:11.0", "0000:00:12.0"]
///
/// let base = Topology("paper-multiple-small") {
///     Host(cores: 4, memory: .gib(4), scheduler: "credit")
///     Defaults(kernel: "/var/lib/xen/guest/vmlinux", ramdisk: "/var/lib/xen/guest/initrd.img", iovmImage: .minimal)
///     Configuration.multipleSmall()
///     for pci in nics { NIC(pci) }
///     for (index, pci) in nics.enumerated() { Guest("guest\(index + 1)", nic: pci) }
///     Placement.iovmAffinity()
/// }
///
/// let experiment = Experiment("paper-figures8and9") {
///     Base(base)
///     Vary(.placement([.coLocate(), .separate(), .iovmAffinity()]))
///     Vary(.nicCount(1...3))
///     Directions(.rx, .tx)
///     Workload.iperf3(parallel: 4, length: 1024)
///     Timing(duration: .seconds(60), warmUp: .seconds(10), repetitions: 3)
/// }
/// ```
///
/// Like a topology file, the file is compiled and run by the tool, unprivileged; the experiment writes
/// itself as a versioned JSON ``ExperimentDocument`` to the descriptor the tool names.
public struct Experiment: Sendable {
    /// The wire document this experiment serializes to.
    public private(set) var document: ExperimentDocument

    /// Declares an experiment.
    /// - Parameters:
    ///   - name: Name of the experiment: it seeds the order of the cells and names the results.
    ///   - content: `Base`, `Vary`s, `Directions`, a `Workload` and `Timing`.
    public init(
        _ name: String, file: String = #filePath, line: Int = #line,
        @ExperimentBuilder _ content: () -> [ExperimentElement]
    ) {
        var document = ExperimentDocument(name: name, source: SourceLocation(file: file, line: line))
        for element in content() {
            switch element.storage {
            case .base(let base):
                if document.base != nil { Experiment.note(duplicate: "Base", at: base.source) }
                document.base = base
            case .factor(let factor): document.factors.append(factor)
            case .directions(let directions):
                if document.directions != nil { Experiment.note(duplicate: "Directions", at: directions.source) }
                document.directions = directions
            case .workload(let workload):
                if document.workload != nil { Experiment.note(duplicate: "Workload", at: workload.source) }
                document.workload = workload
            case .timing(let timing):
                if document.timing != nil { Experiment.note(duplicate: "Timing", at: timing.source) }
                document.timing = timing
            }
        }
        self.document = document
        TopologyRegistry.register(document)
    }

    private static func note(duplicate what: String, at source: SourceLocation?) {
        let place = source.map { "\($0): " } ?? ""
        TopologyRegistry.warn("\(place)warning: a second \(what) replaces the first one")
    }
}

/// One entry of an experiment: anything an ``ExperimentBuilder`` block may list.
public struct ExperimentElement: Sendable {
    enum Storage: Sendable {
        case base(BaseDocument)
        case factor(FactorDocument)
        case directions(DirectionsDocument)
        case workload(WorkloadDocument)
        case timing(TimingDocument)
    }
    let storage: Storage
}

/// A declaration that can appear in an experiment block.
public protocol ExperimentComponent: Sendable {
    /// The element this declaration contributes.
    var experimentElement: ExperimentElement { get }
}

/// Result builder for the body of ``Experiment``: lists, `if`, `for` and `switch` work as in a topology.
@resultBuilder
public enum ExperimentBuilder {
    /// Wraps one declaration.
    public static func buildExpression(_ component: some ExperimentComponent) -> [ExperimentElement] {
        [component.experimentElement]
    }
    /// Passes through a list of declarations (e.g. from a helper function).
    public static func buildExpression(_ components: [any ExperimentComponent]) -> [ExperimentElement] {
        components.map(\.experimentElement)
    }
    /// Joins the statements of a block.
    public static func buildBlock(_ parts: [ExperimentElement]...) -> [ExperimentElement] { parts.flatMap { $0 } }
    /// An `if` without `else`.
    public static func buildOptional(_ part: [ExperimentElement]?) -> [ExperimentElement] { part ?? [] }
    /// The first branch of an `if`/`else` or `switch`.
    public static func buildEither(first part: [ExperimentElement]) -> [ExperimentElement] { part }
    /// The second branch of an `if`/`else` or `switch`.
    public static func buildEither(second part: [ExperimentElement]) -> [ExperimentElement] { part }
    /// A `for` loop.
    public static func buildArray(_ parts: [[ExperimentElement]]) -> [ExperimentElement] { parts.flatMap { $0 } }
}
