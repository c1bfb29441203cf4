import IOVMWireFormat

/// One entry of a topology: anything a ``TopologyBuilder`` block may list.
public struct TopologyElement: Sendable {
    enum Storage: Sendable {
        case host(HostDocument)
        case defaults(DefaultsDocument)
        case configuration(ConfigurationDocument)
        case iovm(IOVMDocument)
        case nic(NICDocument)
        case guest(GuestDocument)
        case placement(PlacementDocument)
        case scheduling(SchedulingDocument)
    }
    let storage: Storage
}

/// A declaration that can appear in a topology block.
public protocol TopologyComponent: Sendable {
    /// The element this declaration contributes.
    var topologyElement: TopologyElement { get }
}

/// Result builder for the body of ``Topology``: lists, `if`, `for` and `switch` work as in SwiftUI.
@resultBuilder
public enum TopologyBuilder {
    /// Wraps one declaration.
    public static func buildExpression(_ component: some TopologyComponent) -> [TopologyElement] {
        [component.topologyElement]
    }
    /// Passes through a list of declarations (e.g. from a helper function).
    public static func buildExpression(_ components: [any TopologyComponent]) -> [TopologyElement] {
        components.map(\.topologyElement)
    }
    /// Joins the statements of a block.
    public static func buildBlock(_ parts: [TopologyElement]...) -> [TopologyElement] { parts.flatMap { $0 } }
    /// An `if` without `else`.
    public static func buildOptional(_ part: [TopologyElement]?) -> [TopologyElement] { part ?? [] }
    /// The first branch of an `if`/`else` or `switch`.
    public static func buildEither(first part: [TopologyElement]) -> [TopologyElement] { part }
    /// The second branch of an `if`/`else` or `switch`.
    public static func buildEither(second part: [TopologyElement]) -> [TopologyElement] { part }
    /// A `for` loop.
    public static func buildArray(_ parts: [[TopologyElement]]) -> [TopologyElement] { parts.flatMap { $0 } }
}

/// Result builder for the NICs an ``IOVM`` owns.
@resultBuilder
public enum NICBuilder {
    /// Wraps one NIC.
    public static func buildExpression(_ nic: NIC) -> [NIC] { [nic] }
    /// Passes a list of NICs through.
    public static func buildExpression(_ nics: [NIC]) -> [NIC] { nics }
    /// Joins the statements of a block.
    public static func buildBlock(_ parts: [NIC]...) -> [NIC] { parts.flatMap { $0 } }
    /// An `if` without `else`.
    public static func buildOptional(_ part: [NIC]?) -> [NIC] { part ?? [] }
    /// The first branch of an `if`/`else`.
    public static func buildEither(first part: [NIC]) -> [NIC] { part }
    /// The second branch of an `if`/`else`.
    public static func buildEither(second part: [NIC]) -> [NIC] { part }
    /// A `for` loop.
    public static func buildArray(_ parts: [[NIC]]) -> [NIC] { parts.flatMap { $0 } }
}
