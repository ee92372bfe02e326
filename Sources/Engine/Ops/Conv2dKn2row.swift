// conv2d by kn2row (Anderson et al., "Low-memory GEMM-based convolution algorithms for deep neural networks",
// 2017), for stride 1 and few output channels: the U-GAT-IT output layer (7×7, 64 → 3 channels at 256²; with 16
// input channels or fewer the direct loops of Conv2dDirect.swift take it) and the discriminators' last convs (→ 1
// channel).
//
// im2col writes Cin·kH·kW floats per output pixel and then multiplies by a [Cout, K] weight with Cout = 3: the
// copy moves 49× the input (822 MB per 256² image) and the GEMM has 3 rows, so the layer ran at 10 GFLOP/s.
// kn2row multiplies first and shifts afterwards. With xpad [Cin, Hp·Wp] the padded input and T = kH·kW taps:
//   forward  Z[t·Cout + co, :] = Σ_ci W[co, ci, t] · xpad[ci, :]            (one GEMM, M = T·Cout, K = Cin)
//            y[co, oh, ow]     = Σ_t Z[t·Cout + co, (oh + ki)·Wp + ow + kj]  (shift-add, t = ki·kW + kj)
//   backward D[t·Cout + co, (oh + ki)·Wp + ow + kj] = dy[co, oh, ow], 0 elsewhere (D is "dy shifted by each tap")
//            dW[co, ci, t] = Σ_q D[t·Cout + co, q] · xpad[ci, q]             (GEMM D · xpadᵀ)
//            dxpad = Wᵀ · D, folded back through the padding into dx         (GEMM, M = Cin, K = T·Cout)
// The buffers hold T·Cout + Cin planes of the padded size instead of Cin·T planes of the output size. As the im2col
// path does with its columns, backward pads the input again rather than keeping xpad alive between the passes.

extension ConvGeometry {
    /// Whether kn2row moves less memory than im2col for `cout` output channels (stride 1 only).
    func prefersKn2row(cout: Int) -> Bool { stride == 1 && !isPointwise && cout * 4 <= cin }

    var hp: Int { h + 2 * pad }
    var wp: Int { w + 2 * pad }

    /// The input position that padded index i (0 ≤ i < n + 2·pad) reads, or -1 for a zero.
    @inline(__always)
    func padSource(_ i: Int, _ n: Int) -> Int { Self.source(i - pad, n, mode) }

    /// xpad[Cin, rows, columns] from one sample x[Cin, H, W]: rows firstRow..<firstRow + rows of x padded to
    /// Hp×Wp and then extended with zeros past Hp and Wp (Winograd's whole tiles, one chunk of tile rows at a time;
    /// columns ≥ Wp). Defaults: the whole Hp×Wp.
    func padInput(
        _ x: UnsafePointer<Float>, _ xpad: UnsafeMutablePointer<Float>, rows: Int? = nil, columns: Int? = nil,
        firstRow: Int = 0
    ) {
        let (hp, wp, pad, h, w) = (self.hp, self.wp, self.pad, self.h, self.w)
        let (hq, wq) = (rows ?? hp, columns ?? wp)
        precondition(wq >= wp, "padInput: \(wq) columns is fewer than the padded \(wp)")
        Parallel.forEach(0..<cin) { ci in
            let plane = x + ci * h * w
            for i in 0..<hq {
                let dst = xpad + (ci * hq + i) * wq
                let r = firstRow + i < hp ? padSource(firstRow + i, h) : -1
                if r < 0 {
                    dst.update(repeating: 0, count: wq)
                    continue
                }
                let src = plane + r * w
                for j in 0..<pad {
                    let c = padSource(j, w)
                    dst[j] = c < 0 ? 0 : src[c]
                }
                (dst + pad).update(from: src, count: w)
                for j in (pad + w)..<wp {
                    let c = padSource(j, w)
                    dst[j] = c < 0 ? 0 : src[c]
                }
                (dst + wp).update(repeating: 0, count: wq - wp)
            }
        }
    }

    /// dx[Cin, H, W] += dxpad[Cin, rows, columns] folded back through the padding (the adjoint of `padInput` with
    /// the same rows, columns and firstRow; what lies past Hp×Wp is dropped).
    func foldPadding(
        _ dxpad: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, rows: Int? = nil, columns: Int? = nil,
        firstRow: Int = 0
    ) {
        let (hp, wp, pad, h, w) = (self.hp, self.wp, self.pad, self.h, self.w)
        let (hq, wq) = (rows ?? hp, columns ?? wp)
        Parallel.forEach(0..<cin) { ci in
            let plane = dx + ci * h * w
            for i in 0..<min(hq, hp - firstRow) {
                let r = padSource(firstRow + i, h)
                if r < 0 { continue }
                let src = dxpad + (ci * hq + i) * wq
                let dst = plane + r * w
                for j in 0..<pad {
                    let c = padSource(j, w)
                    if c >= 0 { dst[c] += src[j] }
                }
                for j in 0..<w { dst[j] += src[pad + j] }
                for j in (pad + w)..<wp {
                    let c = padSource(j, w)
                    if c >= 0 { dst[c] += src[j] }
                }
            }
        }
    }
}

