import IOVMDescription
import IOVMWireFormat
import Testing

@testable import IOVMCore

/// Expanding experiments into cells: counts, order, transitions.
@Suite("Experiment expansion")
struct ExperimentPlannerTests {
    func plan(_ experiment: Experiment, seed: UInt64? = nil) throws -> ExperimentPlan {
        try ExperimentPlanner(seed: seed).plan(experiment.document)
    }

    /// The combination whose settings match.
    func combination(_ plan: ExperimentPlan, _ matches: (CellSettings) -> Bool) throws -> ExperimentCombination {
        try #require(plan.combinations.first { matches($0.settings) })
    }

    @Test("each preset has the cells of the paper's figure: combinations x directions x repetitions")
    func presetCellCounts() throws {
        let expected: [(Experiment, combinations: Int)] = [
            (Experiment.paper.figures6and7, 6),  // centralized, monolithic x 1-3 NICs
            (Experiment.paper.figures8and9, 9),  // co-locate, separate, IOVM-affinity x 1-3 NICs
            (Experiment.paper.figures10and11, 9),  // static, pinned credit, credit x 1-3 NICs
            (Experiment.paper.figures12and13, 3),  // monolithic, multiple small, hybrid
            (Experiment.paper.table3, 2),  // Default, Core Pinning
        ]
        for (experiment, combinations) in expected {
            let plan = try plan(experiment)
            #expect(plan.combinations.count == combinations, "\(plan.experiment)")
            #expect(plan.cells.count == combinations * 2 * 3, "\(plan.experiment)")
            #expect(plan.cells.map(\.index) == Array(1...plan.cells.count))
            // Every combination in every direction exactly once per repetition.
            for repetition in 1...3 {
                let round = plan.cells.filter { $0.repetition == repetition }.map { "\($0.combination)/\($0.direction)" }
                #expect(round.count == combinations * 2)
                #expect(Set(round).count == round.count)
            }
        }
    }

