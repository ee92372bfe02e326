import CKernels
import Engine
import TestSupport
import XCTest

/// Adam against torch.optim.Adam trajectories, and the skip rule for parameters without a gradient.
final class AdamTests: XCTestCase {
    /// Row t of a [T, ...] tensor, as a tensor of the remaining shape.
    private func row(_ t: Tensor, _ i: Int) -> Tensor {
        let shape = Array(t.shape.dropFirst())
        let n = shape.reduce(1, *)
        return Tensor(shape: shape, Array(t.array[(i * n)..<((i + 1) * n)]))
    }

    private func makeAdam(_ f: Fixture, _ params: [Parameter]) throws -> Adam {
        XCTAssertEqual(try f.meta("optimizer"), "Adam")
        return Adam(
            params, lr: try f.number("lr"), beta1: try f.number("beta1"), beta2: try f.number("beta2"),
            eps: try f.number("eps"), weightDecay: try f.number("weight_decay"))
    }

    /// Golden: Scripts/golden/make_golden.py case adam (torch.optim.Adam([p, p2], lr=1e-2, betas=(0.5, 0.999),
    /// eps=1e-8, weight_decay=1e-4, foreach=False), 10 steps; p2 has no gradient (None) on steps 3 and 6).
    func testGoldenAdamTrajectoryWithSkippedSteps() throws {
        let f = try Fixture.load("adam")
        let skips = Set(try f.meta("skip_p2_steps").split(separator: ",").map { Int($0)! })
        XCTAssertEqual(skips, [3, 6])
        let p = Parameter(name: "p", value: try f["p_init"])
        let p2 = Parameter(name: "p2", value: try f["p2_init"])
        let adam = try makeAdam(f, [p, p2])
        let (gp, gp2, pAfter, p2After) = (try f["grads_p"], try f["grads_p2"], try f["p_after"], try f["p2_after"])
        let steps = Int(try f.number("steps"))
        for t in 0..<steps {
            p.grad.assign(row(gp, t))
            p.hasGrad = true
            let before = (value: p2.value.copy(), m: adam.m[1].copy(), v: adam.v[1].copy(), step: adam.steps[1])
            if skips.contains(t) {
                p2.grad.fill(0)
                p2.hasGrad = false
            } else {
                p2.grad.assign(row(gp2, t))
                p2.hasGrad = true
            }
            adam.step()
            assertClose(p.value, row(pAfter, t), atol: 1e-7, rtol: 1e-6, "p after step \(t)")
            assertClose(p2.value, row(p2After, t), atol: 1e-7, rtol: 1e-6, "p2 after step \(t)")
            if skips.contains(t) {
                assertBitwiseEqual(p2.value, before.value, "skipped p2 value at step \(t)")
                assertBitwiseEqual(adam.m[1], before.m, "skipped p2 first moment at step \(t)")
                assertBitwiseEqual(adam.v[1], before.v, "skipped p2 second moment at step \(t)")
                XCTAssertEqual(adam.steps[1], before.step, "skipped p2 step count at step \(t)")
            }
        }
        XCTAssertEqual(adam.steps, [steps, steps - skips.count], "per-parameter step counts")
    }

    /// Golden: Scripts/golden/make_golden.py case adam_defaults_lr (torch.optim.Adam([q], lr=1e-4, betas=(0.5, 0.999),
    /// eps=1e-8, weight_decay=1e-4, foreach=False), 10 steps: the training run's learning rate).
    func testGoldenAdamTrainingLearningRate() throws {
        let f = try Fixture.load("adam_defaults_lr")
        let q = Parameter(name: "q", value: try f["q_init"])
        let adam = try makeAdam(f, [q])
        XCTAssertEqual(adam.lr, 1e-4)
        let (g, after) = (try f["grads_q"], try f["q_after"])
        for t in 0..<Int(try f.number("steps")) {
            q.grad.assign(row(g, t))
            q.hasGrad = true
            adam.step()
            assertClose(q.value, row(after, t), atol: 1e-7, rtol: 1e-6, "q after step \(t)")
        }
    }

