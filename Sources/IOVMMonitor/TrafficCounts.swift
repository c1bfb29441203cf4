/// The six counters an IOVM's traffic is made of, by name: what its physical NICs received and sent
/// (bytes and packets) and what its guests' vifs carried, in the guests' directions.
struct TrafficCounts<Value: Sendable>: Sendable {
    /// Bytes the IOVM's physical NICs received (Rx: client → guest).
    var nicRxBytes: Value
    /// Bytes the IOVM's physical NICs sent (Tx: guest → client).
    var nicTxBytes: Value
    /// Bytes the guests received through their vifs (the vifs' tx, seen from the IOVM).
    var guestRxBytes: Value
    /// Bytes the guests sent through their vifs (the vifs' rx, seen from the IOVM).
    var guestTxBytes: Value
    /// Packets the physical NICs received.
    var nicRxPackets: Value
    /// Packets the physical NICs sent.
    var nicTxPackets: Value

    /// Each counter transformed by `transform`.
    func map<Other: Sendable>(_ transform: (Value) -> Other) -> TrafficCounts<Other> {
        TrafficCounts<Other>(
            nicRxBytes: transform(nicRxBytes), nicTxBytes: transform(nicTxBytes), guestRxBytes: transform(guestRxBytes),
            guestTxBytes: transform(guestTxBytes), nicRxPackets: transform(nicRxPackets), nicTxPackets: transform(nicTxPackets))
    }
}
