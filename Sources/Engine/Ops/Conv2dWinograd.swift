// conv2d by Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural
// Networks", CVPR 2016, section 4.1) for 3×3 stride-1 convs: the generator's residual and up-sampling blocks.
//
// Why: im2col copies 9 floats per input pixel and channel (34% of a 96/16 step went to im2col and col2im), and
// the direct GEMM does 36 multiplications per 2×2 output tile; F(2×2, 3×3) reads each 4×4 input tile once and
// does 16, so both the copying and the GEMM FLOPs shrink (the latter 2.25×).
//
// The padded input xq [Cin, Hq, Wq] is cut into 4×4 tiles d at stride 2 (tile t = (i, j) covers rows 2i..2i+3 and
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
// Tiles go in chunks of whole tile rows so that V and M stay near 4 MiB, as im2col's columns stay near 1 MiB.
// gflop_per_iter keeps counting the direct convolution's FLOPs; the GEMMs' own go to FlopCounter.executed.

/// The convolution algorithms `conv2d` may choose between (switches for benchmarks and tests).
public enum ConvAlgorithms {
    /// Run 3×3 stride-1 convs by Winograd F(2×2, 3×3) instead of im2col (default on).
    nonisolated(unsafe) public static var winograd = true
    /// Floats of V or M per tile chunk (whole tile rows, at least one).
    nonisolated(unsafe) public static var winogradChunkFloats = 1 << 20
}

extension ConvGeometry {
    /// Whether `conv2d` runs this geometry by Winograd F(2×2, 3×3).
    var prefersWinograd: Bool { ConvAlgorithms.winograd && kh == 3 && kw == 3 && stride == 1 }

    /// Output tiles down and across (2×2 outputs each).
    var tileRows: Int { (ho + 1) / 2 }
    var tileCols: Int { (wo + 1) / 2 }
}

/// Shapes and chunking of one Winograd conv, and the tile transforms.
struct WinogradPlan {
    let g: ConvGeometry
    let cout: Int
    /// The padded input's rows and columns, extended with zeros to whole tiles: 2·tiles + 2.
    let hq: Int, wq: Int
    /// Tile rows per chunk.
    let chunkRows: Int

    init(_ g: ConvGeometry, cout: Int) {
        self.g = g
        self.cout = cout
        hq = 2 * g.tileRows + 2
        wq = 2 * g.tileCols + 2
        let perRow = 16 * max(g.cin, cout) * g.tileCols
        chunkRows = max(1, min(g.tileRows, ConvAlgorithms.winogradChunkFloats / max(perRow, 1)))
    }

    var tw: Int { g.tileCols }
    var maxChunkTiles: Int { chunkRows * tw }

    /// Calls body(firstTileRow, tileRowCount) for each chunk.
    func forEachChunk(_ body: (Int, Int) -> Void) {
        for i0 in stride(from: 0, to: g.tileRows, by: chunkRows) { body(i0, min(chunkRows, g.tileRows - i0)) }
    }

    /// xq[Cin, Hq, Wq] from one sample x[Cin, H, W]: padded (zeros or reflection), then zeros to whole tiles.
    func pad(_ x: UnsafePointer<Float>, _ xq: UnsafeMutablePointer<Float>) {
        g.padInput(x, xq, rows: hq, columns: wq)
    }

    // MARK: - Transforms (G, Bᵀ, Aᵀ of F(2×2, 3×3), Lavin & Gray eq. 7-8)
    //
    // Each transform runs per channel (Parallel.forEach) as plain loops over the tiles of a tile row, which LLVM
    // vectorises: the stride-2 reads and writes of neighbouring tiles become interleaved vector accesses, and the
    // 16 planes of V and M are 16 contiguous streams. Written with per-tile SIMD4 values instead, the input
    // transform took 1.6× as long as the im2col it replaces.

