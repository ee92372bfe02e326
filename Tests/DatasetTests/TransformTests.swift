import Engine
import Foundation
import XCTest

@testable import Dataset

/// The official train/test transforms, their determinism, and independence from ranks and workers.
final class TransformTests: XCTestCase {
    func testLevelsAreTorchvisionsNormalisation() {
        XCTAssertEqual(ImageTransforms.levels[0], -1)
        XCTAssertEqual(ImageTransforms.levels[255], 1)
        XCTAssertEqual(ImageTransforms.levels[128], (Float(128) / 255 - 0.5) / 0.5)
        // torch.arange(256, dtype=uint8).float().div(255).sub(0.5).div(0.5), printed as hex by torch 2.x:
        XCTAssertEqual(ImageTransforms.levels[128], 0x1.0102p-8)
        XCTAssertEqual(ImageTransforms.levels[1], -0x1.fbfbfcp-1)
        XCTAssertEqual(ImageTransforms.levels[254], 0x1.fbfbfcp-1)
    }

    /// Train transform = flip (first draw) → resize to S+30 → crop at (left, top) (next two draws).
    func testTrainTransformIsFlipResizeCrop() {
        let im = testImage(40, 33)
        for seed in UInt64(0)..<8 {
            var rng = RandomGenerator(seed: seed)
            let t = ImageTransforms.train(im, size: 16, rng: &rng)
            XCTAssertEqual(t.shape, [3, 16, 16])
            var r2 = RandomGenerator(seed: seed)
            let flip = r2.uniform() < 0.5
            let top = r2.int(31)
            let left = r2.int(31)
            let ref = (flip ? im.flippedHorizontally() : im).resizedBilinear(width: 46, height: 46)
                .cropped(left: left, top: top, width: 16, height: 16)
            XCTAssertEqual(ImageTransforms.toImage(t), ref, "seed \(seed)")
            XCTAssertEqual(rng, r2, "the transform draws exactly three numbers")
        }
    }

    func testTestTransformIsResize() {
        let im = testImage(50, 20)
        let t = ImageTransforms.test(im, size: 12)
        XCTAssertEqual(t.shape, [3, 12, 12])
        let ref = im.resizedBilinear(width: 12, height: 12)
        XCTAssertEqual(t[0], ImageTransforms.levels[Int(ref.pixels[0])])
        XCTAssertEqual(t[144], ImageTransforms.levels[Int(ref.pixels[1])])  // G plane
        XCTAssertEqual(ImageTransforms.toImage(t), ref)
        XCTAssertTrue(t.array.allSatisfy { $0 >= -1 && $0 <= 1 })
    }

    func testFlipAndCropOffsetsAreUniformish() {
        var flips = 0
        var tops = Set<Int>()
        for i in 0..<400 {
            var rng = ImageFolderDataset.generator(seed: 3, epoch: 0, index: i, domainTag: 0)
            if rng.uniform() < 0.5 { flips += 1 }
            tops.insert(rng.int(31))
        }
        XCTAssertTrue((150...250).contains(flips), "\(flips) flips of 400")
        XCTAssertEqual(tops, Set(0...30))
    }

    func makeDataset(_ n: Int, tag: UInt64 = 0) throws -> ImageFolderDataset {
        let dir = try temporaryFolder(self)
        for i in 0..<n {
            try writeFile(dir, String(format: "%02d.png", i), try pngBytes(testImage(20 + i, 18, salt: i)))
        }
        return try ImageFolderDataset(folder: dir.path, domainTag: tag)
    }

    func testSamplesDependOnSeedEpochIndexAndDomainOnly() throws {
        let ds = try makeDataset(3)
        let other = try makeDataset(3, tag: 1)
        let a = try ds.sample(index: 1, epoch: 4, seed: 9, train: true, size: 8).0.array
        XCTAssertEqual(a, try ds.sample(index: 1, epoch: 4, seed: 9, train: true, size: 8).0.array)
        var differ = 0
        for e in 0..<8 where try ds.sample(index: 1, epoch: e, seed: 9, train: true, size: 8).0.array != a {
            differ += 1
        }
        XCTAssertGreaterThanOrEqual(differ, 6, "other epochs draw other flips and crops")
        let otherDomain = (0..<8).filter { e in
            (try? ds.sample(index: 1, epoch: e, seed: 9, train: true, size: 8).0.array)
                != (try? other.sample(index: 1, epoch: e, seed: 9, train: true, size: 8).0.array)
        }
        XCTAssertGreaterThanOrEqual(otherDomain.count, 5, "the domain tag changes the stream")
        // Test samples have no randomness.
        XCTAssertEqual(
            try ds.sample(index: 2, epoch: 0, seed: 1, train: false, size: 8).0.array,
            try ds.sample(index: 2, epoch: 7, seed: 2, train: false, size: 8).0.array)
    }

    func testPermutationAndShardRule() {
        let p = EpochOrder.permutation(count: 50, seed: 1, epoch: 0)
        XCTAssertEqual(p.sorted(), Array(0..<50))
        XCTAssertEqual(p, EpochOrder.permutation(count: 50, seed: 1, epoch: 0))
        XCTAssertNotEqual(p, EpochOrder.permutation(count: 50, seed: 1, epoch: 1))
        XCTAssertNotEqual(p, EpochOrder.permutation(count: 50, seed: 2, epoch: 0))
        XCTAssertEqual(EpochOrder.shard([10, 11, 12, 13, 14], rank: 1, worldSize: 2), [11, 13])
        XCTAssertEqual(EpochOrder.shard([10, 11, 12, 13, 14], rank: 0, worldSize: 2), [10, 12, 14])
        let shards = (0..<3).flatMap { EpochOrder.shard(p, rank: $0, worldSize: 3) }
        XCTAssertEqual(shards.sorted(), Array(0..<50))
    }

    /// A global step holds the same samples (same pixels) whether 1, 2 or 4 ranks share it.
    func testGlobalBatchIsIndependentOfWorldSize() throws {
        let ds = try makeDataset(7)
        let order = EpochOrder(count: ds.count, seed: 11, tag: ds.domainTag)
        let globalBatch = 4
        for step in 0..<5 {  // crosses epoch boundaries (7 images, 4 per step)
            var byWorld: [[String: [Float]]] = []
            for world in [1, 2, 4] {
                var samples: [String: [Float]] = [:]
                for rank in 0..<world {
                    let items = order.batchItems(
                        step: step, batchSize: globalBatch / world, rank: rank, worldSize: world)
                    let b = try ds.batch(items, seed: 11, train: true, size: 8)
                    XCTAssertEqual(b.images.shape, [globalBatch / world, 3, 8, 8])
                    for (j, item) in items.enumerated() {
                        let n = 3 * 8 * 8
                        samples["\(item.epoch)/\(item.index)"] = Array(b.images.array[(j * n)..<((j + 1) * n)])
                    }
                }
                byWorld.append(samples)
            }
            XCTAssertEqual(byWorld[0].count, globalBatch)
            XCTAssertEqual(byWorld[0], byWorld[1], "step \(step)")
            XCTAssertEqual(byWorld[0], byWorld[2], "step \(step)")
        }
        // The stream walks whole epochs: positions 0..<7 are one permutation.
        XCTAssertEqual((0..<7).map { order.item(at: $0).index }.sorted(), Array(0..<7))
        XCTAssertEqual(order.item(at: 7).epoch, 1)
    }
}
