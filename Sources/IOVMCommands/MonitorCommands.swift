import ArgumentParser
import FoundationEssentials
import IOVMCore
import IOVMMonitor
import IOVMXen
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Set by SIGINT/SIGTERM: the monitor finishes its current sample and stops cleanly.
private let monitorStopRequested = Atomic<Bool>(false)

/// `iovm monitor [FILE]`: live throughput, CPU and efficiency (bits/Hz) of the IOVMs.
struct MonitorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "monitor",
        abstract: "Show the IOVMs' throughput, CPU use and efficiency (bits/Hz) live; optionally record the run or export it to Prometheus.",
        discussion: """
            Rx = client → guest and Tx = guest → client, counted on the physical NICs inside each IOVM by the agent
            Agents/iovm-counters-agent.sh (run it inside every IOVM; it publishes to the IOVM's xenstore
            data/iovm/counters). CPU time and the nominal CPU frequency come from libxenctrl (the hypervisor figures xentop shows);
            cycles = CPU time × nominal Hz, so frequency scaling makes them approximate (a warning says so).
            Efficiency = (Rx + Tx bits) / cycles, per IOVM and for all IOVMs together, as in the paper's Section 4.1.

            IOVMs watched: the topology's IOVMs (dom0 for the centralized configuration), the --iovm names, or
            else every domain that publishes counters. Stop with Ctrl-C, or give --count.
            """)

    @Argument(help: "Topology file whose IOVMs to watch (optional).", completion: .file(extensions: ["swift", "json"]))
    var file: String?

    @Option(name: .customLong("iovm"), help: "Watch this domain as an IOVM (repeatable; instead of a topology).")
    var iovms: [String] = []

    @Option(help: "Time between samples: 1s, 500ms, 100ms (10 Hz), or plain seconds.")
    var interval: String = "1s"

    @Option(help: "Stop after this many intervals (N + 1 samples).")
    var count: Int?

    @Flag(help: "Print one JSON object per interval (JSON lines) instead of the table.")
    var json = false

    @Option(help: "Record the run into this directory (meta.json, plan.json, samples.jsonl) for `iovm report`.", completion: .directory)
    var record: String?

    @Option(help: "A label for the recorded run in reports (default: configuration / placement).")
    var label: String?

    @Option(help: "This host's name in the recording (default: its hostname); `iovm report --merge` tells the hosts of a fleet apart by it.")
    var host: String?

    @Option(
        name: .customLong("prometheus-file"), help: "Write Prometheus text exposition here after every interval (atomically), for node_exporter's textfile collector.",
        completion: .file())
    var prometheusFile: String?

    @Option(help: "Serve the Prometheus exposition over HTTP on this loopback address, e.g. 127.0.0.1:9105.")
    var listen: String?

    @Option(help: ArgumentHelp("Replay a recorded run's samples instead of reading Xen (off-Xen trials).", visibility: .hidden), completion: .directory)
    var replay: String?

    @Option(
        help: """
            Watch the IOVMs of the Xen host behind this libvirt URI (xen+ssh://root@host/system?keyfile=KEY): CPU time and Hz \
            through libvirt, the agents' counters from that host's xenstore over the URI's ssh (one round trip per sample).
            """)
    var connect: String?

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        try requireNonEmptyPaths(["the topology file": file, "--record": record, "--prometheus-file": prometheusFile, "--replay": replay])
        guard let seconds = Self.seconds(interval) else { throw ValidationError("--interval: give e.g. 1s, 100ms or 0.5") }
        if seconds < 0.01 { throw ValidationError("--interval must be at least 10ms") }
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        if file != nil && !iovms.isEmpty { throw ValidationError("give a topology file or --iovm names, not both") }
        if connect != nil && replay != nil { throw ValidationError("--replay reads a recording, not a host: drop --connect") }
    }

    /// Parses `1s`, `100ms`, `2.5` into seconds.
    static func seconds(_ text: String) -> Double? {
        let trimmed = text.trimmingWhitespace().lowercased()
        if trimmed.hasSuffix("ms") { return Double(trimmed.dropLast(2)).map { $0 / 1000 } }
        if trimmed.hasSuffix("s") { return Double(trimmed.dropLast()) }
        return Double(trimmed)
    }

    /// One line of `--json` output.
    typealias Line = MonitorJSONLine

    func run() throws {
        try reportingErrors {
            let logger = global.logger("iovm.monitor")
            let plan = try TopologyOptions.plan(optionalFile: file, logger: logger, connect: connect)
            var watched = iovms
            if let plan { watched = plan.iovms.isEmpty ? ["Domain-0"] : plan.iovms.map(\.name) }
            let source: any CounterSource
            var recordedHost = host
            if let replay {
                let run = try RecordedRun.load(replay)
                source = ReplayCounterSource(run)
                if watched.isEmpty { watched = run.meta.iovms }
                recordedHost = recordedHost ?? run.meta.host
            } else if let connect {
                source = try LibvirtCounterSource(uri: connect, selection: watched.isEmpty ? .publishing : .named(watched))
                recordedHost = recordedHost ?? URLComponents(string: connect)?.host
            } else {
                do {
                    source = try XenCounterSource(selection: watched.isEmpty ? .publishing : .named(watched))
                } catch {  // XenCounterSource throws only XenError
                    printError("iovm: error: iovm monitor needs a Xen dom0 (libxenctrl, xenstore): \(error)")
                    throw ExitCode.failure
                }
            }
            let seconds = Self.seconds(interval)!
            // This machine's cpufreq says nothing of a host behind --connect.
            let frequencyWarning = connect == nil ? FrequencyScalingCheck().warning() : nil
            let listener = try listen.map { try MetricsListener(address: $0) }
            signal(SIGINT) { _ in monitorStopRequested.store(true, ordering: .relaxed) }
            signal(SIGTERM) { _ in monitorStopRequested.store(true, ordering: .relaxed) }

            printError(
                "iovm monitor: \(watched.isEmpty ? "every domain publishing data/iovm/counters" : watched.joined(separator: ", ")), every \(interval); "
                    + "cycles at nominal Hz (\(connect.map { "libvirt, \($0)" } ?? "libxenctrl"))" + (listener.map { "; serving http://127.0.0.1:\($0.port)/metrics" } ?? ""))
            if let frequencyWarning { printError("warning: \(frequencyWarning)") }
            // The schedulers Xen really runs, kept with the recording (not what the plan assumed).
            let schedulers = replay == nil ? Self.schedulers(of: plan.map { $0.domains.map(\.name) } ?? watched, logger: logger, connect: connect) : nil
            if let schedulers { printError("iovm monitor: scheduler (read from Xen): \(schedulers.summary)") }
            if json {
                print(Line(type: "start", nominalHzNote: FrequencyScalingCheck.nominalNote, frequencyWarning: frequencyWarning).text)
            }

            var recorder: RunRecorder?
            var intervals = 0
            var rowsPrinted = 0
            let sampler = Sampler(source: source, interval: seconds, watched: watched)
            let total = try sampler.run(count: count.map { $0 + 1 }, shouldStop: { monitorStopRequested.load(ordering: .relaxed) }) { output in
                if let record, output.record.cpuHz > 0 {
                    if recorder == nil {
                        let meta = RunMeta(
                            interval: seconds, cpuHz: output.record.cpuHz, frequencyWarning: frequencyWarning,
                            started: output.record.time, label: label, plan: plan, iovms: watched, schedulers: schedulers,
                            host: recordedHost ?? ProcessInfo.processInfo.hostName)
                        let topologyJSON = file.flatMap { $0.hasSuffix(".json") ? FileManager.default.contents(atPath: $0) : nil }
                        recorder = try RunRecorder(directory: URL(fileURLWithPath: record), meta: meta, plan: plan, topologyJSON: topologyJSON)
                    }
                    try recorder?.append(output.record)
                }
                if !json { for event in output.events { printError("event: \(event)") } }
                guard let figures = output.interval else {
                    if json && !output.events.isEmpty { print(Line(type: "events", time: output.record.time, events: output.events).text) }
                    return
                }
                intervals += 1
                // Rendered only for a reader: it was a sixth of a sample's CPU (perf, 10 Hz).
                if prometheusFile != nil || listener != nil {
                    let exposition = Exposition.text(for: figures, samplerCPURatio: output.samplerCPURatio)
                    if let prometheusFile { try Exposition.writeAtomically(exposition, to: prometheusFile) }
                    listener?.update(exposition)
                }
                if json {
                    print(
                        Line(
                            type: "interval", time: figures.time, start: figures.start, end: figures.end, cpuHz: figures.cpuHz,
                            iovms: figures.iovms, aggregate: figures.aggregate, events: output.events,
                            samplerCPURatio: output.samplerCPURatio, samplerCPURatioTotal: output.samplerCPURatioTotal
                        ).text)
                } else {
                    if rowsPrinted % 20 == 0 { printText(Self.header) }
                    for row in figures.iovms + [figures.aggregate] { printText(Self.row(figures.end, row)) }
                    rowsPrinted += 1
                }
                fflush(nil)  // all C streams: stdout is line-buffered only on a terminal
            }
            if let xen = source as? XenCounterSource, xen.sampleWatchFailures > 0 {
                printError(
                    "iovm monitor: note: the watches on the agents' samples failed \(xen.sampleWatchFailures) time(s); until set again (30 s on) every interval read every sample"
                )
            }
            if json {
                print(Line(type: "summary", samplerCPURatio: total, intervals: intervals, totals: sampler.totals).text)
            } else {
                if let total { printError("iovm monitor: \(intervals) intervals; the sampler used " + String(cFormat: "%.2f", total * 100) + "% of one core") }
                for (name, t) in sampler.totals.sorted(by: { $0.key < $1.key }) where t.seconds > 0 {
                    printError(
                        "\(name): "
                            + String(
                                cFormat: "Rx %.2f Mbit/s, Tx %.2f Mbit/s over %.1f s (exact counter totals: %llu / %llu bytes, %llu / %llu packets)",
                                t.rxMbps, t.txMbps, t.seconds, t.rxBytes, t.txBytes, t.rxPackets, t.txPackets))
                }
            }
            if let record { printError("recorded in \(record); `iovm report \(record) --format html` draws it") }
        }
    }

    /// Right-aligns `text` in `width` columns (or left-aligns with a negative width).
    static func pad(_ text: String, _ width: Int) -> String {
        let fill = String(repeating: " ", count: max(0, abs(width) - text.count))
        return width < 0 ? text + fill : fill + text
    }

    /// Pool-0's scheduler and that of the pool of each of `names` (every domain but dom0 when empty), as
    /// Xen reports them; nil when the host cannot be read.
    static func schedulers(of names: [String], logger: Logger, connect: String? = nil) -> SchedulerReading? {
        do {
            let host = try HostAccess.backend(logger: logger, connect: connect).observe(nics: [])
            return host.schedulerReading(of: names.isEmpty ? nil : names)
        } catch {
            logger.debug("schedulers not read: \(error)")
            return nil
        }
    }

    static let header = [
        pad("TIME", 9), pad("IOVM", -16), pad("RX Mbit/s", 10), pad("TX Mbit/s", 10), pad("CPU %", 7),
        pad("bits/Hz", 8), pad("Rx b/Hz", 8), pad("Tx b/Hz", 8),
    ].joined(separator: " ")

    static func row(_ end: Double, _ f: EfficiencyFigures) -> String {
        func e(_ value: Double?) -> String { value.map { String(cFormat: "%.3f", $0) } ?? "-" }
        let name = f.iovm.count > 16 ? String(f.iovm.prefix(15)) + "…" : f.iovm
        let rx = f.trafficKnown ? String(cFormat: "%.1f", f.rxMbps) : "?"
        let tx = f.trafficKnown ? String(cFormat: "%.1f", f.txMbps) : "?"
        return [
            pad(String(cFormat: "%.2fs", end), 9), pad(name, -16), pad(rx, 10), pad(tx, 10), pad(String(cFormat: "%.1f", f.cpuPercent), 7),
            pad(e(f.efficiency), 8), pad(e(f.rxEfficiency), 8), pad(e(f.txEfficiency), 8),
        ].joined(separator: " ")
    }
}

