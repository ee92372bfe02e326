import Checkpoint
import Dataset
import Engine
import Foundation
import TestSupport
import Training
import XCTest

/// Black-box tests of data-parallel training: the `face2webtoon` binary under mpirun against itself without.
final class DistributedTrainingTests: DemoDataTestCase {
    func binary() throws -> String {
        try XCTUnwrap(
            ProcessRunner.face2webtoonBinary(),
            "face2webtoon not built next to the tests: run `swift build --build-tests`")
    }

    func mpirun() throws -> String {
        try XCTUnwrap(ProcessRunner.which("mpirun"), "mpirun not on PATH: run Scripts/setup")
    }

    func trainArgs(_ dir: String, batch: Int, iterations: Int = 5, extra: [String] = []) throws -> [String] {
        [
            try binary(), "train", "--data", Self.dataDir, "--result-dir", "\(work)/\(dir)", "--img-size", "32", "--ch",
            "4",
            "--n-res", "1", "--iterations", "\(iterations)", "--batch-size", "\(batch)", "--threads", "1",
            "--sample-every", "0", "--print-every", "1",
        ] + extra
    }

    func run(_ args: [String], timeout: Double = 120) throws -> ProcessRunner.Result {
        let r = try ProcessRunner.run(args, timeout: timeout)
        XCTAssertFalse(r.timedOut, "timed out: \(args.joined(separator: " "))\n\(r.output)")
        return r
    }

    /// The float32 tensors of a safetensors file or a checkpoint (root, step directory or merged file), by name.
    static func tensors(_ path: String) throws -> [String: Tensor] {
        if path.hasSuffix(".safetensors") {
            let f = try SafeTensorsFile(path: path)
            return try Dictionary(uniqueKeysWithValues: f.names.map { ($0, try f.tensor($0)) })
        }
        let r = try Checkpoints.open(path)
        return try Dictionary(
            uniqueKeysWithValues: r.manifest.tensors.filter { $0.dtype == .f32 }.map {
                ($0.name, try r.tensor($0.name))
            })
    }

    /// max |a − b| / max |b| over each tensor named in both (optimizer state excluded), worst case.
    func worstRelative(_ pa: String, _ pb: String) throws -> (Float, String) {
        let a = try Self.tensors(pa)
        let b = try Self.tensors(pb)
        XCTAssertEqual(Set(a.keys), Set(b.keys))
        var worst: (Float, String) = (0, "")
        for n in a.keys.sorted() where !n.hasPrefix("optim.") {
            let e = Float(scaledMaxDifference(a[n]!, b[n]!))
            if e > worst.0 { worst = (e, n) }
        }
        return worst
    }

    /// The issue's equivalence: 2 ranks with batch 1 against 1 process with batch 2 on the same samples and seed.
    func testTwoRanksEqualOneProcessWithDoubleBatch() throws {
        let single = try run(try trainArgs("one", batch: 2, extra: ["--debug-dump-gradients", "1"]))
        XCTAssertEqual(single.exitCode, 0, single.output)
        let multi = try run(
            [try mpirun(), "--oversubscribe", "-np", "2"]
                + (try trainArgs("two", batch: 1, extra: ["--debug-dump-gradients", "1"])))
        XCTAssertEqual(multi.exitCode, 0, multi.output)
        XCTAssertTrue(multi.output.contains("world size 2, batch per rank 1, global batch 2"), multi.output)
        let g = try worstRelative("\(work)/two/grads_step1.safetensors", "\(work)/one/grads_step1.safetensors")
        XCTAssertLessThanOrEqual(g.0, 1e-5, "gradients after one step: worst \(g.1)")
        // After 5 steps: every loss of every step within 1e-4 relative, and the parameters within 1e-4 as one vector
        // (relative L2). Not tensor by tensor: the training step has discontinuities (argmax routing, rho clipping), so
        // a rounding-level difference can move a few elements by an Adam step (lr = 1e-4) each. Measured: changing one
        // input pixel by 1e-6 changes a generator gradient by 1.6% at step 2 on this data, for any conv algorithm, so a
        // tensor-wise 1e-4 after several steps would test the model's sensitivity, not the all-reduce.
        let (la, lb) = (try losses("two"), try losses("one"))
        XCTAssertEqual(la.count, 5)
        XCTAssertEqual(lb.count, 5)
        for (s, (x, y)) in zip(la, lb).enumerated() {
            XCTAssertEqual(Set(x.keys), Set(y.keys))
            for (k, v) in y { XCTAssertEqual(x[k]!, v, accuracy: 1e-4 * max(abs(v), 1), "step \(s + 1) \(k)") }
        }
        let p = try relativeL2("\(work)/two/checkpoints", "\(work)/one/checkpoints")
        XCTAssertLessThanOrEqual(p, 1e-4, "parameters after 5 steps")
        XCTAssertGreaterThan(p, 0, "suspicious: bit-identical, were two ranks really used?")
    }

