import Engine
import TestSupport
import XCTest

/// spectralNorm: W/σ with one power iteration per training call; u, v are constants of the differentiation
/// (PyTorch computes them under no_grad), so the gradient is checked as a function of W with u, v fixed.
final class SpectralNormTests: XCTestCase {
    /// A random unit vector of n elements.
    private func unit(_ n: Int, _ rng: inout RandomGenerator) -> Tensor {
        let t = rng.normalTensor([n])
        let norm = t.array.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
        for i in 0..<n { t[i] /= norm }
        return t
    }

    func testEvalModeGradCheck() {
        var rng = testRNG("sn eval")
        for shape in [[4, 3, 2, 2], [1, 6], [3, 5], [2, 1, 3, 3]] {
            let w = rng.normalTensor(shape)
            let rows = shape[0]
            let cols = w.count / rows
            let u = unit(rows, &rng)
            let v = unit(cols, &rng)
            let (u0, v0) = (u.copy(), v.copy())
            gradCheck(
                [w], reference: { Ref.spectralNorm($0[0], u: DTensor(u0), v: DTensor(v0)) },
                op: { $0.spectralNorm($1[0], u: u, v: v, training: false) }, "\(shape)")
            assertBitwiseEqual(u, u0, "eval mode must not change u")
            assertBitwiseEqual(v, v0, "eval mode must not change v")
        }
    }

    /// Training mode: the iteration is computed once from the unperturbed W, then held fixed (no gradient through
    /// u, v); `op` must compute W/σ from W and advance u, v once.
    private func checkTrainingMode(_ label: String, op: @escaping (Tape, Var, Tensor, Tensor) -> Var) {
        var rng = testRNG(label)
        for shape in [[4, 3, 2, 2], [1, 6], [5, 2, 3, 1]] {
            let w = rng.normalTensor(shape)
            let rows = shape[0]
            let cols = w.count / rows
            let u = unit(rows, &rng)
            let v = unit(cols, &rng)
            let it = Ref.powerIteration(DTensor(w), u: DTensor(u), v: DTensor(v))
            gradCheck(
                [w], reference: { Ref.spectralNorm($0[0], u: it.u, v: it.v) }, op: { op($0, $1[0], u, v) },
                "\(label) \(shape)")
            assertClose(u, it.u, atol: 1e-6, rtol: 1e-5, "u after one iteration")
            assertClose(v, it.v, atol: 1e-6, rtol: 1e-5, "v after one iteration")
        }
    }

    func testTrainingModeGradCheck() {
        checkTrainingMode("sn train") { t, w, u, v in t.spectralNorm(w, u: u, v: v) }
    }

    func testInverseSigmaTimesWeightIsWOverSigma() {
        // W·(1/σ) through inverseSpectralNorm is the function spectralNorm computes, value and gradient (the part
        // through σ from inverseSpectralNorm, the part through W from the product)
        checkTrainingMode("sn inverse") { t, w, u, v in t.mul(w, t.inverseSpectralNorm(w, u: u, v: v)) }
    }

    func testScaleAndBiasInPlaceGradCheck() {
        var rng = testRNG("scale bias")
        let (y, s, b) = (rng.normalTensor([2, 3, 4, 5]), Tensor(repeating: 0.7, shape: [1]), rng.normalTensor([3]))
        gradCheck(
            [y, s, b],
            reference: { v in
                let (plane, c) = (20, 3)
                return DTensor(shape: [2, 3, 4, 5], v[0].data.indices.map { v[0].data[$0] * v[1].data[0] + v[2].data[$0 / plane % c] })
            },
            // the op overwrites its input: give it a fresh op output, as SNConv gives it the conv's
            op: { t, v in t.scaleAndBiasInPlace(t.scale(v[0], 1), scale: v[1], bias: v[2]) })
    }

