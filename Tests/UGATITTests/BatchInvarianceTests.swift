import Engine
import TestSupport
import UGATIT
import XCTest

/// Data parallelism rests on this: the gradient of a batch of N is the mean of the gradients of its N samples
/// (every loss is a mean, every normalisation is per sample). Checked for both phases, with group heads.
final class BatchInvarianceTests: XCTestCase {
    func grads(
        _ phase: (UGATITStep) -> Void, _ store: (UGATITModel) -> ParameterStore, _ m: UGATITModel, _ s: UGATITStep
    ) -> [Float] {
        phase(s)
        return store(m).grads.array
    }

    func testBatchGradientIsTheMeanOfPerSampleGradients() {
        let config = ModelConfig(imageSize: 32, ch: 4, blocks: 1, globalLayers: 4, localLayers: 3, groups: 4)
        var rng = RandomGenerator(seed: 4)
        let a = rng.uniformTensor([2, 3, 32, 32], -1, 1)
        let b = rng.uniformTensor([2, 3, 32, 32], -1, 1)
        func half(_ t: Tensor, _ i: Int) -> Tensor {
            let h = Tensor(uninitialized: [1, 3, 32, 32])
            h.data.update(from: t.data + i * h.count, count: h.count)
            return h
        }
        for labels in [[0, 0], [1, 1], [3, 3]] {
            for dPhase in [true, false] {
                func run(_ x: Tensor, _ y: Tensor, _ l: [Int]) -> [Float] {
                    let m = UGATITModel(config: config, seed: 1)
                    let s = UGATITStep(model: m)
                    if dPhase {
                        s.discriminatorGradients(realA: x, realB: y, labelsA: l, labelsB: l)
                        return m.discriminators.grads.array
                    }
                    s.generatorGradients(realA: x, realB: y, labelsA: l, labelsB: l)
                    return m.generators.grads.array
                }
                let full = run(a, b, labels)
                let g0 = run(half(a, 0), half(b, 0), [labels[0]])
                let g1 = run(half(a, 1), half(b, 1), [labels[1]])
                let mean = zip(g0, g1).map { ($0 + $1) / 2 }
                XCTAssertLessThan(scaledMaxDifference(mean, full), 1e-5, "labels \(labels), \(dPhase ? "D" : "G") phase")
            }
        }
    }
}
