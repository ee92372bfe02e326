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
        let wu = Tensor(uninitialized: [rows])
        if training ?? self.training {
            // v = normalize(Wᵀ u), u = normalize(W v); W v is kept for σ (PyTorch computes it again: the same
            // sgemv on the same inputs, so the same floats, and one pass over W fewer here)
            cblas_sgemv_wrapper(trans: true, rows: rows, cols: cols, wv.data, u.data, v.data)
            normalizeInPlace(v, eps: eps)
            cblas_sgemv_wrapper(trans: false, rows: rows, cols: cols, wv.data, v.data, wu.data)
            u.data.update(from: wu.data, count: rows)
            normalizeInPlace(u, eps: eps)
        } else {
            cblas_sgemv_wrapper(trans: false, rows: rows, cols: cols, wv.data, v.data, wu.data)
        }
        let sigma = vdot(u.data, wu.data, rows)
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

private func normalizeInPlace(_ t: Tensor, eps: Float) {
    let n = max(vdot(t.data, t.data, t.count).squareRoot(), eps)
    for i in 0..<t.count { t[i] /= n }
}
