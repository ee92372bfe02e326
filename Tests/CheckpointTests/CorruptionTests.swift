import Foundation
import XCTest

@testable import Checkpoint

/// Each kind of damage gives its own error, naming the file (and shard and tensor where they apply).
final class CorruptionTests: XCTestCase {
    private var root = ""
    private var dir = ""

    override func setUpWithError() throws {
        root = makeTemporaryDirectory(self)
        try saveSample(root, step: 10)
        dir = Checkpoints.stepDirectory(root: root, step: 10)
    }

    /// The shard-file offset of tensor `name`'s first frame.
    private func frameOffset(_ name: String) throws -> Int {
        let e = try Checkpoints.open(dir).entry(name)!
        return Manifest.shardHeaderBytes + e.storedOffset
    }

    func testFlippedByteNamesShardAndTensorBeforeDecompressing() throws {
        let shard = try shardFile(dir, rank: 0)
        try flipByte(shard, at: try frameOffset("genA2B.fc.weight") + 10)
        let r = try Checkpoints.open(root)
        let expected = CheckpointError.shardChecksumMismatch(shard: 0, path: shard, tensor: "genA2B.fc.weight")
        XCTAssertEqual(checkpointError { try r.verify() }, expected)
        XCTAssertEqual(checkpointError { _ = try r.tensor("genA2B.fc.weight") }, expected)
        XCTAssertNoThrow(try r.tensor("genA2B.conv.weight"))  // other tensors still readable
    }

    func testFlippedHeaderByteIsAShardChecksumErrorWithoutTensor() throws {
        let shard = try shardFile(dir, rank: 0)
        try flipByte(shard, at: 20)  // reserved header field: only the whole-file checksum notices
        XCTAssertEqual(
            checkpointError { try Checkpoints.open(root).verify() },
            .shardChecksumMismatch(shard: 0, path: shard, tensor: nil))
    }

    func testWrongTensorChecksumNamesShardAndTensor() throws {
        try editManifest(dir) { m in
            m.tensors[m.tensors.firstIndex { $0.name == "rng.words" }!].xxh64 = "0123456789abcdef"
        }
        let shard = try shardFile(dir, rank: 0)
        XCTAssertEqual(
            checkpointError { try Checkpoints.open(root).verify() },
            .tensorChecksumMismatch(shard: 0, path: shard, tensor: "rng.words"))
    }

    func testGarbageFrameWithMatchingChecksumsIsADecompressionError() throws {
        let shard = try shardFile(dir, rank: 0)
        var bytes = try readFile(shard)
        let e = try Checkpoints.open(dir).entry("genA2B.conv.weight")!
        let start = Manifest.shardHeaderBytes + e.storedOffset
        for i in start..<start + e.frameBytes[0] { bytes[i] = 0xEE }
        try writeFile(shard, bytes)
        try editManifest(dir) { m in
            let i = m.tensors.firstIndex { $0.name == "genA2B.conv.weight" }!
            m.tensors[i].frameXXH64[0] = Hex.string(XXH64.hash(Array(bytes[start..<start + e.frameBytes[0]])))
            m.shards[0].xxh64 = Hex.string(XXH64.hash(bytes))
        }
        guard
            case .decompressionFailed(let s, let p, let t, _)? = checkpointError({ try Checkpoints.open(root).verify() }
            )
        else { return XCTFail() }
        XCTAssertEqual([String(s), p, t], ["0", shard, "genA2B.conv.weight"])
    }

    func testMissingShard() throws {
        let shard = try shardFile(dir, rank: 0)
        try FileManager.default.removeItem(atPath: shard)
        XCTAssertEqual(checkpointError { try Checkpoints.open(root).verify() }, .shardMissing(shard: 0, path: shard))
        XCTAssertEqual(
            checkpointError { _ = try Checkpoints.open(root).tensor("genA2B.fc.bias") },
            .shardMissing(shard: 0, path: shard))
    }

    func testTruncatedShard() throws {
        let shard = try shardFile(dir, rank: 0)
        let bytes = try readFile(shard)
        try writeFile(shard, Array(bytes.dropLast(100)))
        XCTAssertEqual(
            checkpointError { try Checkpoints.open(root).verify() },
            .shardSizeMismatch(shard: 0, path: shard, expected: bytes.count, found: bytes.count - 100))
    }

    func testShardFromAnotherSaveIsRejectedByItsHeader() throws {
        let shard = try shardFile(dir, rank: 0)
        var bytes = try readFile(shard)
        bytes[24] ^= 1  // save id
        try writeFile(shard, bytes)
        try editManifest(dir) { $0.shards[0].xxh64 = Hex.string(XXH64.hash(bytes)) }
        guard case .shardHeaderInvalid(0, shard, _)? = checkpointError({ try Checkpoints.open(root).verify() }) else {
            return XCTFail()
        }
    }

    func testTruncatedManifest() throws {
        let path = dir + "/manifest.json"
        try writeFile(path, Array(try readFile(path).prefix(300)))
        XCTAssertEqual(
            checkpointError { _ = try Checkpoints.open(root) },
            .manifestCorrupt(path: path, reason: "not a JSON object (truncated?)"))
    }

