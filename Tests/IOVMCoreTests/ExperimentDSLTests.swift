import Foundation
import IOVMCore
import IOVMDescription
import IOVMWireFormat
import Testing

/// The experiment DSL writes the wire document with the line of every declaration.
@Suite("Experiment DSL")
struct ExperimentDSLTests {
    static let base = Topology("base") {
        Host(cores: 4, memory: .gib(4), scheduler: "credit")
        Defaults(kernel: "/k", iovmImage: .minimal)
        Configuration.monolithic()
        for index in 0..<3 { NIC("0000:00:1\(index).0") }
        for index in 1...3 { Guest("guest\(index)") }
    }

    @Test func experimentBecomesDocument() throws {
        let line = #line + 1
        let experiment = Experiment("dsl") {
            Base(Self.base)
            Vary(.configuration([.centralized(), .hybrid(groups: 2)]))
            Vary(.nicCount(1...3))
            Vary(
                .variants([
                    Variant("Default", placement: .credit(), weights: Weights()),
                    Variant("Pinned", placement: .hybridPinned(), scheduler: .rtds(iovm: .init(periodMicroseconds: 10_000, budgetMicroseconds: 4_000))),
                ]))
            Vary(.iovmImage([.minimal, .stock(kernel: "/boot/vmlinuz", disks: ["phy:/dev/vdb,xvda,r"], memory: 512)]))
            Directions(.rx, .tx, .both)
            Workload.command("run {guest} {direction}")
            Timing(duration: .milliseconds(1500), warmUp: .seconds(1), repetitions: 2)
        }
        let document = experiment.document
        let at = { (offset: Int) in SourceLocation(file: #filePath, line: line + offset) }
        #expect(document.schemaVersion == 1)
        #expect(document.kind == "experiment")
        #expect(document.name == "dsl")
        #expect(document.source == at(0))
        #expect(document.base?.topology == Self.base.document)
        #expect(document.base?.source == at(1))
        #expect(document.factors.map(\.kind) == [.configuration, .nicCount, .variants, .iovmImage])
        #expect(document.factors.map(\.source) == [at(2), at(3), at(4), at(9)])
        #expect(document.factors[0].values.map { $0.configuration?.kind } == [.centralized, .hybrid])
        #expect(document.factors[0].values[1].configuration?.groups == 2)
        #expect(document.factors[0].values[1].source == at(2))
        #expect(document.factors[1].values.map(\.nicCount) == [1, 2, 3])
        let variants = document.factors[2].values
        #expect(variants.map(\.label) == ["Default", "Pinned"])
        #expect(variants[0].weights == WeightsDocument())
        #expect(variants[0].source == at(6))
        #expect(variants[1].placement?.kind == .hybridPinned)
        #expect(variants[1].scheduler == SchedulerDocument(name: "rtds", iovmRTDS: RTDSDocument(periodMicroseconds: 10_000, budgetMicroseconds: 4_000, extratime: true)))
        #expect(variants[1].weights == nil)
        let images = document.factors[3].values.compactMap(\.iovmImage)
        #expect(
            images == [
                IOVMImageDocument(label: "minimal", image: "minimal"),
                IOVMImageDocument(label: "stock", kernel: "/boot/vmlinuz", disks: ["phy:/dev/vdb,xvda,r"], memoryMiB: 512),
            ])
        #expect(document.directions == DirectionsDocument(directions: [.rx, .tx, .both], source: at(10)))
        #expect(document.workload == WorkloadDocument(kind: .command, template: "run {guest} {direction}", source: at(11)))
        #expect(document.timing == TimingDocument(durationSeconds: 1.5, warmUpSeconds: 1, repetitions: 2, source: at(12)))

        let json = try JSONText.line(document)
        #expect(try JSONDecoder().decode(ExperimentDocument.self, from: Data(json.utf8)) == document)
        #expect(json.contains(#""kind":"experiment""#))
    }

    @Test func defaultsOfWorkloadAndTiming() {
        let experiment = Experiment("defaults") {
            Base(Self.base)
            Workload.iperf3()
            Timing()
        }
        #expect(experiment.document.workload?.parallel == 4)
        #expect(experiment.document.workload?.length == 1024)
        #expect(experiment.document.timing?.durationSeconds == 60)
        #expect(experiment.document.timing?.warmUpSeconds == 10)
        #expect(experiment.document.timing?.repetitions == 3)
        #expect(experiment.document.directions == nil)
    }

    @Test func presetsNameTheirBases() {
        let presets = [
            Experiment.paper.figures6and7, Experiment.paper.figures8and9, Experiment.paper.figures10and11,
            Experiment.paper.figures12and13, Experiment.paper.table3,
        ].map(\.document)
        #expect(presets.map(\.name) == ["paper-figures6and7", "paper-figures8and9", "paper-figures10and11", "paper-figures12and13", "paper-table3"])
        #expect(
            presets.map { $0.base?.topology.name } == ["paper-monolithic", "paper-multiple-small", "paper-monolithic", "paper-monolithic", "paper-hybrid"])
        #expect(presets.allSatisfy { $0.workload?.kind == .iperf3 && $0.workload?.parallel == 4 && $0.workload?.length == 1024 })
        #expect(presets.allSatisfy { $0.directions?.directions == [.rx, .tx] })
    }
}
