import Engine
import Foundation
import XCTest

@testable import Checkpoint

final class MergeExportInspectTests: XCTestCase {
    func testMergeKeepsManifestFieldsAndRefusesDamage() throws {
        let root = makeTemporaryDirectory(self)
        try saveSample(root, step: 3)
        let out = root + "/merged.ckpt"
        let m = try Checkpoints.merge(from: root, to: out)
        let original = try Checkpoints.open(root).manifest
        XCTAssertEqual(m.config, original.config)
        XCTAssertEqual(m.state, original.state)
        XCTAssertEqual(m.worldSize, original.worldSize)
        XCTAssertEqual(m.tensors.map(\.name), original.tensors.map(\.name))
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + ".tmp"))

        // A bad shard: merge refuses and leaves no output behind.
        let dir = Checkpoints.stepDirectory(root: root, step: 3)
        let shard = try shardFile(dir, rank: 0)
        try flipByte(shard, at: 100)
        let out2 = root + "/merged2.ckpt"
        guard
            case .shardChecksumMismatch(0, shard, _)? = checkpointError({ try Checkpoints.merge(from: dir, to: out2) })
        else { return XCTFail() }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out2))
        XCTAssertFalse(FileManager.default.fileExists(atPath: out2 + ".tmp"))
        // Merging a merged file is refused.
        guard case .invalidArgument? = checkpointError({ try Checkpoints.merge(from: out, to: out2) }) else {
            return XCTFail()
        }
    }

    func testExportSafetensorsReadsBackWithEngine() throws {
        let root = makeTemporaryDirectory(self)
        try saveSample(root, step: 3)
        let file = root + "/gen.safetensors"
        let names = try Checkpoints.exportSafetensors(from: root, to: file, include: { $0.hasPrefix("genA2B.") })
        XCTAssertEqual(names, ["genA2B.conv.weight", "genA2B.fc.weight", "genA2B.fc.bias"])
        let st = try SafeTensorsFile(path: file)
        XCTAssertEqual(st.names.sorted(), names.sorted())
        XCTAssertEqual(st.metadata["step"], "3")
        let r = try Checkpoints.open(root)
        for n in names { XCTAssertEqual(try st.tensor(n).array, try r.tensor(n).array, n) }
        // Non-F32 tensors export with their safetensors dtype.
        try Checkpoints.exportSafetensors(from: r, to: file, include: { $0 == "ada.p" })
        XCTAssertEqual(try SafeTensorsFile(path: file).tensor("ada.p").array, [0.125])
    }

    func testInspectSummarisesAndReportsIntegrity() throws {
        let root = makeTemporaryDirectory(self)
        try saveSample(root, step: 42)
        var s = try Checkpoints.inspect(root)
        XCTAssertEqual(s.step, 42)
        XCTAssertEqual(s.integrity, "ok")
        XCTAssertEqual(s.tensors.count, sampleTensors().count)
        XCTAssertEqual(s.tensors.first { $0.name == "genA2B.fc.weight" }?.bytes, 120_000)
        XCTAssertEqual(s.shards.count, 1)
        let json = try JSONSerialization.jsonObject(with: Data(try s.json().utf8)) as! [String: Any]
        XCTAssertEqual(json["step"] as? Int, 42)
        XCTAssertEqual(json["integrity"] as? String, "ok")
        XCTAssertEqual((json["state"] as? [String: Any])?["ada_p"] as? Double, 0.0625)

        let shard = try shardFile(Checkpoints.stepDirectory(root: root, step: 42), rank: 0)
        try FileManager.default.removeItem(atPath: shard)
        s = try Checkpoints.inspect(root)
        XCTAssertEqual(s.integrity, CheckpointError.shardMissing(shard: 0, path: shard).description)
        XCTAssertEqual(try Checkpoints.inspect(root, verify: false).integrity, "not verified")
    }
}
