import Engine
import TestSupport
import UGATIT
import XCTest

/// A step on 2 threads runs its two chains side by side (`UGATITStep`'s `Chains`, `Parallel.pair`). It must compute
/// what 1 thread computes, bit for bit: losses, gradients, parameters, spectral-norm buffers, the augmentation draws
/// and their order, and each parameter reported final once per phase.
final class ThreadedStepTests: XCTestCase {
    /// An order-dependent augmentation: every call draws a factor from one generator and scales the images by it.
    final class ScalingAugment: DiscriminatorAugment {
        var rng = RandomGenerator(seed: 77)
        var calls: [Domain] = []
        var observed: [Domain] = []
        func augment(_ t: Tape, _ x: Var, domain: Domain) -> Var {
            calls.append(domain)
            return t.scale(x, 0.5 + rng.uniform())
        }
        func observeReal(domain: Domain, global: Tensor, local: Tensor) { observed.append(domain) }
    }

    struct Run {
        var values: [LossValues] = []
        var parameters: [Float] = []
        var buffers: [Float] = []
        var gradients: [Float] = []
        var calls: [Domain] = []
        var observed: [Domain] = []
        var reports: [String: Int] = [:]
    }

    func run(threads: Int) -> Run {
        Runtime.configure(threads: threads)
        defer { Runtime.configure(threads: 1) }
        let config = ModelConfig(imageSize: 32, ch: 4, blocks: 1, globalLayers: 4, localLayers: 3, groups: 2)
        var rng = RandomGenerator(seed: 12)
        let m = UGATITModel(config: config, seed: 6)
        let s = UGATITStep(model: m)
        let augment = ScalingAugment()
        s.augment = augment
        s.frozenGenerator = Array(m.generators.parameters.prefix(2))
        var r = Run()
        let lock = NSLock()
        s.onGradientFinal = { p in
            lock.lock()
            r.reports[p.name, default: 0] += 1
            lock.unlock()
        }
        for _ in 0..<2 {
            let a = rng.uniformTensor([2, 3, 32, 32], -1, 1)
            let b = rng.uniformTensor([2, 3, 32, 32], -1, 1)
            var v = s.discriminatorGradients(realA: a, realB: b, labelsA: [0, 1], labelsB: [1, 1])
            s.applyDiscriminator()
            v.merge(s.generatorGradients(realA: a, realB: b, labelsA: [0, 1], labelsB: [1, 1])) { $1 }
            r.gradients += m.generators.grads.array
            s.applyGenerator()
            r.values.append(v)
        }
        r.parameters = m.generators.values.array + m.discriminators.values.array
        r.buffers = m.discriminators.bufferValues.array
        (r.calls, r.observed) = (augment.calls, augment.observed)
        return r
    }

    func testTwoThreadsComputeWhatOneThreadComputes() {
        let one = run(threads: 1)
        let two = run(threads: 2)
        XCTAssertEqual(one.values, two.values, "loss values")
        XCTAssertEqual(one.gradients, two.gradients, "generator gradients")
        XCTAssertEqual(one.parameters, two.parameters, "parameters after 2 steps")
        XCTAssertEqual(one.buffers, two.buffers, "spectral-norm buffers")
        XCTAssertEqual(one.calls, [.a, .b, .a, .b, .a, .b] + [.a, .b, .a, .b, .a, .b], "D: reals then fakes; G: A then B")
        XCTAssertEqual(two.calls, one.calls)
        XCTAssertEqual(two.observed, [.a, .b, .a, .b])
        XCTAssertEqual(one.reports, two.reports)
        // once per phase that back-propagates through it, 2 steps: a discriminator's in the D phase and (untrainable)
        // in the G phase, a generator's in the G phase only (the D phase's translations are not back-propagated)
        let m = UGATITModel(config: ModelConfig(imageSize: 32, ch: 4, blocks: 1, globalLayers: 4, localLayers: 3, groups: 2), seed: 6)
        for p in m.generators.parameters { XCTAssertEqual(two.reports[p.name], 2, p.name) }
        for p in m.discriminators.parameters { XCTAssertEqual(two.reports[p.name], 4, p.name) }
        XCTAssertNotNil(one.values[0][LossKey.gLoss])
        XCTAssertEqual(one.values[0].keys.sorted(), two.values[0].keys.sorted())
    }
}
