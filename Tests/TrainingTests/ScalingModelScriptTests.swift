import Foundation
import TestSupport
import XCTest

/// Scripts/scaling-model.py (docs/distributed.md §8-§9): the parts that turn benchmark outputs into the figures the
/// docs quote, on inputs written here, checked against values worked out by hand.
final class ScalingModelScriptTests: XCTestCase {
    private let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Scripts/scaling-model.py").path

    /// The script needs only Python's standard library: the checks' interpreter if set, else the system's.
    private func python() throws -> String {
        let env = ProcessInfo.processInfo.environment
        if let p = env["F2W_CHECK_PYTHON"] { return p }
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") { return "/usr/bin/python3" }
        if env["F2W_REQUIRE_CHECKS"] == "1" { XCTFail("F2W_REQUIRE_CHECKS=1 but no python3") }
        throw XCTSkip("no python3")
    }

    private func run(_ arguments: [String]) throws -> String {
        let r = try ProcessRunner.run([try python(), script] + arguments, timeout: 60)
        XCTAssertEqual(r.exitCode, 0, r.output)
        return r.output
    }

    private func write(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("f2w-scaling-\(UUID().uuidString).txt")
            .path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// Rounds 0.8, 1.0 and 0.9, 0.9: mean 0.9, sd √(0.02 / 3) = 0.0816, t(3) = 3.18, half-width 3.18 · 0.0816 / 2 = 0.130.
    func testSummarizePoolsTheRoundsOfTheRunsWithAStudentInterval() throws {
        let a = try write("rounds=2 scaling_efficiency_rounds=0.8,1.0\n  | scaling_efficiency=0.889\n")
        let b = try write("rounds=2 scaling_efficiency_rounds=0.9,0.9\n  | scaling_efficiency=0.900\n")
        let out = try run(["--summarize", a, b])
        XCTAssertTrue(
            out.contains(
                "scaling_efficiency: runs 0.889, 0.900 (mean 0.895); 4 rounds: mean 0.900, sd 0.082, 95% interval 0.770-1.030"),
            out)
        XCTAssertTrue(out.contains("distribution_efficiency: fewer than 2 rounds"), out)
    }

    /// Buckets never cross a network (`DataParallel.layout`), so light 128/32 all-reduces 4 D buckets (one per
    /// discriminator) and 2 G buckets, as its runs print (`buckets_d=4 buckets_g=2`), not the 2 + 1 that its 28 and
    /// 21 MB would fill. At 1000 Gbit/s (0.4 ms of bytes) and α = 1 ms, 2 ranks, synchronous:
    /// 0.941 + 2·(2 − 1)·1 ms·6 + 0.0004 = 0.953 s (0.947 with 3 buckets).
    func testBucketsAreCountedPerNetwork() throws {
        let out = try run(["--model", "light128", "--gbit", "1000", "--alpha-us", "1000", "--ranks", "2"])
        XCTAssertTrue(out.contains("N=2: before 0.953 s/step"), out)
    }

    /// A run with `--grad-wire bf16` moves half the bytes of its float32 twin (bytes_per_rank_per_step over
    /// dense_bytes_per_rank_per_step): the model's communication and the collectives' CPU it charges halve too.
    /// 2 hosts on 2 cores, 8 Mbit/s probed (1e6 bytes/s), 1e6 gradients in 1 D and 1 G bucket, nothing hidden:
    /// float32: ring 2·(1)/2 · 4e6 bytes / 1e6 = 4 s (+ 2 buckets · 2 · 0.5 ms latency); CPU 0.1 s · 4e6 / 25 MiB.
    func testValidateChargesTheBFloat16WireHalfTheBytes() throws {
        func runFile(bytes: Int) -> String {
            """
            netns-cluster: 2 hosts sharing machine_cores=2
            link_rtt_ms=1.0 link_mbit_s=8.0 allreduce_busbw_mbit_s=8.0 allreduce_cpu_s=0.1
            images_per_s_1=1.0 images_per_s_2=1.0 seconds_per_iter_1=1.0 seconds_per_iter_2=5.0
            bytes_per_rank_per_step=\(bytes) dense_bytes_per_rank_per_step=4000000
            params_g=500000 params_d=500000 buckets_g=1 buckets_d=1
            ready_d_window_s=0 ready_g_window_s=0 d_completion_window_s=0 g_completion_window_s=0 g_ahead_window_s=0
            overlap=1 seconds_per_iter_concurrent=1.0 distribution_efficiency=0.2
            """
        }
        let fp32 = try write(runFile(bytes: 4_000_000))
        let bf16 = try write(runFile(bytes: 2_000_000))
        let out = try run(["--validate", fp32, bf16])
        // the CPU term: 0.1 s per 25 MiB on the wire, 4e6 and 2e6 bytes
        XCTAssertTrue(out.contains("collectives' CPU per step and rank 0.015 s"), out)
        XCTAssertTrue(out.contains("collectives' CPU per step and rank 0.008 s"), out)
        // the table's comm column (allreduce_busbw_mbit_s rows): 4 s + 2 ms and 2 s + 2 ms
        let rows = out.split(separator: "\n").filter { $0.hasPrefix("| f2w-scaling-") }.prefix(2).map {
            $0.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        XCTAssertEqual(rows.count, 2, out)
        XCTAssertEqual(rows.first?[5], "4.002", out)
        XCTAssertEqual(rows.last?[5], "2.002", out)
    }
}
