// The transforms of Winograd F(4×4, 3×3) (Lavin & Gray, CVPR 2016, section 4.2): the twins of WinogradPlan's
// F(2×2, 3×3) transforms (Conv2dWinograd.swift), which hand over to these when the plan's tile side is 4. The tile
// arithmetic and the matrices are in WinogradTiles4x4.swift.
//
// Why: F(4×4, 3×3) does 36 multiplications per 4×4 output tile where F(2×2, 3×3) does 64 for four 2×2 tiles, so
// the GEMMs, about half of a 128/32 step, do 1.78× fewer FLOPs; V and M hold 2.25 floats per output instead of 4.

extension WinogradPlan {
    /// U[36, Cout, Cin] from the weights [Cout, Cin, 3, 3]: G·g·Gᵀ.
    func transformWeights4x4(_ w: UnsafePointer<Float>, _ u: UnsafeMutablePointer<Float>) {
        let (cin, plane, gm) = (g.cin, cout * g.cin, WinogradTiles4x4.g)
        Parallel.forEach(0..<cout) { co in
            // one output plane per loop, as in `transformWeights`
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 12 * cin) { buffer in
                // k[t·Cin + ci] = g[co, ci, t]; then q[b·Cin + ci] = (G·g)[ξ][b] for one ξ at a time
                let k = buffer.baseAddress!, q = k + 9 * cin
                let src = w + co * cin * 9
                for t in 0..<9 { for ci in 0..<cin { k[t * cin + ci] = src[ci * 9 + t] } }
                for xi in 0..<6 {
                    let (a0, a1, a2) = gm[xi]
                    for b in 0..<3 {
                        let (g0, g1, g2, qb) = (k + b * cin, k + (3 + b) * cin, k + (6 + b) * cin, q + b * cin)
                        for ci in 0..<cin { qb[ci] = a0 * g0[ci] + a1 * g1[ci] + a2 * g2[ci] }
                    }
                    let (q0, q1, q2) = (q, q + cin, q + 2 * cin)
                    for nu in 0..<6 {
                        let (b0, b1, b2) = gm[nu]
                        let o = u + (6 * xi + nu) * plane + co * cin
                        for ci in 0..<cin { o[ci] = b0 * q0[ci] + b1 * q1[ci] + b2 * q2[ci] }
                    }
                }
            }
        }
    }

    /// dW[Cout, Cin, 3, 3] += Gᵀ·dU·G, the adjoint of `transformWeights4x4`. Loops run along Cin, which is
    /// contiguous in dU, so that they vectorise.
    func transformWeightGradient4x4(_ du: UnsafePointer<Float>, _ dw: UnsafeMutablePointer<Float>) {
        let (cin, plane, gm) = (g.cin, cout * g.cin, WinogradTiles4x4.g)
        Parallel.forEach(0..<cout) { co in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 27 * cin) { buffer in
                // r[(6a + ν)·Cin + ci] = (Gᵀ·dU)[a][ν], then k[(3a + b)·Cin + ci] = (r·G)[a][b]
                let r = buffer.baseAddress!, k = r + 18 * cin
                r.update(repeating: 0, count: 27 * cin)
                for xi in 0..<6 {
                    let (a0, a1, a2) = gm[xi]
                    for nu in 0..<6 {
                        let d = du + (6 * xi + nu) * plane + co * cin
                        let (r0, r1, r2) = (r + nu * cin, r + (6 + nu) * cin, r + (12 + nu) * cin)
                        for ci in 0..<cin {
                            r0[ci] += a0 * d[ci]
                            r1[ci] += a1 * d[ci]
                            r2[ci] += a2 * d[ci]
                        }
                    }
                }
                for a in 0..<3 {
                    let (k0, k1, k2) = (k + 3 * a * cin, k + (3 * a + 1) * cin, k + (3 * a + 2) * cin)
                    for nu in 0..<6 {
                        let (b0, b1, b2) = gm[nu]
                        let ra = r + (6 * a + nu) * cin
                        for ci in 0..<cin {
                            k0[ci] += ra[ci] * b0
                            k1[ci] += ra[ci] * b1
                            k2[ci] += ra[ci] * b2
                        }
                    }
                }
                let o = dw + co * cin * 9
                for ci in 0..<cin { for t in 0..<9 { o[ci * 9 + t] += k[t * cin + ci] } }
            }
        }
    }

    /// V[36, Cin, n] for a chunk of `rows` tile rows, n = rows·tw: Bᵀ·d·B of each tile of the chunk's xq.
    func transformInput4x4(_ xq: UnsafePointer<Float>, rows: Int, _ v: UnsafeMutablePointer<Float>) {
        let (cin, hq, wq, tw) = (g.cin, inputRows(rows), wq, tw)
        let n = rows * tw
        let stride = Self.planeStride(cin * n)
        Parallel.forEach(0..<cin) { ci in
            for i in 0..<rows {
                let r0 = UnsafePointer(xq + (ci * hq + 4 * i) * wq)
                let out = v + ci * n + i * tw
                func block<V: TileVector>(_ t: V.Type, _ j: Int) { WinogradTiles4x4.input(t, r0, wq, j, out, stride) }
                forEachTileBlock(
                    tw, eight: { block(SIMD8<Float>.self, $0) }, four: { block(SIMD4<Float>.self, $0) },
                    one: { block(Float.self, $0) })
            }
        }
    }

    /// The chunk's dxq[Cin, inputRows(rows), Wq] += B·dV·Bᵀ of each tile, the adjoint of `transformInput4x4`
    /// (tiles overlap by 2).
    func transformInputGradient4x4(_ dv: UnsafePointer<Float>, rows: Int, _ dxq: UnsafeMutablePointer<Float>) {
        let (cin, hq, wq, tw) = (g.cin, inputRows(rows), wq, tw)
        let n = rows * tw
        let stride = Self.planeStride(cin * n)
        Parallel.forEach(0..<cin) { ci in
            for i in 0..<rows {
                let row = dxq + (ci * hq + 4 * i) * wq
                let src = dv + ci * n + i * tw
                func block<V: TileVector>(_ t: V.Type, _ j: Int) {
                    WinogradTiles4x4.inputGradient(t, src, stride, j, row, wq)
                }
                forEachTileBlock(
                    tw, eight: { block(SIMD8<Float>.self, $0) }, four: { block(SIMD4<Float>.self, $0) },
                    one: { block(Float.self, $0) })
            }
        }
    }

    /// y[Cout, Ho, Wo] for tile rows [i0, i0 + rows) from M[36, Cout, n]: Aᵀ·m·A (+ bias), cropped to Ho×Wo.
    func transformOutput4x4(
        _ m: UnsafePointer<Float>, tileRow i0: Int, rows: Int, bias: UnsafePointer<Float>?,
        _ y: UnsafeMutablePointer<Float>
    ) {
        let (cout, ho, wo, tw) = (cout, g.ho, g.wo, tw)
        let n = rows * tw
        let stride = Self.planeStride(cout * n)
        let whole = wo / 4  // tiles whose four output columns are all inside
        Parallel.forEach(0..<cout) { co in
            let b = bias?[co] ?? 0
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 16) { scratch in
                for i in 0..<rows {
                    let oh = 4 * (i0 + i)
                    let rowCount = min(4, ho - oh)
                    let top = y + (co * ho + oh) * wo
                    let src = m + co * n + i * tw
                    func block<V: TileVector>(_ t: V.Type, _ j: Int) {
                        WinogradTiles4x4.output(t, src, stride, j, bias: b, top, wo, rowCount: rowCount)
                    }
                    forEachTileBlock(
                        whole, eight: { block(SIMD8<Float>.self, $0) }, four: { block(SIMD4<Float>.self, $0) },
                        one: { block(Float.self, $0) })
                    if whole < tw {
                        // Wo not a multiple of 4: the last tile keeps its first Wo mod 4 columns
                        let s = scratch.baseAddress!
                        WinogradTiles4x4.output(Float.self, src + whole, stride, 0, bias: b, s, 4, rowCount: rowCount)
                        for r in 0..<rowCount {
                            (top + r * wo + 4 * whole).update(from: s + 4 * r, count: wo - 4 * whole)
                        }
                    }
                }
            }
        }
    }

    /// dM[36, Cout, n] = A·dy·Aᵀ of each 4×4 tile of dy[Cout, Ho, Wo] (zeros past the crop), the adjoint of
    /// `transformOutput4x4`.
    func transformOutputGradient4x4(
        _ dy: UnsafePointer<Float>, tileRow i0: Int, rows: Int, _ dm: UnsafeMutablePointer<Float>
    ) {
        let (cout, ho, wo, tw) = (cout, g.ho, g.wo, tw)
        let n = rows * tw
        let stride = Self.planeStride(cout * n)
        let width = 4 * tw
        Parallel.forEach(0..<cout) { co in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * width) { buffer in
                // the tile row's four dy rows, zero-extended to 4·tw columns (and zero rows past Ho)
                let rowsBuffer = buffer.baseAddress!
                for i in 0..<rows {
                    let oh = 4 * (i0 + i)
                    for r in 0..<4 {
                        let dst = rowsBuffer + r * width
                        if oh + r < ho {
                            dst.update(from: dy + (co * ho + oh + r) * wo, count: wo)
                            (dst + wo).update(repeating: 0, count: width - wo)
                        } else {
                            dst.update(repeating: 0, count: width)
                        }
                    }
                    let out = dm + co * n + i * tw
                    func block<V: TileVector>(_ t: V.Type, _ j: Int) {
                        WinogradTiles4x4.outputGradient(t, rowsBuffer, width, j, out, stride)
                    }
                    forEachTileBlock(
                        tw, eight: { block(SIMD8<Float>.self, $0) }, four: { block(SIMD4<Float>.self, $0) },
                        one: { block(Float.self, $0) })
                }
            }
        }
    }
}