    func testParameterWithoutGradientIsUntouched() {
        var rng = testRNG("adam skip")
        let a = Parameter(name: "a", value: rng.normalTensor([4, 3]))
        let b = Parameter(name: "b", value: rng.normalTensor([5]))
        let adam = Adam([a, b], lr: 1e-2, beta1: 0.5, beta2: 0.999, weightDecay: 1e-4)
        for _ in 0..<3 {
            a.grad.assign(rng.normalTensor([4, 3]))
            b.grad.assign(rng.normalTensor([5]))
            a.hasGrad = true
            b.hasGrad = true
            adam.step()
        }
        let snap = (value: b.value.copy(), m: adam.m[1].copy(), v: adam.v[1].copy(), steps: adam.steps[1])
        let aBefore = a.value.copy()
        // a non-zero gradient sits in b.grad, but hasGrad is false: b must be skipped entirely
        b.grad.assign(rng.normalTensor([5]))
        b.hasGrad = false
        a.grad.assign(rng.normalTensor([4, 3]))
        a.hasGrad = true
        adam.step()
        assertBitwiseEqual(b.value, snap.value, "value")
        assertBitwiseEqual(adam.m[1], snap.m, "m")
        assertBitwiseEqual(adam.v[1], snap.v, "v")
        XCTAssertEqual(adam.steps, [4, snap.steps])
        XCTAssertNotEqual(a.value.array, aBefore.array, "the parameter with a gradient still moves")
    }

    func testFirstStepMovesByLearningRate() {
        // at t = 1 without weight decay, m̂ = g and v̂ = g², so every element moves by lr·g/(|g| + eps) ≈ ±lr
        let p = Parameter(name: "p", value: Tensor(shape: [4], [1, -1, 0.5, 3]))
        p.grad.assign(Tensor(shape: [4], [0.3, -2, 1e-3, -50]))
        p.hasGrad = true
        Adam([p], lr: 0.1, beta1: 0.5, beta2: 0.999).step()
        assertClose(p.value, [0.9, -0.9, 0.4, 3.1], atol: 1e-5, rtol: 0)  // 1e-3/(1e-3 + eps) ≈ 0.99999
    }

    func testArenaParametersMatchStandaloneOnes() {
        // parameters living in a ParameterStore's flat arena update exactly like standalone ones
        var rng = testRNG("adam arena")
        let v1 = rng.normalTensor([3, 2])
        let v2 = rng.normalTensor([4])
        let store = ParameterStore()
        let s1 = store.add("w", v1.copy())
        let s2 = store.add("b", v2.copy())
        store.finalize()
        let l1 = Parameter(name: "w", value: v1.copy())
        let l2 = Parameter(name: "b", value: v2.copy())
        let (adamStore, adamLoose) = (
            Adam([s1, s2], lr: 1e-2, weightDecay: 1e-4), Adam([l1, l2], lr: 1e-2, weightDecay: 1e-4)
        )
        for _ in 0..<4 {
            let (g1, g2) = (rng.normalTensor([3, 2]), rng.normalTensor([4]))
            store.zeroGrad()
            s1.grad.assign(g1)
            s2.grad.assign(g2)
            l1.grad.assign(g1)
            l2.grad.assign(g2)
            for p in [s1, s2, l1, l2] { p.hasGrad = true }
            adamStore.step()
            adamLoose.step()
        }
        assertBitwiseEqual(s1.value, l1.value, "w")
        assertBitwiseEqual(s2.value, l2.value, "b")
        assertBitwiseEqual(store.values, Tensor(shape: [10], l1.value.array + l2.value.array), "arena holds the values")
    }

    /// `f2w_adam_update` (vectorised lanes, then the tail) gives exactly the floats of the scalar update, for both of torch's
    /// lerp branches and with and without weight decay; n = 301 covers the unrolled vector body and a scalar tail.
    func testKernelLanesAndTailEqualTheScalarUpdate() {
        var rng = RandomGenerator(seed: 11)
        let n = 301
        for (w1, wd) in [(Float(0.5), Float(1e-4)), (0.1, 0), (0.9, 1e-2)] {
            let th = rng.normalTensor([n]), g = rng.normalTensor([n]), m = rng.normalTensor([n], std: 0.1)
            let v = rng.normalTensor([n], std: 0.1)
            for j in 0..<n { v[j] = abs(v[j]) }
            let (b2, w2, step, bc2, eps): (Float, Float, Float, Float, Float) = (0.999, 0.001, 3e-4, 0.0447, 1e-8)
            var (eth, em, ev) = (th.array, m.array, v.array)
            for j in 0..<n {
                let gj = wd != 0 ? g[j] + wd * eth[j] : g[j]
                em[j] = w1 < 0.5 ? em[j] + w1 * (gj - em[j]) : gj - (gj - em[j]) * (1 - w1)
                ev[j] = ev[j] * b2 + w2 * (gj * gj)
                eth[j] = eth[j] - step * (em[j] / (ev[j].squareRoot() / bc2 + eps))
            }
            f2w_adam_update(n, th.data, g.data, m.data, v.data, wd, w1, b2, w2, step, bc2, eps)
            XCTAssertEqual(th.array, eth, "theta, w1 \(w1) wd \(wd)")
            XCTAssertEqual(m.array, em, "m, w1 \(w1) wd \(wd)")
            XCTAssertEqual(v.array, ev, "v, w1 \(w1) wd \(wd)")
        }
    }
}
