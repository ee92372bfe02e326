import Engine
import TestSupport
import XCTest

/// instanceNorm, layerNorm (biased and unbiased), ILN and adaILN (spec A.1, F).
final class NormalizationTests: XCTestCase {
    // MARK: - Gradient checks

    func testInstanceNormGradCheck() {
        var rng = testRNG("instance norm")
        for (shape, unbiased) in [
            ([2, 3, 5, 4], false), ([2, 3, 5, 4], true), ([1, 1, 3, 5], false),
            ([3, 2, 1, 3], true), ([1, 2, 7, 1], false),
        ] {
            let x = rng.normalTensor(shape, std: 2)
            gradCheck(
                [x], reference: { Ref.instanceNorm($0[0], unbiased: unbiased) },
                op: { $0.instanceNorm($1[0], unbiased: unbiased) }, "\(shape) unbiased \(unbiased)")
        }
    }

    func testLayerNormGradCheck() {
        var rng = testRNG("layer norm")
        for (shape, unbiased) in [
            ([2, 3, 5, 4], false), ([2, 3, 5, 4], true), ([1, 1, 3, 3], true),
            ([3, 2, 1, 3], false),
        ] {
            let x = rng.normalTensor(shape, std: 0.7)
            gradCheck(
                [x], reference: { Ref.layerNorm($0[0], unbiased: unbiased) },
                op: { $0.layerNorm($1[0], unbiased: unbiased) }, "\(shape) unbiased \(unbiased)")
        }
    }

    func testNormsWithLargeMean() {
        // |mean| ≫ std: the statistics must not cancel catastrophically
        var rng = testRNG("large mean")
        let x = rng.normalTensor([2, 2, 4, 5])
        for i in 0..<x.count { x[i] += 30 }
        gradCheck([x], reference: { Ref.instanceNorm($0[0]) }, op: { $0.instanceNorm($1[0]) }, "instance")
        gradCheck(
            [x], reference: { Ref.layerNorm($0[0], unbiased: true) }, op: { $0.layerNorm($1[0], unbiased: true) },
            "layer")
    }

    func testILNGradCheck() {
        var rng = testRNG("iln")
        for (shape, unbiased) in [([2, 3, 5, 4], true), ([1, 1, 3, 5], true), ([3, 2, 3, 3], false)] {
            let c = shape[1]
            let x = rng.normalTensor(shape)
            let rho = rng.uniformTensor([1, c, 1, 1], 0, 1)
            let gamma = rng.normalTensor([1, c, 1, 1], std: 0.5)
            let beta = rng.normalTensor([1, c, 1, 1])
            for i in 0..<c { gamma[i] += 1 }
            gradCheck(
                [x, rho, gamma, beta],
                reference: { Ref.iln($0[0], rho: $0[1], gamma: $0[2], beta: $0[3], unbiased: unbiased) },
                op: { $0.iln($1[0], rho: $1[1], gamma: $1[2], beta: $1[3], unbiased: unbiased) },
                "\(shape) unbiased \(unbiased)")
        }
    }

    func testAdaILNGradCheck() {
        var rng = testRNG("adailn")
        for (shape, unbiased) in [([2, 3, 5, 4], true), ([1, 2, 3, 3], true), ([3, 2, 2, 5], false)] {
            let (n, c) = (shape[0], shape[1])
            let x = rng.normalTensor(shape)
            let rho = rng.uniformTensor([1, c, 1, 1], 0, 1)
            let gamma = rng.normalTensor([n, c])
            let beta = rng.normalTensor([n, c])
            gradCheck(
                [x, rho, gamma, beta],
                reference: { Ref.adaILN($0[0], rho: $0[1], gamma: $0[2], beta: $0[3], unbiased: unbiased) },
                op: { $0.adaILN($1[0], rho: $1[1], gamma: $1[2], beta: $1[3], unbiased: unbiased) },
                "\(shape) unbiased \(unbiased)")
        }
    }

    func testILNWithConstantGammaOnlyXDifferentiable() {
        // the decoder's typical call: parameters enter as non-differentiable (frozen) inputs
        var rng = testRNG("iln x only")
        let x = rng.normalTensor([2, 4, 3, 3])
        let rho = Tensor(repeating: 0.9, shape: [1, 4, 1, 1])
        let gamma = Tensor(repeating: 1, shape: [1, 4, 1, 1])
        let beta = Tensor(zeros: [1, 4, 1, 1])
        gradCheck(
            [x, rho, gamma, beta], differentiable: [true, false, false, false],
            reference: { Ref.iln($0[0], rho: $0[1], gamma: $0[2], beta: $0[3]) },
            op: { $0.iln($1[0], rho: $1[1], gamma: $1[2], beta: $1[3]) })
    }

    // MARK: - Spec section F vectors

    /// x[b, ch, h, w] = k^1.5 / 10 with k = 12b + 4ch + 2h + w, shape [2, 3, 2, 2] (spec section F).
    private var specInput: Tensor {
        let x = Tensor(zeros: [2, 3, 2, 2])
        for b in 0..<2 {
            for ch in 0..<3 {
                for h in 0..<2 {
                    for w in 0..<2 {
                        let k = Double(12 * b + 4 * ch + 2 * h + w)
                        x[((b * 3 + ch) * 2 + h) * 2 + w] = Float(pow(k, 1.5) / 10)
                    }
                }
            }
        }
        return x
    }

    /// The four values of plane (b, ch) of an NCHW tensor with 2×2 planes and 3 channels.
    private func plane(_ t: Tensor, _ b: Int, _ ch: Int) -> [Double] {
        (0..<4).map { Double(t[(b * 3 + ch) * 4 + $0]) }
    }

