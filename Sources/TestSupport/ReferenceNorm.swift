import Foundation

// MARK: - Normalisation (spec A.1) and spectral norm

extension Ref {
    /// (x − mean)/sqrt(var + eps) over consecutive groups of `size` elements; var divides by size (biased)
    /// or size − 1 (unbiased, torch.var's default).
    static func standardize(_ x: [Double], size: Int, eps: Double, unbiased: Bool) -> [Double] {
        var y = x
        for g in 0..<(x.count / size) {
            let xs = x[(g * size)..<((g + 1) * size)]
            let mean = xs.reduce(0, +) / Double(size)
            let ss = xs.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
            let v = ss / Double(unbiased ? size - 1 : size)
            for (k, xi) in xs.enumerated() { y[g * size + k] = (xi - mean) / (v + eps).squareRoot() }
        }
        return y
    }

    /// Statistics over (H, W) per (n, c); biased = nn.InstanceNorm2d(affine=False).
    public static func instanceNorm(_ x: DTensor, eps: Double = 1e-5, unbiased: Bool = false) -> DTensor {
        DTensor(shape: x.shape, standardize(x.data, size: x.shape[2] * x.shape[3], eps: eps, unbiased: unbiased))
    }

    /// Statistics over (C, H, W) per n, no affine (F.layer_norm(x, x.shape[1:]) when biased).
    public static func layerNorm(_ x: DTensor, eps: Double = 1e-5, unbiased: Bool = false) -> DTensor {
        DTensor(shape: x.shape, standardize(x.data, size: x.count / x.shape[0], eps: eps, unbiased: unbiased))
    }

    /// U-GAT-IT ILN: (ρ·x_in + (1 − ρ)·x_ln)·γ + β with ρ, γ, β of C elements (shape [1, C, 1, 1]).
    public static func iln(
        _ x: DTensor, rho: DTensor, gamma: DTensor, beta: DTensor, eps: Double = 1e-5,
        unbiased: Bool = true
    ) -> DTensor {
        mix(x, rho: rho, eps: eps, unbiased: unbiased) { _, c in (gamma[c], beta[c]) }
    }

    /// U-GAT-IT adaILN: like ILN with γ, β per sample ([N, C]).
    public static func adaILN(
        _ x: DTensor, rho: DTensor, gamma: DTensor, beta: DTensor, eps: Double = 1e-5,
        unbiased: Bool = true
    ) -> DTensor {
        let c = x.shape[1]
        return mix(x, rho: rho, eps: eps, unbiased: unbiased) { n, ch in (gamma[n * c + ch], beta[n * c + ch]) }
    }

    static func mix(
        _ x: DTensor, rho: DTensor, eps: Double, unbiased: Bool,
        _ affine: (Int, Int) -> (Double, Double)
    ) -> DTensor {
        let xin = instanceNorm(x, eps: eps, unbiased: unbiased)
        let xln = layerNorm(x, eps: eps, unbiased: unbiased)
        let (n, c, m) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
        var y = DTensor(zeros: x.shape)
        for b in 0..<n {
            for ch in 0..<c {
                let (g, be) = affine(b, ch)
                let r = rho[ch]
                for k in 0..<m {
                    let i = (b * c + ch) * m + k
                    y[i] = (r * xin[i] + (1 - r) * xln[i]) * g + be
                }
            }
        }
        return y
    }

    /// W / σ with σ = uᵀ W v for fixed u [rows], v [cols] (W viewed as [rows, cols] = [shape[0], rest]).
    /// u and v are constants of the differentiation, as in PyTorch (they are computed under no_grad).
    public static func spectralNorm(_ w: DTensor, u: DTensor, v: DTensor) -> DTensor {
        let rows = w.shape[0]
        let cols = w.count / rows
        var sigma = 0.0
        for r in 0..<rows { for c in 0..<cols { sigma += u[r] * w[r * cols + c] * v[c] } }
        return DTensor(shape: w.shape, w.data.map { $0 / sigma })
    }

    /// One power iteration as torch.nn.utils.spectral_norm does it in training mode:
    /// v ← normalize(Wᵀu), then u ← normalize(W v); also returns σ = uᵀ W v with the new u, v.
    public static func powerIteration(
        _ w: DTensor, u: DTensor, v: DTensor, eps: Double = 1e-12
    )
        -> (u: DTensor, v: DTensor, sigma: Double)
    {
        let rows = w.shape[0]
        let cols = w.count / rows
        func normalize(_ z: [Double]) -> [Double] {
            let n = max(z.reduce(0) { $0 + $1 * $1 }.squareRoot(), eps)
            return z.map { $0 / n }
        }
        var wtu = [Double](repeating: 0, count: cols)
        for r in 0..<rows { for c in 0..<cols { wtu[c] += w[r * cols + c] * u[r] } }
        let v1 = normalize(wtu)
        var wv = [Double](repeating: 0, count: rows)
        for r in 0..<rows { for c in 0..<cols { wv[r] += w[r * cols + c] * v1[c] } }
        let u1 = normalize(wv)
        var sigma = 0.0
        for r in 0..<rows { sigma += u1[r] * wv[r] }
        return (DTensor(shape: [rows], u1), DTensor(shape: [cols], v1), sigma)
    }
}
