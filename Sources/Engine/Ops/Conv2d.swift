// conv2d: y[n, co, oh, ow] = b[co] + Σ_{ci, ki, kj} w[co, ci, ki, kj] · xpad[n, ci, oh·s + ki, ow·s + kj]
//   x: [N, Cin, H, W], w: [Cout, Cin, kH, kW] (OIHW), b: [Cout] or none, y: [N, Cout, Ho, Wo],
//   Ho = (H + 2p − kH) / s + 1. xpad is x padded by p with zeros or by reflection (PyTorch ReflectionPad2d),
//   so "reflect pad + conv" runs as one op without materialising the padded tensor.
// Method: per sample, output pixels in chunks of ~1 MiB of patch rows: im2col into cols [chunk, K], K = Cin·kH·kW,
// then cblas_sgemm y[:, chunk] = W[Cout, K] · colsᵀ. 1×1 stride-1 convs use x itself as [K, P].
// Backward recomputes cols chunk by chunk (no activation-sized buffer is kept):
// dW += dy[:, chunk] · cols, dcols = dy[:, chunk]ᵀ · W, col2im(dcols) into dx.
// Stride-1 convs with few output channels go to kn2row instead (Conv2dKn2row.swift), the other 3×3 stride-1 convs
// to Winograd F(2×2, 3×3) (Conv2dWinograd.swift).

/// Padding applied by `conv2d` before the convolution.
public enum PaddingMode: Equatable {
    case zeros
    /// Mirror without repeating the border pixel (numpy "reflect", PyTorch ReflectionPad2d).
    case reflect
}

/// The index bookkeeping shared by im2col and col2im for one conv geometry.
struct ConvGeometry {
    let cin: Int, h: Int, w: Int, kh: Int, kw: Int, stride: Int, pad: Int, mode: PaddingMode
    let ho: Int, wo: Int
    /// rowIndex[ki·Ho + oh] = input row for output row oh at tap ki, or -1 for a zero.
    let rowIndex: [Int]
    /// colIndex[kj·Wo + ow] likewise for columns.
    let colIndex: [Int]

    var k: Int { cin * kh * kw }
    var p: Int { ho * wo }

    init(cin: Int, h: Int, w: Int, kh: Int, kw: Int, stride: Int, pad: Int, mode: PaddingMode) {
        precondition(stride >= 1 && pad >= 0, "conv2d: stride \(stride), padding \(pad)")
        precondition(
            mode == .zeros || (pad < h && pad < w),
            "conv2d: reflection padding \(pad) needs H and W > \(pad), got \(h)x\(w)")
        self.cin = cin
        self.h = h
        self.w = w
        self.kh = kh
        self.kw = kw
        self.stride = stride
        self.pad = pad
        self.mode = mode
        ho = (h + 2 * pad - kh) / stride + 1
        wo = (w + 2 * pad - kw) / stride + 1
        precondition(
            h + 2 * pad >= kh && w + 2 * pad >= kw,
            "conv2d: kernel \(kh)x\(kw) larger than padded input \(h + 2 * pad)x\(w + 2 * pad)")
        func source(_ i: Int, _ n: Int) -> Int { Self.source(i, n, mode) }
        var rows = [Int](repeating: 0, count: kh * ho)
        for ki in 0..<kh { for oh in 0..<ho { rows[ki * ho + oh] = source(oh * stride - pad + ki, h) } }
        var cols = [Int](repeating: 0, count: kw * wo)
        for kj in 0..<kw { for ow in 0..<wo { cols[kj * wo + ow] = source(ow * stride - pad + kj, w) } }
        rowIndex = rows
        colIndex = cols
    }

    /// The input index that index i (which may lie in the padding, i < 0 or i ≥ n) reads, or -1 for a zero.
    @inline(__always)
    static func source(_ i: Int, _ n: Int, _ mode: PaddingMode) -> Int {
        if i >= 0 && i < n { return i }
        if mode == .zeros { return -1 }
        return i < 0 ? -i : 2 * (n - 1) - i
    }