    func testManifestThatIsNotJSONOrEmpty() throws {
        let path = dir + "/manifest.json"
        try writeFile(path, Array("\u{0}\u{1}garbage".utf8))
        guard case .manifestCorrupt(path, _)? = checkpointError({ _ = try Checkpoints.open(root) }) else {
            return XCTFail()
        }
        try writeFile(path, [])
        XCTAssertEqual(
            checkpointError { _ = try Checkpoints.open(root) }, .manifestCorrupt(path: path, reason: "empty file"))
    }

    func testUnknownSchemaVersion() throws {
        try editManifestJSON(dir) {
            $0["schema_version"] = 2
            $0["tensors"] = "a future layout"
        }
        XCTAssertEqual(
            checkpointError { _ = try Checkpoints.open(root) },
            .unsupportedSchema(path: dir + "/manifest.json", found: 2, supported: 1))
    }

    func testUnknownCodecVersion() throws {
        try editManifest(dir) { $0.codec.version = 2 }
        guard case .manifestCorrupt(_, let reason)? = checkpointError({ _ = try Checkpoints.open(root) }) else {
            return XCTFail()
        }
        XCTAssertTrue(reason.contains("codec zstd version 2"), reason)
    }

    func testShardCountDifferentFromWorldSize() throws {
        try editManifest(dir) { $0.worldSize = 2 }
        XCTAssertEqual(
            checkpointError { _ = try Checkpoints.open(root) },
            .shardCountMismatch(path: dir + "/manifest.json", worldSize: 2, shards: 1))
    }

    func testNoCheckpointAtAll() throws {
        let empty = makeTemporaryDirectory(self)
        XCTAssertEqual(checkpointError { _ = try Checkpoints.open(empty) }, .noCheckpoint(path: empty))
        XCTAssertEqual(
            checkpointError { _ = try Checkpoints.open(empty + "/never") }, .noCheckpoint(path: empty + "/never"))
        XCTAssertNil(Checkpoints.newestValid(root: empty))
    }

    func testStepDirectoryWithoutManifest() throws {
        try FileManager.default.removeItem(atPath: dir + "/manifest.json")
        XCTAssertEqual(checkpointError { _ = try Checkpoints.open(dir) }, .manifestMissing(directory: dir))
        XCTAssertEqual(checkpointError { _ = try Checkpoints.open(root) }, .manifestMissing(directory: dir))
    }

    func testBadLatest() throws {
        try writeFile(root + "/LATEST", Array("../../etc\n".utf8))
        guard case .latestInvalid(root, _)? = checkpointError({ _ = try Checkpoints.open(root) }) else {
            return XCTFail()
        }
        try writeFile(root + "/LATEST", Array("step_00000099\n".utf8))
        guard case .latestInvalid(root, _)? = checkpointError({ _ = try Checkpoints.open(root) }) else {
            return XCTFail()
        }
        try FileManager.default.removeItem(atPath: root + "/LATEST")
        XCTAssertEqual(
            checkpointError { _ = try Checkpoints.open(root) }, .latestInvalid(root: root, reason: "LATEST is missing"))
    }

    func testNewestValidSkipsACorruptNewerCheckpoint() throws {
        try saveSample(root, step: 20, seed: 2)
        let newer = Checkpoints.stepDirectory(root: root, step: 20)
        try flipByte(try shardFile(newer, rank: 0), at: 40)
        let found = try XCTUnwrap(Checkpoints.newestValid(root: root))
        XCTAssertEqual(found.reader.manifest.step, 10)
        XCTAssertEqual(found.skipped.map(\.directory), [newer])
        try assertMatchesSample(found.reader)
    }

    func testCorruptMergedFiles() throws {
        let merged = root + "/m.ckpt"
        try Checkpoints.merge(from: root, to: merged)
        let good = try readFile(merged)
        func damaged(_ change: (inout [UInt8]) -> Void) throws -> CheckpointError? {
            var b = good
            change(&b)
            try writeFile(merged, b)
            return checkpointError { try Checkpoints.open(merged).verify() }
        }
        guard case .mergedFileInvalid? = try damaged({ $0[16] ^= 1 }) else { return XCTFail("header") }
        guard case .mergedFileInvalid? = try damaged({ $0.removeLast() }) else { return XCTFail("truncated") }
        guard case .manifestCorrupt(_, "manifest checksum mismatch")? = try damaged({ $0[$0.count - 5] ^= 1 }) else {
            return XCTFail("manifest")
        }
        guard case .shardChecksumMismatch(0, merged, .some(_))? = try damaged({ $0[MergedFile.headerBytes + 3] ^= 1 })
        else { return XCTFail("data") }
        guard case .notACheckpoint? = try damaged({ $0[0] = 0 }) else { return XCTFail("magic") }
    }

    func testErrorMessagesNameWhatToLookAt() {
        let e = CheckpointError.shardChecksumMismatch(
            shard: 1, path: "/ck/step_1/shard-00001", tensor: "genA2B.fc.weight")
        XCTAssertEqual(
            e.description,
            "shard 1: /ck/step_1/shard-00001: stored bytes fail their checksum in tensor genA2B.fc.weight")
        XCTAssertEqual(
            CheckpointError.saveFailed([1: "disk full", 0: "x"]).description,
            "checkpoint save failed (any earlier checkpoint is kept): rank 0: x; rank 1: disk full")
    }
}
