// The per-tile arithmetic of Winograd F(2×2, 3×3) (Conv2dWinograd.swift), for `lanes` neighbouring tiles of one
// tile row at once: lane l is tile j + l. A tile's 4 input columns start at 2j, so the tiles' columns are the even
// and odd halves of consecutive floats (`loadPairs`); their 2 output columns interleave back (`storePairs`).
//
// Why explicit vectors: the tile rows of the 96/16 generator are 12 tiles long, shorter than one AVX-512 loop
// iteration, so the loops that LLVM vectorised ran scalar there (transform_x took 1.6× the im2col it replaced
// before, 0.4× after). The transforms run 8 tiles, then 4, then 1 at a time.

/// `lanes` floats, one per tile: SIMD8, SIMD4 or a single Float.
protocol TileVector {
    static var lanes: Int { get }
    static func splat(_ x: Float) -> Self
    static func load(_ p: UnsafePointer<Float>) -> Self
    /// (p[0], p[2], …) and (p[1], p[3], …) of 2·lanes floats.
    static func loadPairs(_ p: UnsafePointer<Float>) -> (even: Self, odd: Self)
    func store(_ p: UnsafeMutablePointer<Float>)
    /// p[0..<2·lanes] = (a[0], b[0], a[1], b[1], …).
    static func storePairs(_ a: Self, _ b: Self, _ p: UnsafeMutablePointer<Float>)
    /// p[0..<2·lanes] += (a[0], b[0], a[1], b[1], …).
    static func addPairs(_ a: Self, _ b: Self, _ p: UnsafeMutablePointer<Float>)
    /// (p[0], p[4], …), (p[1], p[5], …), (p[2], p[6], …), (p[3], p[7], …) of 4·lanes floats (F(4×4, 3×3)).
    static func loadQuads(_ p: UnsafePointer<Float>) -> (Self, Self, Self, Self)
    /// p[0..<4·lanes] = (a[0], b[0], c[0], d[0], a[1], …).
    static func storeQuads(_ a: Self, _ b: Self, _ c: Self, _ d: Self, _ p: UnsafeMutablePointer<Float>)
    /// p[0..<4·lanes] += (a[0], b[0], c[0], d[0], a[1], …).
    static func addQuads(_ a: Self, _ b: Self, _ c: Self, _ d: Self, _ p: UnsafeMutablePointer<Float>)
    static func + (a: Self, b: Self) -> Self
    static func - (a: Self, b: Self) -> Self
    static func * (a: Self, b: Float) -> Self
    static prefix func - (a: Self) -> Self
}

