// Small vectorised kernels shared by the ops. Float reductions keep 16 independent partial sums
// (one AVX-512 register) so that LLVM can vectorise them; strict left-to-right sums run ~10x slower.

@inline(__always)
func vsum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD16<Float>(repeating: 0)
    var i = 0
    while i &+ 16 <= n {
        acc += UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self)
        i &+= 16
    }
    var s = acc.sum()
    while i < n {
        s += p[i]
        i &+= 1
    }
    return s
}

@inline(__always)
func vdot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD16<Float>(repeating: 0)
    var i = 0
    while i &+ 16 <= n {
        let x = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self)
        let y = UnsafeRawPointer(b + i).loadUnaligned(as: SIMD16<Float>.self)
        acc.addProduct(x, y)
        i &+= 16
    }
    var s = acc.sum()
    while i < n {
        s += a[i] * b[i]
        i &+= 1
    }
    return s
}

/// Mean and centred sum of squares of n floats, two passes with Double accumulators (H·W reaches 65,536).
@inline(__always)
func meanAndSquaredDeviation(_ p: UnsafePointer<Float>, _ n: Int) -> (mean: Double, m2: Double) {
    var s = 0.0
    var i = 0
    while i &+ 16 <= n {
        let v = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self)
        s += Double(v.sum())
        i &+= 16
    }
    while i < n {
        s += Double(p[i])
        i &+= 1
    }
    let mean = s / Double(n)
    let mf = Float(mean)
    var m2 = 0.0
    i = 0
    while i &+ 16 <= n {
        let v = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self) - SIMD16(repeating: mf)
        m2 += Double((v * v).sum())
        i &+= 16
    }
    while i < n {
        let d = p[i] - mf
        m2 += Double(d * d)
        i &+= 1
    }
    // correct for rounding mean to Float: Σ(x − m̃)² = Σ(x − m)² + n(m − m̃)²
    let dm = mean - Double(mf)
    return (mean, max(0, m2 - Double(n) * dm * dm))
}

/// Σ dy[i]·(x[i] − mu), vectorised; centring first avoids cancellation when |mu| ≫ std.
@inline(__always)
func vdotCentered(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ mu: Float, _ n: Int) -> Float {
    var acc = SIMD16<Float>(repeating: 0)
    let m = SIMD16<Float>(repeating: mu)
    var i = 0
    while i &+ 16 <= n {
        let g = UnsafeRawPointer(dy + i).loadUnaligned(as: SIMD16<Float>.self)
        let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self) - m
        acc.addProduct(g, v)
        i &+= 16
    }
    var s = acc.sum()
    while i < n {
        s += dy[i] * (x[i] - mu)
        i &+= 1
    }
    return s
}

/// out[i] = a·x[i] + b (per-plane affine map used by the normalisations).
@inline(__always)
func vaffine(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int, _ a: Float, _ b: Float) {
    for i in 0..<n { out[i] = x[i] * a + b }
}

/// out[i] = p·dy[i] + qi·(x[i] − mi) + ql·(x[i] − ml) + r: the per-plane form of every normalisation backward here,
/// written around the statistics' means so that a large mean (|μ| ≫ σ) does not cancel digits away.
@inline(__always)
func vbackward(
    _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int,
    p: Float, qi: Float, mi: Float, ql: Float = 0, ml: Float = 0, r: Float
) {
    for i in 0..<n { out[i] = dy[i] * p + (x[i] - mi) * qi + (x[i] - ml) * ql + r }
}

/// Σ dy[i]·((x[i] − mi)·ri − (x[i] − ml)·rl): the ILN rho gradient's Σ dy·(x_in − x_ln) in one pass, without the
/// cancellation of subtracting two nearly equal sums.
@inline(__always)
func vdotDifference(
    _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int, mi: Float, ri: Float, ml: Float, rl: Float
) -> Float {
    var acc = SIMD16<Float>(repeating: 0)
    let vmi = SIMD16<Float>(repeating: mi)
    let vri = SIMD16<Float>(repeating: ri)
    let vml = SIMD16<Float>(repeating: ml)
    let vrl = SIMD16<Float>(repeating: rl)
    var i = 0
    while i &+ 16 <= n {
        let g = UnsafeRawPointer(dy + i).loadUnaligned(as: SIMD16<Float>.self)
        let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
        acc.addProduct(g, (v - vmi) * vri - (v - vml) * vrl)
        i &+= 16
    }
    var s = acc.sum()
    while i < n {
        s += dy[i] * ((x[i] - mi) * ri - (x[i] - ml) * rl)
        i &+= 1
    }
    return s
}
