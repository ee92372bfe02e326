import Engine
import TestSupport
import XCTest

@testable import UGATIT

/// SNConv with fewer outputs than weights computes (W ∗ x)/σ + b instead of (W/σ) ∗ x + b: the same values and
/// gradients up to rounding, and the same power iteration.
final class SNConvTests: XCTestCase {
    func testScaledOutputsMatchTheNormalisedWeight() {
        var rng = RandomGenerator(seed: 21)
        let store = ParameterStore()
        let conv = SNConv(store, "c", cin: 8, cout: 16, kernel: 4, stride: 1, padding: 1, mode: .reflect, bias: true, rng: &rng)
        store.finalize()
        let x = rng.normalTensor([2, 8, 4, 4])  // 2·16·3·3 = 288 outputs < 2,048 weights: the scaled path
        let dy = rng.normalTensor([2, 16, 3, 3])
        let (u0, v0) = (conv.weight.u.value.copy(), conv.weight.v.value.copy())
        func run(scaled: Bool) -> [Tensor] {
            conv.weight.u.value.assign(u0)
            conv.weight.v.value.assign(v0)
            store.zeroGrad()
            let t = Tape()
            let xv = t.input(x)
            let y =
                scaled
                ? conv(t, xv)
                : t.conv2d(xv, conv.weight.normalized(t), t.param(conv.bias!), stride: 1, padding: 1, mode: .reflect)
            t.backward(y, seed: dy)
            return [y.value, t.grad(of: xv)!, conv.weight.weightOrig.grad.copy(), conv.bias!.grad.copy(),
                    conv.weight.u.value.copy(), conv.weight.v.value.copy()]
        }
        let (scaled, reference) = (run(scaled: true), run(scaled: false))
        for (i, name) in ["y", "dx", "dW", "db", "u", "v"].enumerated() {
            // dW is a difference of two terms (G/σ − k·u vᵀ) whose rounding differs between the two orders: 1e-5
            assertClose(scaled[i], reference[i], atol: 1e-5, rtol: 1e-4, name)
        }
        XCTAssertGreaterThan(scaled[2].array.map(abs).max()!, 1e-3, "dW is not zero")
    }
}
