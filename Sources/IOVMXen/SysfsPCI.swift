import FoundationEssentials
public import IOVMCore
import SystemPackage

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
    public func device(_ address: PCIAddress) -> PCIDeviceState {
        let directory = "\(root)/bus/pci/devices/\(address)"
        let manager = FileManager.default
        guard manager.fileExists(atPath: directory) else {
            return PCIDeviceState(address: address, present: false, resetMethods: [])
        }
        let driverLink = try? manager.destinationOfSymbolicLink(atPath: "\(directory)/driver")
        let vendor = read("\(directory)/vendor").map { $0.replacing("0x", with: "") }
        let device = read("\(directory)/device").map { $0.replacing("0x", with: "") }
        let group = (try? manager.destinationOfSymbolicLink(atPath: "\(directory)/iommu_group")).flatMap { FilePath($0).lastComponent.flatMap { Int($0.string) } }
        var reset = read("\(directory)/reset_method")?.split(separator: " ").map(String.init) ?? []
        if reset.isEmpty && manager.fileExists(atPath: "\(directory)/reset") { reset = ["unknown"] }
        return PCIDeviceState(
            address: address, present: true,
            driver: driverLink.map { FilePath($0).lastComponent?.string ?? $0 },
            ids: vendor.flatMap { v in device.map { "\(v):\($0)" } },
            deviceClass: read("\(directory)/class"),
            resetMethods: reset,
            iommuGroup: group)
    }

    /// Whether the xen-pciback driver is loaded (its sysfs driver directory exists).
    public var pcibackLoaded: Bool {
        FileManager.default.fileExists(atPath: "\(root)/bus/pci/drivers/pciback")
    }

    private func read(_ path: String) -> String? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return text.trimmingWhitespace()
    }
}