    func testEveryTrainingCallAdvancesTheIteration() {
        var rng = testRNG("sn calls")
        let w = rng.normalTensor([3, 4])
        let u = unit(3, &rng)
        let v = unit(4, &rng)
        var ref = (u: DTensor(u), v: DTensor(v), sigma: 0.0)
        let tape = Tape()
        let wv = tape.input(w)
        for call in 1...3 {
            let y = tape.spectralNorm(wv, u: u, v: v)
            ref = Ref.powerIteration(DTensor(w), u: ref.u, v: ref.v)
            assertClose(u, ref.u, atol: 1e-6, rtol: 1e-5, "u after call \(call)")
            assertClose(v, ref.v, atol: 1e-6, rtol: 1e-5, "v after call \(call)")
            assertClose(
                y.value, DTensor(shape: w.shape, DTensor(w).data.map { $0 / ref.sigma }), atol: 1e-6, rtol: 1e-5,
                "W/σ after call \(call)")
        }
    }

    /// Spec section F: W = [[1, 2], [3, 4]], u₀ = (1, 0), v₀ = (0, 1), one training-mode forward.
    func testSpecOneStepVector() {
        let tape = Tape(training: true)
        let w = Tensor(shape: [2, 2], [1, 2, 3, 4])
        let u = Tensor(shape: [2], [1, 0])
        let v = Tensor(shape: [2], [0, 1])
        let y = tape.spectralNorm(tape.input(w), u: u, v: v)
        assertClose(v, [0.4472136, 0.8944272], atol: 1e-6, rtol: 1e-6, "v")
        assertClose(u, [0.4138029, 0.9103665], atol: 1e-6, rtol: 1e-6, "u")
        assertClose(y.value, [0.1850583, 0.3701166, 0.5551749, 0.7402332], atol: 1e-6, rtol: 1e-6, "W/σ")
        XCTAssertEqual(Double(w[0] / y.value[0]), 5.4037027, accuracy: 1e-5, "σ (not the true 5.4649858)")
        let r = Ref.powerIteration(DTensor(w), u: DTensor(u: [1, 0]), v: DTensor(u: [0, 1]))
        XCTAssertEqual(r.sigma, 5.4037027, accuracy: 5e-7, "the reference reproduces σ")
    }

    // MARK: - Golden (torch)

    /// Runs the fixture's training-mode forward and backward and compares y, u, v, σ and the gradient.
    private func goldenSpectral(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let f = try Fixture.load(name)
        XCTAssertEqual(try f.meta("n_power_iterations"), "1")
        let u = try f["u"]
        let v = try f["v"]
        let tape = Tape(training: true)
        let w = tape.input(try f["w_orig"])
        let y = tape.spectralNorm(w, u: u, v: v, eps: Float(try f.number("eps")))
        assertClose(
            y.value, try f["y"], atol: GoldenTolerance.forwardAtol, rtol: GoldenTolerance.forwardRtol,
            "\(name): y", file: file, line: line)
        assertClose(
            u, try f["u_new"], atol: GoldenTolerance.forwardAtol, rtol: GoldenTolerance.forwardRtol,
            "\(name): u", file: file, line: line)
        assertClose(
            v, try f["v_new"], atol: GoldenTolerance.forwardAtol, rtol: GoldenTolerance.forwardRtol,
            "\(name): v", file: file, line: line)
        // σ = W/y at the largest |W|
        let wo = try f["w_orig"]
        let i = (0..<wo.count).max { abs(wo[$0]) < abs(wo[$1]) }!
        assertClose(
            [wo[i] / y.value[i]], try f["sigma"].array, atol: 0, rtol: GoldenTolerance.forwardRtol, "\(name): σ",
            file: file, line: line)
        tape.backward(y, seed: try f["dy"])
        assertClose(
            tape.grad(of: w)!, try f["grad_w_orig"], atol: GoldenTolerance.gradientAtol,
            rtol: GoldenTolerance.gradientRtol, "\(name): grad_w_orig", file: file, line: line)
    }

    /// Golden: Scripts/golden/make_golden.py case spectral_norm_conv (nn.utils.spectral_norm(nn.Conv2d(3, 4, 2)),
    /// training forward, weight_orig [4, 3, 2, 2]).
    func testGoldenSpectralNormConv() throws { try goldenSpectral("spectral_norm_conv") }

    /// Golden: Scripts/golden/make_golden.py case spectral_norm_linear (nn.utils.spectral_norm(nn.Linear(6, 1)),
    /// training forward, weight_orig [1, 6]).
    func testGoldenSpectralNormLinear() throws { try goldenSpectral("spectral_norm_linear") }
}

extension DTensor {
    fileprivate init(u values: [Double]) { self.init(shape: [values.count], values) }
}
