import Engine
import TestSupport
import XCTest

/// conv2d (zero and reflection padding, every im2col kernel width, pointwise and chunked paths) and linear.
final class ConvTests: XCTestCase {
    // MARK: - Gradient checks against the Float64 reference

    /// Draws x, w (and b) and gradient-checks conv2d with the given geometry.
    private func checkConv(
        _ name: String, x xs: [Int], w ws: [Int], bias: Bool, stride: Int = 1, padding: Int = 0,
        mode: PaddingMode = .zeros, file: StaticString = #filePath, line: UInt = #line
    ) {
        var rng = testRNG(name)
        var inputs = [rng.normalTensor(xs), rng.normalTensor(ws, std: 0.5)]
        if bias { inputs.append(rng.normalTensor([ws[0]])) }
        gradCheck(
            inputs,
            reference: { t in
                Ref.conv2d(t[0], t[1], bias ? t[2] : nil, stride: stride, padding: padding, mode: mode)
            },
            op: { tape, v in
                tape.conv2d(v[0], v[1], bias ? v[2] : nil, stride: stride, padding: padding, mode: mode)
            }, name, file: file, line: line)
    }

    func testConv3x3Pad1BiasBatch3OddSize() {
        checkConv("k3 p1 bias, batch 3, 5x7", x: [3, 2, 5, 7], w: [3, 2, 3, 3], bias: true, padding: 1)
    }

    func testConv3x3Pad1ByIm2colWhenWinogradIsOff() {
        // 3×3 stride-1 convs run by Winograd (WinogradTests); bench train --no-winograd keeps this path
        ConvAlgorithms.winograd = false
        defer { ConvAlgorithms.winograd = true }
        checkConv("k3 p1 im2col", x: [2, 3, 5, 6], w: [2, 3, 3, 3], bias: true, padding: 1, mode: .reflect)
    }

    func testConv3x3NoPaddingBatch1() {
        checkConv("k3 p0, batch 1", x: [1, 3, 6, 5], w: [2, 3, 3, 3], bias: false)
    }

    func testConv1x1Pointwise() {
        // 1x1, stride 1, no padding: the path that uses x itself as the GEMM operand
        checkConv("k1 pointwise", x: [2, 4, 3, 5], w: [3, 4, 1, 1], bias: true)
    }

    func testConv1x1Stride2() {
        checkConv("k1 s2", x: [1, 3, 5, 7], w: [2, 3, 1, 1], bias: false, stride: 2)
    }

    func testConv1x1ZeroPadding() {
        checkConv("k1 p1", x: [1, 2, 3, 4], w: [2, 2, 1, 1], bias: true, padding: 1)
    }

    func testConv3x3Stride2OneChannel() {
        checkConv("k3 s2 p1 cin1", x: [2, 1, 7, 6], w: [2, 1, 3, 3], bias: true, stride: 2, padding: 1)
    }

    func testConv4x4Stride2() {
        // the discriminator's down-sampling geometry (kernel 4, stride 2) on odd sizes
        checkConv("k4 s2 p1", x: [1, 2, 9, 8], w: [3, 2, 4, 4], bias: true, stride: 2, padding: 1)
    }

    func testConv7x7ZeroPad3() {
        checkConv("k7 p3", x: [1, 2, 7, 8], w: [2, 2, 7, 7], bias: false, padding: 3)
    }

    func testConvNonSquareKernel() {
        // kH ≠ kW and a width with no specialised im2col kernel (kW = 5)
        checkConv("k2x5 p1", x: [1, 2, 4, 7], w: [2, 2, 2, 5], bias: true, padding: 1)
    }

    func testConvKernelCoversWholeInput() {
        checkConv("k5 on 5x5", x: [2, 2, 5, 5], w: [3, 2, 5, 5], bias: true)
    }

    // kn2row (stride 1, Cout ≤ Cin / 4): the output layer's and the discriminators' last convs

    func testKn2rowReflectPad3Kernel7() {
        // the generator's output layer: ReflectionPad2d(3) + 7x7 conv to few channels (by kn2row with the direct
        // loops off)
        ConvAlgorithms.direct = false
        defer { ConvAlgorithms.direct = true }
        checkConv("kn2row reflect p3 k7", x: [2, 8, 5, 6], w: [2, 8, 7, 7], bias: true, padding: 3, mode: .reflect)
    }

    // Direct loops (stride 1, Cout ≤ 4, kernel 5×5 or more): the generator's output layer