    /// The all-reduce overlapped with backward (the default) against `--no-overlap`, with the same small buckets
    /// (several per phase), at 2 and 3 ranks: every loss and every parameter bit for bit. With overlap, the real half
    /// of a step's D phase is judged during the previous step's G all-reduce, except after a step that adjusts ADA's
    /// p (every 2nd here, with p moving and augmenting, and the demo data's groups in the D loss).
    func testOverlappedAllReduceIsBitIdenticalToTheSynchronousPath() throws {
        for np in [2, 3] {
            for overlap in [true, false] {
                let r = try run(
                    [try mpirun(), "--oversubscribe", "-np", "\(np)"]
                        + (try trainArgs(
                            "np\(np)-\(overlap)", batch: 1, iterations: 5,
                            extra: [
                                "--bucket-mb", "0.01", "--no-tensorboard", "--ada", "adaptive", "--ada-p", "0.3",
                                "--ada-interval", "2", "--ada-kimg", "0.1", "--save-every", "3",
                            ] + (overlap ? [] : ["--no-overlap"]))))
                XCTAssertEqual(r.exitCode, 0, r.output)
                let ahead = try loggedValues(
                    "\(work)/np\(np)-\(overlap)/metrics.jsonl", prefixes: ["d_real_ahead", "g_b2a_ahead"])
                XCTAssertEqual(
                    ahead.map { $0["d_real_ahead"] }, (overlap ? [0, 1, 0, 1, 0] : [0, 0, 0, 0, 0]) as [Double?],
                    "\(np) ranks, overlap \(overlap): which steps judged their real images ahead")
                // and took genB2A's update and their genB2A(realB) ahead, behind genA2B's bucket (Trainer.translateAhead)
                XCTAssertEqual(
                    ahead.map { $0["g_b2a_ahead"] }, (overlap ? [0, 1, 0, 1, 0] : [0, 0, 0, 0, 0]) as [Double?],
                    "\(np) ranks, overlap \(overlap): which steps translated genB2A(realB) ahead")
            }
            let p = try loggedValues("\(work)/np\(np)-true/metrics.jsonl", prefixes: ["ada.p_A"])
            XCTAssertNotEqual(p.first?["ada.p_A"], p.last?["ada.p_A"], "ADA's p should have moved")
            XCTAssertEqual(try losses("np\(np)-true"), try losses("np\(np)-false"), "\(np) ranks")
            let (e, name) = try worstRelative("\(work)/np\(np)-true/checkpoints", "\(work)/np\(np)-false/checkpoints")
            XCTAssertEqual(e, 0, "\(np) ranks: differs at \(name)")
            // step 3's checkpoint was saved after step 4's real half was judged ahead (which moves the discriminators'
            // spectral-norm vectors): it must hold them as the synchronous path does, or a resume would differ
            let (e3, name3) = try worstRelative(
                "\(work)/np\(np)-true/checkpoints/step_00000003", "\(work)/np\(np)-false/checkpoints/step_00000003")
            XCTAssertEqual(e3, 0, "\(np) ranks, step 3's checkpoint: differs at \(name3)")
        }
    }

