import Foundation
import IOVMCore
import IOVMWireFormat
import Testing

/// Every experiment error names the thing and the line, and nothing expands.
@Suite("Experiment validation")
struct ExperimentValidationTests {
    /// An experiment on lines 100+: `Experiment` at 100, `Base` at 101, factors from 110, directions 120,
    /// workload 121, timing 122; the base is the fixture's Monolithic topology with 3 NICs (lines 1-30).
    func experiment(
        factors: [FactorDocument] = [], base: TopologyDocument? = Fixture.generated(.monolithic, nics: Fixture.paperNICs3, guests: 3, placement: .credit),
        directions: [TrafficDirection]? = nil, workload: WorkloadDocument? = nil, timing: TimingDocument? = nil
    ) -> ExperimentDocument {
        ExperimentDocument(
            name: "checks", source: Fixture.at(100), base: base.map { BaseDocument(topology: $0, source: Fixture.at(101)) }, factors: factors,
            directions: directions.map { DirectionsDocument(directions: $0, source: Fixture.at(120)) },
            workload: workload.map {
                var workload = $0
                workload.source = Fixture.at(121)
                return workload
            },
            timing: timing.map {
                var timing = $0
                timing.source = Fixture.at(122)
                return timing
            })
    }

    func factor(_ kind: FactorDocument.Kind, line: Int, _ values: [FactorValueDocument]) -> FactorDocument {
        FactorDocument(kind: kind, values: values, source: Fixture.at(line))
    }

    func placement(_ kind: PlacementKind, line: Int) -> FactorValueDocument {
        FactorValueDocument(placement: PlacementDocument(kind: kind, source: Fixture.at(line)), source: Fixture.at(line))
    }

    /// The errors of a document that must not expand.
    func errors(_ document: ExperimentDocument, poolZeroScheduler: String? = nil) -> [Diagnostic] {
        do {
            _ = try ExperimentPlanner(poolZeroScheduler: poolZeroScheduler).plan(document)
            return []
        } catch {
            if case .invalid(let diagnostics) = error { return diagnostics.filter { $0.severity == .error } }
            return [Diagnostic(.error, "unexpected \(error)", at: nil)]
        }
    }

    /// Asserts exactly one error, at `line`, with exactly `message`.
    func expectError(
        _ document: ExperimentDocument, line: Int, _ message: String, poolZeroScheduler: String? = nil,
        sourceLocation: Testing.SourceLocation = #_sourceLocation
    ) {
        let errors = errors(document, poolZeroScheduler: poolZeroScheduler)
        #expect(errors.count == 1, "expected one error, got \(errors)", sourceLocation: sourceLocation)
        guard let error = errors.first else { return }
        #expect(error.description == "\(Fixture.file):\(line): error: \(message)", sourceLocation: sourceLocation)
    }

    @Test func validExperimentExpands() throws {
        let plan = try ExperimentPlanner().plan(experiment(factors: [factor(.nicCount, line: 110, [.init(nicCount: 1), .init(nicCount: 3)])]))
        #expect(plan.cells.count == 2 * 2 * 3)
        #expect(plan.workload == WorkloadDocument(kind: .iperf3, parallel: 4, length: 1024))
        #expect(plan.timing == TimingDocument.defaults)
        #expect(plan.directions == [.rx, .tx])
    }

    @Test func emptyFactor() {
        expectError(experiment(factors: [factor(.placement, line: 110, [])]), line: 110, "Vary(.placement([])) lists no value: give at least one")
    }

    @Test func repetitionsBelowOne() {
        expectError(experiment(timing: TimingDocument(durationSeconds: 60, warmUpSeconds: 10, repetitions: 0)), line: 122, "repetitions must be at least 1, not 0")
    }

    @Test("repetitions and a cell's duration have upper limits: a typo of a few digits would run for years and fill memory")
    func timingUpperLimits() {
        expectError(
            experiment(timing: TimingDocument(durationSeconds: 60, warmUpSeconds: 10, repetitions: 1_000_000_000)), line: 122,
            "repetitions must be at most 1000, not 1000000000")
        expectError(
            experiment(timing: TimingDocument(durationSeconds: 1e19, warmUpSeconds: 10, repetitions: 1)), line: 122,
            "a cell's duration and warm-up must be at most 86400 s (a day), not 1e+19 s")
    }

