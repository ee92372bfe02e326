import COpenBLAS
import Foundation

// Spectral normalisation (Miyato et al. 2018; PyTorch torch.nn.utils.spectral_norm defaults, spec A.1).
//   W: weight_orig of any shape [out, ...], viewed as a matrix [out, rest]; u: [out], v: [rest] (buffers).
//   Training call: v ← normalize(Wᵀu), u ← normalize(W v) (in place, one power iteration), σ = uᵀ W v.
//   Eval call: no iteration, σ from the stored u, v.   y = W / σ, same shape as W.
//   normalize(z) = z / max(‖z‖, eps), eps = 1e-12.
// u and v are constants for differentiation (PyTorch clones them), so dW = dy/σ − (Σ dy·W)/σ² · u vᵀ.

extension Tape {
    /// The spectrally normalised weight W/σ. Advances `u`, `v` in place when `training` (default: the tape's mode).
    /// - Returns: W/σ, the same shape as `weight` (σ = uᵀ W v after the power iteration).
    public func spectralNorm(_ weight: Var, u: Tensor, v: Tensor, eps: Float = 1e-12, training: Bool? = nil) -> Var {
        let wv = weight.value
        let rows = wv.shape[0]
        let cols = wv.count / max(rows, 1)
        precondition(
            u.count == rows && v.count == cols,
            "spectralNorm: u \(u.shape), v \(v.shape) do not fit weight \(wv.shape) viewed as [\(rows), \(cols)]")
        let tag = Profile.enabled ? "spectral_norm \(rows)x\(cols) " : ""
        let t0 = Profile.enabled ? OpBenchmarks.now() : 0
        defer { if Profile.enabled { Profile.add(tag + "fwd", since: t0) } }
        let sigma = powerIteration(wv, u: u, v: v, rows: rows, cols: cols, eps: eps, training: training ?? self.training)
        let uc = u.copy()
        let vc = v.copy()
        let y = Tensor(uninitialized: wv.shape)
        for i in 0..<wv.count { y[i] = wv[i] / sigma }
        return record(y, inputs: [weight], kind: .other) { [unowned self] dy in
            let t0 = Profile.enabled ? OpBenchmarks.now() : 0
            defer { if Profile.enabled { Profile.add(tag + "bwd", since: t0) } }
            let k = vdot(dy.data, wv.data, wv.count) / (sigma * sigma)
            // straight into the parameter's gradient: a separate dW was 8 MB more written and read per call for
            // the 512 → 512 4×4 conv
            self.accumulate(weight) { grad in
                for r in 0..<rows {
                    let ur = uc[r] * k
                    let (g, o, v) = (dy.data + r * cols, grad + r * cols, vc.data)
                    for j in 0..<cols { o[j] += g[j] / sigma - ur * v[j] }
                }
            }
        }
    }
}

extension Tape {
    /// 1/σ of `weight` as a one-element Var, for layers that apply W/σ as (1/σ)·(W ∗ x): the same value and gradient
    /// as `spectralNorm` without forming W/σ, which for a deep discriminator conv (1024×8192 weights, 3×3 outputs)
    /// was a write and a read of the whole weight per call for a few thousand outputs. Advances `u`, `v` as
    /// `spectralNorm` does. Backward: dW += ds·(−1/σ²)·u vᵀ (the part through σ; the part through W itself comes
    /// from the layer that uses W).
    /// - Returns: [1], 1/σ with σ = uᵀ W v after the power iteration.
    public func inverseSpectralNorm(_ weight: Var, u: Tensor, v: Tensor, eps: Float = 1e-12) -> Var {
        let wv = weight.value
        let rows = wv.shape[0]
        let cols = wv.count / max(rows, 1)
        precondition(u.count == rows && v.count == cols, "inverseSpectralNorm: u \(u.shape), v \(v.shape) for \(wv.shape)")
        let tag = Profile.enabled ? "spectral_norm \(rows)x\(cols) " : ""
        let t0 = Profile.enabled ? OpBenchmarks.now() : 0
        defer { if Profile.enabled { Profile.add(tag + "fwd", since: t0) } }
        let sigma = powerIteration(wv, u: u, v: v, rows: rows, cols: cols, eps: eps, training: training)
        let uc = u.copy()
        let vc = v.copy()
        return record(Tensor(repeating: 1 / sigma, shape: [1]), inputs: [weight], kind: .other) { [unowned self] ds in
            let t0 = Profile.enabled ? OpBenchmarks.now() : 0
            defer { if Profile.enabled { Profile.add(tag + "bwd", since: t0) } }
            let k = -ds[0] / (sigma * sigma)
            self.accumulate(weight) { grad in
                for r in 0..<rows {
                    let ur = uc[r] * k
                    let (o, v) = (grad + r * cols, vc.data)
                    for j in 0..<cols { o[j] += ur * v[j] }
                }
            }
        }
    }
}