    /// `bench train` under mpirun runs the step as `train` does: the next step's real half of the D phase judged behind
    /// the G all-reduce (its window printed), the collectives' CPU time counted.
    func testBenchTrainOnTwoRanksJudgesTheNextRealHalfAhead() throws {
        let r = try run([
            try mpirun(), "--oversubscribe", "-np", "2", try binary(), "bench", "train", "--img-size", "32", "--ch", "4",
            "--n-res", "1", "--steps", "2", "--warmup-steps", "1", "--no-peak", "--bucket-mb", "0.01",
        ])
        XCTAssertEqual(r.exitCode, 0, r.output)
        func value(_ key: String) -> Double? {
            r.output.split(whereSeparator: { $0 == "\n" || $0 == " " }).first { $0.hasPrefix(key + "=") }
                .flatMap { Double($0.dropFirst(key.count + 1)) }
        }
        XCTAssertEqual(value("world_size"), 2, r.output)
        XCTAssertEqual(value("overlap"), 1, r.output)
        // printed only when measured (the G window: once a real half was judged ahead); at this size each is a few
        // ms, and "0.000" after rounding would not be wrong
        for key in ["g_completion_window_s", "d_completion_window_s", "comm_cpu_s", "comm_exposed_d_s", "comm_exposed_g_s"] {
            let v = try XCTUnwrap(value(key), "\(key) missing\n\(r.output)")
            XCTAssertTrue(v.isFinite && v >= 0, "\(key)=\(v)")
        }
    }

    /// `bench scaling --rounds 2 --concurrent-baseline`: two (1 rank, 2 at once without communication, 2 ranks)
    /// rounds in alternating order, one efficiency of each kind per round.
    func testBenchScalingAlternatesRounds() throws {
        let args = [try binary(), "bench", "scaling", "--img-size", "32", "--ch", "4", "--n-res", "1", "--steps", "1"]
        let r = try run(args + ["--rounds", "2", "--concurrent-baseline"])
        XCTAssertEqual(r.exitCode, 0, r.output)
        for prefix in ["rounds=2 scaling_efficiency_rounds=", "distribution_efficiency_rounds="] {
            let line = r.output.split(separator: "\n").first { $0.hasPrefix(prefix) }
            XCTAssertEqual(line?.split(separator: "=").last?.split(separator: ",").count, 2, r.output)
        }
        func value(_ key: String) -> Double? {
            r.output.split(whereSeparator: { $0 == "\n" || $0 == " " }).first { $0.hasPrefix(key + "=") }
                .flatMap { Double($0.dropFirst(key.count + 1)) }
        }
        // the efficiency is the throughputs' ratio, both over all rounds (finite even for steps of a few ms)
        let (i1, i2, e) = (value("images_per_s_1"), value("images_per_s_2"), value("scaling_efficiency"))
        let efficiency = try XCTUnwrap(e, r.output)
        XCTAssertTrue(efficiency.isFinite && efficiency > 0, r.output)
        XCTAssertEqual(efficiency, try XCTUnwrap(i2) / (2 * XCTUnwrap(i1)), accuracy: 0.002, r.output)
        // the concurrent processes' step over the 2-rank step (both printed to 3 decimals: steps of ~10 ms here, so
        // each may be off by 0.0005 s, and the printed efficiency by 0.0005)
        let (tC, t2) = (try XCTUnwrap(value("seconds_per_iter_concurrent")), try XCTUnwrap(value("seconds_per_iter_2")))
        let distribution = try XCTUnwrap(value("distribution_efficiency"), r.output)
        XCTAssertTrue(tC > 0 && distribution > 0, r.output)
        let rounding = tC / t2 * (0.0005 / tC + 0.0005 / t2) + 0.0005
        XCTAssertEqual(distribution, tC / t2, accuracy: 1.01 * rounding, r.output)
        XCTAssertNil(try run(args).output.range(of: "distribution_efficiency"), "only with --concurrent-baseline")
        XCTAssertNotEqual(try run(args + ["--rounds", "0"]).exitCode, 0, "--rounds 0 is refused")
    }

