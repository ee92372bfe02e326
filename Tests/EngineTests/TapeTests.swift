@testable import Engine
import TestSupport
import XCTest

/// The tape: gradient accumulation into parameters and shared inputs, detach, frozen parameters, aliasing of
/// gradient tensors that several nodes share, and the training flag.
final class TapeTests: XCTestCase {
    // MARK: - Accumulation

    func testInputUsedTwiceGetsSummedGradient() {
        var rng = testRNG("used twice")
        let x = rng.normalTensor([2, 3])
        let w = rng.normalTensor([3, 3])
        // y = (x Wᵀ) Wᵀ: W enters twice through one Var
        gradCheck(
            [x, w], reference: { Ref.linear(Ref.linear($0[0], $0[1]), $0[1]) },
            op: { t, v in t.linear(t.linear(v[0], v[1]), v[1]) })
    }

    func testParameterUsedTwiceGetsSummedGradient() {
        // the model pattern: every call does tape.param(p), so one Parameter has several nodes in one graph
        var rng = testRNG("param twice")
        let x = rng.normalTensor([2, 3])
        let w = rng.normalTensor([3, 3])
        let report = gradCheck(
            [x, w], reference: { Ref.linear(Ref.linear($0[0], $0[1]), $0[1]) },
            op: { t, v in t.linear(t.linear(v[0], v[1]), v[1]) })
        let p = Parameter(name: "w", value: w.copy())
        let tape = Tape()
        let y = tape.linear(tape.linear(tape.constant(x), tape.param(p)), tape.param(p))
        tape.backward(y, seed: gradCheckUpstream(y.shape))
        XCTAssertTrue(p.hasGrad)
        assertClose(p.grad, report.numericGradients[1]!, atol: 1e-5, rtol: 1e-4, "parameter gradient")

        // a second graph (another call, another tape) adds to the same gradient buffer until zeroGrad
        let first = p.grad.copy()
        let tape2 = Tape()
        let y2 = tape2.linear(tape2.linear(tape2.constant(x), tape2.param(p)), tape2.param(p))
        tape2.backward(y2, seed: gradCheckUpstream(y2.shape))
        assertClose(
            p.grad, Tensor(shape: first.shape, first.array.map { 2 * $0 }), atol: 1e-6, rtol: 1e-6, "two graphs")
    }

    /// `backward(_:above:)` then `backward` (the G phase's two walks) give the same floats as one walk over the whole
    /// loss. `h`, below the boundary, has six consumers: two walked first (`cycle`, `twin`), one recorded between `h`
    /// and the boundary (`mid`, walked second) and three after the first walk (`j1`, `j2`, `j3`); one walk sums their
    /// parts in reverse recording order, ((((j3 + j2) + j1) + twin) + cycle) + mid, which the held-back parts must
    /// keep. `w2` is used twice after the first walk (`j1`, `j3`), as a discriminator with the original's CAM uses
    /// `weight_orig` (`--d-cam-raw-weight`: once spectrally normalised, once raw); before 0529ea6 that was refused as a
    /// use of a walked node.
    func testBackwardAboveABoundaryThenTheRestMatchesOneWalkBitForBit() {
        var rng = testRNG("two walks")
        let x = rng.normalTensor([6, 5])
        let shapes = [[7, 5], [3, 7], [3, 7], [3, 7], [7, 7]]
        let weights = shapes.map { rng.normalTensor($0) }
        func run(split: Bool) -> (grads: [[Float]], x: [Float], loss: Float) {
            let ps = weights.enumerated().map { Parameter(name: "w\($0.offset)", value: $0.element.copy()) }
            let t = Tape()
            let xv = t.input(x)
            let h = t.tanh(t.linear(xv, t.param(ps[0])))  // the "translation", below the boundary
            let mid = t.linear(h, t.param(ps[4]))  // a consumer of h below the boundary, judged later
            let boundary = t.count
            let cycle = t.linear(h, t.param(ps[1]))
            let twin = t.tanh(h)
            let own: [(Float, Var)] = [(10, t.sum(t.mul(cycle, cycle))), (0.3, t.sum(cycle)), (2, t.sum(twin))]
            if split { t.backward(t.weightedSum(own), above: boundary) }
            let j1 = t.linear(h, t.param(ps[2]))
            let j2 = t.tanh(t.linear(h, t.param(ps[3])))
            let j3 = t.linear(h, t.param(ps[2]))
            let judged: [(Float, Var)] = [
                (1, t.sum(t.mul(j1, j1))), (0.5, t.sum(j2)), (0.7, t.sum(t.tanh(mid))), (0.2, t.sum(j3)),
            ]
            let root = t.weightedSum(split ? judged : own + judged)
            t.backward(root)
            let loss = split ? Tape.weightedSumValue(own + judged) : root.value[0]
            return (ps.map(\.grad.array), t.grad(of: xv)!.array, loss)
        }
        let (one, two) = (run(split: false), run(split: true))
        XCTAssertEqual(one.loss, two.loss, "the loss summed in the same order")
        for i in 0..<5 { XCTAssertEqual(one.grads[i], two.grads[i], "w\(i): not the same floats") }
        XCTAssertEqual(one.x, two.x, "input gradient: not the same floats")
        XCTAssertTrue(one.grads[0].contains { $0 != 0 })
    }