    func testDirectReflectPad3Kernel7WholeAndPartialBlocks() {
        // 21 output columns: one block of 16 and a tail of 5; 27 padded columns for dx: one block and 11
        checkConv("direct reflect p3 k7", x: [2, 5, 4, 21], w: [3, 5, 7, 7], bias: true, padding: 3, mode: .reflect)
    }

    func testDirectZeroPad2Kernel5OnlyTails() {
        checkConv("direct zeros p2 k5", x: [1, 3, 6, 5], w: [2, 3, 5, 5], bias: false, padding: 2)
    }

    func testDirectNoPaddingOneBlockOneOutput() {
        // 20 columns, 5×5 kernel, no padding: 16 output columns (exactly one block), 4 rows, one output channel
        checkConv("direct p0 k5 cout1", x: [1, 2, 8, 20], w: [1, 2, 5, 5], bias: true)
    }

    /// The 96/16 output layer (16 → 3 channels, 7×7, reflection padding 3, 96²): the direct loops and kn2row agree
    /// with the Float64 reference in all three passes.
    func testDirectAndKn2rowAgreeAtTheOutputLayer() {
        var rng = testRNG("direct vs kn2row")
        let x = rng.normalTensor([1, 16, 96, 96])
        let w = rng.normalTensor([3, 16, 7, 7], std: 1 / Float(16 * 49).squareRoot())
        let b = rng.normalTensor([3])
        let dy = rng.normalTensor([1, 3, 96, 96])
        let (x64, w64) = (DTensor(x), DTensor(w))
        let exact = Ref.conv2d(x64, w64, DTensor(b), stride: 1, padding: 3, mode: .reflect)
        let r = Ref.conv2dBackward(x64, w64, DTensor(dy), stride: 1, padding: 3, mode: .reflect)
        for direct in [true, false] {
            ConvAlgorithms.direct = direct
            defer { ConvAlgorithms.direct = true }
            let tape = Tape()
            let (xv, wv, bv) = (tape.input(x), tape.input(w), tape.input(b))
            let y = tape.conv2d(xv, wv, bv, padding: 3, mode: .reflect)
            tape.backward(y, seed: dy)
            let name = direct ? "direct" : "kn2row"
            assertClose(y.value, exact, atol: 1e-5, rtol: 1e-4, "forward, \(name)")
            assertClose(tape.grad(of: xv)!, r.dx, atol: 1e-5, rtol: 1e-4, "dx, \(name)")
            assertClose(tape.grad(of: wv)!, r.dw, atol: 1e-3, rtol: 1e-4, "dW, \(name)")
            assertClose(tape.grad(of: bv)!, r.db, atol: 1e-3, rtol: 1e-4, "db, \(name)")
        }
    }

    func testKn2rowKernel4ZeroPad1OneOutput() {
        // a discriminator's last conv: kernel 4, pad 1, one output channel (output smaller than the input)
        checkConv("kn2row k4 p1 cout1", x: [2, 4, 5, 4], w: [1, 4, 4, 4], bias: false, padding: 1)
    }

    func testKn2rowReflectPad1NoBiasOddSize() {
        checkConv("kn2row reflect p1 k3", x: [1, 12, 3, 7], w: [3, 12, 3, 3], bias: false, padding: 1, mode: .reflect)
    }

    func testKn2rowNoPadding() {
        checkConv("kn2row p0 k2x3", x: [1, 8, 4, 5], w: [2, 8, 2, 3], bias: true)
    }

    func testConvReflectPad1() {
        checkConv("reflect p1", x: [2, 3, 5, 4], w: [2, 3, 3, 3], bias: true, padding: 1, mode: .reflect)
    }

    func testConvReflectPad1Stride2() {
        checkConv(
            "reflect p1 s2", x: [1, 2, 7, 6], w: [2, 2, 3, 3], bias: false, stride: 2, padding: 1, mode: .reflect)
    }

    func testConvReflectPad3Kernel7() {
        // the generator's first layer: ReflectionPad2d(3) + 7x7 conv; 4x5 is the smallest input pad 3 allows
        checkConv("reflect p3 k7", x: [1, 2, 4, 5], w: [2, 2, 7, 7], bias: true, padding: 3, mode: .reflect)
    }

    func testConvReflectPad2Kernel4Stride2() {
        checkConv(
            "reflect p2 k4 s2", x: [1, 1, 5, 6], w: [2, 1, 4, 4], bias: true, stride: 2, padding: 2, mode: .reflect)
    }