    /// `bench allreduce` under mpirun: each collective's time, bus bandwidth and CPU seconds per call, on rank 0.
    func testBenchAllReducePrintsTimeBandwidthAndCPU() throws {
        let r = try run([try mpirun(), "--oversubscribe", "-np", "2", try binary(), "bench", "allreduce", "--mb", "1",
                         "--repeats", "2"])
        XCTAssertEqual(r.exitCode, 0, r.output)
        for collective in ["allreduce", "mpi_allreduce", "reduce_scatter_allgather"] {
            for key in ["\(collective)_s", "\(collective)_busbw_mbit_s", "\(collective)_cpu_s"] {
                let token = r.output.split(whereSeparator: { $0 == "\n" || $0 == " " }).first { $0.hasPrefix(key + "=") }
                let v = try XCTUnwrap(token.flatMap { Double($0.dropFirst(key.count + 1)) }, "\(key)\n\(r.output)")
                XCTAssertTrue(v.isFinite && v >= 0, "\(key)=\(v)")
            }
        }
        let machine = r.output.split(whereSeparator: { $0 == "\n" || $0 == " " })
            .first { $0.hasPrefix("allreduce_machine_cpu_s=") }.flatMap { Double($0.dropFirst(24)) }
        XCTAssertTrue(try XCTUnwrap(machine, r.output) >= 0, r.output)  // /proc/stat is readable on Linux
        XCTAssertNotEqual(try run([try binary(), "bench", "allreduce"]).exitCode, 0, "1 rank is refused")
    }

    /// `--grad-wire bf16`: the averaged gradients after step 1 equal the float32 ones to bfloat16 precision, and are
    /// not the float32 ones (the wire format was really used). Each rank's gradient is rounded (2⁻⁹ of each value) and
    /// their sum once more: where the two ranks' gradients cancel, the error relative to the sum's largest value can
    /// pass 2⁻⁸ (measured 0.0056 on a CAM weight), so the bound is 2⁻⁷.
    func testBFloat16WireGivesTheGradientsToBFloat16Precision() throws {
        for wire in ["fp32", "bf16"] {
            let r = try run(
                [try mpirun(), "--oversubscribe", "-np", "2"]
                    + (try trainArgs(
                        wire, batch: 1, iterations: 1,
                        extra: ["--grad-wire", wire, "--debug-dump-gradients", "1", "--no-tensorboard"])))
            XCTAssertEqual(r.exitCode, 0, r.output)
        }
        let a = try Self.tensors("\(work)/bf16/grads_step1.safetensors")
        let b = try Self.tensors("\(work)/fp32/grads_step1.safetensors")
        var worst: (Double, String) = (0, "")
        for (name, t) in b where t.array.contains(where: { $0 != 0 }) {
            let e = scaledMaxDifference(try XCTUnwrap(a[name], name), t)
            if e > worst.0 { worst = (e, name) }
        }
        XCTAssertLessThanOrEqual(worst.0, 1.0 / 128, "worst \(worst.1)")
        XCTAssertGreaterThan(worst.0, 0, "bit-identical to float32: was bfloat16 used?")
    }

    /// The exact low-rank exchange of FC.0's gradient (`--fc-exchange lowrank`) against the dense all-reduce, full
    /// generator, 2 ranks: FC.0's averaged gradient after step 1, every loss of 5 steps and all parameters after
    /// them within 1e-5 relative (the same sum in another order).
    func testLowRankFC0ExchangeEqualsTheDenseAllReduce() throws {
        for mode in ["dense", "lowrank"] {
            let r = try run(
                [try mpirun(), "--oversubscribe", "-np", "2"]
                    + (try trainArgs(
                        mode, batch: 1,
                        extra: ["--full", "--fc-exchange", mode, "--debug-dump-gradients", "1", "--no-tensorboard"])))
            XCTAssertEqual(r.exitCode, 0, r.output)
            XCTAssertTrue(
                r.output.contains(mode == "dense" ? "FC.0 gradients: dense" : "FC.0 gradients: exact low-rank"),
                r.output)
        }
        let g = try Self.tensors("\(work)/lowrank/grads_step1.safetensors")
        let h = try Self.tensors("\(work)/dense/grads_step1.safetensors")
        for name in ["ggrad.genA2B.FC.0.weight", "ggrad.genB2A.FC.0.weight"] {
            let (a, b) = (try XCTUnwrap(g[name], name), try XCTUnwrap(h[name], name))
            XCTAssertGreaterThan(b.array.map(abs).max()!, 0, "\(name) is all zero")
            XCTAssertLessThanOrEqual(scaledMaxDifference(a, b), 1e-5, name)
        }
        let (la, lb) = (try losses("lowrank"), try losses("dense"))
        XCTAssertEqual(la.count, 5)
        for (s, (x, y)) in zip(la, lb).enumerated() {
            for (k, v) in y { XCTAssertEqual(x[k]!, v, accuracy: 1e-5 * max(abs(v), 1), "step \(s + 1) \(k)") }
        }
        XCTAssertLessThanOrEqual(try relativeL2("\(work)/lowrank/checkpoints", "\(work)/dense/checkpoints"), 1e-5)
    }