    /// What the checks of `param` and `record` refuse after `backward(_:above:)` (a refusal stops the process, so the
    /// predicates are tested): a parameter the walk added gradient to (also through a leaf below the boundary), a
    /// walked node, and a leaf of such a parameter; not a frozen parameter the walk used, nor a parameter or node used
    /// only below the boundary or after the walk.
    func testAfterAWalkOnlyWalkedUsesAreRefused() {
        let (p, q, r) = (
            Parameter(name: "p", value: Tensor(repeating: 0.5, shape: [2, 2])),
            Parameter(name: "q", value: Tensor(repeating: 0.25, shape: [2, 2])),
            Parameter(name: "r", value: Tensor(repeating: 2, shape: [2, 2]))
        )
        let t = Tape()
        let x = t.input(Tensor(repeating: 1, shape: [3, 2]))
        let a = t.linear(x, t.param(p))  // below the boundary
        let leafR = t.param(r)  // a parameter leaf below the boundary, consumed by a walked node
        let boundary = t.count
        let frozen = Parameter(name: "frozen", value: Tensor(repeating: 1, shape: [2, 2]))
        frozen.trainable = false
        let b = t.linear(t.linear(t.linear(a, t.param(q)), leafR), t.param(frozen))
        XCTAssertFalse(t.walkAddedGradient(to: q) || t.reachedByWalk(b), "nothing walked yet")
        t.backward(t.sum(b), above: boundary)
        XCTAssertTrue(t.walkAddedGradient(to: q), "q's only use was walked")
        XCTAssertTrue(t.walkAddedGradient(to: r), "r's leaf lies below the boundary, a walked node consumed it")
        XCTAssertFalse(t.walkAddedGradient(to: p), "p was used below the boundary only")
        XCTAssertFalse(t.walkAddedGradient(to: frozen), "frozen: the walk added nothing")
        XCTAssertTrue(t.reachedByWalk(b))
        XCTAssertTrue(t.reachedByWalk(leafR), "the walk added into r's leaf")
        XCTAssertFalse(t.reachedByWalk(a), "a's gradient is held back for the next walk")
        let s = Parameter(name: "s", value: Tensor(repeating: 1, shape: [2, 2]))
        let c = t.linear(a, t.param(s))  // after the walk
        XCTAssertFalse(t.walkAddedGradient(to: s), "a use after the walk's root")
        let d = t.linear(t.linear(c, t.param(s)), t.param(frozen))  // s again (refused before 0529ea6), frozen again
        XCTAssertFalse(t.reachedByWalk(c))
        t.backward(t.sum(d))
        let stillWalked = t.walkAddedGradient(to: q) || t.reachedByWalk(b) || t.reachedByWalk(leafR)
        XCTAssertFalse(stillWalked, "a whole backward ends the walk")
        XCTAssertTrue(p.grad.array.contains { $0 != 0 } && s.grad.array.contains { $0 != 0 })
    }