extension Tape {
    /// y·s + b over y's own storage: the output of a spectrally normalised conv computed as (W ∗ x)·(1/σ) + b
    /// (`inverseSpectralNorm`). y must be an op output that nothing else reads (the conv just made it): overwriting
    /// it keeps one output tensor per layer instead of two or three.
    /// - Parameters: y: [N, C, H, W]; s: [1]; bias: [C] or nil.
    /// - Returns: y·s + b, [N, C, H, W], sharing y's storage. Backward: dy·s to y, Σ dy·(out − b)/s to s (out − b
    ///   is y·s: y itself is gone), Σ over N, H, W of dy to b.
    public func scaleAndBiasInPlace(_ y: Var, scale s: Var, bias: Var?) -> Var {
        let out = y.value
        precondition(out.rank == 4 && s.value.count == 1, "scaleAndBiasInPlace: \(out.shape) by \(s.shape)")
        let (n, c, plane) = (out.shape[0], out.shape[1], out.shape[2] * out.shape[3])
        let sv = s.value[0]
        let b = bias?.value
        if let b { precondition(b.count == c, "scaleAndBiasInPlace: bias \(b.shape) for \(c) channels") }
        for i in 0..<(n * c) {
            let (p, bc) = (out.data + i * plane, b?[i % c] ?? 0)
            for j in 0..<plane { p[j] = p[j] * sv + bc }
        }
        return record(out, inputs: [y, s] + (bias.map { [$0] } ?? []), kind: .elementwise) { [unowned self] dy in
            if self.needsGrad(y) {
                let dx = Tensor(uninitialized: out.shape)
                for i in 0..<out.count { dx[i] = dy[i] * sv }
                self.accumulate(y, dx)
            }
            let needsBias = bias.map { self.needsGrad($0) } ?? false
            guard self.needsGrad(s) || needsBias else { return }
            var ds: Float = 0
            let db = Tensor(zeros: [c])
            for i in 0..<(n * c) {
                let (p, g, bc) = (out.data + i * plane, dy.data + i * plane, b?[i % c] ?? 0)
                var dsi: Float = 0, dbi: Float = 0
                for j in 0..<plane {
                    dsi += g[j] * (p[j] - bc)
                    dbi += g[j]
                }
                ds += dsi
                db[i % c] += dbi
            }
            if self.needsGrad(s) { self.accumulate(s, Tensor(repeating: ds / sv, shape: [1])) }
            if let bias, needsBias { self.accumulate(bias, db) }
        }
    }
}

/// One power iteration in training (v = normalize(Wᵀu), u = normalize(W v), in place), none in eval; returns
/// σ = uᵀ W v. W v is kept for σ (PyTorch computes it again: the same sgemv on the same inputs, so the same floats,
/// and one pass over W fewer here).
private func powerIteration(
    _ wv: Tensor, u: Tensor, v: Tensor, rows: Int, cols: Int, eps: Float, training: Bool
) -> Float {
    let wu = Tensor(uninitialized: [rows])
    if training {
        cblas_sgemv_wrapper(trans: true, rows: rows, cols: cols, wv.data, u.data, v.data)
        normalizeInPlace(v, eps: eps)
        cblas_sgemv_wrapper(trans: false, rows: rows, cols: cols, wv.data, v.data, wu.data)
        u.data.update(from: wu.data, count: rows)
        normalizeInPlace(u, eps: eps)
    } else {
        cblas_sgemv_wrapper(trans: false, rows: rows, cols: cols, wv.data, v.data, wu.data)
    }
    return vdot(u.data, wu.data, rows)
}

private func normalizeInPlace(_ t: Tensor, eps: Float) {
    let n = max(vdot(t.data, t.data, t.count).squareRoot(), eps)
    for i in 0..<t.count { t[i] /= n }
}