    /// The losses logged at each step (metrics.jsonl), by name.
    func losses(_ dir: String) throws -> [[String: Double]] {
        try loggedValues("\(work)/\(dir)/metrics.jsonl", prefixes: ["d.", "g."])
    }

    /// ‖a − b‖ / ‖b‖ over all parameters of two checkpoints (optimizer state excluded).
    func relativeL2(_ pa: String, _ pb: String) throws -> Double {
        let a = try Self.tensors(pa)
        let b = try Self.tensors(pb)
        XCTAssertEqual(Set(a.keys), Set(b.keys))
        var (num, den) = (0.0, 0.0)
        for n in a.keys where !n.hasPrefix("optim.") {
            for i in 0..<b[n]!.count {
                let (x, y) = (Double(a[n]![i]), Double(b[n]![i]))
                num += (x - y) * (x - y)
                den += y * y
            }
        }
        return (num / den).squareRoot()
    }

    /// `mpirun -np 1` is bit-identical to running without mpirun.
    func testOneRankUnderMPIRunIsBitIdentical() throws {
        let plain = try run(try trainArgs("plain", batch: 1, iterations: 3))
        XCTAssertEqual(plain.exitCode, 0, plain.output)
        let one = try run([try mpirun(), "-np", "1"] + (try trainArgs("np1", batch: 1, iterations: 3)))
        XCTAssertEqual(one.exitCode, 0, one.output)
        let (e, name) = try worstRelative("\(work)/np1/checkpoints", "\(work)/plain/checkpoints")
        XCTAssertEqual(e, 0, "differs at \(name)")
    }

    /// The multi-bucket path of the gradient all-reduce: buckets of 1024 floats (tens per phase) give the same
    /// parameters, bit for bit, as one bucket (with 2 ranks each element's sum is a + b whatever the split).
    func testManySmallBucketsEqualOneBucketPerNetwork() throws {
        let one = try run(
            [try mpirun(), "--oversubscribe", "-np", "2"] + (try trainArgs("one-bucket", batch: 1, iterations: 3)))
        XCTAssertEqual(one.exitCode, 0, one.output)
        let many = try run(
            [try mpirun(), "--oversubscribe", "-np", "2"]
                + (try trainArgs("many-buckets", batch: 1, iterations: 3, extra: ["--bucket-mb", "0.001"])))
        XCTAssertEqual(many.exitCode, 0, many.output)
        func buckets(_ out: String) throws -> [Int] {
            let line = try XCTUnwrap(
                out.split(separator: "\n").first { $0.contains("gradient all-reduce in buckets") }, out)
            let words = line.split(separator: " ")
            return ["D", "G"].compactMap { k in
                words.firstIndex(of: Substring(k)).flatMap {
                    Int(words[$0 + 1].trimmingCharacters(in: .punctuationCharacters))
                }
            }
        }
        // the default size holds each tiny network whole; buckets never span two networks (ParameterStore.networkStarts)
        XCTAssertEqual(try buckets(one.output), [4, 2], one.output)
        let counts = try buckets(many.output)
        XCTAssertEqual(counts.count, 2)
        XCTAssertTrue(counts.allSatisfy { $0 >= 5 }, "expected many buckets per phase: \(counts)")
        XCTAssertEqual(try losses("many-buckets"), try losses("one-bucket"))
        let (e, name) = try worstRelative("\(work)/many-buckets/checkpoints", "\(work)/one-bucket/checkpoints")
        XCTAssertEqual(e, 0, "differs at \(name)")
    }

