// conv2d by Winograd's minimal filtering F(2×2, 3×3) or F(4×4, 3×3) (Lavin & Gray, "Fast Algorithms for
// Convolutional Neural Networks", CVPR 2016, sections 4.1-4.2) for 3×3 stride-1 convs: the generator's residual and
// up-sampling blocks. What follows is written for F(2×2, 3×3); F(4×4, 3×3) (Conv2dWinograd4x4.swift) is the same
// with 6×6 input tiles at stride 4, 36 GEMMs and 4×4 output tiles: 36 multiplications per 16 outputs instead of
// 64, 1.78× fewer GEMM FLOPs again, for a larger rounding error (its transforms' coefficients reach 5 and 8): at most
// 1-6e-5 of the result's RMS against F(2×2)'s 1-3e-6 (WinogradTests), and whole steps still match PyTorch to 1e-4.
// It needs wide images to pay (`defaultTile`): its tiles are 4 outputs wide, and rows of fewer than 8 tiles leave
// the transforms' 8-lane vectors partly idle and the GEMMs narrow.
//
// Why: im2col copies 9 floats per input pixel and channel (34% of a 96/16 step went to im2col and col2im), and
// the direct GEMM does 36 multiplications per 2×2 output tile; F(2×2, 3×3) reads each 4×4 input tile once and
// does 16, so both the copying and the GEMM FLOPs shrink (the latter 2.25×).
//
// The padded input xq [Cin, Hq, Wq] (Hq, Wq: zeros added to whole tiles) is cut into 4×4 tiles d at stride 2 (tile t = (i, j) covers rows 2i..2i+3 and
// columns 2j..2j+3); each gives one 2×2 output tile. With the constant matrices below and ξ, ν ∈ 0..<4:
//   weights  U[ξν][co, ci] = (G·g[co, ci]·Gᵀ)[ξ, ν]                     g: the 3×3 kernel
//   input    V[ξν][ci, t]  = (Bᵀ·d[ci, t]·B)[ξ, ν]
//   product  M[ξν]         = U[ξν] · V[ξν]                              16 GEMMs [Cout, Cin]·[Cin, T]
//   output   y[co, tile t] = Aᵀ·M[·][co, t]·A                          (2×2, cropped at odd sizes)
// Backward is the adjoint of each line, so it is the exact gradient of what the forward computed:
//   dM[·][co, t] = A·dy[co, tile t]·Aᵀ
//   dU[ξν] += dM[ξν]·V[ξν]ᵀ,  dg = Gᵀ·dU·G                              16 GEMMs [Cout, T]·[T, Cin]
//   dV[ξν]  = U[ξν]ᵀ·dM[ξν],  dd = B·dV·Bᵀ scattered into dxq, then folded through the padding into dx
// In exact arithmetic this is the convolution; in float32 its error is of the order of im2col's (ConvTests
// compare both paths and gradient-check this one against the Float64 reference).
// Tiles go in chunks of whole tile rows so that V and M stay near 1 MiB, as im2col's columns do; xq is
// padded and dxq folded one chunk's rows at a time.
// gflop_per_iter keeps counting the direct convolution's FLOPs; the GEMMs' own go to FlopCounter.executed.

import Foundation

/// The convolution algorithms `conv2d` may choose between (switches for benchmarks and tests).
public enum ConvAlgorithms {
    /// Run 3×3 stride-1 convs by Winograd instead of im2col (default on).
    nonisolated(unsafe) public static var winograd = true
    /// Run stride-1 convs with at most 4 output and 16 input channels and a kernel of 5×5 or more by direct loops
    /// instead of kn2row (default on; Conv2dDirect.swift).
    nonisolated(unsafe) public static var direct = true
    /// The Winograd output tile side: 2 for F(2×2, 3×3), 4 for F(4×4, 3×3), nil to choose per conv
    /// (`WinogradPlan.defaultTile`).
    nonisolated(unsafe) public static var winogradTile: Int? = nil
    /// Floats of V or M per tile chunk (whole tile rows, at least one): 1 MiB, as im2col's column chunks.
    nonisolated(unsafe) public static var winogradChunkFloats = 1 << 18
    /// Tiles per chunk at least, where the image has them, whatever `winogradChunkFloats` says.
    nonisolated(unsafe) public static var winogradMinChunkTiles = 64
}