extension SIMD8: TileVector where Scalar == Float {
    static var lanes: Int { 8 }
    @inline(__always) static func splat(_ x: Float) -> Self { Self(repeating: x) }
    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> Self {
        UnsafeRawPointer(p).loadUnaligned(as: Self.self)
    }
    @inline(__always) static func loadPairs(_ p: UnsafePointer<Float>) -> (even: Self, odd: Self) {
        let v = UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
        return (v.evenHalf, v.oddHalf)
    }
    @inline(__always) func store(_ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: self, as: Self.self)
    }
    @inline(__always) static func storePairs(_ a: Self, _ b: Self, _ p: UnsafeMutablePointer<Float>) {
        var v = SIMD16<Float>()
        v.evenHalf = a
        v.oddHalf = b
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
    }
    @inline(__always) static func addPairs(_ a: Self, _ b: Self, _ p: UnsafeMutablePointer<Float>) {
        var v = SIMD16<Float>()
        v.evenHalf = a
        v.oddHalf = b
        let sum = UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self) + v
        UnsafeMutableRawPointer(p).storeBytes(of: sum, as: SIMD16<Float>.self)
    }
    // The quads go through SIMD16 halves: SIMD32's evenHalf and oddHalf compiled to element-by-element code through
    // the stack (F(4×4)'s input gradient took 18× its F(2×2) twin).
    @inline(__always) static func loadQuads(_ p: UnsafePointer<Float>) -> (Self, Self, Self, Self) {
        let lo = UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
        let hi = UnsafeRawPointer(p + 16).loadUnaligned(as: SIMD16<Float>.self)
        let e = SIMD16(lowHalf: lo.evenHalf, highHalf: hi.evenHalf)  // a₀ c₀ a₁ c₁ …
        let o = SIMD16(lowHalf: lo.oddHalf, highHalf: hi.oddHalf)  // b₀ d₀ b₁ d₁ …
        return (e.evenHalf, o.evenHalf, e.oddHalf, o.oddHalf)
    }
    /// The two SIMD16 halves of (a₀ b₀ c₀ d₀ a₁ …).
    @inline(__always) static func quads(_ a: Self, _ b: Self, _ c: Self, _ d: Self) -> (SIMD16<Float>, SIMD16<Float>) {
        var e = SIMD16<Float>(), o = SIMD16<Float>()
        (e.evenHalf, e.oddHalf, o.evenHalf, o.oddHalf) = (a, c, b, d)
        var lo = SIMD16<Float>(), hi = SIMD16<Float>()
        (lo.evenHalf, lo.oddHalf, hi.evenHalf, hi.oddHalf) = (e.lowHalf, o.lowHalf, e.highHalf, o.highHalf)
        return (lo, hi)
    }
    @inline(__always) static func storeQuads(_ a: Self, _ b: Self, _ c: Self, _ d: Self, _ p: UnsafeMutablePointer<Float>) {
        let (lo, hi) = quads(a, b, c, d)
        UnsafeMutableRawPointer(p).storeBytes(of: lo, as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(p + 16).storeBytes(of: hi, as: SIMD16<Float>.self)
    }
    @inline(__always) static func addQuads(_ a: Self, _ b: Self, _ c: Self, _ d: Self, _ p: UnsafeMutablePointer<Float>) {
        let (lo, hi) = quads(a, b, c, d)
        let sumLo = UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self) + lo
        let sumHi = UnsafeRawPointer(p + 16).loadUnaligned(as: SIMD16<Float>.self) + hi
        UnsafeMutableRawPointer(p).storeBytes(of: sumLo, as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(p + 16).storeBytes(of: sumHi, as: SIMD16<Float>.self)
    }
}

extension SIMD4: TileVector where Scalar == Float {
    static var lanes: Int { 4 }
    @inline(__always) static func splat(_ x: Float) -> Self { Self(repeating: x) }
    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> Self {
        UnsafeRawPointer(p).loadUnaligned(as: Self.self)
    }
    @inline(__always) static func loadPairs(_ p: UnsafePointer<Float>) -> (even: Self, odd: Self) {
        let v = UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
        return (v.evenHalf, v.oddHalf)
    }
    @inline(__always) func store(_ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: self, as: Self.self)
    }
    @inline(__always) static func storePairs(_ a: Self, _ b: Self, _ p: UnsafeMutablePointer<Float>) {
        var v = SIMD8<Float>()
        v.evenHalf = a
        v.oddHalf = b
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }
    @inline(__always) static func addPairs(_ a: Self, _ b: Self, _ p: UnsafeMutablePointer<Float>) {
        var v = SIMD8<Float>()
        v.evenHalf = a
        v.oddHalf = b
        let sum = UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) + v
        UnsafeMutableRawPointer(p).storeBytes(of: sum, as: SIMD8<Float>.self)
    }
    @inline(__always) static func loadQuads(_ p: UnsafePointer<Float>) -> (Self, Self, Self, Self) {
        let v = UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
        let (e, o) = (v.evenHalf, v.oddHalf)
        return (e.evenHalf, o.evenHalf, e.oddHalf, o.oddHalf)
    }
    @inline(__always) static func quads(_ a: Self, _ b: Self, _ c: Self, _ d: Self) -> SIMD16<Float> {
        var e = SIMD8<Float>(), o = SIMD8<Float>(), v = SIMD16<Float>()
        (e.evenHalf, e.oddHalf, o.evenHalf, o.oddHalf) = (a, c, b, d)
        (v.evenHalf, v.oddHalf) = (e, o)
        return v
    }
    @inline(__always) static func storeQuads(_ a: Self, _ b: Self, _ c: Self, _ d: Self, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: quads(a, b, c, d), as: SIMD16<Float>.self)
    }
    @inline(__always) static func addQuads(_ a: Self, _ b: Self, _ c: Self, _ d: Self, _ p: UnsafeMutablePointer<Float>) {
        let sum = UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self) + quads(a, b, c, d)
        UnsafeMutableRawPointer(p).storeBytes(of: sum, as: SIMD16<Float>.self)
    }
}