    @Test func durationNotLongerThanWarmUp() {
        expectError(
            experiment(timing: TimingDocument(durationSeconds: 10, warmUpSeconds: 10, repetitions: 1)), line: 122,
            "the duration (10 s) must be longer than the warm-up (10 s): the measured part would be no longer than the unmeasured one")
        expectError(experiment(timing: TimingDocument(durationSeconds: 0, warmUpSeconds: 0, repetitions: 1)), line: 122, "the duration must be positive, not 0 s")
    }

    @Test("a NIC count the base cannot take")
    func nicCountOverBase() {
        expectError(
            experiment(factors: [factor(.nicCount, line: 110, [.init(nicCount: 2), .init(nicCount: 4)])]), line: 110,
            "NIC count 4 is more than the 3 NICs of the base topology test: declare more NIC(…)s in it")
        expectError(
            experiment(factors: [factor(.nicCount, line: 110, [.init(nicCount: 0)])]), line: 110, "NIC count 0 is not a number of NICs: the smallest is 1")
    }

    @Test("a value of a factor sets that factor's aspect, and no other: a JSON document could set both, and its cells would be labelled by one")
    func valueSetsItsAspectAlone() {
        expectError(
            experiment(factors: [factor(.nicCount, line: 110, [.init(nicCount: 1), placement(.coLocate, line: 112)])]), line: 112,
            "a value of Vary(.nicCount(…)) does not set the NIC count")
        expectError(
            experiment(factors: [
                factor(.placement, line: 110, [FactorValueDocument(placement: PlacementDocument(kind: .coLocate), nicCount: 2, source: Fixture.at(111))])
            ]), line: 111,
            "a value of Vary(.placement(…)) also sets the NIC count: vary the NIC count in a factor of its own, or set both in Variant(…)s")
        let variant = FactorValueDocument(label: "Few NICs, co-located", placement: PlacementDocument(kind: .coLocate), nicCount: 2, source: Fixture.at(111))
        #expect(errors(experiment(factors: [factor(.variants, line: 110, [variant])])).isEmpty)
    }

    @Test("the configuration and NIC count need a base with a generator")
    func explicitBase() {
        let base = TopologyDocument(
            name: "by-hand", source: Fixture.at(1), host: HostDocument(cores: 4, source: Fixture.at(2)),
            defaults: DefaultsDocument(kernel: "/boot/vmlinux", source: Fixture.at(3)),
            iovms: [IOVMDocument(name: "net0", nics: [NICDocument(pci: "0000:00:04.0", source: Fixture.at(11))], source: Fixture.at(10))],
            guests: [GuestDocument(name: "web", backend: "net0", source: Fixture.at(20))])
        let value = FactorValueDocument(configuration: ConfigurationDocument(kind: .multipleSmall, source: Fixture.at(111)), source: Fixture.at(111))
        expectError(
            experiment(factors: [factor(.configuration, line: 110, [value])], base: base), line: 111,
            "the configuration cannot vary: the base topology by-hand declares its IOVMs one by one; vary it on a base with a Configuration and top-level NIC(…)s")
    }

    @Test func variedTwice() {
        let variants = factor(.variants, line: 112, [FactorValueDocument(label: "Pinned", placement: PlacementDocument(kind: .hybridPinned), source: Fixture.at(113))])
        expectError(
            experiment(factors: [factor(.placement, line: 110, [placement(.coLocate, line: 111)]), variants]), line: 112,
            "the placement is varied twice (first at \(Fixture.file):110): vary it once, or set it together with the rest in Variant(…)s")
    }

    @Test func valueListedTwice() {
        expectError(
            experiment(factors: [factor(.placement, line: 110, [placement(.coLocate, line: 111), placement(.coLocate, line: 112)])]), line: 112,
            "the placement co-locate is listed twice: its cells would repeat (Timing(repetitions:) repeats every cell)")
    }

    @Test func variantsNeedDistinctNames() {
        let values = [
            FactorValueDocument(label: "A", weights: WeightsDocument(), source: Fixture.at(111)),
            FactorValueDocument(label: "A", weights: WeightsDocument(iovmWeight: 512), source: Fixture.at(112)),
        ]
        expectError(experiment(factors: [factor(.variants, line: 110, values)]), line: 112, "two variants are named \"A\" (first at \(Fixture.file):111)")
    }