extension ConvGeometry {
    /// Whether `conv2d` runs this geometry by Winograd.
    var prefersWinograd: Bool { ConvAlgorithms.winograd && kh == 3 && kw == 3 && stride == 1 }
}

/// Shapes and chunking of one Winograd conv, and the tile transforms.
struct WinogradPlan {
    let g: ConvGeometry
    let cout: Int
    /// The output tile side m: F(m×m, 3×3) reads (m + 2)×(m + 2) input tiles at stride m.
    let tile: Int
    /// Output tiles down and across.
    let tileRows: Int, tileCols: Int
    /// The padded input's columns, extended with zeros to whole tiles: m·tiles + 2, and 2 more for F(4×4, 3×3),
    /// whose vector loads and stores of a tile's columns 4 and 5 reach 2 floats past its last tile.
    let wq: Int
    /// Chunks of tile rows, and the rows of the largest (the others have it or one fewer).
    let chunks: Int, chunkRows: Int

    /// F(4×4, 3×3) from 32×32 outputs on. At 24×24 (the 96/16 residual blocks: 6 tiles a row, 36 an image) its
    /// narrower GEMMs and partly idle transforms cost what its fewer FLOPs save; at 32×32 (128/32) and 64×64 (256/64)
    /// it is ahead (`bench train --winograd-tile`, docs/training.md).
    static func defaultTile(_ g: ConvGeometry) -> Int { min(g.ho, g.wo) >= 32 ? 4 : 2 }

    init(_ g: ConvGeometry, cout: Int, tile: Int? = ConvAlgorithms.winogradTile) {
        self.g = g
        self.cout = cout
        let m = tile ?? Self.defaultTile(g)
        precondition(m == 2 || m == 4, "winograd: output tile \(m) is neither 2 nor 4")
        self.tile = m
        tileRows = (g.ho + m - 1) / m
        tileCols = (g.wo + m - 1) / m
        wq = m * tileCols + (m == 2 ? 2 : 4)
        // As many chunks as the size limit needs, but none of fewer than `winogradMinChunkTiles` tiles (whole rows)
        // where the image has them, which wins over the limit: the GEMMs are [Cout, Cin]·[Cin, tiles], and at 16
        // tiles (F(4×4) at 256/64 with 1 MiB chunks) they ran at half the speed they reach at 64. The rows are
        // spread evenly (`forEachChunk`): 8 tile rows at most 7 a chunk go as 4 + 4, not 7 + 1.
        let perRow = (m + 2) * (m + 2) * max(g.cin, cout) * tileCols
        let limitRows = max(1, ConvAlgorithms.winogradChunkFloats / max(perRow, 1))
        let minRows = max(1, (ConvAlgorithms.winogradMinChunkTiles + tileCols - 1) / tileCols)
        chunks = max(1, min((tileRows + limitRows - 1) / limitRows, tileRows / minRows))
        chunkRows = (tileRows + chunks - 1) / chunks
    }

    /// Points of the transform domain, (m + 2)²: 16 or 36 GEMMs per pass.
    var points: Int { (tile + 2) * (tile + 2) }
    var tw: Int { tileCols }
    var maxChunkTiles: Int { chunkRows * tw }

    /// Floats from one of the 16 planes of V, M, dM or dV to the next, for `floats` floats per plane: rounded so
    /// that consecutive planes start 64 bytes apart modulo 4 KiB. Planes a multiple of 4 KiB apart (64 channels
    /// × 144 tiles at 96/16) put the transforms' 16 store streams into one L1 set, which has 12 ways.
    static func planeStride(_ floats: Int) -> Int { (floats + 1023 - 16) / 1024 * 1024 + 16 }

    /// Runs gemm(e) for the `points` GEMMs of one pass (each m×n×k) and counts their FLOPs as executed. With
    /// several threads they are split among the threads, each GEMM on one OpenBLAS thread: OpenBLAS's own
    /// threading of GEMMs this small (64×64×144 at 96/16) made a step slower on 2 threads than on 1.
    func pointGEMMs(m: Int, n: Int, k: Int, _ gemm: (Int) -> Void) {
        FlopCounter.add(points * 2 * m * n * k, network: false)
        if Parallel.threads > 1 {
            // one span for the whole split: the caller's wait for the other threads' GEMMs is GEMM time too
            Breakdown.span(.gemm) { Runtime.withSingleThreadedBLAS { Parallel.forEach(0..<points, gemm) } }
        } else {
            for e in 0..<points { gemm(e) }
        }
    }