    /// Non-finite gradients on one rank: every rank skips that update together (parameters stay equal across ranks,
    /// the run goes on); three in a row stop the job with exit 67 and no new checkpoint.
    func testNonFiniteGradientsOnOneRankAreSkippedEverywhereThenStop() throws {
        // default buckets (one per network here), and small ones: the NaN lies in the first bucket of the arena, the
        // last to go, behind the all-reduce of the flag (which must count it all the same)
        for (name, buckets) in [("once", []), ("once-small", ["--bucket-mb", "0.01"])] {
            let once = try run(
                [try mpirun(), "--oversubscribe", "-np", "2"]
                    + (try trainArgs(name, batch: 1, iterations: 4, extra: ["--debug-nan-gradients", "1:2"] + buckets)))
            XCTAssertEqual(once.exitCode, 0, once.output)
            XCTAssertEqual(
                once.output.components(
                    separatedBy: "step 2: non-finite discriminator gradients on some rank: update skipped on all ranks"
                ).count - 1, 1,
                "\(name): rank 0 logs the skip once\n\(once.output)")
            XCTAssertEqual(try TrainingCheckpoint.peek(path: "\(work)/\(name)/checkpoints").1.step, 4)
            // the checkpoint check before each save compares parameter hashes across ranks: a rank that applied the
            // poisoned update would have failed it
            XCTAssertFalse(once.output.contains("disagree"), once.output)
        }

        let stop = try run(
            [try mpirun(), "--oversubscribe", "-np", "2"]
                + (try trainArgs(
                    "stop", batch: 1, iterations: 8, extra: ["--save-every", "1", "--debug-nan-gradients", "1:3,4,5"])))
        XCTAssertEqual(stop.exitCode, 67, "non-finite stop (docs/exit-status.md)\n\(stop.output)")
        XCTAssertTrue(
            stop.output.contains("stopping at step 5: 3 consecutive steps had non-finite gradients"), stop.output)
        XCTAssertEqual(
            try TrainingCheckpoint.peek(path: "\(work)/stop/checkpoints").1.step, 2,
            "the last good checkpoint stays current")
        XCTAssertTrue(stop.output.contains("not saving step 3: its update was skipped"), stop.output)
    }

    /// A rank that hangs: rank 0 warns after --stall-warning naming it and its host, repeats with the elapsed time,
    /// and aborts the whole job at --collective-timeout (plus startup) with the same name and exit status 68.
    func testStallInspectorNamesTheHungRankAndAborts() throws {
        let timeout = 4.0
        let r = try run(
            [try mpirun(), "--oversubscribe", "-np", "2"]
                + (try trainArgs(
                    "hung", batch: 1, iterations: 4,
                    extra: [
                        "--collective-timeout", "\(Int(timeout))",
                        "--stall-warning", "1", "--debug-stall", "1:2",
                    ])),
            timeout: 60)
        XCTAssertEqual(r.exitCode, 68, "peer failure (docs/exit-status.md)\n\(r.output)")
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? ""
        let warnings = r.output.split(separator: "\n").filter {
            $0.contains("warning: stall: allReduce(d) at step 2 has waited")
        }
        XCTAssertGreaterThanOrEqual(warnings.count, 2, "a warning at 1 s and repeats\n\(r.output)")
        XCTAssertTrue(warnings.allSatisfy { $0.contains("for rank 1 (") && $0.hasPrefix("[rank 0/2") }, "\(warnings)")
        XCTAssertTrue(
            warnings.contains { $0.contains("waited 1 s") } && warnings.contains { $0.contains("waited 2 s") },
            "\(warnings)")
        XCTAssertTrue(r.output.contains("collective timeout: allReduce(d) at step 2: rank 1 ("), r.output)
        XCTAssertTrue(r.output.contains("did not reach it within 4 s"), r.output)
        if !host.isEmpty {
            XCTAssertTrue(warnings.first?.contains(host) ?? false, "names the host \(host): \(warnings)")
        }
        XCTAssertLessThan(r.seconds, timeout + 15 + 5, "job took \(r.seconds) s")  // + startup
    }

