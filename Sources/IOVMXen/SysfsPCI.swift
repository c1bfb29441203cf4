import FoundationEssentials
public import IOVMCore
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// A PCI device as Linux's sysfs shows it in dom0.
public struct PCIDeviceState: Sendable, Codable, Equatable {
    /// Address.
    public var address: PCIAddress
    /// Whether `/sys/bus/pci/devices/<bdf>` exists.
    public var present: Bool
    /// Bound driver (`e1000`, `pciback`, …), nil if unbound.
    public var driver: String?
    /// Vendor:device ids, e.g. `8086:100e`.
    public var ids: String?
    /// PCI class, e.g. `0x020000` (Ethernet).
    public var deviceClass: String?
    /// Reset methods the kernel offers (`flr`, `pm`, `bus`, …), from `reset_method`; empty when none.
    public var resetMethods: [String]
    /// IOMMU group number, when an IOMMU is active for dom0's view.
    public var iommuGroup: Int?

    /// Creates a device state.
    public init(
        address: PCIAddress, present: Bool, driver: String? = nil, ids: String? = nil, deviceClass: String? = nil,
        resetMethods: [String], iommuGroup: Int? = nil
    ) {
        self.address = address
        self.present = present
        self.driver = driver
        self.ids = ids
        self.deviceClass = deviceClass
        self.resetMethods = resetMethods
        self.iommuGroup = iommuGroup
    }

    /// Whether Xen can pass it through now (bound to pciback).
    public var assignable: Bool { driver == "pciback" }
    /// Whether it is a network controller (class 0x02xxxx).
    public var isNetworkController: Bool { deviceClass?.hasPrefix("0x02") ?? false }
}

/// Reads PCI device state from sysfs; `root` lets tests point it at a fake tree.
public struct SysfsPCI: Sendable {
    /// The sysfs mount, normally `/sys`.
    public var root: String

    /// Creates a reader over `root`.
    public init(root: String = "/sys") {
        self.root = root
    }

    /// The state of one device.
    ///
    /// Each attribute is one `open` and one `read` into a small buffer (and each link one `readlink`): a no-op
    /// re-apply reads four NICs three times over, and Foundation's file reading cost it ~5% of its time in dom0
    /// under TCG (issue 16).
    public func device(_ address: PCIAddress) -> PCIDeviceState {
        var state = binding(address)
        guard state.present else { return state }
        let directory = "\(root)/bus/pci/devices/\(address)"
        state.iommuGroup = link("\(directory)/iommu_group").flatMap { FilePath($0).lastComponent.flatMap { Int($0.string) } }
        state.resetMethods = read("\(directory)/reset_method")?.split(separator: " ").map(String.init) ?? []
        if state.resetMethods.isEmpty && access("\(directory)/reset", F_OK) == 0 { state.resetMethods = ["unknown"] }
        state.ids = ids(in: directory)
        state.deviceClass = read("\(directory)/class")
        return state
    }

    /// One device as observing the host's NICs reads it: whether it is present and its driver, in two system calls.
    /// The other fields are left empty (ids, class, reset methods, IOMMU group: ``device(_:)`` adds them to this for the
    /// checks before a passthrough, some twelve more system calls a NIC, in each no-op re-apply; issue 16).
    public func binding(_ address: PCIAddress) -> PCIDeviceState {
        let directory = "\(root)/bus/pci/devices/\(address)"
        guard access(directory, F_OK) == 0 else { return PCIDeviceState(address: address, present: false, resetMethods: []) }
        return PCIDeviceState(
            address: address, present: true, driver: link("\(directory)/driver").map { FilePath($0).lastComponent?.string ?? $0 }, resetMethods: [])
    }

    /// The vendor:device ids of one device (`8086:100e`), nil when it is absent: its two attributes only.
    public func ids(_ address: PCIAddress) -> String? {
        ids(in: "\(root)/bus/pci/devices/\(address)")
    }

    private func ids(in directory: String) -> String? {
        guard let vendor = read("\(directory)/vendor"), let device = read("\(directory)/device") else { return nil }
        return "\(vendor.replacing("0x", with: "")):\(device.replacing("0x", with: ""))"
    }

    /// Whether the xen-pciback driver is loaded (its sysfs driver directory exists).
    public var pcibackLoaded: Bool {
        FileManager.default.fileExists(atPath: "\(root)/bus/pci/drivers/pciback")
    }

    /// A sysfs attribute (at most 255 bytes: the ones read here are short), trimmed; nil when it cannot be read.
    private func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { buffer in
            let count = Glibc.read(fd, buffer.baseAddress, buffer.count - 1)
            guard count >= 0 else { return nil }
            return String(decoding: UnsafeBufferPointer(rebasing: buffer[..<count]), as: UTF8.self).trimmingWhitespace()
        }
    }

    /// The target of the symbolic link at `path`; nil when it is none.
    private func link(_ path: String) -> String? {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(PATH_MAX)) { buffer in
            let count = readlink(path, buffer.baseAddress!, buffer.count)
            guard count > 0, count < buffer.count else { return nil }
            return String(decoding: UnsafeRawBufferPointer(start: buffer.baseAddress, count: count), as: UTF8.self)
        }
    }
}
