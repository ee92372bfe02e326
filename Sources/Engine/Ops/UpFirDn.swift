// Resampling primitives for augmentation (stylegan2-ada's upfirdn2d, applied one axis at a time).
//   pad2d:     [N, C, H, W] -> [N, C, H + top + bottom, W + left + right], reflection (numpy "reflect").
//   upfirdn1d: along W (or H): zero-insert `up`−1 zeros after each sample, pad by (pad0, pad1) zeros (negative
//              values crop), filter with `f` (a true convolution, or a correlation when `flip`), keep every
//              `down`-th sample:  y[o] = Σ_k g[k] · u[o·down + k],  g = flip ? f : reversed(f),
//              u[j] = x[(j − pad0)/up] when (j − pad0) ≥ 0 is a multiple of `up` (inside x), else 0.
//              Output length Lo = ⌊(L·up + pad0 + pad1 − K)/down⌋ + 1.
// Both are linear in x; their backward passes are the adjoint maps.

public enum ResampleAxis { case width, height }

extension Tape {
    /// Reflection padding with independent amounts per side (each < the padded dimension).
    public func pad2d(_ x: Var, left: Int, right: Int, top: Int, bottom: Int) -> Var {
        let d = NCHW(x.value, "pad2d")
        precondition(
            min(left, right, top, bottom) >= 0 && max(left, right) < d.w && max(top, bottom) < d.h,
            "pad2d: reflection padding (\(left), \(right), \(top), \(bottom)) needs each < the side of \(x.shape)")
        let ho = d.h + top + bottom
        let wo = d.w + left + right
        func src(_ i: Int, _ n: Int) -> Int { i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i) }
        let rows = (0..<ho).map { src($0 - top, d.h) }
        let cols = (0..<wo).map { src($0 - left, d.w) }
        let xv = x.value
        let y = Tensor(uninitialized: [d.n, d.c, ho, wo])
        for pl in 0..<(d.n * d.c) {
            let s = xv.data + pl * d.plane
            let o = y.data + pl * ho * wo
            for i in 0..<ho {
                let r = s + rows[i] * d.w
                for j in 0..<wo { o[i * wo + j] = r[cols[j]] }
            }
        }
        return record(y, inputs: [x]) { [unowned self] dy in
            let dx = Tensor(zeros: xv.shape)
            for pl in 0..<(d.n * d.c) {
                let g = dy.data + pl * ho * wo
                let o = dx.data + pl * d.plane
                for i in 0..<ho {
                    let r = o + rows[i] * d.w
                    for j in 0..<wo { r[cols[j]] += g[i * wo + j] }
                }
            }
            self.accumulate(x, dx)
        }
    }

    /// Upsample, FIR-filter and downsample along one axis of an NCHW tensor (see the file header).
    public func upfirdn1d(
        _ x: Var, axis: ResampleAxis, filter f: [Float], up: Int = 1, down: Int = 1,
        pad0: Int, pad1: Int, flip: Bool = false
    ) -> Var {
        let d = NCHW(x.value, "upfirdn1d")
        precondition(up >= 1 && down >= 1 && !f.isEmpty, "upfirdn1d: up \(up), down \(down), \(f.count) taps")
        let len = axis == .width ? d.w : d.h
        let k = f.count
        let lo = (len * up + pad0 + pad1 - k) / down + 1
        precondition(
            len * up + pad0 + pad1 >= k && lo >= 1, "upfirdn1d: output would be empty for \(x.shape) along \(axis)")
        let g = flip ? f : Array(f.reversed())
        // per output sample: the taps that hit a real input sample (index into x, weight)
        var taps = [[(Int, Float)]](repeating: [], count: lo)
        for o in 0..<lo {
            for t in 0..<k {
                let j = o * down + t - pad0
                if j >= 0 && j % up == 0 && j / up < len { taps[o].append((j / up, g[t])) }
            }
        }
        let (outer, inner) = axis == .width ? (d.n * d.c * d.h, 1) : (d.n * d.c, d.w)
        // element (line, position) lives at line-base + position·stride
        let inStride = axis == .width ? 1 : d.w
        let inLine = axis == .width ? d.w : d.h * d.w
        let outLine = axis == .width ? lo : lo * d.w
        let outShape = axis == .width ? [d.n, d.c, d.h, lo] : [d.n, d.c, lo, d.w]
        let xv = x.value
        let y = Tensor(uninitialized: outShape)
        Parallel.forEach(0..<outer, grain: 8) { line in
            for c in 0..<inner {
                let src = xv.data + line * inLine + c
                let dst = y.data + line * outLine + c
                for o in 0..<lo {
                    var s: Float = 0
                    for (i, w) in taps[o] { s += src[i * inStride] * w }
                    dst[o * inStride] = s
                }
            }
        }
        return record(y, inputs: [x]) { [unowned self] dy in
            let dx = Tensor(zeros: xv.shape)
            Parallel.forEach(0..<outer, grain: 8) { line in
                for c in 0..<inner {
                    let gsrc = dy.data + line * outLine + c
                    let gdst = dx.data + line * inLine + c
                    for o in 0..<lo {
                        let v = gsrc[o * inStride]
                        for (i, w) in taps[o] { gdst[i * inStride] += v * w }
                    }
                }
            }
            self.accumulate(x, dx)
        }
    }
}