    /// Ranks launched with other bucket sizes or overlap would call collectives of other sizes or in another order
    /// (a truncation error or a wrong sum): they are stopped before the first step, naming the ranks (mpirun's MPMD
    /// form gives rank 1 its own arguments).
    func testRanksWithOtherRunSettingsAreRefused() throws {
        for (extra, expected) in [
            (["--bucket-mb", "1"], "rank 1 differs from rank 0 in configuration, parameter layout, world size, program version or run settings"),
            (["--lr", "0.0005"], "; this rank's configuration differs in optimizer.lr: rank 0 0.0001, here 0.0005"),
            (["--no-overlap"], "rank 1 differs from rank 0 in run settings (this rank: overlap false"),
            (["--stop-at", "1"], "rank 1 differs from rank 0 in run settings (this rank: overlap true, --stop-at 1"),
            (["--keep-last", "1"], "rank 1 differs from rank 0 in run settings"),
        ] {
            let rank0 = try trainArgs("settings", batch: 1, iterations: 2)
            let rank1 = try trainArgs("settings", batch: 1, iterations: 2, extra: extra)
            let r = try run([try mpirun(), "--oversubscribe", "-np", "1"] + rank0 + [":", "-np", "1"] + rank1, timeout: 120)
            XCTAssertEqual(r.exitCode, 68, "\(extra)\n\(r.output)")
            XCTAssertTrue(r.output.contains(expected), "\(extra)\n\(r.output)")
            XCTAssertFalse(r.output.contains("step 1/"), "no step may run\n\(r.output)")
        }
        // the same step of two different runs' checkpoints: they trained to the first save, then could not save
        for (dir, lr) in [("ckA", "0.0001"), ("ckB", "0.01")] {
            let made = try run(try trainArgs(dir, batch: 1, iterations: 2, extra: ["--lr", lr]))
            XCTAssertEqual(made.exitCode, 0, made.output)
        }
        let resume = { (ck: String) in
            try self.trainArgs("both", batch: 1, iterations: 4, extra: ["--resume", "\(self.work)/\(ck)/checkpoints"])
        }
        let r = try run([try mpirun(), "--oversubscribe", "-np", "1"] + resume("ckA") + [":", "-np", "1"] + resume("ckB"))
        XCTAssertEqual(r.exitCode, 68, r.output)
        XCTAssertTrue(r.output.contains("rank 1 differs from rank 0 in run settings"), r.output)
        XCTAssertTrue(r.output.contains("resumed save "), r.output)
        XCTAssertFalse(r.output.contains("step 3/"), r.output)
    }

    /// Hosts whose result folders are each on a local disk (here: rank 1 gets a folder of its own) are refused before
    /// training; they trained to the end and saved checkpoints with shards in other hosts' folders.
    func testRanksThatDoNotShareTheResultFolderAreRefused() throws {
        let rank0 = try trainArgs("shared", batch: 1, iterations: 2)
        let rank1 = try trainArgs("elsewhere", batch: 1, iterations: 2)
        let r = try run([try mpirun(), "--oversubscribe", "-np", "1"] + rank0 + [":", "-np", "1"] + rank1, timeout: 120)
        XCTAssertEqual(r.exitCode, 64, r.output)
        XCTAssertTrue(r.output.contains("rank 1 does not see the result folder \(work)/shared as rank 0 does"), r.output)
        XCTAssertFalse(r.output.contains("step 1/"), r.output)
        let left = (try? FileManager.default.contentsOfDirectory(atPath: "\(work)/shared")) ?? []
        XCTAssertFalse(left.contains { $0.hasPrefix(".f2w-shared-check") }, "the probe file is removed: \(left)")
    }

    /// Rank 0 itself hangs: the other ranks are the ones to say so.
    func testStallOfRankZeroIsNamedByTheOthers() throws {
        let r = try run(
            [try mpirun(), "--oversubscribe", "-np", "2"]
                + (try trainArgs(
                    "hung0", batch: 1, iterations: 4,
                    extra: [
                        "--collective-timeout", "3", "--stall-warning", "1",
                        "--debug-stall", "0:2",
                    ])),
            timeout: 60)
        XCTAssertEqual(r.exitCode, 68, r.output)
        XCTAssertTrue(r.output.contains("[rank 1/2"), r.output)
        XCTAssertTrue(r.output.contains("warning: stall: allReduce(d) at step 2 has waited 1 s for rank 0 ("), r.output)
        XCTAssertTrue(r.output.contains("collective timeout: allReduce(d) at step 2: rank 0 ("), r.output)
    }