    @Test func noBase() {
        expectError(experiment(base: nil), line: 100, "the experiment names no base topology: add Base(topology) with a Topology(…) { … } of the file")
    }

    @Test func schedulers() {
        let sedf = FactorValueDocument(scheduler: SchedulerDocument(name: "sedf"), source: Fixture.at(111))
        expectError(
            experiment(factors: [factor(.scheduler, line: 110, [sedf])]), line: 111, "unknown scheduler \"sedf\" (Xen offers credit, credit2, rtds, null)",
            poolZeroScheduler: "credit")
        var base = Fixture.generated(.monolithic, nics: Fixture.paperNICs3, guests: 3, placement: .credit)
        base.host?.scheduler = nil
        let rtds = FactorValueDocument(scheduler: SchedulerDocument(name: "rtds"), source: Fixture.at(111))
        expectError(
            experiment(factors: [factor(.scheduler, line: 110, [rtds])], base: base), line: 110,
            "the scheduler varies, but nothing says which one the host's Pool-0 runs (the others run in a cpupool): give the base Host(scheduler:) or pass --host-scheduler"
        )
    }

    @Test func stockImageWithoutKernel() {
        let stock = FactorValueDocument(iovmImage: IOVMImageDocument(label: "stock", kernel: ""), source: Fixture.at(111))
        expectError(experiment(factors: [factor(.iovmImage, line: 110, [stock])]), line: 111, "IOVM image stock names no kernel: give .stock(kernel: \"/boot/vmlinuz-…\")")
    }

    @Test func directionsAndWorkload() {
        expectError(experiment(directions: []), line: 120, "Directions() names no direction: give .rx, .tx or .both")
        expectError(experiment(directions: [.rx, .rx]), line: 120, "direction Rx is listed twice")
        expectError(experiment(workload: WorkloadDocument(kind: .iperf3, parallel: 0)), line: 121, "iperf3 runs 1-128 parallel streams (-P), not 0")
        expectError(
            experiment(workload: WorkloadDocument(kind: .command, template: "ping -c 3 {client}")), line: 121,
            "Workload.command uses {client}, which is not a placeholder (known: {guest}, {nic}, {direction}, {duration}, {warmup}, {server}, {iperf3}; {{ is a literal {)")
    }

    @Test("a value the base's planner refuses names the cells and points at the value")
    func combinationErrors() {
        let hybrid = FactorValueDocument(configuration: ConfigurationDocument(kind: .hybrid, groups: 2, source: Fixture.at(111)), source: Fixture.at(111))
        expectError(
            experiment(factors: [factor(.configuration, line: 110, [hybrid]), factor(.nicCount, line: 112, [.init(nicCount: 1), .init(nicCount: 2)])]),
            line: 111, "in the cells with configuration hybrid(2), NIC count 1: Configuration.hybrid(groups: 2) needs between 1 and 1 groups for 1 NIC")
        let heavy = FactorValueDocument(weights: WeightsDocument(iovmWeight: 70_000), source: Fixture.at(111))
        expectError(
            experiment(factors: [factor(.weights, line: 110, [heavy])]), line: 111,
            "in the cells with weights iovm 70000: credit weight 70000 of IOVM iovm0 is out of range 1-65535")
    }

    @Test("a value written without a place of its own (a NIC count, .minimal) is reported at its Vary")
    func valueWithoutSourceIsAtItsVary() {
        var base = Fixture.generated(.monolithic, nics: Fixture.paperNICs3, guests: 3, placement: .credit)
        base.defaults?.iovmMemoryMiB = 40
        let minimal = FactorValueDocument(iovmImage: IOVMImageDocument(label: "minimal", image: "minimal"))
        expectError(
            experiment(factors: [factor(.iovmImage, line: 110, [minimal])], base: base), line: 110,
            "in the cells with image minimal: IOVM iovm0 has 40 MiB of memory; the minimal IOVM image needs at least 48 MiB (libxc loads its kernel and unpacks its initramfs into it; the default is 64)"
        )
    }