    /// The naive reference backward used by the large tests equals the finite-difference gradient.
    func testReferenceBackwardMatchesFiniteDifferences() {
        var rng = testRNG("ref backward")
        let x = rng.normalTensor([2, 2, 5, 6])
        let w = rng.normalTensor([3, 2, 3, 3])
        let b = rng.normalTensor([3])
        for mode in [PaddingMode.zeros, .reflect] {
            let report = gradCheck(
                [x, w, b], reference: { Ref.conv2d($0[0], $0[1], $0[2], stride: 2, padding: 1, mode: mode) },
                op: { $0.conv2d($1[0], $1[1], $1[2], stride: 2, padding: 1, mode: mode) }, "\(mode)")
            let dy = gradCheckUpstream([2, 3, 3, 3])
            let r = Ref.conv2dBackward(DTensor(x), DTensor(w), DTensor(dy), stride: 2, padding: 1, mode: mode)
            for (i, g) in [r.dx, r.dw, r.db].enumerated() {
                guard let num = report.numericGradients[i] else { return XCTFail("no numeric gradient \(i)") }
                assertClose(
                    g.data, shape: g.shape, num.data, shape: num.shape, atol: 1e-7, rtol: 1e-7, "\(mode) input \(i)")
            }
        }
    }

    // MARK: - Several im2col chunks (ConvGeometry.chunk: ~2^18 / K output pixels, at least 128)

    /// Forward and backward of a conv large enough for more than one im2col chunk, against the naive reference
    /// forward and its transpose (finite differences would be too slow here). Chunk boundaries fall inside
    /// output rows.
    private func checkChunked(
        _ name: String, x xs: [Int], w ws: [Int], stride: Int, padding: Int, mode: PaddingMode,
        threads: Int = 1, file: StaticString = #filePath, line: UInt = #line
    ) {
        let k = ws[1] * ws[2] * ws[3]
        let ho = (xs[2] + 2 * padding - ws[2]) / stride + 1
        let wo = (xs[3] + 2 * padding - ws[3]) / stride + 1
        let chunk = max(128, (1 << 18) / k)
        XCTAssertGreaterThan(ho * wo, chunk, "\(name): the test must span more than one chunk", file: file, line: line)
        XCTAssertNotEqual(chunk % wo, 0, "\(name): a chunk boundary should split an output row", file: file, line: line)
        Runtime.configure(threads: threads)
        ConvAlgorithms.winograd = false  // these are im2col's chunks; WinogradTests chunk the 3×3 stride-1 path
        defer {
            Runtime.configure(threads: 1)
            ConvAlgorithms.winograd = true
        }
        var rng = testRNG(name)
        let x = rng.normalTensor(xs)
        let w = rng.normalTensor(ws, std: 0.2)
        let b = rng.normalTensor([ws[0]])
        let tape = Tape()
        let (xv, wv, bv) = (tape.input(x), tape.input(w), tape.input(b))
        let y = tape.conv2d(xv, wv, bv, stride: stride, padding: padding, mode: mode)
        let dy = rng.normalTensor(y.shape)
        tape.backward(y, seed: dy)
        let (x64, w64) = (DTensor(x), DTensor(w))
        assertClose(
            y.value, Ref.conv2d(x64, w64, DTensor(b), stride: stride, padding: padding, mode: mode),
            atol: 1e-5, rtol: 1e-4, "\(name) forward", file: file, line: line)
        let r = Ref.conv2dBackward(x64, w64, DTensor(dy), stride: stride, padding: padding, mode: mode)
        // dw and db sum over thousands of pixels: scale atol with the magnitude of the sums
        assertClose(tape.grad(of: xv)!, r.dx, atol: 1e-5, rtol: 1e-4, "\(name) dx", file: file, line: line)
        assertClose(tape.grad(of: wv)!, r.dw, atol: 1e-4, rtol: 1e-4, "\(name) dw", file: file, line: line)
        assertClose(tape.grad(of: bv)!, r.db, atol: 1e-4, rtol: 1e-4, "\(name) db", file: file, line: line)
    }

    func testChunkedReflectConv3x3() {
        // Cin 8, k3: K = 72, chunk 3640 px of 71·69 = 4899
        checkChunked("chunked reflect k3", x: [1, 8, 71, 69], w: [4, 8, 3, 3], stride: 1, padding: 1, mode: .reflect)
    }

    func testChunkedConv4x4Stride2Batch2() {
        // Cin 8, k4: K = 128, chunk 2048 px of 50·45 = 2250
        checkChunked("chunked k4 s2", x: [2, 8, 100, 90], w: [3, 8, 4, 4], stride: 2, padding: 1, mode: .zeros)
    }

