import Distributed
import Engine
import Foundation
import XCTest

@testable import Checkpoint

/// A save that fails part-way loses nothing: no manifest, `LATEST` unchanged, the previous checkpoint
/// loads, and sweep removes what the failed save left.
final class SaveFailureTests: XCTestCase {
    override func tearDown() { FaultInjection.writeFault = nil }

    private func assertPreviousStillCurrent(
        _ root: String, failedStep: Int, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        XCTAssertEqual(latest(root), "step_00000001", file: file, line: line)
        let failed = Checkpoints.stepDirectory(root: root, step: failedStep)
        XCTAssertFalse(FileManager.default.fileExists(atPath: failed + "/manifest.json"), file: file, line: line)
        let r = try Checkpoints.open(root)
        XCTAssertEqual(r.manifest.step, 1, file: file, line: line)
        try r.verify()
        try assertMatchesSample(r, file: file, line: line)
        try Checkpoints.sweep(root: root)
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: failed), "failed step directory left behind", file: file, line: line)
    }

    func testDiskFullWhileWritingShard() throws {
        let root = makeTemporaryDirectory(self)
        try saveSample(root, step: 1)
        FaultInjection.writeFault = { path, written, count in
            path.hasSuffix(".shard.tmp") && written + count > 20_000 ? ENOSPC : nil
        }
        guard case .saveFailed(let map)? = checkpointError({ try saveSample(root, step: 2, seed: 2) }) else {
            return XCTFail()
        }
        XCTAssertEqual(Array(map.keys), [0])
        XCTAssertTrue(map[0]!.contains("No space left on device"), map[0]!)
        XCTAssertTrue(map[0]!.contains(".shard.tmp"), "names the file: \(map[0]!)")
        FaultInjection.writeFault = nil
        try assertPreviousStillCurrent(root, failedStep: 2)
    }

    func testManifestWriteFailure() throws {
        let root = makeTemporaryDirectory(self)
        try saveSample(root, step: 1)
        FaultInjection.writeFault = { path, _, _ in path.hasSuffix("manifest.json.tmp") ? EIO : nil }
        guard case .saveFailed(let map)? = checkpointError({ try saveSample(root, step: 2) }) else { return XCTFail() }
        XCTAssertTrue(map[0]!.hasPrefix("writing the manifest"), map[0]!)
        FaultInjection.writeFault = nil
        try assertPreviousStillCurrent(root, failedStep: 2)
    }

    func testLatestWriteFailureRemovesTheNewManifest() throws {
        let root = makeTemporaryDirectory(self)
        try saveSample(root, step: 1)
        FaultInjection.writeFault = { path, _, _ in path.hasSuffix("LATEST.tmp") ? ENOSPC : nil }
        guard case .saveFailed(let map)? = checkpointError({ try saveSample(root, step: 2) }) else { return XCTFail() }
        XCTAssertTrue(map[0]!.hasPrefix("replacing LATEST"), map[0]!)
        FaultInjection.writeFault = nil
        try assertPreviousStillCurrent(root, failedStep: 2)
    }

    func testFailedResaveOfSameStepKeepsItsCompleteCheckpoint() throws {
        let root = makeTemporaryDirectory(self)
        try saveSample(root, step: 1)
        FaultInjection.writeFault = { path, written, count in
            path.hasSuffix(".shard.tmp") && written + count > 5000 ? ENOSPC : nil
        }
        guard case .saveFailed? = checkpointError({ try saveSample(root, step: 1, seed: 2) }) else { return XCTFail() }
        FaultInjection.writeFault = nil
        try assertMatchesSample(try Checkpoints.open(root), seed: 1)
    }

    /// A real full disk: a 1 MiB tmpfs (needs root; skipped elsewhere).
    func testRealFullDiskOnTmpfs() throws {
        let mountPoint = makeTemporaryDirectory(self, "tmpfs")
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mountPoint]
        mount.standardError = FileHandle.nullDevice
        try mount.run()
        mount.waitUntilExit()
        guard mount.terminationStatus == 0 else { throw XCTSkip("cannot mount a tmpfs here (not root?)") }
        defer {
            let umount = Process()
            umount.executableURL = URL(fileURLWithPath: "/bin/umount")
            umount.arguments = [mountPoint]
            try? umount.run()
            umount.waitUntilExit()
        }
        let root = mountPoint + "/ckpt"
        try saveSample(root, step: 1)  // ~200 KB
        var rng = RandomGenerator(seed: 9)
        let big = sampleTensors() + [CheckpointTensor("big", rng.normalTensor([400_000], std: 0.02))]  // 1.6 MB
        guard
            case .saveFailed(let map)? = checkpointError({
                try Checkpoints.save(
                    root: root, step: 2, tensors: big, manifestFields: sampleFields(), comm: SingleRankCommunicator())
            })
        else { return XCTFail() }
        XCTAssertTrue(map[0]?.contains("No space left on device") ?? false, "\(map)")
        try assertPreviousStillCurrent(root, failedStep: 2)
    }

    func testSweepRemovesLeftoversButNeverCompleteCheckpoints() throws {
        let root = makeTemporaryDirectory(self)
        try saveSample(root, step: 1)
        let dir1 = Checkpoints.stepDirectory(root: root, step: 1)
        let before = try FileManager.default.contentsOfDirectory(atPath: dir1).sorted()
        // Leftovers: a temporary LATEST, an incomplete step, a temporary and an orphan shard in a complete step.
        try writeFile(root + "/LATEST.tmp", Array("step_00000002".utf8))
        let dir2 = Checkpoints.stepDirectory(root: root, step: 2)
        try FileManager.default.createDirectory(atPath: dir2, withIntermediateDirectories: true)
        try writeFile(dir2 + "/shard-00000-of-00001-0000000000000001.shard", [1, 2, 3])
        try writeFile(dir1 + "/shard-00000-of-00001-00000000000000ff.shard.tmp", [1])
        try writeFile(dir1 + "/shard-00000-of-00001-00000000000000ff.shard", [1])
        try writeFile(root + "/notes.txt", [1])
        let removed = try Checkpoints.sweep(root: root)
        XCTAssertEqual(
            Set(removed),
            [
                root + "/LATEST.tmp", dir2, dir1 + "/shard-00000-of-00001-00000000000000ff.shard.tmp",
                dir1 + "/shard-00000-of-00001-00000000000000ff.shard",
            ])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir1).sorted(), before)
        XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/notes.txt"))
        try Checkpoints.open(root).verify()
        XCTAssertEqual(try Checkpoints.sweep(root: root), [])
    }

    func testRetentionKeepsLastKAndMultiples() throws {
        let root = makeTemporaryDirectory(self)
        let options = SaveOptions(chunkBytes: 16384, keepLast: 2, keepEvery: 4)
        var deleted: [String] = []
        for step in 1...7 { deleted += try saveSample(root, step: step, options: options).deleted }
        let left = Checkpoints.stepDirectories(root, complete: true).map(\.step).sorted()
        XCTAssertEqual(left, [4, 6, 7])
        XCTAssertEqual(Set(deleted), Set([1, 2, 3, 5].map { Checkpoints.stepDirectory(root: root, step: $0) }))
        XCTAssertEqual(
            Checkpoints.stepDirectories(root, complete: false).count, 3, "deleted directories are gone entirely")
    }
}
