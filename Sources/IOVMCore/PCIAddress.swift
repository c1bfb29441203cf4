/// A PCI address (`domain:bus:device.function`) as Xen's `pci=` and sysfs name it.
public struct PCIAddress: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    /// PCI segment (domain), 0-0xffff.
    public let domain: UInt16
    /// Bus, 0-0xff.
    public let bus: UInt8
    /// Device (slot), 0-0x1f.
    public let device: UInt8
    /// Function, 0-7.
    public let function: UInt8

    /// Creates an address from its parts.
    public init(domain: UInt16 = 0, bus: UInt8, device: UInt8, function: UInt8) {
        self.domain = domain
        self.bus = bus
        self.device = device
        self.function = function
    }

    /// Parses `DDDD:BB:DD.F` or the short `BB:DD.F` (segment 0); hex digits in either case.
    /// Returns nil for anything else, including a device above 0x1f or a function above 7.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        let domainText: Substring
        let busText: Substring
        let slotText: Substring
        switch parts.count {
        case 3: (domainText, busText, slotText) = (parts[0], parts[1], parts[2])
        case 2: (domainText, busText, slotText) = ("0000", parts[0], parts[1])
        default: return nil
        }
        let slot = slotText.split(separator: ".", omittingEmptySubsequences: false)
        guard slot.count == 2,
            (1...4).contains(domainText.count), (1...2).contains(busText.count),
            (1...2).contains(slot[0].count), slot[1].count == 1,
            let domain = UInt16(domainText, radix: 16), let bus = UInt8(busText, radix: 16),
            let device = UInt8(slot[0], radix: 16), let function = UInt8(slot[1], radix: 16),
            device <= 0x1f, function <= 7
        else { return nil }
        self.init(domain: domain, bus: bus, device: device, function: function)
    }

    /// Canonical `dddd:bb:dd.f` in lower case, as sysfs and `xl pci-assignable-list` print it.
    public var description: String {
        hex(Int(domain), 4) + ":" + hex(Int(bus), 2) + ":" + hex(Int(device), 2) + "." + String(function)
    }

    /// Orders by domain, bus, device, function.
    public static func < (lhs: PCIAddress, rhs: PCIAddress) -> Bool {
        (lhs.domain, lhs.bus, lhs.device, lhs.function) < (rhs.domain, rhs.bus, rhs.device, rhs.function)
    }

    /// Encodes as the canonical string.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    /// Decodes from a string.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let address = PCIAddress(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a PCI address: \(text)"))
        }
        self = address
    }
}

func hex(_ value: Int, _ width: Int) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: max(0, width - digits.count)) + digits
}