    /// Patch rows for output pixels [p0, p0 + count): cols[(p − p0)·K + r], r = (ci·kH + ki)·kW + kj, from one
    /// sample x [Cin, H, W]. This "patches as rows" layout makes OpenBLAS's packing cheaper than [K, P]:
    /// measured 80-98 GFLOP/s per core against 56-72 for the same GEMMs on this CPU.
    func im2col(_ x: UnsafePointer<Float>, pixels p0: Int, count: Int, _ cols: UnsafeMutablePointer<Float>) {
        switch kw {
        case 3: im2colKernel(KW3.self, x, p0, count, cols)
        case 4: im2colKernel(KW4.self, x, p0, count, cols)
        case 7: im2colKernel(KW7.self, x, p0, count, cols)
        default: im2colKernel(KWAny.self, x, p0, count, cols)
        }
    }

    /// dx[Cin, H, W] += the scatter of patch rows for pixels [p0, p0 + count) (the adjoint of `im2col`).
    func col2im(_ cols: UnsafePointer<Float>, pixels p0: Int, count: Int, _ dx: UnsafeMutablePointer<Float>) {
        switch kw {
        case 3: col2imKernel(KW3.self, cols, p0, count, dx)
        case 4: col2imKernel(KW4.self, cols, p0, count, dx)
        case 7: col2imKernel(KW7.self, cols, p0, count, dx)
        default: col2imKernel(KWAny.self, cols, p0, count, dx)
        }
    }

    // Specialised on the kernel width so that the innermost copies have a constant trip count (unrolled);
    // the generic version ran 3x slower at kW = 3. The loops run over output rows: for each (ci, ki) tap row,
    // the output pixels whose taps all fall inside the image ("interior") are one strided copy loop.

    /// Calls body(oh, owStart, owEnd, firstPatchRow) for the output rows intersecting pixels [p0, p0 + count).
    @inline(__always)
    private func rows(_ p0: Int, _ count: Int, _ body: (Int, Int, Int, Int) -> Void) {
        var p = p0
        while p < p0 + count {
            let oh = p / wo
            let a = p % wo
            let b = min(wo, a + (p0 + count - p))
            body(oh, a, b, p - p0)
            p += b - a
        }
    }

    /// The output columns [lo, hi) whose taps x0 = ow·s − pad ... x0 + kW − 1 all lie inside the row.
    private var interior: (lo: Int, hi: Int) {
        let lo = (pad + stride - 1) / stride
        let hi = w - kw + pad >= 0 ? (w - kw + pad) / stride + 1 : 0
        return (min(lo, wo), max(min(hi, wo), min(lo, wo)))
    }

