import Distributed
import Engine
import Foundation
import XCTest

@testable import Checkpoint

/// The collective save with threads as ranks (`ThreadWorld`): shard balance, agreement on failures,
/// and merge order with more than 10 shards.
final class MultiRankInProcessTests: XCTestCase {
    override func tearDown() { FaultInjection.writeFault = nil }

    /// Weights of distinct sizes so the plan has something to balance.
    private func weights() -> [CheckpointTensor] {
        var rng = RandomGenerator(seed: 5)
        return (0..<30).map { CheckpointTensor("layer\($0).weight", rng.normalTensor([500 + 97 * $0], std: 0.02)) }
            + [CheckpointTensor("steps", int64: [1, 2, 3])]
    }

    private func save(
        _ root: String, step: Int, ranks: Int, tensors: @escaping (Int) -> [CheckpointTensor]
    ) -> [Result<SaveResult, Error>] {
        ThreadWorld(size: ranks).run { comm in
            try Checkpoints.save(
                root: root, step: step, tensors: tensors(comm.rank), manifestFields: sampleFields(), comm: comm,
                options: smallChunks)
        }
    }

    func testEachRankWritesOneBalancedShard() throws {
        let root = makeTemporaryDirectory(self)
        let results = try save(root, step: 1, ranks: 3) { _ in self.weights() }.map { try $0.get() }
        let dir = Checkpoints.stepDirectory(root: root, step: 1)
        let r = try Checkpoints.open(root)
        XCTAssertEqual(r.manifest.shards.map(\.rank), [0, 1, 2])
        for rank in 0..<3 {
            XCTAssertEqual(
                try FileManager.default.attributesOfItem(atPath: try shardFile(dir, rank: rank))[.size] as? Int,
                r.manifest.shards[rank].compressedBytes)
            XCTAssertEqual(results[rank].localRawBytes, r.manifest.shards[rank].uncompressedBytes)
        }
        let raw = r.manifest.shards.map(\.uncompressedBytes)
        let largest = weights().map(\.byteCount).max()!
        XCTAssertLessThanOrEqual(raw.max()! - raw.min()!, largest, "shards \(raw)")
        XCTAssertEqual(Set(results.map(\.rawBytes)), [raw.reduce(0, +)], "every rank reports the same totals")
        try r.verify()
        for t in weights() { XCTAssertEqual(try r.bytes(t.name), t.withBytes { Array($0) }) }
    }

    func testOneRankFailingGivesEveryRankTheSameMapAndKeepsLatest() throws {
        let root = makeTemporaryDirectory(self)
        _ = try save(root, step: 1, ranks: 4) { _ in self.weights() }.map { try $0.get() }
        FaultInjection.writeFault = { path, _, _ in path.contains("/shard-00002-of-00004-") ? ENOSPC : nil }
        let results = save(root, step: 2, ranks: 4) { _ in self.weights() }
        let errors = results.map { r -> CheckpointError? in
            if case .failure(let e) = r { return e as? CheckpointError }
            return nil
        }
        guard case .saveFailed(let map)? = errors[0] else { return XCTFail("\(results)") }
        XCTAssertEqual(Array(map.keys), [2])
        XCTAssertTrue(map[2]!.contains("No space left on device"))
        XCTAssertEqual(Set(errors.map { $0?.description ?? "none" }).count, 1, "all ranks report the same map")
        XCTAssertEqual(latest(root), "step_00000001")
        let failed = Checkpoints.stepDirectory(root: root, step: 2)
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: failed), "failed save cleaned up its shards and directory")
        try Checkpoints.open(root).verify()
    }

    func testDifferentTensorListsAreRefusedOnEveryRank() throws {
        let root = makeTemporaryDirectory(self)
        let results = save(root, step: 1, ranks: 3) { rank in
            rank == 1 ? Array(self.weights().dropLast()) : self.weights()
        }
        for r in results {
            guard case .failure(let e) = r, case .saveFailed(let map)? = e as? CheckpointError else {
                return XCTFail("\(r)")
            }
            XCTAssertEqual(map, [1: "tensor list, step or options differ from rank 0's"])
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root), [], "nothing written")
    }

    /// 12 shards: "shard-00010" sorts before "shard-00002" as text, so a merge that ordered by file name
    /// would interleave wrongly; merge follows the rank in the manifest.
    func testTwelveRankSaveMergesInRankOrderAndLoadsOnAnyWorld() throws {
        let root = makeTemporaryDirectory(self)
        _ = try save(root, step: 9, ranks: 12) { _ in self.weights() }.map { try $0.get() }
        let merged = root + "/all.ckpt"
        let m = try Checkpoints.merge(from: root, to: merged)
        let starts = m.tensors.sorted { $0.storedOffset < $1.storedOffset }
        let sharded = try Checkpoints.open(root).manifest
        let rankOfName = Dictionary(uniqueKeysWithValues: sharded.tensors.map { ($0.name, $0.shard) })
        XCTAssertEqual(
            starts.map { rankOfName[$0.name]! }, starts.map { rankOfName[$0.name]! }.sorted(),
            "data region in rank order")
        XCTAssertEqual(m.worldSize, 12)
        let single = try Checkpoints.open(merged)
        try single.verify()
        for t in weights() { XCTAssertEqual(try single.bytes(t.name), t.withBytes { Array($0) }) }
        // Five reader "ranks" each load everything from the 12-shard directory.
        for r in ThreadWorld(size: 5).run({ _ in try Checkpoints.open(root).tensor("layer29.weight").array }) {
            XCTAssertEqual(try r.get(), try single.tensor("layer29.weight").array)
        }
    }
}