    @Test("the cross product sets each value in the base: Figs. 6/7's NIC counts keep the first NICs and their guests")
    func combinationsDeriveTopologies() throws {
        let plan = try plan(Experiment.paper.figures6and7)
        #expect(
            plan.combinations.map { "\($0.settings.configuration)/\($0.settings.nics)" } == [
                "centralized/1", "centralized/2", "centralized/3", "monolithic/1", "monolithic/2", "monolithic/3",
            ])
        let two = try combination(plan) { $0.configuration == "monolithic" && $0.nics == 2 }
        #expect(two.topology.nics.map(\.pci) == ["0000:00:10.0", "0000:00:11.0"])
        #expect(two.plan.iovms.map(\.name) == ["iovm0"])
        #expect(two.plan.guests.map(\.name) == ["guest1", "guest2"])
        #expect(two.plan.guests.map { $0.vifs[0].nic?.description } == ["0000:00:10.0", "0000:00:11.0"])
        let centralized = try combination(plan) { $0.configuration == "centralized" && $0.nics == 3 }
        #expect(centralized.plan.iovms.isEmpty)
        #expect(centralized.settings.image == "-")
        #expect(centralized.plan.guests.allSatisfy { $0.vifs[0].backend == nil })
    }

    @Test("the same seed gives the same order; another seed another; without --seed the name decides")
    func seededOrder() throws {
        let first = try plan(Experiment.paper.figures8and9, seed: 7)
        let again = try plan(Experiment.paper.figures8and9, seed: 7)
        let other = try plan(Experiment.paper.figures8and9, seed: 8)
        #expect(first.seed == 7 && !first.seedFromName)
        #expect(first.cells == again.cells)
        #expect(first.cells.map(\.combination) != other.cells.map(\.combination))

        let byName = try plan(Experiment.paper.figures8and9)
        #expect(byName.seedFromName)
        #expect(byName.seed == ExperimentPlanner.defaultSeed(for: "paper-figures8and9"))
        #expect(byName.cells == (try plan(Experiment.paper.figures8and9, seed: byName.seed)).cells)
        #expect(ExperimentPlanner.defaultSeed(for: "paper-figures8and9") != ExperimentPlanner.defaultSeed(for: "paper-figures6and7"))
    }

    @Test("the order is pinned: the generator is iovm's own, not the standard library's")
    func pinnedOrder() throws {
        let plan = try plan(Experiment.paper.table3, seed: 42)
        let order = plan.cells.map { "\(plan.combination(of: $0).settings.variant ?? "?")/\($0.direction.title)" }
        #expect(
            order == [
                "Default/Tx", "Default/Rx", "Core Pinning/Tx", "Core Pinning/Rx",
                "Core Pinning/Tx", "Core Pinning/Rx", "Default/Rx", "Default/Tx",
                "Core Pinning/Rx", "Core Pinning/Tx", "Default/Tx", "Default/Rx",
            ])
    }

    @Test("a combination's directions run one after the other: the host changes once per combination and repetition")
    func directionsTogether() throws {
        let plan = try plan(Experiment.paper.figures12and13, seed: 7)
        for pair in stride(from: 0, to: plan.cells.count, by: 2) {
            #expect(plan.cells[pair].combination == plan.cells[pair + 1].combination)
            #expect(plan.cells[pair].direction != plan.cells[pair + 1].direction)
            #expect(plan.cells[pair + 1].transition.kind == .same)
        }
        // 3 configurations x 3 repetitions: one create, then at most one recreate per combination and repetition.
        #expect(plan.cells.filter { $0.transition.kind == .recreate }.count <= 8)
    }

    @Test("the generator is SplitMix64 as published (Vigna's splitmix64.c gives these for seeds 0 and 42)")
    func splitMix64() {
        var zero = SplitMix64(seed: 0)
        #expect([zero.next(), zero.next(), zero.next()] == [16_294_208_416_658_607_535, 7_960_286_522_194_355_700, 487_617_019_471_545_679])
        var answer = SplitMix64(seed: 42)
        #expect(answer.next() == 13_679_457_532_755_275_413)
        var bounded = SplitMix64(seed: 1)
        #expect((0..<1000).map { _ in bounded.next(below: 6) }.allSatisfy { (0..<6).contains($0) })
    }

    // MARK: Transitions

    @Test("the first cell creates every domain")
    func firstCellCreates() throws {
        let plan = try plan(Experiment.paper.table3)
        #expect(plan.cells[0].transition == CellTransition(kind: .create, changes: ["iovm0, iovm1, guest1, guest2, guest3, guest4"]))
    }

    @Test("Table 3: Default to Core Pinning is live: pinning and weights")
    func table3IsLive() throws {
        let plan = try plan(Experiment.paper.table3)
        let defaults = try combination(plan) { $0.variant == "Default" }
        let pinned = try combination(plan) { $0.variant == "Core Pinning" }
        let transition = CellTransition.between((defaults, .rx), (pinned, .rx))
        #expect(transition.kind == .live)
        #expect(
            transition.changes == [
                "iovm0 pin any -> 3", "iovm0 weight 256 -> 512", "iovm1 pin any -> 2", "iovm1 weight 256 -> 512",
                "guest1 pin any -> 0-1", "guest2 pin any -> 0-1", "guest3 pin any -> 0-1", "guest4 pin any -> 0-1",
            ])
    }

    @Test("Figs. 8/9: another static assignment of the same NICs is live; another NIC count recreates")
    func placementIsLiveNICsRecreate() throws {
        let plan = try plan(Experiment.paper.figures8and9)
        let coLocate = try combination(plan) { $0.placement == "co-locate" && $0.nics == 3 }
        let separate = try combination(plan) { $0.placement == "separate" && $0.nics == 3 }
        let live = CellTransition.between((coLocate, .rx), (separate, .tx))
        #expect(live.kind == .live)
        #expect(live.changes == ["guest1 pin 3 -> 2", "guest2 pin 2 -> 1", "guest3 pin 1 -> 3", "direction Rx -> Tx"])

        let oneNIC = try combination(plan) { $0.placement == "co-locate" && $0.nics == 1 }
        let recreate = CellTransition.between((coLocate, .rx), (oneNIC, .rx))
        #expect(recreate.kind == .recreate)
        #expect(recreate.changes == ["NICs 3 -> 1", "destroy iovm1, iovm2, guest2, guest3"])
    }

    @Test("Figs. 6/7 and 12/13: another configuration recreates, naming it")
    func configurationRecreates() throws {
        let figures6and7 = try plan(Experiment.paper.figures6and7)
        let monolithic = try combination(figures6and7) { $0.configuration == "monolithic" && $0.nics == 3 }
        let centralized = try combination(figures6and7) { $0.configuration == "centralized" && $0.nics == 3 }
        let transition = CellTransition.between((monolithic, .tx), (centralized, .tx))
        #expect(transition.kind == .recreate)
        #expect(
            transition.changes == [
                "configuration monolithic -> centralized", "destroy iovm0", "recreate guest1, guest2, guest3",
            ])

        let figures12and13 = try plan(Experiment.paper.figures12and13)
        let hybrid = try combination(figures12and13) { $0.configuration == "hybrid(2)" }
        let single = try combination(figures12and13) { $0.configuration == "monolithic" }
        let back = CellTransition.between((hybrid, .rx), (single, .rx))
        #expect(back.kind == .recreate)
        #expect(back.changes == ["configuration hybrid(2) -> monolithic", "destroy iovm1", "recreate iovm0, guest1, guest2, guest3"])
    }

    @Test("Figs. 10/11: static to credit is live: the domains leave the rtds cpupool and are unpinned")
    func schedulerIsLive() throws {
        let plan = try plan(Experiment.paper.figures10and11)
        #expect(plan.poolZeroScheduler == "credit")
        let fixed = try combination(plan) { $0.variant == "static" && $0.nics == 2 }
        let credit = try combination(plan) { $0.variant == "credit" && $0.nics == 2 }
        #expect(fixed.settings.scheduler == "rtds")
        #expect(fixed.plan.cpupools == [CPUPoolSpec(name: "iovm-rtds", scheduler: "rtds", cpus: [1, 2, 3])])
        let transition = CellTransition.between((fixed, .rx), (credit, .rx))
        #expect(transition.kind == .live)
        #expect(
            transition.changes == [
                "iovm0 pool iovm-rtds -> Pool-0", "iovm0 pin 3 -> any", "guest1 pool iovm-rtds -> Pool-0", "guest1 pin 2 -> any",
                "guest2 pool iovm-rtds -> Pool-0", "guest2 pin 1 -> any", "cpupool iovm-rtds removed",
            ])
    }

    @Test("another IOVM image recreates the IOVMs and the guests they back, with the memory that changes")
    func imageRecreates() throws {
        let experiment = Experiment("images") {
            Base(ExperimentDSLTests.base)
            Vary(.iovmImage([.minimal, .stock(kernel: "/boot/vmlinuz", ramdisk: "/boot/initrd.img", disks: ["phy:/dev/vdb,xvda,r"], memory: 512)]))
            Directions(.rx)
            Timing(repetitions: 1)
        }
        let plan = try plan(experiment)
        #expect(plan.combinations.map(\.settings.image) == ["minimal", "stock"])
        #expect(plan.combinations[1].plan.iovms[0].kernel == "/boot/vmlinuz")
        #expect(plan.combinations[1].plan.iovms[0].image == nil)
        let transition = CellTransition.between((plan.combinations[0], .rx), (plan.combinations[1], .rx))
        #expect(transition.kind == .recreate)
        #expect(transition.changes == ["image minimal -> stock", "iovm0 memory 64 -> 512 MiB", "recreate iovm0, guest1, guest2, guest3"])
    }

    @Test("cells of one combination differ only in the workload")
    func sameCombination() throws {
        let plan = try plan(Experiment.paper.table3)
        let one = plan.combinations[0]
        #expect(CellTransition.between((one, .rx), (one, .tx)) == CellTransition(kind: .same, changes: ["direction Rx -> Tx"]))
        #expect(CellTransition.between((one, .tx), (one, .tx)) == CellTransition(kind: .same, changes: ["nothing changes"]))
    }

    @Test("the estimate is cells x (warm-up + duration) plus the assumed cost of each recreation and live change")
    func estimate() throws {
        let plan = try plan(Experiment.paper.table3)
        let recreations = plan.cells.filter { $0.transition.kind == .create || $0.transition.kind == .recreate }.count
        let live = plan.cells.filter { $0.transition.kind == .live }.count
        #expect(recreations == 1)  // Table 3 never recreates: only the first cell creates
        #expect(plan.estimate.measuringSeconds == 12 * 70)
        #expect(plan.estimate.recreatingSeconds == 90)
        #expect(plan.estimate.liveSeconds == Double(live) * 2)
        #expect(plan.estimate.totalSeconds == 12 * 70 + 90 + Double(live) * 2)
    }
}
