@testable import Engine
import TestSupport
import XCTest

/// conv2d by Winograd F(2×2, 3×3) (Conv2dWinograd.swift): every pass gradient-checked against the Float64
/// reference, odd sizes (cropped tiles), both paddings, several tile chunks and threads, agreement with the im2col
/// path at a generator size, and the FLOP accounting.
final class WinogradTests: XCTestCase {
    override func setUp() {
        ConvAlgorithms.winograd = true
        ConvAlgorithms.winogradChunkFloats = 1 << 18
    }

    override func tearDown() {
        ConvAlgorithms.winograd = true
        ConvAlgorithms.winogradChunkFloats = 1 << 18
        Runtime.configure(threads: 1)
    }

    private func checkWinograd(
        _ name: String, x xs: [Int], w ws: [Int], bias: Bool, padding: Int, mode: PaddingMode,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        let g = ConvGeometry(
            cin: xs[1], h: xs[2], w: xs[3], kh: 3, kw: 3, stride: 1, pad: padding, mode: mode)
        XCTAssertTrue(g.prefersWinograd && !g.prefersKn2row(cout: ws[0]), "\(name): must take the Winograd path")
        var rng = testRNG(name)
        var inputs = [rng.normalTensor(xs), rng.normalTensor(ws, std: 0.5)]
        if bias { inputs.append(rng.normalTensor([ws[0]])) }
        gradCheck(
            inputs,
            reference: { Ref.conv2d($0[0], $0[1], bias ? $0[2] : nil, stride: 1, padding: padding, mode: mode) },
            op: { $0.conv2d($1[0], $1[1], bias ? $1[2] : nil, stride: 1, padding: padding, mode: mode) },
            name, file: file, line: line)
    }

    // MARK: - Gradient checks (forward, dx, dW, db against Float64 finite differences)

    func testReflectPad1EvenSizeBatch2Bias() {
        checkWinograd("wino reflect p1 6x8", x: [2, 3, 6, 8], w: [4, 3, 3, 3], bias: true, padding: 1, mode: .reflect)
    }

    func testReflectPad1OddSizes() {
        // 5×7: the last tile row and column are cropped to one output
        checkWinograd("wino reflect p1 5x7", x: [1, 2, 5, 7], w: [3, 2, 3, 3], bias: false, padding: 1, mode: .reflect)
    }

    func testZeroPad1OddHeight() {
        checkWinograd("wino zeros p1 7x6", x: [1, 3, 7, 6], w: [2, 3, 3, 3], bias: true, padding: 1, mode: .zeros)
    }

    func testNoPadding() {
        // 6×5 input, 4×3 output
        checkWinograd("wino p0 6x5", x: [1, 2, 6, 5], w: [3, 2, 3, 3], bias: true, padding: 0, mode: .zeros)
    }

    func testZeroPad2() {
        checkWinograd("wino zeros p2 3x4", x: [1, 2, 3, 4], w: [2, 2, 3, 3], bias: false, padding: 2, mode: .zeros)
    }

    func testSmallestReflectInput() {
        // 2×2 is the smallest input reflection padding 1 allows: one tile
        checkWinograd("wino reflect p1 2x2", x: [1, 2, 2, 2], w: [2, 2, 3, 3], bias: true, padding: 1, mode: .reflect)
    }

    // MARK: - Several tile chunks, threads, and the im2col path

    /// A conv with the Winograd chunk set so that it runs in several chunks of tile rows (the last one short),
    /// on 1 and 4 threads, against the reference forward and its transpose.
    func testSeveralChunksAndThreadsMatchTheReference() {
        var rng = testRNG("wino chunks")
        let x = rng.normalTensor([2, 8, 21, 19])
        let w = rng.normalTensor([6, 8, 3, 3], std: 0.2)
        let b = rng.normalTensor([6])
        let g = ConvGeometry(cin: 8, h: 21, w: 19, kh: 3, kw: 3, stride: 1, pad: 1, mode: .reflect)
        // 11 tile rows of 10 tiles; chunks of 3 tile rows: 3 + 3 + 3 + 2
        ConvAlgorithms.winogradChunkFloats = 16 * 8 * 10 * 3
        let plan = WinogradPlan(g, cout: 6)
        XCTAssertEqual(plan.chunkRows, 3)
        XCTAssertEqual(g.tileRows, 11)
        let (x64, w64) = (DTensor(x), DTensor(w))
        for threads in [1, 4] {
            Runtime.configure(threads: threads)
            let tape = Tape()
            let (xv, wv, bv) = (tape.input(x), tape.input(w), tape.input(b))
            let y = tape.conv2d(xv, wv, bv, padding: 1, mode: .reflect)
            let dy = rng.normalTensor(y.shape)
            tape.backward(y, seed: dy)
            assertClose(
                y.value, Ref.conv2d(x64, w64, DTensor(b), stride: 1, padding: 1, mode: .reflect),
                atol: 1e-5, rtol: 1e-4, "forward, \(threads) threads")
            let r = Ref.conv2dBackward(x64, w64, DTensor(dy), stride: 1, padding: 1, mode: .reflect)
            assertClose(tape.grad(of: xv)!, r.dx, atol: 1e-5, rtol: 1e-4, "dx, \(threads) threads")
            assertClose(tape.grad(of: wv)!, r.dw, atol: 1e-4, rtol: 1e-4, "dw, \(threads) threads")
            assertClose(tape.grad(of: bv)!, r.db, atol: 1e-4, rtol: 1e-4, "db, \(threads) threads")
        }
    }