    @Test("an unknown schema version is refused, located at the experiment")
    func schemaVersion() {
        var document = experiment()
        document.schemaVersion = 2
        expectError(document, line: 100, "experiment schema version 2 is not supported (this iovm reads version 1)")
    }

    @Test("decoding: another schema version, a topology document, a topology read as an experiment")
    func decoding() throws {
        let future = Data(#"{"kind":"experiment","schemaVersion":2,"name":"x","factors":[]}"#.utf8)
        #expect(throws: ExperimentError.self) { try TopologyLoader.decodeExperiment(future, file: "/e.json") }
        do {
            _ = try TopologyLoader.decodeExperiment(future, file: "/e.json")
        } catch {
            #expect(error.description == "/e.json: error: not a usable experiment document: experiment schema version 2; this iovm reads version 1")
        }
        let topology = try JSONText.line(Fixture.generated(.monolithic, nics: Fixture.paperNICs3, guests: 1, placement: .credit))
        do {
            _ = try TopologyLoader.decodeExperiment(Data(topology.utf8), file: "/t.json")
            Issue.record("a topology decoded as an experiment")
        } catch {
            #expect(error.description == "/t.json: error: not a usable experiment document: it is a topology document, not an experiment (`iovm plan` reads topologies)")
        }
        let experimentJSON = try JSONText.line(experiment())
        do {
            _ = try TopologyLoader.decode(Data(experimentJSON.utf8), file: "/e.json")
            Issue.record("an experiment decoded as a topology")
        } catch {
            #expect(error.description == "/e.json: error: not a usable topology document: it is an experiment document: `iovm experiment /e.json` reads it")
        }
        #expect(try TopologyLoader.decodeExperiment(Data(experimentJSON.utf8), file: "/e.json") == experiment())
    }
}

/// `Workload.command` templates: which braces are placeholders, how values are quoted.
@Suite("Command templates")
struct CommandTemplateTests {
    @Test("{word} is a placeholder; {{ and other braces are literal")
    func pieces() {
        #expect(
            ExperimentWorkload.pieces(of: "awk '{print $1}' {guest}{{x} ${HOME} {} {\"a\": 1}}")
                == [.text("awk '{print $1}' "), .placeholder("guest"), .text("{x} ${HOME} {} {\"a\": 1}}")])
        #expect(ExperimentWorkload.pieces(of: "a {b} {d e}") == [.text("a "), .placeholder("b"), .text(" {d e}")])
    }

    @Test("an iperf3 server is HOST or HOST:PORT: a host name, IPv4 or a bare IPv6 address, a port 1-65535")
    func servers() {
        for good in ["10.0.2.2", "10.0.2.2:5201", "iperf.example.org:1", "host_1:65535", "fe80::1", "::1", "fe80::1%br0"] {
            #expect(ExperimentWorkload.serverProblem(good) == nil, "\(good)")
        }
        let bad = [
            ("-x;rm -rf /:99999", "its port \"99999\" is not 1-65535"), ("a:0", "its port \"0\" is not 1-65535"), ("a:", "its port \"\" is not 1-65535"),
            ("-p", "its host starts with '-' (iperf3 would read it as an option)"), ("", "its host must be 1-253 characters"),
            (":5201", "its host must be 1-253 characters"), ("a b", "its host has a character no host name has"),
            ("a;b", "its host has a character no host name has"), ("[::1]:5201", "an IPv6 address takes no port here, and only hex digits, ':' and '.'"),
        ]
        for (server, problem) in bad { #expect(ExperimentWorkload.serverProblem(server) == problem, "\(server)") }
    }

    @Test("values are quoted as one shell word each")
    func quoting() {
        #expect(ExperimentWorkload.shellQuoted("0000:00:10.0") == "0000:00:10.0")
        #expect(ExperimentWorkload.shellQuoted("") == "''")
        #expect(ExperimentWorkload.shellQuoted("a b") == "'a b'")
        #expect(ExperimentWorkload.shellQuoted("it's") == #"'it'\''s'"#)
        #expect(ExperimentWorkload.expand("x {a} {b} {missing}", values: ["a": ["1", "2 3"], "b": []]) == "x 1 '2 3'  ")
    }
}
