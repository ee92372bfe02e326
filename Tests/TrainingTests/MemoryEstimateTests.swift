import Engine
import Foundation
import TestSupport
import UGATIT
import XCTest

@testable import Training

/// The memory estimate printed before anything large is allocated, and the refusal when a host cannot hold the
/// ranks (hardening issue, item 4).
final class MemoryEstimateTests: XCTestCase {
    /// The parameter arenas follow the closed-form counts exactly, light and full.
    func testParameterBytesMatchTheBuiltModel() {
        for light in [true, false] {
            let config = ModelConfig(imageSize: 64, ch: 8, blocks: 2, light: light, globalLayers: 5, localLayers: 3)
            let e = MemoryEstimate(config: TrainConfig(model: config, iterations: 1), runtimeBytes: 0)
            let m = UGATITModel(config: config, seed: 1)
            XCTAssertEqual(
                e.parameterBytes, 4 * (m.generators.parameterCount + m.discriminators.parameterCount), "light \(light)")
            XCTAssertEqual(e.optimizerBytes, 2 * e.parameterBytes)
            XCTAssertEqual(e.gradientBytes, e.parameterBytes + 4 * m.generators.parameterCount / 2, "one generator more")
        }
    }

    /// Activations scaled from the ch-4 calibration step stay within 20% of the tensor bytes a real step holds at
    /// batch 2 and ch 16.
    func testActivationEstimateMatchesAMeasuredStep() {
        // on 1 thread (the calibration runs at the thread count of the moment; on 2 the chains' temporaries coexist)
        Runtime.configure(threads: 1)
        let config = ModelConfig(imageSize: 64, ch: 16, blocks: 2, light: true, globalLayers: 5, localLayers: 3)
        var train = TrainConfig(model: config, iterations: 1)
        train.batchSize = 2
        let e = MemoryEstimate(config: train, runtimeBytes: 0)
        let model = UGATITModel(config: config, seed: 2)
        let step = UGATITStep(model: model)
        var rng = RandomGenerator(seed: 3, stream: [1])
        let a = Tensor(shape: [2, 3, 64, 64], (0..<(2 * 3 * 64 * 64)).map { _ in rng.uniform(-1, 1) })
        let b = Tensor(shape: [2, 3, 64, 64], (0..<(2 * 3 * 64 * 64)).map { _ in rng.uniform(-1, 1) })
        step.discriminatorGradients(realA: a, realB: b)
        step.applyDiscriminator()
        step.generatorGradients(realA: a, realB: b)
        step.applyGenerator()  // Adam's moments exist from here on
        TensorMemory.resetPeak()
        let before = TensorMemory.liveBytes
        step.discriminatorGradients(realA: a, realB: b)
        step.applyDiscriminator()
        step.generatorGradients(realA: a, realB: b)
        step.applyGenerator()
        let measured = Double(TensorMemory.peakBytes - before)
        XCTAssertEqual(
            Double(e.activationBytes) / measured, 1, accuracy: 0.2,
            "estimate \(e.activationBytes), measured \(measured)")
    }

    func testLocalRanksComeFromTheLauncher() {
        XCTAssertEqual(HostMemory.localRanks([:]), 1)
        XCTAssertEqual(HostMemory.localRanks(["OMPI_COMM_WORLD_LOCAL_SIZE": "4"]), 4)
        XCTAssertEqual(HostMemory.localRanks(["SLURM_NTASKS_PER_NODE": "8(x2)"]), 8)
        XCTAssertEqual(
            HostMemory.allowance(localRanks: 2, residentPerRank: 10, env: ["F2W_MEMORY_AVAILABLE_MB": "1"])?.bytes,
            1_048_576)
        XCTAssertNotNil(HostMemory.availableBytes())
        XCTAssertGreaterThan(HostMemory.residentBytes() ?? 0, 0)
    }

    /// Too little memory for the ranks: refused before the model is built, with the numbers and what to change
    /// (exit 69); --ignore-memory-limit starts anyway; the run ends with its peak against the estimate.
    func testARunThatCannotFitIsRefused() throws {
        let work = NSTemporaryDirectory() + "f2w-memory-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: work) }
        let bin = try XCTUnwrap(ProcessRunner.face2webtoonBinary(), "run `swift build --build-tests`")
        let args = [
            bin, "train", "--demo", "--result-dir", work, "--img-size", "32", "--ch", "4", "--n-res", "1",
            "--iterations", "1",
            "--threads", "1", "--sample-every", "0",
        ]
        let env = ["F2W_MEMORY_AVAILABLE_MB": "20", "OMPI_COMM_WORLD_LOCAL_SIZE": "3"]
        let refused = try ProcessRunner.run(args, environment: env, timeout: 120)
        XCTAssertEqual(refused.exitCode, 69, refused.output)
        XCTAssertTrue(refused.output.contains("not enough memory: 3 ranks on this host ×"), refused.output)
        XCTAssertTrue(refused.output.contains("but F2W_MEMORY_AVAILABLE_MB allows 20 MB"), refused.output)
        XCTAssertTrue(refused.output.contains("--ignore-memory-limit"), refused.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(work)/checkpoints/LATEST"))
        let forced = try ProcessRunner.run(args + ["--ignore-memory-limit"], environment: env, timeout: 120)
        XCTAssertEqual(forced.exitCode, 0, forced.output)
        XCTAssertTrue(forced.output.contains("starting anyway (--ignore-memory-limit)"), forced.output)
        XCTAssertTrue(forced.output.contains("peak resident memory"), forced.output)
    }
}

extension MemoryEstimateTests {
    /// `--shard-optimizer`: the Adam state per rank is 8/N bytes per parameter, except the full generators' FC.0
    /// under the low-rank exchange (whole on every rank); counted by hand from the closed-form parameter counts.
    func testShardedOptimizerStateIsDividedByTheWorldSize() {
        var light = TrainConfig(model: ModelConfig(imageSize: 64, ch: 8, light: true), iterations: 1)
        let p = MemoryEstimate(config: light).parameterBytes / 4
        light.shardOptimizer = true
        XCTAssertEqual(MemoryEstimate(config: light, worldSize: 1).optimizerBytes, 8 * p)
        XCTAssertEqual(MemoryEstimate(config: light, worldSize: 4).optimizerBytes, 8 * p / 4)
        var full = TrainConfig(model: ModelConfig(imageSize: 64, ch: 8, light: false), iterations: 1)
        full.shardOptimizer = true
        let q = MemoryEstimate(config: full).parameterBytes / 4
        let fc0 = 2 * (16 * 16 * 8 * 4) * (4 * 8)  // two generators' [4·ch, (S/4)²·4·ch] weights
        full.fcExchange = .lowrank
        XCTAssertEqual(MemoryEstimate(config: full, worldSize: 4).optimizerBytes, 8 * fc0 + 8 * (q - fc0) / 4)
        full.fcExchange = .dense
        XCTAssertEqual(MemoryEstimate(config: full, worldSize: 4).optimizerBytes, 8 * q / 4)
    }
}
