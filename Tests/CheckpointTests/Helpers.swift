import Distributed
import Engine
import Foundation
import XCTest

@testable import Checkpoint

/// A fresh directory under the system temporary directory, removed by the test's teardown.
func makeTemporaryDirectory(_ test: XCTestCase, _ label: String = "ckpt") -> String {
    let path = NSTemporaryDirectory() + "f2w-\(label)-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}

/// A small model-like set: float32 weights of several sizes (some span several 16 KiB frames), counters,
/// RNG words, a float64 scalar and an empty tensor. Same `seed`, same values.
func sampleTensors(seed: UInt64 = 1) -> [CheckpointTensor] {
    var rng = RandomGenerator(seed: seed)
    return [
        CheckpointTensor("genA2B.conv.weight", rng.normalTensor([64, 3, 7, 7], std: 0.02)),
        CheckpointTensor("genA2B.fc.weight", rng.normalTensor([300, 100], std: 0.02)),
        CheckpointTensor("genA2B.fc.bias", rng.normalTensor([300], std: 0.02)),
        CheckpointTensor("disGA.conv.weight", rng.normalTensor([32, 16, 4, 4], std: 0.02)),
        CheckpointTensor("optim.G.steps", int64: [10, 10, -1]),
        CheckpointTensor("rng.words", uint64: [UInt64.max, 0, 12_345_678_901_234_567_890]),
        CheckpointTensor("ada.p", float64: [0.125], shape: []),
        CheckpointTensor("empty", Tensor(zeros: [0, 5])),
    ]
}

let smallChunks = SaveOptions(chunkBytes: 16384)

func sampleFields(_ imagesSeen: Int = 1234) -> ManifestFields {
    ManifestFields(
        programVersion: "test-1.0", config: #"{"light":true,"img_size":64}"#, imagesSeen: imagesSeen,
        state: .object(["rng": .array([.uint(UInt64.max), .uint(7)]), "ada_p": .double(0.0625), "cursor": .int(-3)]))
}

/// Saves `sampleTensors(seed:)` as `step` on a single rank.
@discardableResult
func saveSample(_ root: String, step: Int, seed: UInt64 = 1, options: SaveOptions = smallChunks) throws -> SaveResult {
    try Checkpoints.save(
        root: root, step: step, tensors: sampleTensors(seed: seed), manifestFields: sampleFields(),
        comm: SingleRankCommunicator(), options: options)
}

/// Asserts every tensor in `reader` equals `sampleTensors(seed:)` bit for bit.
func assertMatchesSample(
    _ reader: CheckpointReader, seed: UInt64 = 1, file: StaticString = #filePath, line: UInt = #line
) throws {
    let expected = sampleTensors(seed: seed)
    XCTAssertEqual(reader.names.sorted(), expected.map(\.name).sorted(), file: file, line: line)
    for t in expected {
        let want = t.withBytes { Array($0) }
        XCTAssertEqual(try reader.bytes(t.name), want, "tensor \(t.name)", file: file, line: line)
        XCTAssertEqual(reader.entry(t.name)?.shape, t.shape, file: file, line: line)
    }
}

/// Path of rank `rank`'s shard file in step directory `dir`.
func shardFile(_ dir: String, rank: Int) throws -> String {
    let prefix = String(format: "shard-%05d-", rank)
    guard
        let name = try FileManager.default.contentsOfDirectory(atPath: dir).first(where: {
            $0.hasPrefix(prefix) && $0.hasSuffix(".shard")
        })
    else {
        throw CheckpointError.shardMissing(shard: rank, path: dir)
    }
    return dir + "/" + name
}

func readFile(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }
func writeFile(_ path: String, _ bytes: [UInt8]) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }

/// XORs one byte of `path` at `offset`.
func flipByte(_ path: String, at offset: Int) throws {
    var b = try readFile(path)
    b[offset] ^= 0x5A
    try writeFile(path, b)
}

/// Rewrites `dir/manifest.json` through `edit` on its decoded form.
func editManifest(_ dir: String, _ edit: (inout Manifest) -> Void) throws {
    let path = dir + "/manifest.json"
    var m = try Manifest.decode(try readFile(path), path: path)
    edit(&m)
    try writeFile(path, try m.encoded())
}

/// Rewrites the manifest as loose JSON (to plant values the typed form cannot hold).
func editManifestJSON(_ dir: String, _ edit: (inout [String: Any]) -> Void) throws {
    let path = dir + "/manifest.json"
    var obj = try JSONSerialization.jsonObject(with: Data(try readFile(path))) as! [String: Any]
    edit(&obj)
    try writeFile(path, Array(try JSONSerialization.data(withJSONObject: obj)))
}

/// Runs `body` and returns the `CheckpointError` it throws (failing the test if it throws nothing or another type).
func checkpointError(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> CheckpointError?
{
    do { try body() } catch let e as CheckpointError { return e } catch {
        XCTFail("unexpected error \(error)", file: file, line: line)
        return nil
    }
    XCTFail("expected a CheckpointError, nothing was thrown", file: file, line: line)
    return nil
}

func latest(_ root: String) -> String? {
    (try? String(contentsOfFile: root + "/LATEST", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
}