extension Float: TileVector {
    static var lanes: Int { 1 }
    @inline(__always) static func splat(_ x: Float) -> Self { x }
    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> Self { p[0] }
    @inline(__always) static func loadPairs(_ p: UnsafePointer<Float>) -> (even: Self, odd: Self) { (p[0], p[1]) }
    @inline(__always) func store(_ p: UnsafeMutablePointer<Float>) { p[0] = self }
    @inline(__always) static func storePairs(_ a: Self, _ b: Self, _ p: UnsafeMutablePointer<Float>) {
        p[0] = a
        p[1] = b
    }
    @inline(__always) static func addPairs(_ a: Self, _ b: Self, _ p: UnsafeMutablePointer<Float>) {
        p[0] += a
        p[1] += b
    }
    @inline(__always) static func loadQuads(_ p: UnsafePointer<Float>) -> (Self, Self, Self, Self) {
        (p[0], p[1], p[2], p[3])
    }
    @inline(__always) static func storeQuads(_ a: Self, _ b: Self, _ c: Self, _ d: Self, _ p: UnsafeMutablePointer<Float>) {
        (p[0], p[1], p[2], p[3]) = (a, b, c, d)
    }
    @inline(__always) static func addQuads(_ a: Self, _ b: Self, _ c: Self, _ d: Self, _ p: UnsafeMutablePointer<Float>) {
        p[0] += a
        p[1] += b
        p[2] += c
        p[3] += d
    }
}

/// Runs a transform over tiles [0, count): `eight`, `four` and `one` each get the first tile of their block.
@inline(__always)
func forEachTileBlock(_ count: Int, eight: (Int) -> Void, four: (Int) -> Void, one: (Int) -> Void) {
    var j = 0
    while j + 8 <= count {
        eight(j)
        j += 8
    }
    while j + 4 <= count {
        four(j)
        j += 4
    }
    while j < count {
        one(j)
        j += 1
    }
}

enum WinogradTiles {
    /// V[ξν] for tiles j..<j + lanes of one tile row: Bᵀ·d·B, Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1].
    /// r0...r3: the tile row's four input rows; out + (4ξ + ν)·stride + j receives V[ξν].
    @inline(__always)
    static func input<V: TileVector>(
        _: V.Type, _ r0: UnsafePointer<Float>, _ r1: UnsafePointer<Float>, _ r2: UnsafePointer<Float>,
        _ r3: UnsafePointer<Float>, _ j: Int, _ out: UnsafeMutablePointer<Float>, _ stride: Int
    ) {
        @inline(__always) func columns(_ r: UnsafePointer<Float>) -> (V, V, V, V) {
            let (e, o) = V.loadPairs(r + 2 * j)
            let (e2, o2) = V.loadPairs(r + 2 * j + 2)
            return (e - e2, o + e2, e2 - o, o - o2)
        }
        let a0 = columns(r0), a1 = columns(r1), a2 = columns(r2), a3 = columns(r3)
        let o = out + j
        (a0.0 - a2.0).store(o)
        (a0.1 - a2.1).store(o + stride)
        (a0.2 - a2.2).store(o + 2 * stride)
        (a0.3 - a2.3).store(o + 3 * stride)
        (a1.0 + a2.0).store(o + 4 * stride)
        (a1.1 + a2.1).store(o + 5 * stride)
        (a1.2 + a2.2).store(o + 6 * stride)
        (a1.3 + a2.3).store(o + 7 * stride)
        (a2.0 - a1.0).store(o + 8 * stride)
        (a2.1 - a1.1).store(o + 9 * stride)
        (a2.2 - a1.2).store(o + 10 * stride)
        (a2.3 - a1.3).store(o + 11 * stride)
        (a1.0 - a3.0).store(o + 12 * stride)
        (a1.1 - a3.1).store(o + 13 * stride)
        (a1.2 - a3.2).store(o + 14 * stride)
        (a1.3 - a3.3).store(o + 15 * stride)
    }