    func testZeroGradClearsGradientsAndFlags() {
        let store = ParameterStore()
        let p = store.add("w", Tensor(repeating: 1, shape: [2, 2]))
        store.finalize()
        let tape = Tape()
        tape.backward(tape.sum(tape.mul(tape.param(p), tape.param(p))))
        XCTAssertTrue(p.hasGrad)
        XCTAssertEqual(p.grad.array, [2, 2, 2, 2])
        XCTAssertEqual(store.grads.array, [2, 2, 2, 2], "the gradient is a view into the store's arena")
        store.zeroGrad()
        XCTAssertFalse(p.hasGrad)
        XCTAssertEqual(store.grads.array, [0, 0, 0, 0])
    }

    /// A gradient arena of several zeroing blocks (2¹⁸ floats each) and a partial last one, on 1 and 2 threads.
    func testZeroGradClearsAnArenaOfSeveralBlocks() {
        let store = ParameterStore()
        let big = store.add("big", Tensor(repeating: 1, shape: [3 * (1 << 18) + 5]))
        let small = store.add("small", Tensor(repeating: 1, shape: [7]))
        store.finalize()
        for threads in [1, 2] {
            Runtime.configure(threads: threads)
            store.grads.fill(3)
            big.hasGrad = true
            small.hasGrad = true
            store.zeroGrad()
            XCTAssertTrue(store.grads.array.allSatisfy { $0 == 0 }, "\(threads) threads")
            XCTAssertFalse(big.hasGrad || small.hasGrad)
        }
        Runtime.configure(threads: 1)
    }

    // MARK: - Stopping gradients

    func testDetachStopsGradient() {
        let tape = Tape()
        let x = tape.input(Tensor(shape: [2, 2], [1, -2, 3, 0.5]))
        let w = tape.input(Tensor(shape: [1, 2], [3, -1]))
        let a = tape.scale(x, 2)
        let d = tape.detach(a)
        // y = detach(a)·w + a: x gets the gradient of the second term only
        let y = tape.add(tape.mul(d, w), a)
        let dy = Tensor(shape: [2, 2], [1, 2, 3, 4])
        tape.backward(y, seed: dy)
        XCTAssertEqual(tape.grad(of: x)!.array, [2, 4, 6, 8])
        XCTAssertEqual(tape.grad(of: w)!.array, [20, -4])  // Σ over rows of a·dy: [2·1 + 6·3, −4·2 + 1·4]
        XCTAssertNil(tape.grad(of: d), "a detached value is a constant")
    }

    func testFrozenParameterGetsNoGradientButInputDoes() {
        // selective backprop: frozen encoder weights, while the gradient still flows to the block's input
        var rng = testRNG("frozen")
        let x = rng.normalTensor([2, 3, 5, 5])
        let w = rng.normalTensor([4, 3, 3, 3])
        let b = rng.normalTensor([4])
        let pw = Parameter(name: "w", value: w)
        let pb = Parameter(name: "b", value: b)
        pw.trainable = false
        let tape = Tape()
        let xv = tape.input(x)
        let y = tape.conv2d(xv, tape.param(pw), tape.param(pb), padding: 1, mode: .reflect)
        let dy = rng.normalTensor(y.shape)
        tape.backward(y, seed: dy)
        XCTAssertFalse(pw.hasGrad)
        XCTAssertEqual(pw.grad.array, [Float](repeating: 0, count: pw.grad.count), "frozen weight gradient stays zero")
        XCTAssertTrue(pb.hasGrad, "the trainable bias still gets its gradient")
        let r = Ref.conv2dBackward(DTensor(x), DTensor(w), DTensor(dy), padding: 1, mode: .reflect)
        assertClose(tape.grad(of: xv)!, r.dx, atol: 1e-5, rtol: 1e-4, "input gradient through the frozen conv")
        assertClose(pb.grad, r.db, atol: 1e-5, rtol: 1e-4, "bias gradient")
    }