    /// U[16, Cout, Cin] from the weights [Cout, Cin, 3, 3]: G·g·Gᵀ, G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1].
    func transformWeights(_ w: UnsafePointer<Float>, _ u: UnsafeMutablePointer<Float>) {
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

    /// V[16, Cin, n] for tile rows [i0, i0 + rows), n = rows·tw: Bᵀ·d·B of each tile of xq,
    /// Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1].
    func transformInput(_ xq: UnsafePointer<Float>, tileRow i0: Int, rows: Int, _ v: UnsafeMutablePointer<Float>) {
        let (cin, hq, wq, tw) = (g.cin, hq, wq, tw)
        let n = rows * tw
        let planeStride = cin * n
        Parallel.forEach(0..<cin) { ci in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 16 * tw) { buffer in
                // c[(ρ·4 + ν)·tw + j]: row ρ of tile j times B (the column half of the transform)
                let c = buffer.baseAddress!
                for i in 0..<rows {
                    for rho in 0..<4 {
                        let x = xq + (ci * hq + 2 * (i0 + i) + rho) * wq
                        let c0 = c + rho * 4 * tw, c1 = c0 + tw, c2 = c1 + tw, c3 = c2 + tw
                        for j in 0..<tw {
                            let x0 = x[2 &* j], x1 = x[2 &* j &+ 1], x2 = x[2 &* j &+ 2], x3 = x[2 &* j &+ 3]
                            c0[j] = x0 - x2
                            c1[j] = x1 + x2
                            c2[j] = x2 - x1
                            c3[j] = x1 - x3
                        }
                    }
                    let out = v + ci * n + i * tw
                    for nu in 0..<4 {
                        let a0 = c + nu * tw, a1 = a0 + 4 * tw, a2 = a1 + 4 * tw, a3 = a2 + 4 * tw
                        let o0 = out + nu * planeStride, o1 = o0 + 4 * planeStride
                        let o2 = o1 + 4 * planeStride, o3 = o2 + 4 * planeStride
                        for j in 0..<tw {
                            o0[j] = a0[j] - a2[j]
                            o1[j] = a1[j] + a2[j]
                            o2[j] = a2[j] - a1[j]
                            o3[j] = a1[j] - a3[j]
                        }
                    }
                }
            }
        }
    }