extension ExperimentReportFormat: ExpressibleByArgument {}

/// `iovm report DIR...`: figures of recorded runs, or of an experiment's run directory.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Report an experiment's run (`iovm experiment FILE --out DIR`) or recorded runs (`iovm monitor --record DIR`).",
        discussion: """
            An experiment's run directory (it holds experiment.json): the cells' results grouped by combination and
            direction over the repetitions (mean, min, max of payload and L2 Mbit/s, CPU %, bits/Hz), charts of
            throughput and efficiency against the NIC count like the paper's figures (one bar per series, error bars
            min-max), a table like the paper's Table 3 (deltas against the first combination), and the paper's claims
            each counted in the cells where their series were measured ("held in k of n cells"). Missing cells are
            reported as missing. Without --format, writes report.html, report.csv (per combination and direction),
            report.json and cells.csv (one row per cell) into DIR and prints the table and the claims; --format
            html|csv|json|text prints one format (or writes it to --out).

            Recorded runs (monitor recordings), --format json (default), csv or html:
            json: per run, per IOVM and for all IOVMs: mean/peak Rx and Tx Mbit/s, CPU %, bits/Hz overall and per direction.
            csv: one row per interval per IOVM, plus an aggregate row per interval.
            html: a self-contained page with the topology and placement, tables and SVG charts over time; several runs
            add bar charts comparing them, like the paper's Figs. 6 and 7.

            --merge: the recordings are of one fleet over the same period, one per host (a topology over several hosts,
            `iovm monitor --record DIR` on each): they are merged into one run, restricted to the period all of them
            cover (hosts' clocks are taken as synchronized). json: per host its IOVMs and their aggregate, every IOVM
            named HOST/IOVM, and the fleet (traffic, CPU and cycles added up; bits/Hz = all bits / all cycles); csv:
            each host's intervals (run = host), then the fleet's; html: the fleet's table and charts, then each host.
            A recording's host is the one `iovm monitor` wrote (--host, default its hostname), else its directory's
            name. Refused: recordings that do not overlap, and two recordings of one host.
            """)

    @Argument(help: "An experiment's run directory, or recorded run directories.", completion: .directory)
    var directories: [String]

    @Flag(help: "Merge recordings of the same period from several hosts (one per host) into one report of the fleet.")
    var merge = false

    @Option(help: "Output format: html, csv, json or text (text: experiments only; recordings default to json).")
    var format: ExperimentReportFormat?

    @Option(help: "Write to this file instead of stdout (its extension names the format when --format is not given).", completion: .file())
    var out: String?

    func validate() throws {
        if directories.isEmpty { throw ValidationError("give at least one recorded run directory, or an experiment's run directory") }
        try requireNonEmptyPaths(["--out": out])
        if directories.contains("") { throw ValidationError("a run directory is empty: give a path") }
        if merge && directories.count < 2 { throw ValidationError("--merge takes the recordings of at least two hosts, one directory per host") }
        if format == nil, let out, directories.contains(where: ExperimentRunDirectory.isRunDirectory), ExperimentReportFormat(fileName: out) == nil {
            throw ValidationError("--out \(out): give --format, or a file name ending in .html, .csv, .json or .txt")
        }
    }

    func run() throws {
        try reportingErrors {
            if directories.contains(where: ExperimentRunDirectory.isRunDirectory) {
                if merge { throw ValidationError("--merge takes recordings of `iovm monitor --record`, not an experiment's run directory") }
                guard directories.count == 1 else { throw ValidationError("an experiment's run directory is reported alone") }
                try experiment(directories[0])
                return
            }
            let recordingFormat: ReportFormat
            switch format {
            case nil: recordingFormat = .json
            case .text: throw ValidationError("--format text is for an experiment's run directory; recordings take json, csv or html")
            case let format?: recordingFormat = ReportFormat(rawValue: format.rawValue)!
            }
            let runs = try directories.map(RecordedRun.load)
            if merge {
                let merged = try MergedRun.merge(runs)
                printError(
                    "iovm report: merged \(merged.hosts.count) hosts (\(merged.hosts.map(\.host).joined(separator: ", "))) over "
                        + String(cFormat: "%.1f", merged.end - merged.start) + " s"
                )
                try emit(try Report.render(merged, format: recordingFormat))
                return
            }
            for run in runs where run.intervals.isEmpty { printError("warning: \(run.directory) has no complete interval (fewer than two samples)") }
            try emit(try Report.render(runs, format: recordingFormat))
        }
    }

    /// An experiment's report: one format to stdout or --out, else every file into the run directory and the text summary.
    private func experiment(_ directory: String) throws {
        let files = try ExperimentRunDirectory.load(directory)
        let report = ExperimentReport(files)
        if let format = format ?? out.flatMap(ExperimentReportFormat.init(fileName:)) {
            try emit(try report.render(format))
            return
        }
        let written = try ExperimentReport.write(files)
        printText(report.text(), terminator: "")
        printError("wrote \(written.joined(separator: ", "))")
    }

    private func emit(_ text: String) throws {
        if let out {
            try Data(text.utf8).write(to: URL(fileURLWithPath: out))
            printError("wrote \(out)")
        } else {
            print(text, terminator: "")
        }
    }
}