    @inline(__always)
    private func im2colKernel<KW: KernelWidth>(
        _: KW.Type, _ x: UnsafePointer<Float>, _ p0: Int, _ count: Int,
        _ cols: UnsafeMutablePointer<Float>
    ) {
        let k = self.k
        let kw = KW.width ?? self.kw
        let (lo, hi) = interior
        rowIndex.withUnsafeBufferPointer { rowIdx in
            colIndex.withUnsafeBufferPointer { colIdx in
                Parallel.forEach(0..<cin) { ci in
                    let plane = x + ci * h * w
                    rows(p0, count) { oh, a, b, first in
                        for ki in 0..<kh {
                            let r = (ci * kh + ki) * kw
                            let dst = cols + (first * k + r)
                            let ih = rowIdx[ki * ho + oh]
                            if ih < 0 {
                                for ow in a..<b {
                                    let d = dst + (ow - a) * k
                                    for kj in 0..<kw { d[kj] = 0 }
                                }
                                continue
                            }
                            let src = plane + ih * w
                            let ia = min(max(a, lo), b)
                            let ib = max(ia, min(b, hi))
                            for ow in a..<ia {
                                let d = dst + (ow - a) * k
                                for kj in 0..<kw {
                                    let j = colIdx[kj * wo + ow]
                                    d[kj] = j < 0 ? 0 : src[j]
                                }
                            }
                            var d = dst + (ia - a) * k
                            var sp = src + (ia * stride - pad)
                            for _ in ia..<ib {
                                for kj in 0..<kw { d[kj] = sp[kj] }
                                d += k
                                sp += stride
                            }
                            for ow in ib..<b {
                                let d = dst + (ow - a) * k
                                for kj in 0..<kw {
                                    let j = colIdx[kj * wo + ow]
                                    d[kj] = j < 0 ? 0 : src[j]
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Parallel over input channels, so that no two threads write the same element.
    @inline(__always)
    private func col2imKernel<KW: KernelWidth>(
        _: KW.Type, _ cols: UnsafePointer<Float>, _ p0: Int, _ count: Int,
        _ dx: UnsafeMutablePointer<Float>
    ) {
        let k = self.k
        let kw = KW.width ?? self.kw
        let (lo, hi) = interior
        rowIndex.withUnsafeBufferPointer { rowIdx in
            colIndex.withUnsafeBufferPointer { colIdx in
                Parallel.forEach(0..<cin) { ci in
                    let plane = dx + ci * h * w
                    rows(p0, count) { oh, a, b, first in
                        for ki in 0..<kh {
                            let ih = rowIdx[ki * ho + oh]
                            if ih < 0 { continue }
                            let r = (ci * kh + ki) * kw
                            let src = cols + (first * k + r)
                            let row = plane + ih * w
                            let ia = min(max(a, lo), b)
                            let ib = max(ia, min(b, hi))
                            for ow in a..<ia {
                                let s = src + (ow - a) * k
                                for kj in 0..<kw {
                                    let j = colIdx[kj * wo + ow]
                                    if j >= 0 { row[j] += s[kj] }
                                }
                            }
                            var s = src + (ia - a) * k
                            var dp = row + (ia * stride - pad)
                            for _ in ia..<ib {
                                for kj in 0..<kw { dp[kj] += s[kj] }
                                s += k
                                dp += stride
                            }
                            for ow in ib..<b {
                                let s = src + (ow - a) * k
                                for kj in 0..<kw {
                                    let j = colIdx[kj * wo + ow]
                                    if j >= 0 { row[j] += s[kj] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Output pixels per im2col chunk: about 1 MiB of patch rows, so a chunk stays in L2 between im2col and GEMM.
    /// (Measured 2026-11-29 at 3×3 256→256 64²: 2^18 floats beat 2^20, 2^22 and 2^24, by 1%, 7% and 50%.)
    var chunk: Int { min(p, max(128, (1 << 18) / max(k, 1))) }

    /// 1×1, stride 1, no padding: cols are the input itself.
    var isPointwise: Bool { kh == 1 && kw == 1 && stride == 1 && pad == 0 }
}

extension Tape {
    /// 2-D cross-correlation (PyTorch `F.conv2d`, dilation 1, groups 1) with zero or reflection padding.
    ///
    /// - Parameters:
    ///   - x: [N, Cin, H, W]. - weight: [Cout, Cin, kH, kW]. - bias: [Cout] or nil.
    ///   - stride, padding: as PyTorch; `mode` chooses the padding's content.
    /// - Returns: [N, Cout, Ho, Wo].
    public func conv2d(
        _ x: Var, _ weight: Var, _ bias: Var? = nil, stride: Int = 1, padding: Int = 0,
        mode: PaddingMode = .zeros
    ) -> Var {
        let d = NCHW(x.value, "conv2d")
        let ws = weight.shape
        precondition(
            ws.count == 4 && ws[1] == d.c,
            "conv2d: weight \(ws) does not fit input \(x.shape) (expects [Cout, \(d.c), kH, kW])")
        let cout = ws[0]
        if let b = bias { precondition(b.shape == [cout], "conv2d: bias \(b.shape), expected [\(cout)]") }
        let g = ConvGeometry(
            cin: d.c, h: d.h, w: d.w, kh: ws[2], kw: ws[3], stride: stride, pad: padding,
            mode: mode)
        if g.prefersDirect(cout: cout) { return conv2dDirect(x, weight, bias, g, n: d.n, cout: cout) }
        if g.prefersKn2row(cout: cout) { return conv2dKn2row(x, weight, bias, g, n: d.n, cout: cout) }
        if g.prefersWinograd { return conv2dWinograd(x, weight, bias, g, n: d.n, cout: cout) }
        let (k, p) = (g.k, g.p)
        let y = Tensor(uninitialized: [d.n, cout, g.ho, g.wo])
        let xv = x.value
        let wv = weight.value
        let pc = g.chunk
        let tag = Profile.enabled ? "conv co\(cout) k\(k) p\(p) " : ""
        let cols = g.isPointwise ? nil : Tensor(uninitialized: [pc, k])
        for n in 0..<d.n {
            let xn = xv.data + n * d.c * d.plane
            let yn = y.data + n * cout * p
            if let b = bias?.value {
                Breakdown.span(.elementwise) { for co in 0..<cout { (yn + co * p).update(repeating: b[co], count: p) } }
            }
            let beta: Float = bias == nil ? 0 : 1
            if let cols {
                for p0 in Swift.stride(from: 0, to: p, by: pc) {
                    let cnt = min(pc, p - p0)
                    Profile.time(tag + "im2col", kind: .im2col) { g.im2col(xn, pixels: p0, count: cnt, cols.data) }
                    Profile.time(tag + "gemm_fwd") {
                        sgemm(transB: true, m: cout, n: cnt, k: k, wv.data, cols.data, beta: beta, yn + p0, ldc: p)
                    }
                }
            } else {
                sgemm(m: cout, n: p, k: k, wv.data, xn, beta: beta, yn)
            }
        }
        return record(y, inputs: [x, weight] + (bias.map { [$0] } ?? []), kind: .other) { [unowned self] dy in
            let needX = self.needsGrad(x)
            let needW = self.needsGrad(weight)
            let needB = bias.map { self.needsGrad($0) } ?? false
            let dw = needW ? Tensor(zeros: ws) : nil
            let db = needB ? Tensor(zeros: [cout]) : nil
            let dx = needX ? Tensor(zeros: xv.shape) : nil
            let work = (needW || needX) && !g.isPointwise ? Tensor(uninitialized: [pc, k]) : nil
            for n in 0..<d.n {
                let dyn = dy.data + n * cout * p
                let xn = xv.data + n * d.c * d.plane
                if let db {
                    Breakdown.span(.elementwise) { for co in 0..<cout { db[co] += vsum(dyn + co * p, p) } }
                }
                guard let work else {
                    // pointwise: cols are x itself
                    if let dw { sgemm(transB: true, m: cout, n: k, k: p, dyn, xn, beta: 1, dw.data) }
                    if let dx { sgemm(transA: true, m: k, n: p, k: cout, wv.data, dyn, dx.data + n * d.c * d.plane) }
                    continue
                }
                for p0 in Swift.stride(from: 0, to: p, by: pc) {
                    let cnt = min(pc, p - p0)
                    if let dw {
                        // dW[Cout, K] += dy[:, chunk] · cols[chunk, K]
                        Profile.time(tag + "im2col", kind: .im2col) { g.im2col(xn, pixels: p0, count: cnt, work.data) }
                        Profile.time(tag + "gemm_dw") {
                            sgemm(m: cout, n: k, k: cnt, dyn + p0, lda: p, work.data, beta: 1, dw.data)
                        }
                    }
                    if let dx {
                        // dcols[chunk, K] = dy[:, chunk]ᵀ · W[Cout, K]
                        Profile.time(tag + "gemm_dx") {
                            sgemm(transA: true, m: cnt, n: k, k: cout, dyn + p0, lda: p, wv.data, work.data)
                        }
                        Profile.time(tag + "col2im", kind: .im2col) {
                            g.col2im(work.data, pixels: p0, count: cnt, dx.data + n * d.c * d.plane)
                        }
                    }
                }
            }
            if let dw { self.accumulate(weight, dw) }
            if let db, let bias { self.accumulate(bias, db) }
            if let dx { self.accumulate(x, dx) }
        }
    }
}

/// A kernel width known at compile time (nil: read it at run time).
protocol KernelWidth { static var width: Int? { get } }
enum KW3: KernelWidth { static var width: Int? { 3 } }
enum KW4: KernelWidth { static var width: Int? { 4 } }
enum KW7: KernelWidth { static var width: Int? { 7 } }
enum KWAny: KernelWidth { static var width: Int? { nil } }

extension Tape {
    /// bias += Σ over samples and pixels of dy [N, Cout, plane] per channel, if bias needs a gradient (the bias
    /// gradient of the Winograd, kn2row and direct convs).
    func accumulateBiasGradient(_ bias: Var?, _ dy: Tensor, n: Int, cout: Int, plane p: Int) {
        guard let bias, needsGrad(bias) else { return }
        let db = Tensor(zeros: [cout])
        Breakdown.span(.elementwise) {
            for s in 0..<n { for co in 0..<cout { db[co] += vsum(dy.data + (s * cout + co) * p, p) } }
        }
        accumulate(bias, db)
    }
}