    /// dxq[Cin, Hq, Wq] += B·dV·Bᵀ of each tile, the adjoint of `transformInput` (tiles overlap by 2).
    func transformInputGradient(
        _ dv: UnsafePointer<Float>, tileRow i0: Int, rows: Int, _ dxq: UnsafeMutablePointer<Float>
    ) {
        let (cin, hq, wq, tw) = (g.cin, hq, wq, tw)
        let n = rows * tw
        let planeStride = cin * n
        Parallel.forEach(0..<cin) { ci in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 16 * tw) { buffer in
                // u[(r·4 + ν)·tw + j] = (B·dV)[r][ν] of tile j
                let u = buffer.baseAddress!
                for i in 0..<rows {
                    let src = dv + ci * n + i * tw
                    for nu in 0..<4 {
                        let e0 = src + nu * planeStride, e1 = e0 + 4 * planeStride
                        let e2 = e1 + 4 * planeStride, e3 = e2 + 4 * planeStride
                        let u0 = u + nu * tw, u1 = u0 + 4 * tw, u2 = u1 + 4 * tw, u3 = u2 + 4 * tw
                        for j in 0..<tw {
                            u0[j] = e0[j]
                            u1[j] = e1[j] - e2[j] + e3[j]
                            u2[j] = e1[j] + e2[j] - e0[j]
                            u3[j] = -e3[j]
                        }
                    }
                    for r in 0..<4 {
                        let row = dxq + (ci * hq + 2 * (i0 + i) + r) * wq
                        let w0 = u + r * 4 * tw, w1 = w0 + tw, w2 = w1 + tw, w3 = w2 + tw
                        // columns 2j and 2j+1 of tile j, then 2j+2 and 2j+3 (which tile j+1's first two overlap)
                        for j in 0..<tw {
                            row[2 &* j] += w0[j]
                            row[2 &* j &+ 1] += w1[j] - w2[j] + w3[j]
                        }
                        for j in 0..<tw {
                            row[2 &* j &+ 2] += w1[j] + w2[j] - w0[j]
                            row[2 &* j &+ 3] -= w3[j]
                        }
                    }
                }
            }
        }
    }

    /// y[Cout, Ho, Wo] for tile rows [i0, i0 + rows) from M[16, Cout, n]: Aᵀ·m·A (+ bias), cropped to Ho×Wo,
    /// Aᵀ = [1 1 1 0; 0 1 −1 −1].
    func transformOutput(
        _ m: UnsafePointer<Float>, tileRow i0: Int, rows: Int, bias: UnsafePointer<Float>?,
        _ y: UnsafeMutablePointer<Float>
    ) {
        let (cout, ho, wo, tw) = (cout, g.ho, g.wo, tw)
        let n = rows * tw
        let planeStride = cout * n
        let pairs = wo / 2  // tiles whose two output columns are both inside
        Parallel.forEach(0..<cout) { co in
            let b = bias?[co] ?? 0
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 8 * tw) { buffer in
                // s[(a·4 + ν)·tw + j] = (Aᵀ·M)[a][ν] of tile j
                let s = buffer.baseAddress!
                for i in 0..<rows {
                    let src = m + co * n + i * tw
                    for nu in 0..<4 {
                        let e0 = src + nu * planeStride, e1 = e0 + 4 * planeStride
                        let e2 = e1 + 4 * planeStride, e3 = e2 + 4 * planeStride
                        let s0 = s + nu * tw, s1 = s0 + 4 * tw
                        for j in 0..<tw {
                            s0[j] = e0[j] + e1[j] + e2[j]
                            s1[j] = e1[j] - e2[j] - e3[j]
                        }
                    }
                    for a in 0..<2 {
                        let oh = 2 * (i0 + i) + a
                        if oh >= ho { break }
                        let row = y + (co * ho + oh) * wo
                        let t0 = s + a * 4 * tw, t1 = t0 + tw, t2 = t1 + tw, t3 = t2 + tw
                        for j in 0..<pairs {
                            row[2 &* j] = t0[j] + t1[j] + t2[j] + b
                            row[2 &* j &+ 1] = t1[j] - t2[j] - t3[j] + b
                        }
                        if pairs < tw { row[2 * pairs] = t0[pairs] + t1[pairs] + t2[pairs] + b }
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
        let (cout, ho, wo, tw) = (cout, g.ho, g.wo, tw)
        let n = rows * tw
        let planeStride = cout * n
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
                    // one ξ row (four store streams) per loop, as in transformWeights
                    let o = dm + co * n + i * tw
                    for xi in 0..<4 {
                        let (o0, o1, o2, o3) = (
                            o + 4 * xi * planeStride, o + (4 * xi + 1) * planeStride, o + (4 * xi + 2) * planeStride,
                            o + (4 * xi + 3) * planeStride
                        )
                        // row ξ of A·e as a pair (p, q) over b: (e0, e0 + e1, e0 − e1, −e1) of the two dy rows
                        let sa: Float = xi == 3 ? 0 : 1
                        let sb: Float = xi == 0 ? 0 : (xi == 1 ? 1 : -1)
                        for j in 0..<tw {
                            let p = sa * top[2 &* j] + sb * bottom[2 &* j]
                            let q = sa * top[2 &* j &+ 1] + sb * bottom[2 &* j &+ 1]
                            o0[j] = p
                            o1[j] = p + q
                            o2[j] = p - q
                            o3[j] = -q
                        }
                    }
                }
            }
        }
    }
}

