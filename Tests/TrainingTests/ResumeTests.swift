import Checkpoint
import Dataset
import Engine
import Foundation
import TestSupport
import Training
import XCTest

/// Resuming (the sharded-checkpoint issue): bit-exact at the same world size, and continuing at another one.
final class ResumeTests: XCTestCase {
    static var dataDir = ""
    var work = ""

    override class func setUp() {
        super.setUp()
        dataDir = NSTemporaryDirectory() + "f2w-resume-data-\(getpid())"
        try? DemoData.generate(
            to: URL(fileURLWithPath: dataDir), size: 40, trainPerDomain: 24, testPerDomain: 2, seed: 6)
    }

    override class func tearDown() {
        try? FileManager.default.removeItem(atPath: dataDir)
        super.tearDown()
    }

    override func setUpWithError() throws {
        work = NSTemporaryDirectory() + "f2w-resume-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: work) }

    /// ADA that moves: p changes by 0.2 at every second step, so its strength and r_t sums must survive a checkpoint.
    static let movingADA = ["--ada", "adaptive", "--ada-p", "0.3", "--ada-interval", "2", "--ada-kimg", "0.01"]

    func train(
        _ dir: String, ranks: Int, batch: Int, iterations: Int, extra: [String] = [],
        ada: [String] = ["--ada", "fixed", "--ada-p", "0.3"]
    ) throws -> ProcessRunner.Result {
        let bin = try XCTUnwrap(ProcessRunner.face2webtoonBinary(), "run `swift build --build-tests`")
        var args =
            [
                bin, "train", "--data", Self.dataDir, "--result-dir", "\(work)/\(dir)", "--img-size", "32", "--ch", "4",
                "--n-res", "1", "--iterations", "\(iterations)", "--batch-size", "\(batch)", "--threads", "1",
                "--sample-every", "0",
            ] + ada + extra
        if ranks > 1 {
            args = [try XCTUnwrap(ProcessRunner.which("mpirun")), "--oversubscribe", "-np", "\(ranks)"] + args
        }
        let r = try ProcessRunner.run(args, timeout: 180)
        XCTAssertFalse(r.timedOut)
        XCTAssertEqual(r.exitCode, 0, r.output)
        return r
    }

    func losses(_ dir: String) throws -> [[String: Double]] {
        try loggedValues("\(work)/\(dir)/metrics.jsonl", prefixes: ["d.", "g.", "ada."])
    }

    func tensors(_ path: String) throws -> [String: [Float]] {
        let r = try Checkpoints.open(path)
        return try Dictionary(
            uniqueKeysWithValues: r.manifest.tensors.filter { $0.dtype == .f32 }.map {
                ($0.name, try r.tensor($0.name).array)
            })
    }

    /// 2K steps = K steps, stop, resume, K more: losses and every tensor (parameters, buffers, Adam moments) bit for bit.
    /// (The first part stops with --stop-at, as a SIGTERM would: the learning-rate schedule belongs to the whole run.)
    /// ADA adapts (p moves between steps 2 and 3, and step 3's r_t sums are pending at the stop), so a lost ADA state
    /// would show in the losses and the logged p.
    func checkBitExactResume(ranks: Int) throws {
        let ada = Self.movingADA
        _ = try train("straight", ranks: ranks, batch: 1, iterations: 6, ada: ada)
        _ = try train("split", ranks: ranks, batch: 1, iterations: 6, extra: ["--stop-at", "3"], ada: ada)
        let saved = try TrainingCheckpoint.peek(path: "\(work)/split/checkpoints").1
        let p = try XCTUnwrap(saved.ada?.p)
        XCTAssertTrue(p.contains { abs($0 - 0.3) > 0.1 }, "ADA p should have moved from 0.3 by step 3: \(p)")
        XCTAssertTrue(saved.ada!.count.contains { $0 > 0 }, "r_t statistics pending at step 3: \(saved.ada!)")
        let r = try train("split", ranks: ranks, batch: 1, iterations: 6, ada: ada)
        XCTAssertTrue(r.output.contains("checkpoint loaded"), r.output)
        XCTAssertEqual(try losses("straight"), try losses("split"))
        XCTAssertEqual(
            try TrainingCheckpoint.peek(path: "\(work)/straight/checkpoints").1.ada,
            try TrainingCheckpoint.peek(path: "\(work)/split/checkpoints").1.ada)
        XCTAssertEqual(try tensors("\(work)/straight/checkpoints"), try tensors("\(work)/split/checkpoints"))
    }

    func testResumeIsBitExactOnOneRank() throws { try checkBitExactResume(ranks: 1) }
    func testResumeIsBitExactOnTwoRanks() throws { try checkBitExactResume(ranks: 2) }

    /// Saved by 2 ranks (batch 1 each), resumed by 1 rank with batch 2: the same global batch continues with the same
    /// samples (losses as the uninterrupted 2-rank run), and step, ADA strength and Adam state carry over.
    func testCheckpointOfTwoRanksContinuesOnOneAndOnThree() throws {
        _ = try train("two", ranks: 2, batch: 1, iterations: 6)
        _ = try train("mixed", ranks: 2, batch: 1, iterations: 6, extra: ["--stop-at", "4"])
        let saved = try TrainingCheckpoint.peek(path: "\(work)/mixed/checkpoints").1
        XCTAssertEqual(saved.worldSizeAtSave, 2)
        try FileManager.default.copyItem(atPath: "\(work)/mixed", toPath: "\(work)/three")
        let one = try train("mixed", ranks: 1, batch: 2, iterations: 6)
        XCTAssertTrue(one.output.contains("step 4, saved by 2 ranks, now 1"), one.output)
        let a = try losses("two")
        let b = try losses("mixed")
        XCTAssertEqual(b.count, 6)
        for s in 4..<6 {  // steps 5 and 6: same samples, reduction order differs
            for (k, v) in a[s] { XCTAssertEqual(b[s][k]!, v, accuracy: 1e-4 * max(1, abs(v)), "step \(s + 1) \(k)") }
        }
        // 3 ranks, batch 1: the global batch grows to 3 and the order continues from the saved position
        let three = try train("three", ranks: 3, batch: 1, iterations: 6)
        XCTAssertTrue(three.output.contains("step 4, saved by 2 ranks, now 3"), three.output)
        let end = try TrainingCheckpoint.peek(path: "\(work)/three/checkpoints").1
        XCTAssertEqual(end.step, 6)
        XCTAssertEqual(
            end.dataCursors.reduce(0, +), saved.dataCursors.reduce(0, +) + 2 * 3, "no sample skipped or repeated")
        XCTAssertEqual(end.ada?.p, saved.ada?.p)
        let before = try Checkpoints.open("\(work)/mixed/checkpoints/step_00000004")
        let after = try Checkpoints.open("\(work)/three/checkpoints")
        XCTAssertEqual(
            try after.int64s("optim.D.steps"), try before.int64s("optim.D.steps").map { $0 + 2 },
            "Adam step counts continue")
        XCTAssertEqual(
            try after.tensor("genA2B.DownBlock.1.weight").shape, try before.tensor("genA2B.DownBlock.1.weight").shape)
    }
}