    /// A buffer for `points` planes of `channels` × the largest chunk's tiles.
    func planes(_ channels: Int) -> Tensor {
        Tensor(uninitialized: [points * Self.planeStride(channels * maxChunkTiles)])
    }

    /// Calls body(firstTileRow, tileRowCount) for each chunk: `chunks` chunks whose rows differ by at most one.
    func forEachChunk(_ body: (Int, Int) -> Void) {
        let (base, extra) = (tileRows / chunks, tileRows % chunks)
        var i0 = 0
        for c in 0..<chunks {
            let rows = base + (c < extra ? 1 : 0)
            body(i0, rows)
            i0 += rows
        }
    }

    /// The padded input rows that tile rows [i0, i0 + rows) read: m·rows + 2 from row m·i0 (neighbouring chunks
    /// share two).
    func inputRows(_ rows: Int) -> Int { tile * rows + 2 }

    /// A buffer for the padded input rows of the largest chunk, [Cin, inputRows, Wq].
    func inputBuffer() -> Tensor { Tensor(uninitialized: [g.cin, inputRows(chunkRows), wq]) }

    /// xq[Cin, inputRows(rows), Wq] for tile rows [i0, i0 + rows) from one sample x[Cin, H, W]: padded (zeros or
    /// reflection), then zeros to whole tiles. Only a chunk's rows are padded: a whole padded copy of the input
    /// was 34 MB at the 256/64 generator's last up-sampling conv.
    func pad(_ x: UnsafePointer<Float>, tileRow i0: Int, rows: Int, _ xq: UnsafeMutablePointer<Float>) {
        g.padInput(x, xq, rows: inputRows(rows), columns: wq, firstRow: tile * i0)
    }

    /// dx[Cin, H, W] += the chunk's dxq[Cin, inputRows(rows), Wq] folded back through the padding.
    func fold(_ dxq: UnsafePointer<Float>, tileRow i0: Int, rows: Int, _ dx: UnsafeMutablePointer<Float>) {
        g.foldPadding(dxq, dx, rows: inputRows(rows), columns: wq, firstRow: tile * i0)
    }

    // MARK: - Transforms (G, Bᵀ, Aᵀ of F(2×2, 3×3), Lavin & Gray eq. 7-8)
    //
    // Each runs per channel (Parallel.forEach); the data transforms go 8 tiles of a tile row at a time
    // (WinogradTiles.swift). With m = 4 each hands over to its F(4×4, 3×3) twin (Conv2dWinograd4x4.swift).

