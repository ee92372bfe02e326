@testable import Engine
import TestSupport
import XCTest

/// conv2d by Winograd F(2×2, 3×3) and F(4×4, 3×3) (Conv2dWinograd.swift, Conv2dWinograd4x4.swift): every pass of
/// both gradient-checked against the Float64 reference, odd sizes (cropped tiles), both paddings, several tile chunks
/// and threads, agreement with the im2col path at generator sizes, and the FLOP accounting.
final class WinogradTests: XCTestCase {
    override func setUp() {
        ConvAlgorithms.winograd = true
        ConvAlgorithms.winogradTile = nil
        ConvAlgorithms.winogradChunkFloats = 1 << 18
        ConvAlgorithms.winogradMinChunkTiles = 64
    }

    override func tearDown() {
        ConvAlgorithms.winograd = true
        ConvAlgorithms.winogradTile = nil
        ConvAlgorithms.winogradChunkFloats = 1 << 18
        ConvAlgorithms.winogradMinChunkTiles = 64
        Runtime.configure(threads: 1)
    }

    private func checkWinograd(
        _ name: String, x xs: [Int], w ws: [Int], bias: Bool, padding: Int, mode: PaddingMode,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        let g = ConvGeometry(
            cin: xs[1], h: xs[2], w: xs[3], kh: 3, kw: 3, stride: 1, pad: padding, mode: mode)
        XCTAssertTrue(g.prefersWinograd && !g.prefersKn2row(cout: ws[0]), "\(name): must take the Winograd path")
        for tile in [2, 4] {
            ConvAlgorithms.winogradTile = tile
            var rng = testRNG(name)
            var inputs = [rng.normalTensor(xs), rng.normalTensor(ws, std: 0.5)]
            if bias { inputs.append(rng.normalTensor([ws[0]])) }
            gradCheck(
                inputs,
                reference: { Ref.conv2d($0[0], $0[1], bias ? $0[2] : nil, stride: 1, padding: padding, mode: mode) },
                op: { $0.conv2d($1[0], $1[1], bias ? $1[2] : nil, stride: 1, padding: padding, mode: mode) },
                "\(name), F(\(tile)×\(tile), 3×3)", file: file, line: line)
        }
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

    func testRowsOfSeveralVectorBlocks() {
        // 37 columns: F(4×4) tiles 8 + 1 + 1 (one cropped to 1 column), F(2×2) tiles 8 + 8 + 1 + 1 + 1
        checkWinograd("wino reflect p1 6x37", x: [1, 2, 6, 37], w: [2, 2, 3, 3], bias: true, padding: 1, mode: .reflect)
    }

    /// Chunks of tile rows that differ by at most one row, none of fewer than `winogradMinChunkTiles` tiles where
    /// the image has them (over the size limit if need be).
    func testChunksAreEvenAndNotTooNarrow() {
        func chunks(_ c: Int, _ h: Int, _ w: Int, tile: Int) -> [Int] {
            let g = ConvGeometry(cin: c, h: h, w: w, kh: 3, kw: 3, stride: 1, pad: 1, mode: .reflect)
            let plan = WinogradPlan(g, cout: c, tile: tile)
            var rows: [Int] = []
            var next = 0
            plan.forEachChunk { i0, n in
                XCTAssertEqual(i0, next, "chunks follow each other")
                rows.append(n)
                next = i0 + n
            }
            XCTAssertEqual(next, plan.tileRows, "the chunks cover every tile row")
            XCTAssertEqual(rows.max(), plan.chunkRows, "buffers are sized for the largest chunk")
            return rows
        }
        ConvAlgorithms.winogradMinChunkTiles = 1
        // 128/32 residual, F(4×4): 8 tile rows of 8; 1 MiB holds 7, so 4 + 4 (not 7 + 1)
        XCTAssertEqual(chunks(128, 32, 32, tile: 4), [4, 4])
        // F(2×2), 10 tile rows of 4 tiles, at most 3 rows a chunk: 3 + 3 + 2 + 2 (not 3 + 3 + 3 + 1)
        ConvAlgorithms.winogradChunkFloats = 16 * 4 * 4 * 3
        XCTAssertEqual(chunks(4, 20, 8, tile: 2), [3, 3, 2, 2])
        ConvAlgorithms.winogradChunkFloats = 1 << 18
        // with the default of 64 tiles at least: one chunk of all 8 rows at 128/32
        ConvAlgorithms.winogradMinChunkTiles = 64
        XCTAssertEqual(chunks(128, 32, 32, tile: 4), [8])
        // 256/64 residual, F(4×4): 16 tile rows of 16; 1 MiB holds 1 row, 64 tiles need 4
        XCTAssertEqual(chunks(256, 64, 64, tile: 4), [4, 4, 4, 4])
        // F(2×2) at 256/64: 32 rows of 32 tiles, 1 MiB holds 2
        XCTAssertEqual(chunks(256, 64, 64, tile: 2), Array(repeating: 2, count: 16))
        // 5 tile rows of 4 tiles that need 4 rows for 16 tiles: one chunk of 5 (3 + 2 would both be too narrow),
        // although the size limit allows only one row
        ConvAlgorithms.winogradMinChunkTiles = 16
        ConvAlgorithms.winogradChunkFloats = 1
        XCTAssertEqual(chunks(4, 20, 16, tile: 4), [5])
    }

    /// A weight used at both tile sides on tapes that share a cache (a 32×32 input takes F(4×4), a 10×10 one
    /// F(2×2)): one U per side, and the same floats as without the cache.
    func testTheWeightCacheKeepsOneTransformPerTileSide() {
        var rng = testRNG("wino cache sides")
        let w = Parameter(name: "w", value: rng.normalTensor([8, 8, 3, 3], std: 0.3))
        let (big, small) = (rng.normalTensor([1, 8, 32, 32]), rng.normalTensor([1, 8, 10, 10]))
        func run(_ cache: WinogradWeightCache?) -> [Tensor] {
            w.grad.fill(0)
            let t = Tape()
            t.winogradWeights = cache
            let p = t.param(w)
            let y = t.conv2d(t.input(big), p, nil, stride: 1, padding: 1, mode: .reflect)
            let z = t.conv2d(t.input(small), p, nil, stride: 1, padding: 1, mode: .reflect)
            t.backward(t.add(t.mean(t.mul(y, y)), t.mean(t.mul(z, z))))
            return [y.value, z.value, w.grad.copy()]
        }
        let plain = run(nil)
        let cache = WinogradWeightCache()
        let shared = run(cache)
        for (a, b) in zip(plain, shared) { XCTAssertEqual(a.array, b.array) }
        XCTAssertEqual(cache.count, 2, "one U for F(4×4), one for F(2×2)")
        XCTAssertEqual(cache.reused, 2, "each side's backward reuses its forward's U")
    }

    func testDefaultTileIsFourFrom32Outputs() {
        func tile(_ h: Int, _ w: Int) -> Int {
            WinogradPlan(ConvGeometry(cin: 4, h: h, w: w, kh: 3, kw: 3, stride: 1, pad: 1, mode: .reflect), cout: 4).tile
        }
        XCTAssertEqual(tile(32, 32), 4)
        XCTAssertEqual(tile(32, 40), 4)
        XCTAssertEqual(tile(31, 40), 2)
        XCTAssertEqual(tile(24, 24), 2)
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
        let (x64, w64) = (DTensor(x), DTensor(w))
        // F(2×2): 11 tile rows of 10 tiles, at most 3 rows a chunk: 3 + 3 + 3 + 2;
        // F(4×4): 6 tile rows of 5 tiles, at most 4 rows a chunk: 3 + 3
        ConvAlgorithms.winogradMinChunkTiles = 1
        for (tile, tiles, limit, chunk, count) in [(2, 10, 3, 3, 11), (4, 5, 4, 3, 6)] {
        ConvAlgorithms.winogradTile = tile
        ConvAlgorithms.winogradChunkFloats = (tile + 2) * (tile + 2) * 8 * tiles * limit
        let plan = WinogradPlan(g, cout: 6)
        XCTAssertEqual(plan.chunkRows, chunk)
        XCTAssertEqual(plan.tileRows, count)
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
    }

    /// The residual block's convs at 96/16 and 128/32 (64 → 64 channels at 24², 128 → 128 at 32², reflection
    /// padding, weights at PyTorch's default init scale) against the Float64 reference, in all three passes: the
    /// largest error relative to the RMS of the exact result, for im2col, F(2×2, 3×3) and F(4×4, 3×3).
    /// Measured: im2col and F(2×2) 1-3e-6, F(4×4) 1.3-6.1e-5 (its transforms' coefficients are larger: up to 5 and
    /// 8 against 1), over runs whose OpenBLAS threading differed. The parity of whole steps with PyTorch holds with
    /// F(4×4) too (`StepParityTests`).
    func testErrorAgainstFloat64AtGeneratorSizes() {
        for (c, s) in [(64, 24), (128, 32)] {
            var rng = testRNG("wino vs im2col \(c)")
            let x = rng.normalTensor([1, c, s, s])
            let w = rng.normalTensor([c, c, 3, 3], std: 1 / Float(3 * c).squareRoot())
            let dy = rng.normalTensor([1, c, s, s])
            let (x64, w64) = (DTensor(x), DTensor(w))
            let exact = Ref.conv2d(x64, w64, nil, stride: 1, padding: 1, mode: .reflect)
            let r = Ref.conv2dBackward(x64, w64, DTensor(dy), stride: 1, padding: 1, mode: .reflect)
            func error(_ a: Tensor, _ b: DTensor) -> Double {
                let rms = (b.data.map { $0 * $0 }.reduce(0, +) / Double(b.count)).squareRoot()
                return zip(a.array, b.data).map { abs(Double($0) - $1) }.max()! / rms
            }
            func run(winograd: Bool, tile: Int?) -> [Double] {
                ConvAlgorithms.winograd = winograd
                ConvAlgorithms.winogradTile = tile
                let tape = Tape()
                let (xv, wv) = (tape.input(x), tape.input(w))
                let y = tape.conv2d(xv, wv, padding: 1, mode: .reflect)
                tape.backward(y, seed: dy)
                return [error(y.value, exact), error(tape.grad(of: xv)!, r.dx), error(tape.grad(of: wv)!, r.dw)]
            }
            let im2col = run(winograd: false, tile: nil)
            let f2 = run(winograd: true, tile: 2)
            let f4 = run(winograd: true, tile: 4)
            print("winograd error \(c)@\(s)² (y, dx, dW): im2col \(im2col) F(2×2) \(f2) F(4×4) \(f4)")
            for (k, pass) in ["y", "dx", "dW"].enumerated() {
                XCTAssertLessThan(im2col[k], 1e-5, "im2col \(pass) \(c)@\(s)²")
                XCTAssertLessThan(f2[k], 1e-5, "F(2×2) \(pass) \(c)@\(s)²")
                XCTAssertLessThan(f4[k], 1e-4, "F(4×4) \(pass) \(c)@\(s)²")
            }
        }
    }

    /// A weight used by several convs on two tapes that share a `WinogradWeightCache`: values and gradients are the
    /// same floats as without it, U is made once per weight, and a U above `maxBytes` is not kept.
    func testSharedWeightTransformsChangeNothingAndAreMadeOnce() {
        var rng = testRNG("wino cache")
        let x = rng.normalTensor([1, 8, 10, 10])
        let small = Parameter(name: "small", value: rng.normalTensor([8, 8, 3, 3], std: 0.3))
        let big = Parameter(name: "big", value: rng.normalTensor([128, 300, 3, 3], std: 0.05))  // U 2.34 MiB
        let bigIn = rng.normalTensor([1, 300, 4, 4])
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
        XCTAssertEqual(cache.count, 1, "one U for `small`; `big`'s 2.34 MiB U is over maxBytes and not kept")
        XCTAssertEqual(cache.reused, 7, "`small`: 4 forward and 4 backward calls, one transform")
    }

    /// gflop_per_iter counts the direct convolution's FLOPs whatever algorithm runs; `executed` counts the GEMMs.
    func testFlopCounterCountsTheDirectConvolution() {
        var rng = testRNG("wino flops")
        let (cin, cout, h, w) = (16, 8, 12, 10)
        // F(2×2): 6 × 5 tiles, 16 GEMMs; F(4×4): 3 × 3 tiles, 36 GEMMs
        for (tile, tiles, points) in [(2, 6 * 5, 16), (4, 3 * 3, 36)] {
            ConvAlgorithms.winogradTile = tile
            let tape = Tape()
            let xv = tape.input(rng.normalTensor([2, cin, h, w]))
            let wv = tape.input(rng.normalTensor([cout, cin, 3, 3]))
            FlopCounter.reset()
            let y = tape.conv2d(xv, wv, padding: 1, mode: .reflect)
            tape.backward(y, seed: rng.normalTensor(y.shape))
            let direct = 2 * cout * cin * 9 * h * w * 2  // per pass, 2 samples
            XCTAssertEqual(FlopCounter.total, 3 * direct, "forward, dW and dx of the direct convolution")
            XCTAssertEqual(
                FlopCounter.executed, 3 * 2 * points * 2 * cout * cin * tiles, "\(points) GEMMs per pass and sample")
        }
    }
}
