// The per-tile arithmetic of Winograd F(4×4, 3×3) (Conv2dWinograd4x4.swift), for `lanes` neighbouring tiles of
// one tile row at once, as WinogradTiles.swift does for F(2×2, 3×3). A tile's 6 input columns start at 4j, so
// the tiles' columns 0-3 are the four interleaved quarters of 4·lanes consecutive floats (`loadQuads`), and columns
// 4-5 are the next tile's 0-1 (a second `loadQuads` 4 floats on).
//
// Matrices (Lavin & Gray, CVPR 2016, section 4.2; interpolation points 0, ±1, ±2, ∞):
//   Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1]
//   G  = [¼ 0 0; −⅙ −⅙ −⅙; −⅙ ⅙ −⅙; 1/24 1/12 ⅙; 1/24 −1/12 ⅙; 0 0 1]
//   Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1]
// Each 2-D transform is the 1-D one along the rows, then along the columns. Plane k = 6ξ + ν of V, M, dM and dV
// holds entry [ξ][ν] of each tile.

enum WinogradTiles4x4 {
    typealias Six<V> = (V, V, V, V, V, V)
    typealias Four<V> = (V, V, V, V)

    /// Bᵀ·x for a 6-vector x.
    @inline(__always)
    static func bT<V: TileVector>(_ x: Six<V>) -> Six<V> {
        let (x0, x1, x2, x3, x4, x5) = x
        return (
            x0 * 4 - x2 * 5 + x4,
            x3 + x4 - (x1 + x2) * 4,
            x4 - x3 + (x1 - x2) * 4,
            x4 - x2 + (x3 - x1) * 2,
            x4 - x2 + (x1 - x3) * 2,
            x1 * 4 - x3 * 5 + x5
        )
    }

    /// B·v for a 6-vector v (the adjoint of `bT`).
    @inline(__always)
    static func b<V: TileVector>(_ v: Six<V>) -> Six<V> {
        let (v0, v1, v2, v3, v4, v5) = v
        return (
            v0 * 4,
            (v2 - v1 + v5) * 4 + (v4 - v3) * 2,
            -(v0 * 5) - (v1 + v2) * 4 - (v3 + v4),
            v1 - v2 + (v3 - v4) * 2 - v5 * 5,
            v0 + v1 + v2 + v3 + v4,
            v5
        )
    }

    /// Aᵀ·m for a 6-vector m.
    @inline(__always)
    static func aT<V: TileVector>(_ m: Six<V>) -> Four<V> {
        let (m0, m1, m2, m3, m4, m5) = m
        let (p, q, r, s) = (m1 + m2, m1 - m2, m3 + m4, m3 - m4)
        return (m0 + p + r, q + s * 2, p + r * 4, q + s * 8 + m5)
    }

    /// A·g for a 4-vector g (the adjoint of `aT`).
    @inline(__always)
    static func a<V: TileVector>(_ g: Four<V>) -> Six<V> {
        let (g0, g1, g2, g3) = g
        let (s, t) = (g0 + g2, g1 + g3)
        let (p, q) = (g0 + g2 * 4, g1 * 2 + g3 * 8)
        return (g0, s + t, s - t, p + q, p - q, g3)
    }

    /// V[ξν] for tiles j..<j + lanes of one tile row: Bᵀ·d·B. `rows`: the tile row's first input row, the other
    /// five `rowStride` apart (each at least 4·tiles + 4 floats long); out + (6ξ + ν)·stride + j receives V[ξν].
    @inline(__always)
    static func input<V: TileVector>(
        _: V.Type, _ rows: UnsafePointer<Float>, _ rowStride: Int, _ j: Int, _ out: UnsafeMutablePointer<Float>,
        _ stride: Int
    ) {
        @inline(__always) func row(_ r: Int) -> Six<V> {
            let p = rows + r * rowStride + 4 * j
            let (c0, c1, c2, c3) = V.loadQuads(p)
            let (c4, c5, _, _) = V.loadQuads(p + 4)
            return bT((c0, c1, c2, c3, c4, c5))
        }
        forEachColumn((row(0), row(1), row(2), row(3), row(4), row(5))) { nu, x in
            storeColumn(bT(x), out + j, stride, nu)
        }
    }

    /// The adjoint of `input`: the six rows from `rows` (`rowStride` apart) += B·dV·Bᵀ. Neighbouring tiles overlap
    /// by two columns, so the block adds its columns 4j..4j+3 first and 4j+4, 4j+5 after.
    @inline(__always)
    static func inputGradient<V: TileVector>(
        _: V.Type, _ dv: UnsafePointer<Float>, _ stride: Int, _ j: Int, _ rows: UnsafeMutablePointer<Float>,
        _ rowStride: Int
    ) {
        let d = dv + j
        @inline(__always) func column(_ nu: Int) -> Six<V> { b(loadColumn(d, stride, nu)) }
        // row r of B·dV, then ·Bᵀ along the row
        forEachColumn((column(0), column(1), column(2), column(3), column(4), column(5))) { r, x in
            let y = b(x)
            let p = rows + r * rowStride + 4 * j
            V.addQuads(y.0, y.1, y.2, y.3, p)
            let zero = V.splat(0)
            V.addQuads(y.4, y.5, zero, zero, p + 4)
        }
    }