    func testNothingRequiresGradRecordsNoBackward() {
        // all-constant graphs (inference) must not fail on backward and must not touch parameters
        let p = Parameter(name: "w", value: Tensor(repeating: 2, shape: [3]))
        p.trainable = false
        let tape = Tape()
        let y = tape.sum(tape.mul(tape.constant(Tensor(repeating: 1, shape: [3])), tape.param(p)))
        tape.backward(y)
        XCTAssertFalse(p.hasGrad)
        XCTAssertEqual(y.value.array, [6])
    }

    // MARK: - Shared gradient tensors (aliasing)

    func testAddOfSameVar() {
        var rng = testRNG("add x x")
        let x = rng.normalTensor([2, 3, 2])
        // add hands dy to both operands without copying: the second accumulation must not write into dy
        gradCheck([x], reference: { Ref.add($0[0], $0[0]) }, op: { $0.add($1[0], $1[0]) }, "add(x, x)")
        gradCheck(
            [x], reference: { Ref.sub(Ref.add($0[0], $0[0]), $0[0]) }, op: { t, v in t.sub(t.add(v[0], v[0]), v[0]) },
            "add(x, x) − x")
    }

    func testReshapeViewsShareTheSeed() {
        var rng = testRNG("reshape alias")
        let x = rng.normalTensor([2, 3])
        // reshape passes a view of its dy (here the seed) as x's gradient; then a second path adds to x
        gradCheck(
            [x], reference: { Ref.add(Ref.reshape($0[0], [6]), Ref.reshape(Ref.scale($0[0], 3), [6])) },
            op: { t, v in
                let r = t.reshape(v[0], [6])
                return t.add(r, t.reshape(t.scale(v[0], 3), [6]))
            },
            "view first")
        gradCheck(
            [x], reference: { Ref.add(Ref.reshape(Ref.scale($0[0], 3), [6]), Ref.reshape($0[0], [6])) },
            op: { t, v in
                let q = t.reshape(t.scale(v[0], 3), [6])
                return t.add(q, t.reshape(v[0], [6]))
            },
            "view last")
        gradCheck([x], reference: { Ref.reshape($0[0], [3, 2]) }, op: { $0.reshape($1[0], [3, 2]) }, "root is a view")
    }

    func testSharedGradientThroughIntermediateNode() {
        var rng = testRNG("intermediate alias")
        let a = rng.normalTensor([3, 4])
        let b = rng.normalTensor([3, 4])
        // s receives dy shared from the outer add, then the product's gradient: s·s + s with s = a + b
        gradCheck(
            [a, b],
            reference: { t in
                let s = Ref.add(t[0], t[1])
                return Ref.add(Ref.mul(s, s), s)
            },
            op: { t, v in
                let s = t.add(v[0], v[1])
                return t.add(t.mul(s, s), s)
            })
        // the same tensor flows to two operands that are then reused by later ops
        gradCheck(
            [a, b],
            reference: { t in
                let s = Ref.add(t[0], t[1])
                return Ref.mul(Ref.add(s, t[0]), Ref.sub(s, t[1]))
            },
            op: { t, v in
                let s = t.add(v[0], v[1])
                return t.mul(t.add(s, v[0]), t.sub(s, v[1]))
            }, "reuse")
    }

