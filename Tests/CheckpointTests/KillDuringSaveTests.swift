import Distributed
import Engine
import Foundation
import TestSupport
import XCTest

@testable import Checkpoint

/// SIGKILL in the middle of a save: the test re-launches itself as a child that saves in a loop,
/// kills it with -9 while a shard is being written, then checks that sweep + open give the last complete
/// checkpoint, intact.
final class KillDuringSaveTests: XCTestCase {
    static let rootVariable = "F2W_CKPT_KILL_CHILD_ROOT"

    /// The child: saves steps 1, 2, 3, ... under the root it is given, until killed.
    static func saveLoop(root: String) throws {
        var rng = RandomGenerator(seed: 11)
        let tensors = (0..<6).map { CheckpointTensor("w\($0)", rng.normalTensor([1 << 18], std: 0.02)) }  // 6 MB
        for step in 1...10_000 {
            try Checkpoints.save(
                root: root, step: step, tensors: tensors, manifestFields: sampleFields(step),
                comm: SingleRankCommunicator(), options: SaveOptions(workers: 0, chunkBytes: 1 << 18))
        }
    }

    func testSigkillDuringSaveKeepsPreviousCheckpoint() throws {
        if let root = ProcessInfo.processInfo.environment[Self.rootVariable] { return try Self.saveLoop(root: root) }
        let root = makeTemporaryDirectory(self)
        guard let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else {
            throw XCTSkip("needs /proc/self/exe (Linux)")
        }
        let child = Process()
        child.executableURL = URL(fileURLWithPath: exe)
        child.arguments = [MPIJob.filter(for: self)]  // this test, as the child (it finds rootVariable set)
        child.environment = ProcessInfo.processInfo.environment.merging([Self.rootVariable: root]) { $1 }
        child.standardOutput = FileHandle.nullDevice
        child.standardError = FileHandle.nullDevice
        try child.run()
        defer { if child.isRunning { kill(child.processIdentifier, SIGKILL) } }

        // Wait for a complete step 2, then for a shard temporary of a later step, and kill right then.
        let deadline = Date().addingTimeInterval(120)
        var killedMidSave = false
        while Date() < deadline && child.isRunning {
            if let current = latest(root), let step = Names.step(of: current), step >= 2 {
                let dirs = Checkpoints.stepDirectories(root, complete: false).filter { $0.step > step }
                if dirs.contains(where: { FileSystem.list($0.path).contains { $0.hasSuffix(".shard.tmp") } }) {
                    kill(child.processIdentifier, SIGKILL)
                    killedMidSave = true
                    break
                }
            }
            usleep(2000)
        }
        child.waitUntilExit()
        XCTAssertTrue(killedMidSave, "never saw a save in progress (child exit \(child.terminationStatus))")
        XCTAssertEqual(child.terminationReason, .uncaughtSignal)

        let before = try XCTUnwrap(latest(root))
        let removed = try Checkpoints.sweep(root: root)
        XCTAssertFalse(removed.isEmpty, "the interrupted save left something to sweep")
        let r = try Checkpoints.open(root)
        XCTAssertEqual(Names.stepDirectory(r.manifest.step), before)
        try r.verify()
        XCTAssertEqual(r.manifest.imagesSeen, r.manifest.step)
        for (step, path) in Checkpoints.stepDirectories(root, complete: false) {
            XCTAssertNoThrow(
                try CheckpointReader(stepDirectory: path).verify(), "step \(step) left incomplete after sweep")
        }
    }
}