    func testSpecILNPureLayerNorm() {
        let tape = Tape()
        let y = tape.iln(
            tape.constant(specInput), rho: tape.constant(Tensor(zeros: [1, 3, 1, 1])),
            gamma: tape.constant(Tensor(repeating: 1, shape: [1, 3, 1, 1])),
            beta: tape.constant(Tensor(zeros: [1, 3, 1, 1])))
        assertClose(plane(y.value, 0, 0), [-1.2075980, -1.1267118, -0.9788173, -0.7873011], atol: 1e-6, rtol: 1e-6)
    }

    func testSpecILNPureInstanceNorm() {
        let tape = Tape()
        let y = tape.iln(
            tape.constant(specInput), rho: tape.constant(Tensor(repeating: 1, shape: [1, 3, 1, 1])),
            gamma: tape.constant(Tensor(repeating: 1, shape: [1, 3, 1, 1])),
            beta: tape.constant(Tensor(zeros: [1, 3, 1, 1])))
        assertClose(plane(y.value, 0, 0), [-0.9880483, -0.5501118, 0.2506232, 1.2875366], atol: 1e-6, rtol: 1e-6)
    }

    func testSpecInstanceNorm2dBiased() {
        let tape = Tape()
        let y = tape.instanceNorm(tape.constant(specInput))
        assertClose(plane(y.value, 0, 0), [-1.1408633, -0.6351939, 0.2893855, 1.4866717], atol: 1e-6, rtol: 1e-6)
    }

    func testSpecAdaILN() {
        let tape = Tape()
        let gamma = Tensor(shape: [2, 3], [1, 2, 0.5, 1, 1, 1])
        let beta = Tensor(shape: [2, 3], [0, 1, -1, 0, 0, 0])
        let y = tape.adaILN(
            tape.constant(specInput), rho: tape.constant(Tensor(repeating: 0.9, shape: [1, 3, 1, 1])),
            gamma: tape.constant(gamma), beta: tape.constant(beta))
        assertClose(plane(y.value, 0, 1), [-1.1372812, 0.1772143, 1.6306922, 3.2109442], atol: 1e-6, rtol: 1e-6)
    }

    /// The Float64 references reproduce the spec numbers too (so the references are anchored, not just the engine).
    /// atol 5e-7: the spec's numbers were measured in float32 (about 1e-7 of rounding) and printed to 7 decimals.
    func testSpecVectorsWithReference() {
        let x = DTensor(specInput)
        let ones = DTensor(shape: [1, 3, 1, 1], [1, 1, 1])
        let zeros = DTensor(zeros: [1, 3, 1, 1])
        let ln = Ref.iln(x, rho: zeros, gamma: ones, beta: zeros)
        assertClose(Array(ln.data[0..<4]), [-1.2075980, -1.1267118, -0.9788173, -0.7873011], atol: 5e-7, rtol: 0)
        let inorm = Ref.instanceNorm(x)
        assertClose(Array(inorm.data[0..<4]), [-1.1408633, -0.6351939, 0.2893855, 1.4866717], atol: 5e-7, rtol: 0)
    }

    // MARK: - Golden (torch)

    private func goldenNorm(_ name: String, layer: Bool, file: StaticString = #filePath, line: UInt = #line) throws {
        let f = try Fixture.load(name)
        let unbiased = try f.meta("unbiased") == "true"
        let eps = Float(try f.number("eps"))
        try assertGolden(
            f, inputs: ["x"], differentiable: ["x"],
            op: { tape, v in
                layer
                    ? tape.layerNorm(v[0], eps: eps, unbiased: unbiased)
                    : tape.instanceNorm(v[0], eps: eps, unbiased: unbiased)
            }, file: file, line: line)
    }

    /// Golden: Scripts/golden/make_golden.py case instance_norm_biased (F.instance_norm, x [2, 3, 5, 4]).
    func testGoldenInstanceNormBiased() throws { try goldenNorm("instance_norm_biased", layer: false) }

    /// Golden: Scripts/golden/make_golden.py case instance_norm_unbiased (torch.var over (H, W), x [2, 3, 5, 4]).
    func testGoldenInstanceNormUnbiased() throws { try goldenNorm("instance_norm_unbiased", layer: false) }

    /// Golden: Scripts/golden/make_golden.py case layer_norm_biased (F.layer_norm over (C, H, W), x [2, 3, 5, 4]).
    func testGoldenLayerNormBiased() throws { try goldenNorm("layer_norm_biased", layer: true) }

    /// Golden: Scripts/golden/make_golden.py case layer_norm_unbiased (torch.var over (C, H, W), x [2, 3, 5, 4]).
    func testGoldenLayerNormUnbiased() throws { try goldenNorm("layer_norm_unbiased", layer: true) }

    /// Golden: Scripts/golden/make_golden.py case iln (U-GAT-IT ILN body, x [2, 3, 5, 4], rho/gamma/beta [1, 3, 1, 1]).
    func testGoldenILN() throws {
        try assertGolden(
            try Fixture.load("iln"), inputs: ["x", "rho", "gamma", "beta"],
            differentiable: ["x", "rho", "gamma", "beta"]
        ) {
            $0.iln($1[0], rho: $1[1], gamma: $1[2], beta: $1[3])
        }
    }

    /// Golden: Scripts/golden/make_golden.py case adailn (U-GAT-IT adaILN body, x [2, 3, 5, 4], gamma/beta [2, 3]).
    func testGoldenAdaILN() throws {
        try assertGolden(
            try Fixture.load("adailn"), inputs: ["x", "rho", "gamma", "beta"],
            differentiable: ["x", "rho", "gamma", "beta"]
        ) {
            $0.adaILN($1[0], rho: $1[1], gamma: $1[2], beta: $1[3])
        }
    }
}
