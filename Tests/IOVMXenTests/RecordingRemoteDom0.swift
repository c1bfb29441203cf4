import Foundation
import IOVMControl
import IOVMCore
import Synchronization
import XenKit

@testable import IOVMXen

/// A ``RemoteDom0`` in memory: its xenstore is a ``MemoryTagStore``, its file system a set of paths; records the
/// calls that change the host (`driver-domain <domid>`, `pciback release <pci>`, `copy <path>`).
final class RecordingRemoteDom0: RemoteDom0, @unchecked Sendable {
    let target = "root@xen-test:22"
    let store: MemoryTagStore
    /// Domains Xen runs besides libvirt's (domid → name), as xenstore lists them.
    let xenDomains: [UInt32: String]
    /// Called for `releaseFromPciback` (the libvirt host fake gives the NIC its driver back).
    let onRelease: @Sendable (PCIAddress) -> Void
    private let state: Mutex<(calls: [String], files: Set<String>, lookups: Int)>

    init(store: MemoryTagStore, files: Set<String> = ["/lab/vmlinux"], xenDomains: [UInt32: String] = [:], onRelease: @escaping @Sendable (PCIAddress) -> Void = { _ in }) {
        self.store = store
        self.xenDomains = xenDomains
        self.onRelease = onRelease
        state = Mutex(([], files, 0))
    }

    /// The calls that changed the host, in order.
    var calls: [String] { state.withLock { $0.calls } }
    /// The host's files now.
    var files: Set<String> { state.withLock { $0.files } }
    /// How many `missingFiles` round trips were made.
    var lookups: Int { state.withLock { $0.lookups } }

    func read(_ path: String) throws(XenError) -> String? { try store.read(path) }
    func directory(_ path: String) throws(XenError) -> [String]? { try store.directory(path) }
    func write(_ path: String, _ value: String) throws(XenError) { try store.write(path, value) }
    func remove(_ path: String) throws(XenError) { try store.remove(path) }

    func makeDriverDomainNodes(_ domid: UInt32) throws(XenError) { state.withLock { $0.calls.append("driver-domain \(domid)") } }
    func domainNames() throws(XenError) -> [UInt32: String] { xenDomains }
    func records(under roots: [String]) throws(XenError) -> [String: [String: String]] {
        var records: [String: [String: String]] = [:]
        for root in roots {
            for key in try store.directory(root) ?? [] { records[root, default: [:]][key] = try store.read("\(root)/\(key)") }
        }
        return records
    }
    func vifs(of domids: [UInt32]) throws(XenError) -> [UInt32: [ObservedVif]] {
        var vifs: [UInt32: [ObservedVif]] = [:]
        for domid in domids { vifs[domid] = LibXLBackend.vifs(of: domid, store: store) }
        return vifs
    }
    func releaseFromPciback(_ pci: PCIAddress) throws(XenError) {
        state.withLock { $0.calls.append("pciback release \(pci)") }
        onRelease(pci)
    }
    func missingFiles(_ paths: [String], sizes: [String: UInt64]) throws(XenError) -> [String] {
        state.withLock { state in
            state.lookups += 1
            return paths.filter { !state.files.contains($0) }
        }
    }
    func iovmData(of domids: [UInt32]) throws(XenError) -> IOVMData {
        var data = IOVMData()
        state.withLock { $0.calls.append("iovm-data \(domids.map(String.init).joined(separator: " "))") }
        for domid in domids {
            let root = "/local/domain/\(domid)/data/iovm"
            if let sample = try store.read("\(root)/sample") {
                data.samples[domid] = sample
                continue
            }
            for directory in ["\(root)/counters", "\(root)/notifications"] {
                guard let children = try store.directory(directory) else { continue }
                data.lists[directory] = children
                for child in children { data.values["\(directory)/\(child)"] = try store.read("\(directory)/\(child)") }
            }
            for key in ["bits", "uptime"] { data.values["\(root)/agent/\(key)"] = try store.read("\(root)/agent/\(key)") }
        }
        for domid in try store.directory("/local/domain") ?? [] {
            if let id = UInt32(domid) { data.names[id] = try store.read("/local/domain/\(domid)/name") ?? "" }
        }
        return data
    }

    func copy(_ path: String) throws(XenError) {
        guard FileManager.default.isReadableFile(atPath: path) else { throw XenError.failed(operation: "copy \(path) to \(target)", detail: "it cannot be read here") }
        state.withLock {
            $0.calls.append("copy \(path)")
            $0.files.insert(path)
        }
    }
}
