import UGATIT
import XCTest

/// The lr rule lr(s) = lr0 · k(B) · min(1, n_s / N_warm) · d(s) (OptimizerConfig), against values worked out by hand.
final class LearningRateRuleTests: XCTestCase {
    func config(_ scaling: LRScaling, warmup: Int = 0, maxBatch: Int = 0) -> OptimizerConfig {
        var o = OptimizerConfig()
        o.lrScaling = scaling
        o.warmupImages = warmup
        o.lrScalingMaxBatch = maxBatch
        return o
    }

    /// B_max = 8: k(min(B, 8)). Linear: 8e-4 at B = 8, 16 and 64; 5e-4 at B = 5. Sqrt at B = 32: √8 · 1e-4.
    func testTheCapStopsTheScalingAtItsBatch() {
        let linear = config(.linear, maxBatch: 8)
        XCTAssertEqual(linear.learningRate(step: 1, iterations: 100, globalBatch: 5), 5e-4, accuracy: 1e-18)
        for b in [8, 16, 64] {
            XCTAssertEqual(linear.learningRate(step: 1, iterations: 100, globalBatch: b), 8e-4, accuracy: 1e-18, "B \(b)")
        }
        XCTAssertEqual(
            config(.sqrt, maxBatch: 8).learningRate(step: 1, iterations: 100, globalBatch: 32), 2.8284271247461903e-4,
            accuracy: 1e-18)
        // decay and warm-up still multiply: B = 16, capped to 8, step 75 of 100 (d = 0.5), 60 of 120 images warmed
        XCTAssertEqual(
            config(.linear, warmup: 120, maxBatch: 8).learningRate(
                step: 75, iterations: 100, globalBatch: 16, imagesSeen: 60), 8e-4 * 0.5 * 0.5, accuracy: 1e-18)
        // no cap (0): linear at B = 64 is 6.4e-3
        XCTAssertEqual(config(.linear).learningRate(step: 1, iterations: 100, globalBatch: 64), 6.4e-3, accuracy: 1e-18)
    }

    /// The defaults chosen from the convergence study: linear, capped at 8, no warm-up; batch 1 keeps lr0.
    func testDefaultsAreLinearCappedAtEight() {
        let o = OptimizerConfig()
        XCTAssertEqual(o.lrScaling, .linear)
        XCTAssertEqual(o.lrScalingMaxBatch, 8)
        XCTAssertEqual(o.warmupImages, 0)
        XCTAssertEqual(o.learningRate(step: 1, iterations: 100, globalBatch: 1), 1e-4)
        XCTAssertEqual(o.learningRate(step: 1, iterations: 100, globalBatch: 4), 4e-4, accuracy: 1e-18)
        XCTAssertEqual(o.learningRate(step: 1, iterations: 100, globalBatch: 256), 8e-4, accuracy: 1e-18)
    }

    func testScalingFactors() {
        // B = 4: none 1e-4, sqrt 2e-4, linear 4e-4 (no warm-up, first half: d = 1)
        XCTAssertEqual(config(.none).learningRate(step: 1, iterations: 100, globalBatch: 4), 1e-4)
        XCTAssertEqual(config(.sqrt).learningRate(step: 1, iterations: 100, globalBatch: 4), 2e-4, accuracy: 1e-18)
        XCTAssertEqual(config(.linear).learningRate(step: 1, iterations: 100, globalBatch: 4), 4e-4, accuracy: 1e-18)
        // B = 1: every rule is the batch-1 recipe
        for r in LRScaling.allCases { XCTAssertEqual(config(r).learningRate(step: 7, iterations: 100), 1e-4) }
    }

    func testWarmupCountsTheImagesOfTheStepItself() {
        // N_warm = 10, B = 2, sqrt: k = √2 = 1.41421356...; n_s = 2s
        let o = config(.sqrt, warmup: 10)
        XCTAssertEqual(
            o.learningRate(step: 1, iterations: 100, globalBatch: 2), 1.4142135623730951e-4 * 0.2, accuracy: 1e-15)
        XCTAssertEqual(
            o.learningRate(step: 3, iterations: 100, globalBatch: 2), 1.4142135623730951e-4 * 0.6, accuracy: 1e-15)
        XCTAssertEqual(o.learningRate(step: 5, iterations: 100, globalBatch: 2), 1.4142135623730951e-4, accuracy: 1e-15)
        XCTAssertEqual(o.learningRate(step: 9, iterations: 100, globalBatch: 2), 1.4142135623730951e-4, accuracy: 1e-15)
    }

    func testDecayCountsGlobalSteps() {
        // I = 10: d = 1 up to step 5, then 0.8, 0.6, ... 0 at step 10; linear at B = 3: 3e-4 · d
        let o = config(.linear)
        XCTAssertEqual(o.learningRate(step: 5, iterations: 10, globalBatch: 3), 3e-4, accuracy: 1e-18)
        XCTAssertEqual(o.learningRate(step: 6, iterations: 10, globalBatch: 3), 2.4e-4, accuracy: 1e-18)
        XCTAssertEqual(o.learningRate(step: 9, iterations: 10, globalBatch: 3), 0.6e-4, accuracy: 1e-18)
        XCTAssertEqual(o.learningRate(step: 10, iterations: 10, globalBatch: 3), 0)
    }

    /// A run that changes world size at a resume: the warm-up continues from the images seen (passed explicitly),
    /// not from step × the new batch.
    func testResumeAtAnotherGlobalBatchContinuesTheWarmup() {
        let o = config(.linear, warmup: 12)
        // 4 steps at B = 1 (n = 4), then B = 4: step 5 has n = 8 → 4e-4 · 8/12; step 6 has n = 12 → 4e-4
        XCTAssertEqual(
            o.learningRate(step: 5, iterations: 100, globalBatch: 4, imagesSeen: 8), 4e-4 * 8 / 12, accuracy: 1e-18)
        XCTAssertEqual(o.learningRate(step: 6, iterations: 100, globalBatch: 4, imagesSeen: 12), 4e-4, accuracy: 1e-18)
    }

    func testOlderConfigurationsDecodeWithoutTheNewFields() throws {
        let old = #"{"lr":0.0002,"beta1":0.5,"beta2":0.999,"weightDecay":0.0001,"decay":true}"#
        let o = try JSONDecoder().decode(OptimizerConfig.self, from: Data(old.utf8))
        XCTAssertEqual(o.lr, 2e-4)
        XCTAssertEqual(o.lrScaling, .none)
        XCTAssertEqual(o.lrScalingMaxBatch, 0, "a configuration from before the cap keeps its uncapped rule")
        XCTAssertEqual(o.warmupImages, 0)
        let c = config(.sqrt, warmup: 5, maxBatch: 3)
        XCTAssertEqual(try JSONDecoder().decode(OptimizerConfig.self, from: JSONEncoder().encode(c)), c)
    }
}