    func testSmallNetworkGradCheck() {
        // reflect-pad conv -> IN -> ReLU -> residual add -> upsample -> ILN -> global pools -> concat -> linear -> mse:
        // many ops share tensors between forward and backward, so an op that mutates what it was handed shows here
        var rng = testRNG("network")
        let x = rng.normalTensor([2, 2, 4, 3])
        let w = rng.normalTensor([2, 2, 3, 3], std: 0.4)
        let rho = rng.uniformTensor([1, 2, 1, 1], 0, 1)
        let gamma = rng.uniformTensor([1, 2, 1, 1], 0.5, 1.5)
        let beta = rng.normalTensor([1, 2, 1, 1])
        let lw = rng.normalTensor([3, 4])
        let target = rng.normalTensor([2, 3])
        gradCheck(
            [x, w, rho, gamma, beta, lw, target], differentiable: [true, true, true, true, true, true, false],
            reference: { t in
                let h = Ref.add(Ref.relu(Ref.instanceNorm(Ref.conv2d(t[0], t[1], padding: 1, mode: .reflect))), t[0])
                let u = Ref.iln(Ref.upsampleNearest2x(h), rho: t[2], gamma: t[3], beta: t[4])
                let f = Ref.concatChannels([Ref.globalAvgPool(u), Ref.globalMaxPool(u)])
                return Ref.mse(Ref.linear(f, t[5]), t[6])
            },
            op: { t, v in
                let h = t.add(t.relu(t.instanceNorm(t.conv2d(v[0], v[1], padding: 1, mode: .reflect))), v[0])
                let u = t.iln(t.upsampleNearest2x(h), rho: v[2], gamma: v[3], beta: v[4])
                let f = t.concatChannels([t.globalAvgPool(u), t.globalMaxPool(u)])
                return t.mse(t.linear(f, v[5]), v[6])
            })
    }

    func testThreadedOpsMatchSingleThreaded() {
        // the Parallel.forEach paths (im2col/col2im, norms, upsample, grid sample) split work without races:
        // 4 threads give the single-threaded results (up to OpenBLAS's own summation order)
        var rng = testRNG("threads")
        // 7 channels: 14 planes and 7 input channels do not split evenly over 4 threads
        let x = rng.normalTensor([2, 7, 12, 10])
        let w = rng.normalTensor([7, 7, 3, 3], std: 0.2)
        let rho = rng.uniformTensor([1, 7, 1, 1], 0, 1)
        let grid = rng.uniformTensor([2, 9, 11, 2], -1.1, 1.1)
        func run(threads: Int) -> [Tensor] {
            Runtime.configure(threads: threads)
            defer { Runtime.configure(threads: 1) }
            let t = Tape()
            let (xv, wv, rv) = (t.input(x), t.input(w), t.input(rho))
            let h = t.relu(t.instanceNorm(t.conv2d(xv, wv, padding: 1, mode: .reflect), unbiased: true))
            let g = t.adaILN(
                t.upsampleNearest2x(h), rho: rv, gamma: t.constant(Tensor(repeating: 1.5, shape: [2, 7])),
                beta: t.constant(Tensor(zeros: [2, 7])))
            let y = t.gridSample(t.layerNorm(g), grid: grid, padding: .reflection)
            t.backward(y, seed: gradCheckUpstream(y.shape))
            return [y.value, t.grad(of: xv)!, t.grad(of: wv)!, t.grad(of: rv)!]
        }
        let (one, four) = (run(threads: 1), run(threads: 4))
        for (i, (a, b)) in zip(four, one).enumerated() { assertClose(a, b, atol: 1e-6, rtol: 1e-5, "result \(i)") }
    }

    // MARK: - Training flag

    func testEvalTapeLeavesSpectralNormBuffersUntouched() {
        var rng = testRNG("eval sn")
        let w = rng.normalTensor([3, 2, 2, 2])
        let u = rng.normalTensor([3])
        let v = rng.normalTensor([8])
        let (u0, v0) = (u.copy(), v.copy())
        let eval = Tape(training: false)
        _ = eval.spectralNorm(eval.input(w), u: u, v: v)
        assertBitwiseEqual(u, u0, "u after an eval-mode call")
        assertBitwiseEqual(v, v0, "v after an eval-mode call")
        let train = Tape()
        XCTAssertTrue(train.training, "tapes train by default")
        _ = train.spectralNorm(train.input(w), u: u, v: v, training: false)
        assertBitwiseEqual(u, u0, "an explicit training: false overrides the tape")
        _ = train.spectralNorm(train.input(w), u: u, v: v)
        XCTAssertNotEqual(u.array, u0.array, "a training-mode call advances u")
        XCTAssertNotEqual(v.array, v0.array, "a training-mode call advances v")
    }
}