    /// U[16, Cout, Cin] from the weights [Cout, Cin, 3, 3]: G·g·Gᵀ, G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1].
    func transformWeights(_ w: UnsafePointer<Float>, _ u: UnsafeMutablePointer<Float>) {
        guard tile == 2 else { return transformWeights4x4(w, u) }
        let (cin, plane) = (g.cin, cout * g.cin)
        Parallel.forEach(0..<cout) { co in
            // One output plane per loop: 16 store streams 4 KiB apart in one loop stalled on 4K aliasing (the
            // first version took 0.23 ms for 64×64 weights).
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 12 * cin) { buffer in
                // k[t·Cin + ci] = g[co, ci, t]; then q[b·Cin + ci] = (G·g)[ξ][b] for one ξ at a time
                let k = buffer.baseAddress!, q = k + 9 * cin
                let src = w + co * cin * 9
                for t in 0..<9 { for ci in 0..<cin { k[t * cin + ci] = src[ci * 9 + t] } }
                for xi in 0..<4 {
                    for b in 0..<3 {
                        let (g0, g1, g2, qb) = (k + b * cin, k + (3 + b) * cin, k + (6 + b) * cin, q + b * cin)
                        switch xi {
                        case 0: for ci in 0..<cin { qb[ci] = g0[ci] }
                        case 1: for ci in 0..<cin { qb[ci] = 0.5 * (g0[ci] + g1[ci] + g2[ci]) }
                        case 2: for ci in 0..<cin { qb[ci] = 0.5 * (g0[ci] - g1[ci] + g2[ci]) }
                        default: for ci in 0..<cin { qb[ci] = g2[ci] }
                        }
                    }
                    let (q0, q1, q2) = (q, q + cin, q + 2 * cin)
                    let o = u + xi * 4 * plane + co * cin
                    for ci in 0..<cin { o[ci] = q0[ci] }
                    for ci in 0..<cin { o[plane + ci] = 0.5 * (q0[ci] + q1[ci] + q2[ci]) }
                    for ci in 0..<cin { o[2 * plane + ci] = 0.5 * (q0[ci] - q1[ci] + q2[ci]) }
                    for ci in 0..<cin { o[3 * plane + ci] = q2[ci] }
                }
            }
        }
    }

    /// dW[Cout, Cin, 3, 3] += Gᵀ·dU·G, the adjoint of `transformWeights`.
    func transformWeightGradient(_ du: UnsafePointer<Float>, _ dw: UnsafeMutablePointer<Float>) {
        guard tile == 2 else { return transformWeightGradient4x4(du, dw) }
        let (cin, plane) = (g.cin, cout * g.cin)
        Parallel.forEach(0..<cout) { co in
            let src = du + co * cin
            let k = dw + co * cin * 9
            for ci in 0..<cin {
                let e = src + ci
                // r[a][ν] = (Gᵀ·dU)[a][ν], then dg[a][b] = (r·G)[a][b]
                var r = (SIMD4<Float>.zero, SIMD4<Float>.zero, SIMD4<Float>.zero)
                for nu in 0..<4 {
                    let d0 = e[nu * plane], d1 = e[(4 + nu) * plane], d2 = e[(8 + nu) * plane]
                    let d3 = e[(12 + nu) * plane]
                    r.0[nu] = d0 + 0.5 * (d1 + d2)
                    r.1[nu] = 0.5 * (d1 - d2)
                    r.2[nu] = 0.5 * (d1 + d2) + d3
                }
                let o = k + ci * 9
                o[0] += r.0[0] + 0.5 * (r.0[1] + r.0[2])
                o[1] += 0.5 * (r.0[1] - r.0[2])
                o[2] += 0.5 * (r.0[1] + r.0[2]) + r.0[3]
                o[3] += r.1[0] + 0.5 * (r.1[1] + r.1[2])
                o[4] += 0.5 * (r.1[1] - r.1[2])
                o[5] += 0.5 * (r.1[1] + r.1[2]) + r.1[3]
                o[6] += r.2[0] + 0.5 * (r.2[1] + r.2[2])
                o[7] += 0.5 * (r.2[1] - r.2[2])
                o[8] += 0.5 * (r.2[1] + r.2[2]) + r.2[3]
            }
        }
    }

    /// V[16, Cin, n] for a chunk of `rows` tile rows, n = rows·tw: Bᵀ·d·B of each tile of the chunk's xq
    /// (WinogradTiles.input).
    func transformInput(_ xq: UnsafePointer<Float>, rows: Int, _ v: UnsafeMutablePointer<Float>) {
        guard tile == 2 else { return transformInput4x4(xq, rows: rows, v) }
        let (cin, hq, wq, tw) = (g.cin, inputRows(rows), wq, tw)
        let n = rows * tw
        let stride = Self.planeStride(cin * n)
        Parallel.forEach(0..<cin) { ci in
            for i in 0..<rows {
                let r0 = UnsafePointer(xq + (ci * hq + 2 * i) * wq)
                let (r1, r2, r3) = (r0 + wq, r0 + 2 * wq, r0 + 3 * wq)
                let out = v + ci * n + i * tw
                func block<V: TileVector>(_ t: V.Type, _ j: Int) { WinogradTiles.input(t, r0, r1, r2, r3, j, out, stride) }
                forEachTileBlock(
                    tw, eight: { block(SIMD8<Float>.self, $0) }, four: { block(SIMD4<Float>.self, $0) },
                    one: { block(Float.self, $0) })
            }
        }
    }

    /// The chunk's dxq[Cin, inputRows(rows), Wq] += B·dV·Bᵀ of each tile, the adjoint of `transformInput`
    /// (tiles overlap by 2).
    func transformInputGradient(_ dv: UnsafePointer<Float>, rows: Int, _ dxq: UnsafeMutablePointer<Float>) {
        guard tile == 2 else { return transformInputGradient4x4(dv, rows: rows, dxq) }
        let (cin, hq, wq, tw) = (g.cin, inputRows(rows), wq, tw)
        let n = rows * tw
        let stride = Self.planeStride(cin * n)
        Parallel.forEach(0..<cin) { ci in
            for i in 0..<rows {
                let row = dxq + (ci * hq + 2 * i) * wq
                let src = dv + ci * n + i * tw
                func block<V: TileVector>(_ t: V.Type, _ j: Int) {
                    WinogradTiles.inputGradient(t, src, stride, j, row, wq)
                }
                forEachTileBlock(
                    tw, eight: { block(SIMD8<Float>.self, $0) }, four: { block(SIMD4<Float>.self, $0) },
                    one: { block(Float.self, $0) })
            }
        }
    }

    /// y[Cout, Ho, Wo] for tile rows [i0, i0 + rows) from M[16, Cout, n]: Aᵀ·m·A (+ bias), cropped to Ho×Wo.
    func transformOutput(
        _ m: UnsafePointer<Float>, tileRow i0: Int, rows: Int, bias: UnsafePointer<Float>?,
        _ y: UnsafeMutablePointer<Float>
    ) {
        guard tile == 2 else { return transformOutput4x4(m, tileRow: i0, rows: rows, bias: bias, y) }
        let (cout, ho, wo, tw) = (cout, g.ho, g.wo, tw)
        let n = rows * tw
        let stride = Self.planeStride(cout * n)
        let pairs = wo / 2  // tiles whose two output columns are both inside
        Parallel.forEach(0..<cout) { co in
            let b = bias?[co] ?? 0
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 4) { scratch in
                for i in 0..<rows {
                    let oh = 2 * (i0 + i)
                    let top = y + (co * ho + oh) * wo
                    let bottom = oh + 1 < ho ? top + wo : nil
                    let src = m + co * n + i * tw
                    func block<V: TileVector>(_ t: V.Type, _ j: Int) {
                        WinogradTiles.output(t, src, stride, j, bias: b, top, bottom)
                    }
                    forEachTileBlock(
                        pairs, eight: { block(SIMD8<Float>.self, $0) }, four: { block(SIMD4<Float>.self, $0) },
                        one: { block(Float.self, $0) })
                    if pairs < tw {
                        // odd Wo: the last tile keeps its first column only
                        let s = scratch.baseAddress!
                        WinogradTiles.output(Float.self, src + pairs, stride, 0, bias: b, s, s + 2)
                        top[2 * pairs] = s[0]
                        bottom?[2 * pairs] = s[2]
                    }
                }
            }
        }
    }

    /// dM[16, Cout, n] = A·dy·Aᵀ of each 2×2 tile of dy[Cout, Ho, Wo] (zeros past the crop), the adjoint of
    /// `transformOutput`.
    func transformOutputGradient(
        _ dy: UnsafePointer<Float>, tileRow i0: Int, rows: Int, _ dm: UnsafeMutablePointer<Float>
    ) {
        guard tile == 2 else { return transformOutputGradient4x4(dy, tileRow: i0, rows: rows, dm) }
        let (cout, ho, wo, tw) = (cout, g.ho, g.wo, tw)
        let n = rows * tw
        let stride = Self.planeStride(cout * n)
        Parallel.forEach(0..<cout) { co in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * tw) { buffer in
                // the tile row's two dy rows, zero-extended to 2·tw columns (and a zero row past Ho)
                let top = buffer.baseAddress!, bottom = top + 2 * tw
                for i in 0..<rows {
                    let oh = 2 * (i0 + i)
                    top.update(from: dy + (co * ho + oh) * wo, count: wo)
                    (top + wo).update(repeating: 0, count: 2 * tw - wo)
                    if oh + 1 < ho {
                        bottom.update(from: dy + (co * ho + oh + 1) * wo, count: wo)
                        (bottom + wo).update(repeating: 0, count: 2 * tw - wo)
                    } else {
                        bottom.update(repeating: 0, count: 2 * tw)
                    }
                    let out = dm + co * n + i * tw
                    func block<V: TileVector>(_ t: V.Type, _ j: Int) {
                        WinogradTiles.outputGradient(t, top, bottom, j, out, stride)
                    }
                    forEachTileBlock(
                        tw, eight: { block(SIMD8<Float>.self, $0) }, four: { block(SIMD4<Float>.self, $0) },
                        one: { block(Float.self, $0) })
                }
            }
        }
    }
}

