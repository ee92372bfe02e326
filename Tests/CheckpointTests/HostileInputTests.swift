import Foundation
import XCTest

@testable import Checkpoint

/// Manifests and merged files crafted to make a reader over-allocate, overflow or escape the directory
/// must be refused by validation, before any buffer is sized from them.
final class HostileInputTests: XCTestCase {
    private var root = ""
    private var dir = ""

    override func setUpWithError() throws {
        root = makeTemporaryDirectory(self)
        try saveSample(root, step: 1)
        dir = Checkpoints.stepDirectory(root: root, step: 1)
    }

    private func assertRefused(
        _ label: String, file: StaticString = #filePath, line: UInt = #line, _ edit: (inout Manifest) -> Void
    ) throws {
        let path = dir + "/manifest.json"
        let original = try readFile(path)
        defer { try? writeFile(path, original) }
        try editManifest(dir, edit)
        switch checkpointError({ _ = try Checkpoints.open(dir) }, file: file, line: line) {
        case .manifestCorrupt?, .shardCountMismatch?: break
        case let other: XCTFail("\(label): got \(String(describing: other))", file: file, line: line)
        }
    }

    private func index(_ m: Manifest, _ name: String) -> Int { m.tensors.firstIndex { $0.name == name }! }

    func testShapesThatOverflowOrLie() throws {
        try assertRefused("overflowing shape") { m in m.tensors[0].shape = [Int.max / 2, 4] }
        try assertRefused("negative dimension") { m in m.tensors[0].shape = [-1, 9408 * -1] }
        try assertRefused("shape disagrees with length") { m in m.tensors[0].shape = [64, 3, 7, 8] }
        try assertRefused("huge claimed tensor") { m in
            let i = self.index(m, "genA2B.fc.bias")
            m.tensors[i].shape = [1 << 40]
            m.tensors[i].length = 4 << 40
            m.shards[0].uncompressedBytes += (4 << 40) - 1200
        }
        try assertRefused("too many dimensions") { m in m.tensors[0].shape = [Int](repeating: 1, count: 40) + [9408] }
    }

    func testOffsetsAndFramesOutsideTheirShard() throws {
        try assertRefused("negative offset") { m in m.tensors[0].offset = -4 }
        try assertRefused("overlapping tensors") { m in m.tensors[1].offset = m.tensors[0].offset }
        try assertRefused("stored bytes past the file") { m in m.tensors[0].storedOffset = m.shards[0].compressedBytes }
        try assertRefused("frame count") { m in
            m.tensors[0].frameBytes.append(10)
            m.tensors[0].frameXXH64.append("0000000000000000")
        }
        try assertRefused("zero-byte frame") { m in m.tensors[0].frameBytes[0] = 0 }
        try assertRefused("frame larger than zstd's bound") { m in m.tensors[0].frameBytes[0] = 1 << 40 }
        try assertRefused("frame too small for its raw size") { m in m.tensors[1].frameBytes[0] = 3 }
        try assertRefused("bad checksum text") { m in m.tensors[0].xxh64 = "xyz" }
        try assertRefused("unknown shard") { m in m.tensors[0].shard = 5 }
    }

    func testShardListAndNames() throws {
        try assertRefused("path traversal") { m in m.shards[0].file = "../../escape.shard" }
        try assertRefused("absolute path") { m in m.shards[0].file = "/etc/passwd" }
        try assertRefused("rank out of order") { m in m.shards[0].rank = 3 }
        try assertRefused("duplicate tensor names") { m in m.tensors[1].name = m.tensors[0].name }
        try assertRefused("chunk size") { m in m.codec.chunkBytes = 1 << 40 }
        try assertRefused("world size") { m in m.worldSize = 0 }
        try assertRefused("state not an object") { m in m.state = .array([]) }
    }

    func testOversizedOrDeeplyNestedManifest() throws {
        let path = dir + "/manifest.json"
        try writeFile(path, Array(String(repeating: "[", count: 100_000).utf8))
        guard case .manifestCorrupt? = checkpointError({ _ = try Checkpoints.open(dir) }) else { return XCTFail() }
        // Larger than the cap: refused from its size, without being read.
        let fh = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try fh.truncate(atOffset: UInt64(Manifest.maxBytes + 1))
        try fh.close()
        guard case .manifestCorrupt(_, let reason)? = checkpointError({ _ = try Checkpoints.open(dir) }) else {
            return XCTFail()
        }
        XCTAssertTrue(reason.contains("more than"), reason)
    }

    func testMergedHeaderClaimingHugeSections() throws {
        let merged = root + "/m.ckpt"
        try Checkpoints.merge(from: root, to: merged)
        var b = try readFile(merged)
        var w = ByteWriter()
        w.raw(MergedFile.magic)
        w.u32(1)
        w.u32(64)
        w.int(1 << 49)
        w.u64(0)
        w.int(Int.max)
        w.u64(0)
        w.u64(0)
        w.u64(XXH64.hash(w.bytes))
        b.replaceSubrange(0..<64, with: w.bytes)
        try writeFile(merged, b)
        guard case .mergedFileInvalid? = checkpointError({ _ = try Checkpoints.open(merged) }) else { return XCTFail() }
    }
}