    /// The adjoint of `input`: rows r0...r3 (4 consecutive rows of dxq, `rowStride` apart) += B·dV·Bᵀ.
    /// Neighbouring tiles overlap by two columns, so the block adds its columns 2j, 2j+1 first and 2j+2, 2j+3 after.
    @inline(__always)
    static func inputGradient<V: TileVector>(
        _: V.Type, _ dv: UnsafePointer<Float>, _ stride: Int, _ j: Int, _ row: UnsafeMutablePointer<Float>,
        _ rowStride: Int
    ) {
        let d = dv + j
        @inline(__always) func e(_ k: Int) -> V { V.load(d + k * stride) }
        @inline(__always) func scatter(_ r: Int, _ u0: V, _ u1: V, _ u2: V, _ u3: V) {
            let p = row + r * rowStride + 2 * j
            V.addPairs(u0, u1 - u2 + u3, p)
            V.addPairs(u1 + u2 - u0, -u3, p + 2)
        }
        let (e0, e1, e2, e3) = (e(0), e(1), e(2), e(3))
        let (e4, e5, e6, e7) = (e(4), e(5), e(6), e(7))
        let (e8, e9, e10, e11) = (e(8), e(9), e(10), e(11))
        let (e12, e13, e14, e15) = (e(12), e(13), e(14), e(15))
        // rows r of B·dV: (dV₀, dV₁ − dV₂ + dV₃, dV₁ + dV₂ − dV₀, −dV₃) over ξ, for each ν
        scatter(0, e0, e1, e2, e3)
        scatter(1, e4 - e8 + e12, e5 - e9 + e13, e6 - e10 + e14, e7 - e11 + e15)
        scatter(2, e4 + e8 - e0, e5 + e9 - e1, e6 + e10 - e2, e7 + e11 - e3)
        scatter(3, -e12, -e13, -e14, -e15)
    }

    /// Aᵀ·M·A (+ bias) for tiles j..<j + lanes whose two output columns are both inside: the top output row, and
    /// the bottom one unless it is nil (cropped). Aᵀ = [1 1 1 0; 0 1 −1 −1].
    @inline(__always)
    static func output<V: TileVector>(
        _: V.Type, _ m: UnsafePointer<Float>, _ stride: Int, _ j: Int, bias: Float,
        _ top: UnsafeMutablePointer<Float>, _ bottom: UnsafeMutablePointer<Float>?
    ) {
        let s = m + j
        @inline(__always) func e(_ k: Int) -> V { V.load(s + k * stride) }
        let b = V.splat(bias)
        let (e0, e1, e2, e3) = (e(0), e(1), e(2), e(3))
        let (e4, e5, e6, e7) = (e(4), e(5), e(6), e(7))
        let (e8, e9, e10, e11) = (e(8), e(9), e(10), e(11))
        let (e12, e13, e14, e15) = (e(12), e(13), e(14), e(15))
        // (Aᵀ·M)[0][ν] = M₀ν + M₁ν + M₂ν, then ·A over ν
        let t0 = e0 + e4 + e8, t1 = e1 + e5 + e9, t2 = e2 + e6 + e10, t3 = e3 + e7 + e11
        V.storePairs(t0 + t1 + t2 + b, t1 - t2 - t3 + b, top + 2 * j)
        guard let bottom else { return }
        // (Aᵀ·M)[1][ν] = M₁ν − M₂ν − M₃ν
        let u0 = e4 - e8 - e12, u1 = e5 - e9 - e13, u2 = e6 - e10 - e14, u3 = e7 - e11 - e15
        V.storePairs(u0 + u1 + u2 + b, u1 - u2 - u3 + b, bottom + 2 * j)
    }

    /// dM = A·dy·Aᵀ for tiles j..<j + lanes from the tile row's two dy rows (zero-extended to 2·tiles columns).
    @inline(__always)
    static func outputGradient<V: TileVector>(
        _: V.Type, _ top: UnsafePointer<Float>, _ bottom: UnsafePointer<Float>, _ j: Int,
        _ out: UnsafeMutablePointer<Float>, _ stride: Int
    ) {
        let (te, to) = V.loadPairs(top + 2 * j)
        let (be, bo) = V.loadPairs(bottom + 2 * j)
        let o = out + j
        // row ξ of A·e as a pair (p, q) over the two columns, then ·Aᵀ: (p, p + q, p − q, −q)
        @inline(__always) func put(_ xi: Int, _ p: V, _ q: V) {
            let r = o + 4 * xi * stride
            p.store(r)
            (p + q).store(r + stride)
            (p - q).store(r + 2 * stride)
            (-q).store(r + 3 * stride)
        }
        put(0, te, to)
        put(1, te + be, to + bo)
        put(2, te - be, to - bo)
        put(3, -be, -bo)
    }
}