extension Tape {
    /// conv2d by Winograd F(2×2, 3×3); same contract as `conv2d` (which calls it when `prefersWinograd`).
    func conv2dWinograd(_ x: Var, _ weight: Var, _ bias: Var?, _ g: ConvGeometry, n: Int, cout: Int) -> Var {
        precondition(g.kh == 3 && g.kw == 3 && g.stride == 1, "winograd: 3×3 stride 1 only")
        let plan = WinogradPlan(g, cout: cout)
        let (cin, p) = (g.cin, g.p)
        let xv = x.value
        let wv = weight.value
        let directFlops = 2 * cout * g.k * p  // one pass of the direct convolution, per sample
        let tag = Profile.enabled ? "conv wino co\(cout) ci\(cin) p\(p) " : ""
        let u = Tensor(uninitialized: [16, cout, cin])
        Profile.time(tag + "transform_w", kind: .im2col) { plan.transformWeights(wv.data, u.data) }
        let y = Tensor(uninitialized: [n, cout, g.ho, g.wo])
        let xq = Tensor(uninitialized: [cin, plan.hq, plan.wq])
        let v = Tensor(uninitialized: [16, cin, plan.maxChunkTiles])
        let m = Tensor(uninitialized: [16, cout, plan.maxChunkTiles])
        for s in 0..<n {
            FlopCounter.add(directFlops, executed: false)
            Profile.time(tag + "pad", kind: .im2col) { plan.pad(xv.data + s * cin * g.h * g.w, xq.data) }
            plan.forEachChunk { i0, rows in
                let nt = rows * plan.tw
                Profile.time(tag + "transform_x", kind: .im2col) {
                    plan.transformInput(xq.data, tileRow: i0, rows: rows, v.data)
                }
                Profile.time(tag + "gemm_fwd") {
                    for e in 0..<16 {
                        sgemm(m: cout, n: nt, k: cin, u.data + e * cout * cin, v.data + e * cin * nt,
                              m.data + e * cout * nt, counted: false)
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
            if let bias, self.needsGrad(bias) {
                let db = Tensor(zeros: [cout])
                Breakdown.span(.elementwise) {
                    for s in 0..<n { for co in 0..<cout { db[co] += vsum(dy.data + (s * cout + co) * p, p) } }
                }
                self.accumulate(bias, db)
            }
            guard needX || needW else { return }
            let dm = Tensor(uninitialized: [16, cout, plan.maxChunkTiles])
            let du = needW ? Tensor(zeros: [16, cout, cin]) : nil
            let v = needW ? Tensor(uninitialized: [16, cin, plan.maxChunkTiles]) : nil
            let xq = needW ? Tensor(uninitialized: [cin, plan.hq, plan.wq]) : nil
            let dv = needX ? Tensor(uninitialized: [16, cin, plan.maxChunkTiles]) : nil
            let dxq = needX ? Tensor(uninitialized: [cin, plan.hq, plan.wq]) : nil
            let dx = needX ? Tensor(zeros: xv.shape) : nil
            for s in 0..<n {
                if let xq { Profile.time(tag + "pad", kind: .im2col) { plan.pad(xv.data + s * cin * g.h * g.w, xq.data) } }
                if let dxq { Breakdown.span(.alloc) { dxq.data.update(repeating: 0, count: dxq.count) } }
                plan.forEachChunk { i0, rows in
                    let nt = rows * plan.tw
                    Profile.time(tag + "transform_dy", kind: .im2col) {
                        plan.transformOutputGradient(dy.data + s * cout * p, tileRow: i0, rows: rows, dm.data)
                    }
                    if let du, let v, let xq {
                        Profile.time(tag + "transform_x", kind: .im2col) {
                            plan.transformInput(xq.data, tileRow: i0, rows: rows, v.data)
                        }
                        Profile.time(tag + "gemm_dw") {
                            for e in 0..<16 {
                                sgemm(transB: true, m: cout, n: cin, k: nt, dm.data + e * cout * nt,
                                      v.data + e * cin * nt, beta: 1, du.data + e * cout * cin, counted: false)
                            }
                        }
                    }
                    if let dv, let dxq {
                        Profile.time(tag + "gemm_dx") {
                            for e in 0..<16 {
                                sgemm(transA: true, m: cin, n: nt, k: cout, u.data + e * cout * cin,
                                      dm.data + e * cout * nt, dv.data + e * cin * nt, counted: false)
                            }
                        }
                        Profile.time(tag + "transform_dx", kind: .im2col) {
                            plan.transformInputGradient(dv.data, tileRow: i0, rows: rows, dxq.data)
                        }
                    }
                }
                if du != nil { FlopCounter.add(directFlops, executed: false) }
                if let dx, let dxq {
                    FlopCounter.add(directFlops, executed: false)
                    Profile.time(tag + "fold", kind: .im2col) {
                        g.foldPadding(dxq.data, dx.data + s * cin * g.h * g.w, rows: plan.hq, columns: plan.wq)
                    }
                }
            }
            if let du {
                let dw = Tensor(zeros: weight.shape)
                Profile.time(tag + "transform_dw", kind: .im2col) { plan.transformWeightGradient(du.data, dw.data) }
                self.accumulate(weight, dw)
            }
            if let dx { self.accumulate(x, dx) }
        }
    }
}