    func testChunkedConv7x7ChunkEndsInsideLeftBorder() {
        // Cin 3, k7, pad 3: K = 147, chunk 1783 px = 33 rows of 54 + 1 pixel, so the first chunk ends one pixel
        // into a row, inside the 3 columns whose taps reach into the padding (the im2col "interior" bounds)
        checkChunked(
            "chunked k7 reflect p3", x: [1, 3, 40, 54], w: [2, 3, 7, 7], stride: 1, padding: 3, mode: .reflect)
    }

    func testChunkedConvWithThreads() {
        // the same chunked geometry with Parallel.forEach and OpenBLAS on several threads
        checkChunked(
            "chunked threads", x: [1, 8, 71, 69], w: [4, 8, 3, 3], stride: 1, padding: 1, mode: .zeros,
            threads: 4)
    }

    // MARK: - Linear

    func testLinearGradCheck() {
        var rng = testRNG("linear")
        let x = rng.normalTensor([3, 5])
        let w = rng.normalTensor([4, 5])
        let b = rng.normalTensor([4])
        gradCheck([x, w, b], reference: { Ref.linear($0[0], $0[1], $0[2]) }, op: { $0.linear($1[0], $1[1], $1[2]) })
        gradCheck([x, w], reference: { Ref.linear($0[0], $0[1]) }, op: { $0.linear($1[0], $1[1]) }, "no bias")
    }

    func testLinearBatch1SingleOutput() {
        var rng = testRNG("linear 1x1")
        let x = rng.normalTensor([1, 7])
        let w = rng.normalTensor([1, 7])
        let b = rng.normalTensor([1])
        gradCheck([x, w, b], reference: { Ref.linear($0[0], $0[1], $0[2]) }, op: { $0.linear($1[0], $1[1], $1[2]) })
    }

    // MARK: - Golden (torch)

    private func goldenConv(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let f = try Fixture.load(name)
        let stride = Int(try f.number("stride"))
        let padding = Int(try f.number("padding"))
        let bias = try f.meta("bias") == "true"
        try assertGolden(
            f, inputs: bias ? ["x", "w", "b"] : ["x", "w"], differentiable: bias ? ["x", "w", "b"] : ["x", "w"]
        ) {
            $0.conv2d($1[0], $1[1], bias ? $1[2] : nil, stride: stride, padding: padding)
        }
    }

    /// Golden: Scripts/golden/make_golden.py case conv2d_k3_s1_p1_bias (F.conv2d, x [2, 3, 7, 6], w [4, 3, 3, 3]).
    func testGoldenConv2dK3S1P1Bias() throws { try goldenConv("conv2d_k3_s1_p1_bias") }

    /// Golden: Scripts/golden/make_golden.py case conv2d_k4_s2_p0_bias (F.conv2d, x [3, 2, 9, 8], w [5, 2, 4, 4]).
    func testGoldenConv2dK4S2P0Bias() throws { try goldenConv("conv2d_k4_s2_p0_bias") }

    /// Golden: Scripts/golden/make_golden.py case conv2d_k1_nobias (F.conv2d, x [1, 6, 5, 5], w [3, 6, 1, 1]).
    func testGoldenConv2dK1NoBias() throws { try goldenConv("conv2d_k1_nobias") }

    /// Golden: Scripts/golden/make_golden.py case conv2d_k7_s1_p3_nobias (F.conv2d, x [1, 3, 11, 10], w [4, 3, 7, 7]).
    func testGoldenConv2dK7S1P3NoBias() throws { try goldenConv("conv2d_k7_s1_p3_nobias") }

    /// Golden: Scripts/golden/make_golden.py case conv2d_k3_s2_p1_cin1 (F.conv2d, x [2, 1, 8, 7], w [3, 1, 3, 3]).
    func testGoldenConv2dK3S2P1Cin1() throws { try goldenConv("conv2d_k3_s2_p1_cin1") }

    /// Golden: Scripts/golden/make_golden.py case linear_bias (F.linear, x [3, 5], w [4, 5], b [4]).
    func testGoldenLinearBias() throws {
        try assertGolden(try Fixture.load("linear_bias"), inputs: ["x", "w", "b"], differentiable: ["x", "w", "b"]) {
            $0.linear($1[0], $1[1], $1[2])
        }
    }

    /// Golden: Scripts/golden/make_golden.py case linear_nobias (F.linear, x [1, 6], w [2, 6]).
    func testGoldenLinearNoBias() throws {
        try assertGolden(try Fixture.load("linear_nobias"), inputs: ["x", "w"], differentiable: ["x", "w"]) {
            $0.linear($1[0], $1[1])
        }
    }
}