extension Tape {
    /// conv2d by kn2row; same contract as `conv2d` (which calls it when `prefersKn2row`), stride 1.
    func conv2dKn2row(_ x: Var, _ weight: Var, _ bias: Var?, _ g: ConvGeometry, n: Int, cout: Int) -> Var {
        precondition(g.stride == 1, "kn2row: stride 1 only")
        let (cin, taps, q, p) = (g.cin, g.kh * g.kw, g.hp * g.wp, g.p)
        let rows = taps * cout
        let xv = x.value
        let wv = weight.value
        // wT[t·Cout + co, ci] = W[co, ci, t]
        let wT = Tensor(uninitialized: [rows, cin])
        for co in 0..<cout {
            for ci in 0..<cin { for t in 0..<taps { wT[(t * cout + co) * cin + ci] = wv[(co * cin + ci) * taps + t] } }
        }
        let y = Tensor(uninitialized: [n, cout, g.ho, g.wo])
        let xpad = Tensor(uninitialized: [cin, q])
        let z = Tensor(uninitialized: [rows, q])
        let tag = Profile.enabled ? "conv kn2row co\(cout) ci\(cin) q\(q) " : ""
        for s in 0..<n {
            Profile.time(tag + "pad", kind: .im2col) { g.padInput(xv.data + s * cin * g.h * g.w, xpad.data) }
            Profile.time(tag + "gemm_fwd") { sgemm(m: rows, n: q, k: cin, wT.data, xpad.data, z.data) }
            Profile.time(tag + "shift_add", kind: .im2col) {
                let ys = y.data + s * cout * p
                Parallel.forEach(0..<cout) { co in
                    let plane = ys + co * p
                    plane.update(repeating: bias.map { $0.value[co] } ?? 0, count: p)
                    for ki in 0..<g.kh {
                        for kj in 0..<g.kw {
                            let zr = z.data + ((ki * g.kw + kj) * cout + co) * q + ki * g.wp + kj
                            for oh in 0..<g.ho {
                                let dst = plane + oh * g.wo
                                let src = zr + oh * g.wp
                                for ow in 0..<g.wo { dst[ow] += src[ow] }
                            }
                        }
                    }
                }
            }
        }
        return record(y, inputs: [x, weight] + (bias.map { [$0] } ?? []), kind: .other) { [unowned self] dy in
            let needX = self.needsGrad(x)
            let needW = self.needsGrad(weight)
            self.accumulateBiasGradient(bias, dy, n: n, cout: cout, plane: p)
            guard needX || needW else { return }
            let d = Tensor(uninitialized: [rows, q])
            let dwT = needW ? Tensor(zeros: [rows, cin]) : nil
            let dx = needX ? Tensor(zeros: xv.shape) : nil
            let xpad = needW ? Tensor(uninitialized: [cin, q]) : nil
            let dxpad = needX ? Tensor(uninitialized: [cin, q]) : nil
            for s in 0..<n {
                Profile.time(tag + "shift_dy", kind: .im2col) {
                    let dys = dy.data + s * cout * p
                    Parallel.forEach(0..<rows) { r in
                        let (t, co) = (r / cout, r % cout)
                        let (ki, kj) = (t / g.kw, t % g.kw)
                        // each element written once: the dy window at (ki, kj), zeros around it
                        let dst = d.data + r * q
                        let src = dys + co * p
                        dst.update(repeating: 0, count: ki * g.wp + kj)
                        for oh in 0..<g.ho {
                            let row = dst + (oh + ki) * g.wp + kj
                            row.update(from: src + oh * g.wo, count: g.wo)
                            let gap = oh + 1 < g.ho ? g.wp - g.wo : q - ((oh + ki) * g.wp + kj + g.wo)
                            (row + g.wo).update(repeating: 0, count: gap)
                        }
                    }
                }
                if let dwT, let xpad {
                    Profile.time(tag + "pad", kind: .im2col) { g.padInput(xv.data + s * cin * g.h * g.w, xpad.data) }
                    Profile.time(tag + "gemm_dw") {
                        sgemm(transB: true, m: rows, n: cin, k: q, d.data, xpad.data, beta: 1, dwT.data)
                    }
                }
                if let dx, let dxpad {
                    Profile.time(tag + "gemm_dx") {
                        sgemm(transA: true, m: cin, n: q, k: rows, wT.data, d.data, dxpad.data)
                    }
                    Profile.time(tag + "fold", kind: .im2col) { g.foldPadding(dxpad.data, dx.data + s * cin * g.h * g.w) }
                }
            }
            if let dwT {
                let dw = Tensor(uninitialized: weight.shape)
                for co in 0..<cout {
                    for ci in 0..<cin {
                        for t in 0..<taps { dw[(co * cin + ci) * taps + t] = dwT[(t * cout + co) * cin + ci] }
                    }
                }
                self.accumulate(weight, dw)
            }
            if let dx { self.accumulate(x, dx) }
        }
    }
}
