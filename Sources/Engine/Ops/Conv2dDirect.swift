import CKernels

// conv2d by direct loops (Sources/CKernels/direct_conv.c) for stride-1 convs with at most 4 output and 16 input
// channels and a kernel of 5×5 or more: the generator's 7×7 output conv (ch → 3 channels) for ch ≤ 16. With more
// input channels kn2row's GEMM (K = Cin) runs well enough: at 128/32 (Cin 32) both took 0.063-0.066 s a step, at
// 256/64 (Cin 64) the direct loops 0.55 s against kn2row's 0.38 s.
//
// Why: kn2row (Conv2dKn2row.swift) runs this conv as a GEMM with K = Cin (16 at 96/16) that writes T·Cout = 147
// planes of the padded size (6 MB per image at 96²), then adds them back shifted; backward writes those planes again
// (dy shifted by each tap) for two more GEMMs. At 96/16 that was 7% of a step for 0.4% of its FLOPs. The direct
// loops read the padded input (forward, dW) or dy (dx) in place and keep 64 or 32 outputs of a row in registers
// while they add the taps (direct_conv.c).
//   forward  y[co, r, c]    = b[co] + Σ_ci,kh,kw W[co, ci, kh, kw] · xpad[ci, r + kh, c + kw]
//   dx       dxpad[ci, i, j] = Σ_co,kh,kw W[co, ci, kh, kw] · dy[co, i − kh, j − kw], folded through the padding
//   dW       dW[co, ci, kh, kw] = Σ_r,c dy[co, r, c] · xpad[ci, r + kh, c + kw]
// Forward and dW run per output channel, dx per input channel (Parallel.forEach); each sum runs in a fixed order.

extension ConvGeometry {
    /// Whether `conv2d` runs this geometry by the direct loops for `cout` output channels.
    func prefersDirect(cout: Int) -> Bool {
        ConvAlgorithms.direct && stride == 1 && cout <= 4 && cin <= 16 && kh == kw && kh >= 5
    }
}

extension Tape {
    /// conv2d by direct loops; same contract as `conv2d` (which calls it when `prefersDirect`).
    func conv2dDirect(_ x: Var, _ weight: Var, _ bias: Var?, _ g: ConvGeometry, n: Int, cout: Int) -> Var {
        precondition(g.stride == 1 && g.kh == g.kw, "direct conv: stride 1 and a square kernel only")
        let (cin, k, p, q) = (g.cin, g.kh, g.p, g.hp * g.wp)
        let (xv, wv) = (x.value, weight.value)
        let flops = 2 * cout * g.k * p  // one pass, per sample
        let tag = Profile.enabled ? "conv direct co\(cout) ci\(cin) k\(k) p\(p) " : ""
        let y = Tensor(uninitialized: [n, cout, g.ho, g.wo])
        let xpad = Tensor(uninitialized: [cin, q])
        for s in 0..<n {
            Profile.time(tag + "pad", kind: .im2col) { g.padInput(xv.data + s * cin * g.h * g.w, xpad.data) }
            Profile.time(tag + "fwd", kind: .gemm) {
                Parallel.forEach(0..<cout) { co in
                    f2w_conv_direct_forward(
                        cin, k, g.hp, g.wp, g.ho, g.wo, xpad.data, wv.data + co * cin * k * k,
                        bias?.value[co] ?? 0, y.data + (s * cout + co) * p)
                }
            }
            FlopCounter.add(flops)
        }
        return record(y, inputs: [x, weight] + (bias.map { [$0] } ?? []), kind: .other) { [unowned self] dy in
            let needX = self.needsGrad(x)
            let needW = self.needsGrad(weight)
            self.accumulateBiasGradient(bias, dy, n: n, cout: cout, plane: p)
            guard needX || needW else { return }
            let dw = needW ? Tensor(zeros: weight.shape) : nil
            let xpad = needW ? Tensor(uninitialized: [cin, q]) : nil
            let dx = needX ? Tensor(zeros: xv.shape) : nil
            let dxpad = needX ? Tensor(uninitialized: [cin, q]) : nil
            // dy with k − 1 zeros on each side of every row, so that dx's sums need no bounds within a row
            let wh = g.wo + 2 * (k - 1)
            let dyh = needX ? Tensor(zeros: [cout, g.ho, wh]) : nil
            for s in 0..<n {
                let dys = dy.data + s * cout * p
                if let dw, let xpad {
                    Profile.time(tag + "pad", kind: .im2col) { g.padInput(xv.data + s * cin * g.h * g.w, xpad.data) }
                    Profile.time(tag + "dw", kind: .gemm) {
                        Parallel.forEach(0..<cout) { co in
                            f2w_conv_direct_weight_grad(
                                cin, k, g.hp, g.wp, g.ho, g.wo, xpad.data, dys + co * p, dw.data + co * cin * k * k)
                        }
                    }
                    FlopCounter.add(flops)
                }
                if let dx, let dxpad, let dyh {
                    Profile.time(tag + "dx", kind: .gemm) {
                        for row in 0..<(cout * g.ho) {
                            (dyh.data + row * wh + k - 1).update(from: dys + row * g.wo, count: g.wo)
                        }
                        Parallel.forEach(0..<cin) { ci in
                            f2w_conv_direct_input_grad(
                                cout, cin, k, g.hp, g.wp, g.ho, g.wo, dyh.data, wv.data + ci * k * k,
                                dxpad.data + ci * q)
                        }
                    }
                    Profile.time(tag + "fold", kind: .im2col) { g.foldPadding(dxpad.data, dx.data + s * cin * g.h * g.w) }
                    FlopCounter.add(flops)
                }
            }
            if let dw { self.accumulate(weight, dw) }
            if let dx { self.accumulate(x, dx) }
        }
    }
}
