import CXenShim

/// Xen's libraries, which iovm loads when it first needs one instead of linking them (CXenShim's trampolines): the
/// one funnel that loads them and turns a missing library into a ``XenError``.
///
/// Each XenKit type loads what it calls before its first call (``LibXLContext`` libxenlight and libxentoollog,
/// ``XenStoreClient`` libxenstore, ``XenStat`` libxenstat, ``XenControl`` libxenctrl, ``XenHypervisorFS`` libxenhypfs). A function called
/// without that would load its library itself, and end the process if it could not.
package enum XenLibraries {
    /// One of the libraries.
    package enum Library: CaseIterable, Sendable {
        case xenlight, xenstat, xenstore, xenhypfs, xentoollog, xenctrl

        var c: cxenshim_library {
            switch self {
            case .xenlight: CXEN_XENLIGHT
            case .xenstat: CXEN_XENSTAT
            case .xenstore: CXEN_XENSTORE
            case .xenhypfs: CXEN_XENHYPFS
            case .xentoollog: CXEN_XENTOOLLOG
            case .xenctrl: CXEN_XENCTRL
            }
        }

        /// The file dlopen is given, `libxenlight.so.4.17`.
        package var file: String { String(cString: cxenshim_library_file(c)) }

        /// The Debian package that ships it.
        package var package: String { String(cString: cxenshim_library_package(c)) }

        /// Whether this process has loaded it.
        package var isLoaded: Bool { cxenshim_loaded(c) != 0 }
    }

    /// Loads `libraries` (each once per process).
    ///
    /// - Throws: ``XenError/failed(operation:detail:)`` naming the file, the package and dlopen's reason.
    package static func load(_ libraries: Library...) throws(XenError) {
        for library in libraries where !library.isLoaded {
            var buffer = [CChar](repeating: 0, count: 512)
            guard cxenshim_load(library.c, &buffer, buffer.count) == 0 else {
                let why = String(cBuffer: buffer)
                throw XenError.failed(operation: "load \(library.file)", detail: "\(why) (install Debian's \(library.package))")
            }
        }
    }

    /// Resolves every function iovm calls in every library now; the number resolved.
    ///
    /// - Throws: ``XenError/failed(operation:detail:)`` naming the first library or function that is missing.
    package static func resolveAll() throws(XenError) -> Int {
        var buffer = [CChar](repeating: 0, count: 768)
        let count = cxenshim_resolve_all(&buffer, buffer.count)
        guard count >= 0 else {
            let why = String(cBuffer: buffer)
            throw XenError.failed(operation: "resolve Xen's functions", detail: why)
        }
        return Int(count)
    }
}
