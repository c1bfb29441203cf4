/// A PCI function as libxl addresses it (`libxl_device_pci`'s domain, bus, dev and func).
public struct PCIDeviceAddress: Sendable, Hashable, Codable, CustomStringConvertible {
    /// PCI segment (domain).
    public var domain: UInt16
    /// Bus number.
    public var bus: UInt8
    /// Device (slot) number.
    public var device: UInt8
    /// Function number.
    public var function: UInt8

    /// Creates an address.
    public init(domain: UInt16, bus: UInt8, device: UInt8, function: UInt8) {
        self.domain = domain
        self.bus = bus
        self.device = device
        self.function = function
    }

    /// The sysfs form, `dddd:bb:dd.f` in lowercase hex (`0000:00:10.0`).
    public var description: String {
        Self.hex(Int(domain), 4) + ":" + Self.hex(Int(bus), 2) + ":" + Self.hex(Int(device), 2) + "." + String(function, radix: 16)
    }

    private static func hex(_ value: Int, _ width: Int) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
