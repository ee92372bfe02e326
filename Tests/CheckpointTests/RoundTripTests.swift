import Distributed
import Engine
import Foundation
import XCTest

@testable import Checkpoint

final class RoundTripTests: XCTestCase {
    func testSaveThenOpenRootReturnsEveryTensorAndField() throws {
        let root = makeTemporaryDirectory(self)
        let result = try saveSample(root, step: 1000)
        XCTAssertEqual(result.directory, root + "/step_00001000")
        XCTAssertEqual(latest(root), "step_00001000")
        let r = try Checkpoints.open(root)
        try assertMatchesSample(r)
        let m = r.manifest
        XCTAssertEqual(m.step, 1000)
        XCTAssertEqual(m.imagesSeen, 1234)
        XCTAssertEqual(m.worldSize, 1)
        XCTAssertEqual(m.programVersion, "test-1.0")
        XCTAssertEqual(m.config, sampleFields().config)
        XCTAssertEqual(m.state, sampleFields().state)  // 64-bit integers survive exactly
        XCTAssertGreaterThan(m.tensors.first { $0.name == "genA2B.fc.weight" }!.frameBytes.count, 1)
        XCTAssertEqual(result.rawBytes, sampleTensors().reduce(0) { $0 + $1.byteCount })
        try r.verify()
    }

    /// A checkpoint opened from a live run's folder stays readable when that run's retention (--keep-last) removes
    /// the step meanwhile: the reader holds every shard open from the start.
    func testAnOpenCheckpointSurvivesItsStepBeingRemoved() throws {
        let root = makeTemporaryDirectory(self)
        try saveSample(root, step: 7)
        let r = try Checkpoints.open(root)
        try FileManager.default.removeItem(atPath: root + "/step_00000007")
        try assertMatchesSample(r)
        try r.verify()
    }

    func testTypedReadersAndShapeChecks() throws {
        let root = makeTemporaryDirectory(self)
        try saveSample(root, step: 1)
        let r = try Checkpoints.open(root)
        XCTAssertEqual(try r.int64s("optim.G.steps"), [10, 10, -1])
        XCTAssertEqual(try r.uint64s("rng.words"), [UInt64.max, 0, 12_345_678_901_234_567_890])
        XCTAssertEqual(try r.float64s("ada.p"), [0.125])
        let w = try r.tensor("genA2B.fc.weight")
        XCTAssertEqual(w.shape, [300, 100])
        let into = Tensor(zeros: [300, 100])
        try r.read("genA2B.fc.weight", into: into)
        XCTAssertEqual(into.array, w.array)
        XCTAssertEqual(
            checkpointError { try r.read("genA2B.fc.weight", into: Tensor(zeros: [100, 300])) },
            .tensorMismatch(name: "genA2B.fc.weight", expected: "[100, 300]", found: "[300, 100]"))
        XCTAssertEqual(
            checkpointError { _ = try r.tensor("optim.G.steps") },
            .tensorMismatch(name: "optim.G.steps", expected: "F32", found: "I64"))
        XCTAssertEqual(checkpointError { _ = try r.tensor("nope") }, .missingTensor(name: "nope"))
    }

    func testOpenAcceptsStepDirectoryManifestPathAndMergedFile() throws {
        let root = makeTemporaryDirectory(self)
        try saveSample(root, step: 5)
        let dir = Checkpoints.stepDirectory(root: root, step: 5)
        try assertMatchesSample(try Checkpoints.open(dir))
        try assertMatchesSample(try Checkpoints.open(dir + "/manifest.json"))
        try Checkpoints.merge(from: root, to: root + "/merged.ckpt")
        let merged = try Checkpoints.open(root + "/merged.ckpt")
        try merged.verify()
        try assertMatchesSample(merged)
        XCTAssertEqual(merged.manifest.layout, .merged)
    }

    func testOptionsWithoutShuffleAndOtherLevelsRoundTrip() throws {
        for options in [
            SaveOptions(level: 3, workers: 0, shuffle: false, chunkBytes: 8192),
            SaveOptions(level: 9, workers: 2, chunkBytes: 4096),
        ] {
            let root = makeTemporaryDirectory(self)
            try saveSample(root, step: 1, options: options)
            let r = try Checkpoints.open(root)
            XCTAssertEqual(r.manifest.codec.shuffle, options.shuffle)
            XCTAssertEqual(r.manifest.codec.level, options.level)
            try r.verify()
            try assertMatchesSample(r)
        }
    }

    func testShuffleCompressesWeightsBetter() throws {
        var rng = RandomGenerator(seed: 3)
        let w = [CheckpointTensor("w", rng.normalTensor([250_000], std: 0.02))]
        var stored: [Bool: Int] = [:]
        for shuffle in [false, true] {
            let root = makeTemporaryDirectory(self)
            let r = try Checkpoints.save(
                root: root, step: 1, tensors: w, manifestFields: sampleFields(), comm: SingleRankCommunicator(),
                options: SaveOptions(shuffle: shuffle))
            stored[shuffle] = r.storedBytes
        }
        XCTAssertLessThan(Double(stored[true]!), 0.95 * Double(stored[false]!), "\(stored)")
    }

    func testSecondSaveMovesLatestAndKeepsBoth() throws {
        let root = makeTemporaryDirectory(self)
        try saveSample(root, step: 1, seed: 1)
        try saveSample(root, step: 2, seed: 2)
        XCTAssertEqual(latest(root), "step_00000002")
        try assertMatchesSample(try Checkpoints.open(root), seed: 2)
        try assertMatchesSample(try Checkpoints.open(Checkpoints.stepDirectory(root: root, step: 1)), seed: 1)
    }

    func testResavingAStepReplacesItAndDropsTheOldShard() throws {
        let root = makeTemporaryDirectory(self)
        try saveSample(root, step: 7, seed: 1)
        let dir = Checkpoints.stepDirectory(root: root, step: 7)
        let old = try shardFile(dir, rank: 0)
        try saveSample(root, step: 7, seed: 2)
        XCTAssertFalse(FileManager.default.fileExists(atPath: old))
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".shard") }.count, 1)
        try assertMatchesSample(try Checkpoints.open(root), seed: 2)
    }

    func testRequestProblemsAreRefusedBeforeWriting() throws {
        let root = makeTemporaryDirectory(self)
        let dup = sampleTensors() + [CheckpointTensor("ada.p", float64: [1])]
        let e = checkpointError {
            try Checkpoints.save(
                root: root, step: 1, tensors: dup, manifestFields: sampleFields(), comm: SingleRankCommunicator())
        }
        XCTAssertEqual(e, .saveFailed([0: "tensor name ada.p appears twice"]))
        XCTAssertEqual(
            checkpointError { try saveSample(root, step: 1, options: SaveOptions(chunkBytes: 1000)) },
            .saveFailed([0: "chunkBytes 1000 outside 4096...67108864 or not a multiple of 8"]))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root), [])
    }

    func testJSONValueEncodesTrainerStructs() throws {
        struct State: Codable, Equatable {
            var seed: UInt64
            var p: Double
            var order: [Int]
        }
        let s = State(seed: UInt64.max - 1, p: 0.3, order: [3, 1, 2])
        let v = try JSONValue(encoding: s)
        XCTAssertEqual(v["seed"], .uint(UInt64.max - 1))
        XCTAssertEqual(try v.decode(State.self), s)
    }
}
