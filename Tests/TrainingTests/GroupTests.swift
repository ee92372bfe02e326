import Dataset
import Distributed
import Engine
import Foundation
import UGATIT
import XCTest

@testable import Training

/// Face2Webtoon's additions (spec C.1-C.3): group feeding, group classification loss, selective backprop.
final class GroupTests: XCTestCase {
    var work = ""

    override func setUpWithError() throws {
        work = NSTemporaryDirectory() + "f2w-groups-\(UUID().uuidString)"
        try DemoData.generate(
            to: URL(fileURLWithPath: "\(work)/data"), size: 36, trainPerDomain: 40, testPerDomain: 4, seed: 5)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: work) }

    func trainer(
        groups: [Int], bottleneck: BottleneckUpdate = .group0, iterations: Int = 4
    ) throws -> (Trainer, FolderBatches) {
        var config = TrainConfig(
            model: ModelConfig(imageSize: 32, ch: 4, blocks: 1, globalLayers: 4, localLayers: 3, groups: 4),
            iterations: iterations, sampleEvery: 0, saveEvery: 0)
        config.groups = GroupConfig(selected: groups)
        config.bottleneck = bottleneck
        config.ada.mode = .off
        let source = try FolderBatches(
            data: "\(work)/data", imageSize: 32, batchSize: 1, seed: 0, iterations: iterations,
            groups: config.groups, warnings: DataWarnings())
        let t = try Trainer(
            config: config, resultDir: "\(work)/run", source: source,
            parallel: DataParallel(comm: SingleRankCommunicator())
        ) { _ in }
        return (t, source)
    }

    func snapshot(_ ps: [Parameter], _ opt: Adam) -> [[Float]] {
        ps.flatMap { p -> [[Float]] in
            let i = opt.parameters.firstIndex { $0 === p }!
            return [p.value.array, opt.m[i].array, opt.v[i].array, [Float(opt.steps[i])]]
        }
    }

    /// `group0`: a step of another group leaves the encoder residual blocks and their Adam state bit for bit as they
    /// were, while everything else moves; a group-0 step moves them.
    func testBottleneckMovesOnlyOnBaseGroupSteps() throws {
        let (t, source) = try trainer(groups: [0, 1])
        let blocks = t.model.genA2B.encoderBlockParameters + t.model.genB2A.encoderBlockParameters
        let others = t.model.generators.parameters.filter { p in !blocks.contains { $0 === p } }
        var before = snapshot(blocks, t.step.gOptimizer)
        var otherBefore = others.map { $0.value.array }
        for s in 1...2 {
            XCTAssertEqual(source.groupLabel(step: s), s == 1 ? 0 : 1)
            let (a, b) = try source.batch(step: s)
            _ = try t.synchronizedStep(s, a, b)
            let after = snapshot(blocks, t.step.gOptimizer)
            if s == 1 {
                XCTAssertNotEqual(after, before, "group-0 step must update the bottleneck")
            } else {
                XCTAssertEqual(
                    after, before, "group-1 step must leave bottleneck values, moments and step counts unchanged")
            }
            XCTAssertNotEqual(
                others.map { $0.value.array }, otherBefore, "the rest of the generator moves on every step")
            before = after
            otherBefore = others.map { $0.value.array }
        }
    }

    func testFrozenAndAlwaysModes() throws {
        let (frozen, _) = try trainer(groups: [0, 1], bottleneck: .frozen)
        XCTAssertEqual(frozen.frozenBottleneck(group: 0).count, 4)  // 1 block × 2 convs × 2 generators
        let (always, _) = try trainer(groups: [0, 1], bottleneck: .always)
        XCTAssertTrue(always.frozenBottleneck(group: 1).isEmpty)
    }

    func testRoundRobinAndProportionalSchedules() {
        let rr = FolderBatches.schedule(iterations: 9, sizes: [100, 10, 5], sampling: .roundRobin, seed: 0)
        XCTAssertEqual(rr.map(\.group), [0, 1, 2, 0, 1, 2, 0, 1, 2])
        XCTAssertEqual(rr.map(\.occurrence), [0, 0, 0, 1, 1, 1, 2, 2, 2])
        let pr = FolderBatches.schedule(iterations: 20000, sizes: [600, 300, 100], sampling: .proportional, seed: 1)
        let share = (0..<3).map { g in Double(pr.filter { $0.group == g }.count) / 20000 }
        XCTAssertEqual(share[0], 0.6, accuracy: 0.02)
        XCTAssertEqual(share[1], 0.3, accuracy: 0.02)
        XCTAssertEqual(share[2], 0.1, accuracy: 0.02)
        XCTAssertEqual(
            pr.map(\.group),
            FolderBatches.schedule(iterations: 20000, sizes: [600, 300, 100], sampling: .proportional, seed: 1).map(
                \.group))
    }

    func testStepsDrawBothDomainsFromTheSameGroupAndSubsetsKeepLabels() throws {
        let source = try FolderBatches(
            data: "\(work)/data", imageSize: 32, batchSize: 2, seed: 3, iterations: 6,
            groups: GroupConfig(selected: [1, 3]), warnings: DataWarnings())
        for s in 1...6 {
            let (a, b) = try source.batch(step: s)
            let g = s % 2 == 1 ? 1 : 3
            XCTAssertEqual(a.groups, [g, g])
            XCTAssertEqual(b.groups, [g, g])
        }
    }

    func testEmptySelectedGroupIsRefusedBeforeTraining() throws {
        try FileManager.default.removeItem(atPath: "\(work)/data/trainB/2")
        try FileManager.default.createDirectory(atPath: "\(work)/data/trainB/2", withIntermediateDirectories: true)
        XCTAssertThrowsError(
            try FolderBatches(
                data: "\(work)/data", imageSize: 32, batchSize: 1, seed: 0, iterations: 2,
                groups: GroupConfig(selected: [0, 2]), warnings: DataWarnings())
        ) { e in
            XCTAssertTrue("\(e)".contains("group 2 is empty in trainB"), "\(e)")
        }
    }

    func testLabelsFromCSV() throws {
        let scan = try FolderScan(folder: "\(work)/data/trainA")
        let csv =
            "file,label\n" + scan.files.enumerated().map { "\($0.element),\($0.offset % 3)" }.joined(separator: "\n")
        try csv.write(toFile: "\(work)/a.csv", atomically: true, encoding: .utf8)
        let relabeled = try scan.relabeled(csv: "\(work)/a.csv")
        XCTAssertEqual(relabeled.groups, scan.files.indices.map { $0 % 3 })
        try "file,label\n\(scan.files[0]),1\n".write(toFile: "\(work)/short.csv", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try scan.relabeled(csv: "\(work)/short.csv")) {
            XCTAssertTrue("\($0)".contains("no label for"), "\($0)")
        }
    }

    /// The group terms are computed and logged; with the loss off they do not change any gradient.
    func testGroupLossEntersGradientsOnlyWhenOn() {
        let config = ModelConfig(imageSize: 32, ch: 4, blocks: 1, globalLayers: 4, localLayers: 3, groups: 4)
        var rng = RandomGenerator(seed: 9)
        let a = rng.uniformTensor([2, 3, 32, 32], -1, 1)
        let b = rng.uniformTensor([2, 3, 32, 32], -1, 1)
        func grads(_ on: Bool?, _ w: Float = 1) -> ([Float], LossValues) {
            let m = UGATITModel(config: config, seed: 2)
            var weights = LossWeights()
            weights.useGroupLoss = on ?? true
            weights.groupG = w
            let s = UGATITStep(model: m, weights: weights)
            let v = s.generatorGradients(
                realA: a, realB: b, labelsA: on == nil ? nil : [1, 2], labelsB: on == nil ? nil : [1, 2])
            return (m.generators.grads.array, v)
        }
        let (plain, pv) = grads(nil)
        let (off, ov) = grads(false)
        let (on, onv) = grads(true)
        XCTAssertNil(pv["g.group_B"])
        XCTAssertNotNil(ov["g.group_B"])
        XCTAssertNotNil(ov["g.group_acc_fake_B"])
        XCTAssertEqual(off, plain, "logged but not trained")
        XCTAssertNotEqual(on, plain)
        XCTAssertEqual(onv["g.loss"]!, pv["g.loss"]! + onv["g.group_B"]!, accuracy: 1e-2)
    }

    func testInitFromLoadsMatchingTensorsAndListsNewOnes() throws {
        let basic = UGATITModel(
            config: ModelConfig(imageSize: 32, ch: 4, blocks: 1, globalLayers: 4, localLayers: 3), seed: 8)
        try TrainingCheckpoint.save(
            root: "\(work)/basic", config: TrainConfig(model: basic.config, iterations: 1),
            model: basic, step: nil, state: .init(step: 10, imagesSeen: 10))
        let (t, _) = try trainer(groups: [0, 1, 2, 3])
        let (fresh, unused) = try t.initialize(from: "\(work)/basic")
        XCTAssertEqual(unused, [], "a model without groups has no tensor the grouped model lacks")
        XCTAssertEqual(
            Set(fresh.filter { !$0.hasSuffix("_u") && !$0.hasSuffix("_v") }),
            [
                "disGB.group_classfier.bias", "disGB.group_classfier.weight_orig",
                "disLB.group_classfier.bias", "disLB.group_classfier.weight_orig",
            ])
        XCTAssertEqual(t.model.generators.values.array, basic.generators.values.array)
        // the other way, a grouped model into one without groups: its group heads are named as not used
        try TrainingCheckpoint.save(
            root: "\(work)/grouped", config: t.config, model: t.model, step: nil, state: .init(step: 1, imagesSeen: 1))
        let plain = UGATITModel(config: basic.config, seed: 9)
        let back = try Trainer(
            config: TrainConfig(model: plain.config, iterations: 1), resultDir: "\(work)/run2",
            source: try FolderBatches(
                data: "\(work)/data", imageSize: 32, batchSize: 1, seed: 0, iterations: 1, warnings: DataWarnings()),
            parallel: DataParallel(comm: SingleRankCommunicator())
        ) { _ in }
        let (none, dropped) = try back.initialize(from: "\(work)/grouped")
        XCTAssertEqual(none, [])
        XCTAssertTrue(dropped.contains("disGB.group_classfier.bias"), "\(dropped)")
    }
}