    /// Aᵀ·M·A (+ bias) for tiles j..<j + lanes whose four output columns are all inside: output rows 0..<rowCount
    /// of the tile row (the rest are cropped), row r at y + r·rowStride.
    @inline(__always)
    static func output<V: TileVector>(
        _: V.Type, _ m: UnsafePointer<Float>, _ stride: Int, _ j: Int, bias: Float,
        _ y: UnsafeMutablePointer<Float>, _ rowStride: Int, rowCount: Int
    ) {
        let s = m + j
        @inline(__always) func column(_ nu: Int) -> Four<V> { aT(loadColumn(s, stride, nu)) }
        let (t0, t1, t2, t3, t4, t5) = (column(0), column(1), column(2), column(3), column(4), column(5))
        let bv = V.splat(bias)
        @inline(__always) func put(_ r: Int, _ x: Six<V>) {
            let o = aT(x)
            V.storeQuads(o.0 + bv, o.1 + bv, o.2 + bv, o.3 + bv, y + r * rowStride + 4 * j)
        }
        put(0, (t0.0, t1.0, t2.0, t3.0, t4.0, t5.0))
        if rowCount > 1 { put(1, (t0.1, t1.1, t2.1, t3.1, t4.1, t5.1)) }
        if rowCount > 2 { put(2, (t0.2, t1.2, t2.2, t3.2, t4.2, t5.2)) }
        if rowCount > 3 { put(3, (t0.3, t1.3, t2.3, t3.3, t4.3, t5.3)) }
    }

    /// dM = A·dy·Aᵀ for tiles j..<j + lanes from the tile row's four dy rows (`rowStride` apart, zero-extended to
    /// 4·tiles columns).
    @inline(__always)
    static func outputGradient<V: TileVector>(
        _: V.Type, _ dy: UnsafePointer<Float>, _ rowStride: Int, _ j: Int, _ out: UnsafeMutablePointer<Float>,
        _ stride: Int
    ) {
        @inline(__always) func row(_ r: Int) -> Six<V> { a(V.loadQuads(dy + r * rowStride + 4 * j)) }
        let (h0, h1, h2, h3) = (row(0), row(1), row(2), row(3))
        @inline(__always) func column(_ nu: Int, _ x: Four<V>) { storeColumn(a(x), out + j, stride, nu) }
        column(0, (h0.0, h1.0, h2.0, h3.0))
        column(1, (h0.1, h1.1, h2.1, h3.1))
        column(2, (h0.2, h1.2, h2.2, h3.2))
        column(3, (h0.3, h1.3, h2.3, h3.3))
        column(4, (h0.4, h1.4, h2.4, h3.4))
        column(5, (h0.5, h1.5, h2.5, h3.5))
    }

    /// Entries [0..<6][ν] of the 36 planes from p (plane k = 6ξ + ν at p + k·stride).
    @inline(__always)
    static func loadColumn<V: TileVector>(_ p: UnsafePointer<Float>, _ stride: Int, _ nu: Int) -> Six<V> {
        (V.load(p + nu * stride), V.load(p + (6 + nu) * stride), V.load(p + (12 + nu) * stride),
         V.load(p + (18 + nu) * stride), V.load(p + (24 + nu) * stride), V.load(p + (30 + nu) * stride))
    }

    /// Stores y as entries [0..<6][ν] of the 36 planes from p.
    @inline(__always)
    static func storeColumn<V: TileVector>(_ y: Six<V>, _ p: UnsafeMutablePointer<Float>, _ stride: Int, _ nu: Int) {
        y.0.store(p + nu * stride)
        y.1.store(p + (6 + nu) * stride)
        y.2.store(p + (12 + nu) * stride)
        y.3.store(p + (18 + nu) * stride)
        y.4.store(p + (24 + nu) * stride)
        y.5.store(p + (30 + nu) * stride)
    }

    /// Calls body(k, (x.0.k, …, x.5.k)) for k in 0..<6: the columns of six 6-vectors.
    @inline(__always)
    static func forEachColumn<V: TileVector>(_ x: Six<Six<V>>, _ body: (Int, Six<V>) -> Void) {
        let (x0, x1, x2, x3, x4, x5) = x
        body(0, (x0.0, x1.0, x2.0, x3.0, x4.0, x5.0))
        body(1, (x0.1, x1.1, x2.1, x3.1, x4.1, x5.1))
        body(2, (x0.2, x1.2, x2.2, x3.2, x4.2, x5.2))
        body(3, (x0.3, x1.3, x2.3, x3.3, x4.3, x5.3))
        body(4, (x0.4, x1.4, x2.4, x3.4, x4.4, x5.4))
        body(5, (x0.5, x1.5, x2.5, x3.5, x4.5, x5.5))
    }

    /// G, 6×3, row by row.
    static let g: [(Float, Float, Float)] = [
        (1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6), (1 / 24, 1 / 12, 1 / 6),
        (1 / 24, -1 / 12, 1 / 6), (0, 0, 1),
    ]
}