/// The Winograd weight transforms U = G·g·Gᵀ of the weights a group of tapes uses, made once and shared by every
/// forward and backward call on those tapes (`Tape.winogradWeights`). Valid only while those weights do not change:
/// a trainer makes one per generator phase (`UGATITStep`), from the D phase's translations to the G update.
///
/// Why: each generator runs 3 times per step, forward and backward, so at 96/16 its 16 residual convs made U 192
/// times a step where 16 would do: 0.019 s of a 0.32 s step. Only U of at most `maxBytes` is kept, so that the
/// 9 MiB F(4×4) transforms of the 256-channel convs at 256/64 are not held for a whole phase (memory is what limits
/// there: 32 of them would hold 300 MB).
/// Thread-safe: both chains of a step use it.
public final class WinogradWeightCache: @unchecked Sendable {
    /// 2.25 MiB: the F(4×4, 3×3) transform of a 128 → 128 conv (the 128/32 generator's residual blocks).
    public static let maxBytes = 36 * 128 * 128 * 4
    private let lock = NSLock()
    private struct Key: Hashable {
        let weights: ObjectIdentifier
        let tile: Int
    }
    /// Keyed by the weight tensor's identity and the tile side; the entry keeps the tensor alive, so the key cannot
    /// be reused.
    private var entries: [Key: (weights: Tensor, u: Tensor)] = [:]