    /// The residual block's conv at 96/16 (64 → 64 channels at 24², reflection padding): Winograd and im2col
    /// agree to float32 rounding in all three passes.
    func testAgreesWithIm2colAtAGeneratorSize() {
        var rng = testRNG("wino vs im2col")
        let x = rng.normalTensor([1, 64, 24, 24])
        let w = rng.normalTensor([64, 64, 3, 3], std: 0.05)
        let dy = rng.normalTensor([1, 64, 24, 24])
        func run(winograd: Bool) -> (y: Tensor, dx: Tensor, dw: Tensor) {
            ConvAlgorithms.winograd = winograd
            let tape = Tape()
            let (xv, wv) = (tape.input(x), tape.input(w))
            let y = tape.conv2d(xv, wv, padding: 1, mode: .reflect)
            tape.backward(y, seed: dy)
            return (y.value, tape.grad(of: xv)!, tape.grad(of: wv)!)
        }
        let a = run(winograd: true)
        let b = run(winograd: false)
        assertClose(a.y, b.y, atol: 1e-5, rtol: 1e-4, "forward")
        assertClose(a.dx, b.dx, atol: 1e-5, rtol: 1e-4, "dx")
        assertClose(a.dw, b.dw, atol: 1e-4, rtol: 1e-4, "dw")
    }

    /// A weight used by several convs on two tapes that share a `WinogradWeightCache`: values and gradients are the
    /// same floats as without it, U is made once per weight, and a U above `maxBytes` is not kept.
    func testSharedWeightTransformsChangeNothingAndAreMadeOnce() {
        var rng = testRNG("wino cache")
        let x = rng.normalTensor([1, 8, 10, 10])
        let small = Parameter(name: "small", value: rng.normalTensor([8, 8, 3, 3], std: 0.3))
        let big = Parameter(name: "big", value: rng.normalTensor([128, 136, 3, 3], std: 0.05))  // U 1.06 MiB
        let bigIn = rng.normalTensor([1, 136, 4, 4])
        func run(_ cache: WinogradWeightCache?) -> [Tensor] {
            small.grad.fill(0)
            big.grad.fill(0)
            var out: [Tensor] = []
            let tapes = [Tape(), Tape()]
            for t in tapes {
                t.winogradWeights = cache
                let w = t.param(small)
                // the same weight twice on one tape and once more on the other
                let y = t.conv2d(t.conv2d(t.input(x), w, nil, stride: 1, padding: 1, mode: .reflect), w, nil,
                                 stride: 1, padding: 1, mode: .reflect)
                let z = t.conv2d(t.input(bigIn), t.param(big), nil, stride: 1, padding: 1, mode: .zeros)
                out += [y.value, z.value]
                t.backward(t.add(t.mean(t.mul(y, y)), t.mean(t.mul(z, z))))
            }
            return out + [small.grad.copy(), big.grad.copy()]
        }
        let plain = run(nil)
        let cache = WinogradWeightCache()
        let shared = run(cache)
        for (a, b) in zip(plain, shared) { XCTAssertEqual(a.array, b.array) }
        XCTAssertEqual(cache.count, 1, "one U for `small`; `big`'s 1.06 MiB U is over maxBytes and not kept")
        XCTAssertEqual(cache.reused, 7, "`small`: 4 forward and 4 backward calls, one transform")
    }

    /// gflop_per_iter counts the direct convolution's FLOPs whatever algorithm runs; `executed` counts the GEMMs.
    func testFlopCounterCountsTheDirectConvolution() {
        var rng = testRNG("wino flops")
        let (cin, cout, h, w) = (16, 8, 12, 10)
        let tape = Tape()
        let xv = tape.input(rng.normalTensor([2, cin, h, w]))
        let wv = tape.input(rng.normalTensor([cout, cin, 3, 3]))
        FlopCounter.reset()
        let y = tape.conv2d(xv, wv, padding: 1, mode: .reflect)
        tape.backward(y, seed: rng.normalTensor(y.shape))
        let direct = 2 * cout * cin * 9 * h * w * 2  // per pass, 2 samples
        XCTAssertEqual(FlopCounter.total, 3 * direct, "forward, dW and dx of the direct convolution")
        let tiles = 6 * 5
        XCTAssertEqual(FlopCounter.executed, 3 * 2 * 16 * 2 * cout * cin * tiles, "16 GEMMs per pass and sample")
    }
}