    /// SIGKILL of one rank ends the whole job quickly (Open MPI's default abort-on-failure).
    func testKilledRankEndsTheJob() throws {
        let bin = try binary()
        var killedAt: Date?
        let r = try ProcessRunner.run(
            [try mpirun(), "--oversubscribe", "-np", "2"] + (try trainArgs("killed", batch: 1, iterations: 100000)),
            timeout: 90
        ) { _ in
            // wait until both ranks train, then kill one rank (not mpirun)
            DispatchQueue.global().async {
                for _ in 0..<300 {
                    Thread.sleep(forTimeInterval: 0.1)
                    let log = (try? String(contentsOfFile: "\(self.work)/killed/metrics.jsonl", encoding: .utf8)) ?? ""
                    guard log.split(separator: "\n").count >= 2 else { continue }
                    let pids = DistributedTrainingTests.pids(commandPrefix: "\(bin) train")
                    if let victim = pids.last {
                        killedAt = Date()
                        kill(victim, SIGKILL)
                        return
                    }
                }
            }
        }
        let ended = Date()
        let at = try XCTUnwrap(killedAt, "no rank was killed:\n\(r.output)")
        XCTAssertFalse(r.timedOut)
        XCTAssertNotEqual(r.exitCode, 0)
        XCTAssertLessThan(ended.timeIntervalSince(at), 10, "job ended \(ended.timeIntervalSince(at)) s after the kill")
    }

    /// ADA coordination: rank 0 reports only positive signs, rank 1 only negative; the global mean r_t = 0 is below
    /// the target, so p falls by (global batch · interval)/(kimg · 1000) = 2·1/(0.1·1000) = 0.02 per step, the same on
    /// every rank (checked by the program before each checkpoint); with both positive it rises. The strengths and
    /// accumulators survive a checkpoint: 3 steps + resume to 5 equals 5 straight steps.
    func testADAStrengthFollowsTheGlobalMeanOnEveryRank() throws {
        func ada(_ dir: String, _ signs: String, iterations: Int) throws -> [[String: Any]] {
            let r = try run(
                [try mpirun(), "--oversubscribe", "-np", "2"]
                    + (try trainArgs(
                        dir, batch: 1, iterations: iterations,
                        extra: [
                            "--ada", "adaptive", "--ada-p", "0.5", "--ada-interval", "1", "--ada-kimg", "0.1",
                            "--debug-ada-force-sign", signs,
                        ])))
            XCTAssertEqual(r.exitCode, 0, r.output)
            return try String(contentsOfFile: "\(work)/\(dir)/metrics.jsonl", encoding: .utf8).split(separator: "\n")
                .map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        }
        let down = try ada("down", "1,-1", iterations: 5)
        XCTAssertEqual(down.count, 5)
        for (i, m) in down.enumerated() {
            XCTAssertEqual(m["ada.p_B"] as! Double, 0.5 - 0.02 * Double(i + 1), accuracy: 1e-12)
            XCTAssertEqual(m["ada.p_A"] as! Double, 0.5 - 0.02 * Double(i + 1), accuracy: 1e-12)
            XCTAssertEqual(m["ada.rt_B"] as! Double, 0, accuracy: 1e-12)
        }
        let up = try ada("up", "1,1", iterations: 3)
        XCTAssertEqual(up.last!["ada.p_B"] as! Double, 0.56, accuracy: 1e-12)
        XCTAssertEqual(up.last!["ada.rt_B"] as! Double, 1, accuracy: 1e-12)
        // resume: 3 steps, then continue to 5 in the same result dir
        _ = try ada("resumed", "1,-1", iterations: 3)
        let cont = try ada("resumed", "1,-1", iterations: 5)
        XCTAssertEqual(cont.count, 5)
        XCTAssertEqual(cont.last!["ada.p_B"] as! Double, down.last!["ada.p_B"] as! Double, accuracy: 1e-12)
    }

    /// PIDs whose command line starts with `prefix` (the ranks, not mpirun).
    static func pids(commandPrefix prefix: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { pid in
            guard let d = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            let cmd = String(decoding: d.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
            return cmd.hasPrefix(prefix)
        }.sorted()
    }
}
