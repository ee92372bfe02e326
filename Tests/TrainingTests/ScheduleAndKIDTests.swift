import Dataset
import Foundation
import TestSupport
import XCTest

/// The lr rule as the trainer applies it (metrics.jsonl `lr`, values worked out by hand), at 1 and 2 ranks and across
/// a resume at another world size; elapsed seconds across resumes; KID during training (`--kid-every`).
final class ScheduleAndKIDTests: XCTestCase {
    static var dataDir = ""
    var work = ""

    override class func setUp() {
        super.setUp()
        dataDir = NSTemporaryDirectory() + "f2w-schedule-data-\(getpid())"
        try? DemoData.generate(
            to: URL(fileURLWithPath: dataDir), size: 40, trainPerDomain: 16, testPerDomain: 6, seed: 3)
    }

    override class func tearDown() {
        try? FileManager.default.removeItem(atPath: dataDir)
        super.tearDown()
    }

    override func setUpWithError() throws {
        work = NSTemporaryDirectory() + "f2w-schedule-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: work) }

    func train(_ dir: String, ranks: Int, iterations: Int, extra: [String]) throws -> ProcessRunner.Result {
        let bin = try XCTUnwrap(ProcessRunner.face2webtoonBinary(), "run `swift build --build-tests`")
        var args =
            [
                bin, "train", "--data", Self.dataDir, "--result-dir", "\(work)/\(dir)", "--img-size", "32", "--ch", "4",
                "--n-res", "1", "--iterations", "\(iterations)", "--threads", "1", "--sample-every", "0",
            ] + extra
        if ranks > 1 {
            args = [try XCTUnwrap(ProcessRunner.which("mpirun")), "--oversubscribe", "-np", "\(ranks)"] + args
        }
        let r = try ProcessRunner.run(args, timeout: 240)
        XCTAssertFalse(r.timedOut)
        XCTAssertEqual(r.exitCode, 0, r.output)
        return r
    }

    func rows(_ dir: String) throws -> [[String: Any]] {
        try String(contentsOfFile: "\(work)/\(dir)/metrics.jsonl", encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }

    func column(_ rows: [[String: Any]], _ key: String) -> [Double] { rows.compactMap { $0[key] as? Double } }

    /// 2 ranks, batch 1 each (B = 2), sqrt, warm-up over 6 images, 6 steps (decay over steps 4-6):
    /// lr(s) = 1e-4 · √2 · min(1, 2s/6) · d(s), d = 1, 1, 1, 2/3, 1/3, 0.
    func testSqrtRuleWithWarmupOnTwoRanks() throws {
        let r = try train("two", ranks: 2, iterations: 6, extra: ["--lr-scaling", "sqrt", "--warmup-images", "6"])
        XCTAssertTrue(r.output.contains("--lr-scaling sqrt, global batch 2"), r.output)
        let k = 1.4142135623730951e-4
        let expected = [k / 3, k * 2 / 3, k, k * 2 / 3, k / 3, 0]
        let lr = column(try rows("two"), "lr")
        XCTAssertEqual(lr.count, 6)
        for (s, (a, b)) in zip(lr, expected).enumerated() { XCTAssertEqual(a, b, accuracy: 1e-12, "step \(s + 1)") }
        XCTAssertEqual(column(try rows("two"), "images_seen"), [2, 4, 6, 8, 10, 12])
    }

    /// No lr flags on 2 ranks: the default rule, linear capped at 8, gives 2e-4 · d(s) with d = 1, 1, 1/2, 0 over 4
    /// steps; `--lr-scaling-max-batch 1` holds the same run at 1e-4 · d(s), and the banner says it is capped.
    func testDefaultRuleAndItsCapOnTwoRanks() throws {
        let plain = try train("default", ranks: 2, iterations: 4, extra: [])
        XCTAssertTrue(plain.output.contains("lr 0.0001 × 2 = 0.0002 (--lr-scaling linear, global batch 2)"), plain.output)
        let plainLR = column(try rows("default"), "lr")
        XCTAssertEqual(plainLR.count, 4)
        for (a, b) in zip(plainLR, [2e-4, 2e-4, 1e-4, 0]) { XCTAssertEqual(a, b, accuracy: 1e-12) }
        let capped = try train("capped", ranks: 2, iterations: 4, extra: ["--lr-scaling-max-batch", "1"])
        XCTAssertTrue(capped.output.contains("capped at --lr-scaling-max-batch 1"), capped.output)
        let lr = column(try rows("capped"), "lr")
        XCTAssertEqual(lr.count, 4)
        for (a, b) in zip(lr, [1e-4, 1e-4, 0.5e-4, 0]) { XCTAssertEqual(a, b, accuracy: 1e-12) }
        XCTAssertFalse(capped.output.contains("the checkpoint was trained with"), capped.output)
    }

    /// A run saved with `--lr-scaling none` and resumed without lr flags: the banner names both rules and how to keep
    /// the checkpoint's; the resumed steps follow the rule given now (2 ranks, linear: 2e-4 · d(s)). A cap that changes
    /// nothing at this global batch is not reported.
    func testResumeWithAnotherLRRuleSaysSo() throws {
        _ = try train("rule", ranks: 2, iterations: 4, extra: ["--lr-scaling", "none", "--stop-at", "1"])
        let r = try train("rule", ranks: 2, iterations: 4, extra: [])
        XCTAssertTrue(
            r.output.contains(
                "the checkpoint was trained with --lr-scaling none (max batch 8), this run uses linear (max batch 8)"),
            r.output)
        let lr = column(try rows("rule"), "lr")
        XCTAssertEqual(lr.count, 4)
        for (a, b) in zip(lr, [1e-4, 2e-4, 1e-4, 0]) { XCTAssertEqual(a, b, accuracy: 1e-12) }
        // resumed again (now from a linear checkpoint, cap 8) with cap 4: at global batch 2 both give 2e-4, no such line
        let same = try train("rule", ranks: 2, iterations: 5, extra: ["--lr-scaling-max-batch", "4"])
        XCTAssertFalse(same.output.contains("the checkpoint was trained with"), same.output)
    }

    /// 1 rank with batch 1 for 2 steps, then resumed on 2 ranks (B = 2), linear, warm-up over 6 images, 8 steps:
    /// steps 1-2: 1e-4 · n/6 with n = 1, 2; steps 3-: 2e-4 · min(1, n/6) · d(s) with n = 4, 6, 8, ... and d(5) = 3/4,
    /// d(6) = 1/2, d(7) = 1/4, d(8) = 0. The banner says what changed; elapsed_seconds continues from the checkpoint.
    func testResumeOnAnotherWorldSizeFollowsThePerImageRule() throws {
        let common = ["--lr-scaling", "linear", "--warmup-images", "6"]
        _ = try train("run", ranks: 1, iterations: 8, extra: common + ["--stop-at", "2"])
        let before = try rows("run")
        let r = try train("run", ranks: 2, iterations: 8, extra: common)
        XCTAssertTrue(r.output.contains("global batch 1 at the checkpoint, 2 now"), r.output)
        let all = try rows("run")
        let expected = [1e-4 / 6, 2e-4 / 6, 2e-4 * 4 / 6, 2e-4, 2e-4 * 0.75, 1e-4, 0.5e-4, 0]
        let lr = column(all, "lr")
        XCTAssertEqual(lr.count, 8)
        for (s, (a, b)) in zip(lr, expected).enumerated() { XCTAssertEqual(a, b, accuracy: 1e-12, "step \(s + 1)") }
        XCTAssertEqual(column(all, "images_seen"), [1, 2, 4, 6, 8, 10, 12, 14])
        let elapsed = column(all, "elapsed_seconds")
        XCTAssertEqual(elapsed.count, 8)
        XCTAssertGreaterThan(
            elapsed[2], column(before, "elapsed_seconds").last!, "the resumed run counts on from the checkpoint")
        XCTAssertEqual(elapsed, elapsed.sorted(), "elapsed_seconds never goes back")
    }

    /// `--kid-every` with the width-reduced random-weight Inception of the KID fixtures: KID rows at the chosen steps
    /// and at the end, with step, images seen, elapsed seconds and a spread over several subsets.
    func testKIDDuringTraining() throws {
        let weights = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("KIDTests/Fixtures/inception_random.safetensors").path
        XCTAssertTrue(FileManager.default.fileExists(atPath: weights), weights)
        let r = try train(
            "kid", ranks: 2, iterations: 5,
            extra: [
                "--kid-every", "2", "--kid-weights", weights,
                "--kid-subsets", "4", "--kid-subset-size", "4",
            ])
        XCTAssertTrue(r.output.contains("4 subsets of 4"), r.output)
        let kid = try rows("kid").filter { $0["kid"] != nil }
        XCTAssertEqual(kid.compactMap { $0["step"] as? Int }, [2, 4, 5])
        XCTAssertEqual(kid.compactMap { $0["images_seen"] as? Int }, [4, 8, 10])
        for row in kid {
            XCTAssertEqual(row["kid_subsets"] as? Int, 4)
            XCTAssertEqual(row["kid_subset_size"] as? Int, 4)
            let v = try XCTUnwrap(row["kid"] as? Double)
            let std = try XCTUnwrap(row["kid_std"] as? Double)
            XCTAssertTrue(v.isFinite)
            XCTAssertGreaterThan(std, 0, "6 test images, subsets of 4: the subsets differ, so there is a spread")
            XCTAssertGreaterThan(try XCTUnwrap(row["elapsed_seconds"] as? Double), 0)
        }
    }
}