    public init() {}

    /// The number of transforms held.
    public var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return entries.count
    }
    /// How many calls got a kept transform instead of making one.
    public private(set) var reused = 0

    /// U of `weights` [Cout, Cin, 3, 3] for output tiles of side `tile`: the kept one, or `make()`'s result (kept
    /// if small enough).
    func transformed(_ weights: Tensor, tile: Int, bytes: Int, _ make: () -> Tensor) -> Tensor {
        guard bytes <= Self.maxBytes else { return make() }
        let key = Key(weights: ObjectIdentifier(weights), tile: tile)
        lock.lock()
        defer { lock.unlock() }
        if let e = entries[key] {
            reused += 1
            return e.u
        }
        let u = make()
        entries[key] = (weights, u)
        return u
    }
}

extension Tape {
    /// conv2d by Winograd F(2×2, 3×3) or F(4×4, 3×3); same contract as `conv2d` (which calls it when
    /// `prefersWinograd`).
    func conv2dWinograd(_ x: Var, _ weight: Var, _ bias: Var?, _ g: ConvGeometry, n: Int, cout: Int) -> Var {
        precondition(g.kh == 3 && g.kw == 3 && g.stride == 1, "winograd: 3×3 stride 1 only")
        let plan = WinogradPlan(g, cout: cout)
        let (cin, p, plane) = (g.cin, g.p, g.cin * g.h * g.w)
        let xv = x.value
        let wv = weight.value
        let directFlops = 2 * cout * g.k * p  // one pass of the direct convolution, per sample
        let tag = Profile.enabled ? "conv wino co\(cout) ci\(cin) p\(p) " : ""
        // Without a shared cache, U is made again in backward rather than kept: kept, the 16 residual convs of 6
        // generator passes held 384 MB of it at 256/64 until their backward
        let cache = winogradWeights
        func transformedWeights() -> Tensor {
            func make() -> Tensor {
                let u = Tensor(uninitialized: [plan.points, cout, cin])
                Profile.time(tag + "transform_w", kind: .im2col) { plan.transformWeights(wv.data, u.data) }
                return u
            }
            return cache?.transformed(wv, tile: plan.tile, bytes: 4 * plan.points * cout * cin, make) ?? make()
        }
        let u = transformedWeights()
        let y = Tensor(uninitialized: [n, cout, g.ho, g.wo])
        let xq = plan.inputBuffer()
        let v = plan.planes(cin)
        let m = plan.planes(cout)
        for s in 0..<n {
            FlopCounter.add(directFlops, executed: false)
            plan.forEachChunk { i0, rows in
                let nt = rows * plan.tw
                Profile.time(tag + "pad", kind: .im2col) { plan.pad(xv.data + s * plane, tileRow: i0, rows: rows, xq.data) }
                Profile.time(tag + "transform_x", kind: .im2col) { plan.transformInput(xq.data, rows: rows, v.data) }
                Profile.time(tag + "gemm_fwd") {
                    let (vs, ms) = (WinogradPlan.planeStride(cin * nt), WinogradPlan.planeStride(cout * nt))
                    plan.pointGEMMs(m: cout, n: nt, k: cin) { e in
                        sgemm(m: cout, n: nt, k: cin, u.data + e * cout * cin, v.data + e * vs, m.data + e * ms,
                              counted: false)
                    }
                }
                Profile.time(tag + "transform_y", kind: .im2col) {
                    plan.transformOutput(
                        m.data, tileRow: i0, rows: rows, bias: bias?.value.data, y.data + s * cout * p)
                }
            }
        }
        return record(y, inputs: [x, weight] + (bias.map { [$0] } ?? []), kind: .other) { [unowned self] dy in
            let needX = self.needsGrad(x)
            let needW = self.needsGrad(weight)
            self.accumulateBiasGradient(bias, dy, n: n, cout: cout, plane: p)
            guard needX || needW else { return }
            let u = needX ? transformedWeights() : nil
            let dm = plan.planes(cout)
            // dU is written by the first chunk's GEMMs (β = 0) and summed into by the others: not zero-filled first
            // (2.4 MB a call for the 128/32 residual convs)
            let du = needW ? Tensor(uninitialized: [plan.points, cout, cin]) : nil
            var duWritten = false
            let v = needW ? plan.planes(cin) : nil
            let xq = needW ? plan.inputBuffer() : nil
            let dv = needX ? plan.planes(cin) : nil
            let dxq = needX ? plan.inputBuffer() : nil
            let dx = needX ? Tensor(zeros: xv.shape) : nil
            for s in 0..<n {
                plan.forEachChunk { i0, rows in
                    let nt = rows * plan.tw
                    let (vs, ms) = (WinogradPlan.planeStride(cin * nt), WinogradPlan.planeStride(cout * nt))
                    Profile.time(tag + "transform_dy", kind: .im2col) {
                        plan.transformOutputGradient(dy.data + s * cout * p, tileRow: i0, rows: rows, dm.data)
                    }
                    if let du, let v, let xq {
                        Profile.time(tag + "pad", kind: .im2col) {
                            plan.pad(xv.data + s * plane, tileRow: i0, rows: rows, xq.data)
                        }
                        Profile.time(tag + "transform_x", kind: .im2col) {
                            plan.transformInput(xq.data, rows: rows, v.data)
                        }
                        Profile.time(tag + "gemm_dw") {
                            let beta: Float = duWritten ? 1 : 0
                            plan.pointGEMMs(m: cout, n: cin, k: nt) { e in
                                sgemm(transB: true, m: cout, n: cin, k: nt, dm.data + e * ms, v.data + e * vs,
                                      beta: beta, du.data + e * cout * cin, counted: false)
                            }
                        }
                        duWritten = true
                    }
                    if let u, let dv, let dxq, let dx {
                        Profile.time(tag + "gemm_dx") {
                            plan.pointGEMMs(m: cin, n: nt, k: cout) { e in
                                sgemm(transA: true, m: cin, n: nt, k: cout, u.data + e * cout * cin, dm.data + e * ms,
                                      dv.data + e * vs, counted: false)
                            }
                        }
                        Profile.time(tag + "transform_dx", kind: .im2col) {
                            dxq.data.update(repeating: 0, count: cin * plan.inputRows(rows) * plan.wq)
                            plan.transformInputGradient(dv.data, rows: rows, dxq.data)
                        }
                        Profile.time(tag + "fold", kind: .im2col) {
                            plan.fold(dxq.data, tileRow: i0, rows: rows, dx.data + s * plane)
                        }
                    }
                }
                if du != nil { FlopCounter.add(directFlops, executed: false) }
                if dx != nil { FlopCounter.add(directFlops, executed: false) }
            }
            if let du {
                if !duWritten { du.fill(0) }  // an empty batch
                let dw = Tensor(zeros: weight.shape)
                Profile.time(tag + "transform_dw", kind: .im2col) { plan.transformWeightGradient(du.data, dw.data) }
                self.accumulate(weight, dw)
            }
            if let dx { self.accumulate(x, dx) }
        }
    }
}
