// Normalisations of NCHW tensors (spec A.1).
//   instanceNorm: statistics over (H, W) per (n, c)      — nn.InstanceNorm2d when biased (affine=False)
//   layerNorm:    statistics over (C, H, W) per n         — no affine
//   iln:    y = (ρ·x_in + (1 − ρ)·x_ln)·γ + β, ρ/γ/β [1, C, 1, 1] (U-GAT-IT ILN)
//   adaILN: the same with γ, β per sample [N, C] (U-GAT-IT adaILN)
// x̂ = (x − μ)/sqrt(σ² + eps), σ² = Σ(x − μ)²/D with D = M (biased) or M − 1 (unbiased, torch.var's default,
// which U-GAT-IT's ILN and adaILN use for both statistics). Statistics: two passes, Double accumulators.
//
// Backward of x̂ over a group of M elements: dx = r·(dx̂ − mean(dx̂) − x̂·Σ(dx̂·x̂)/D), r = 1/sqrt(σ² + eps).
// Every output and gradient here is affine in x and dy per plane, so forward and backward are one pass each
// after the sums: y = a·x + b, dx = p·dy + qi·(x − μi) + ql·(x − μl) + r (derivation: docs/derivations/iln.md).

struct GroupStats {
    var mean: [Float], rstd: [Float]
    /// Statistics of `groups` consecutive runs of `size` floats.
    init(_ x: UnsafePointer<Float>, groups: Int, size: Int, unbiased: Bool, eps: Float) {
        precondition(!unbiased || size > 1, "unbiased variance over \(size) element(s) is undefined (1×1 feature map?)")
        let d = Double(unbiased ? size - 1 : size)
        mean = [Float](repeating: 0, count: groups)
        rstd = [Float](repeating: 0, count: groups)
        for g in 0..<groups {
            let (m, m2) = meanAndSquaredDeviation(x + g * size, size)
            mean[g] = Float(m)
            rstd[g] = Float(1 / (m2 / d + Double(eps)).squareRoot())
        }
    }
}

extension Tape {
    /// Normalises each (n, c) plane over (H, W). x: [N, C, H, W] -> same shape.
    public func instanceNorm(_ x: Var, eps: Float = 1e-5, unbiased: Bool = false) -> Var {
        let d = NCHW(x.value, "instanceNorm")
        return normalize(x, groups: d.n * d.c, size: d.plane, eps: eps, unbiased: unbiased)
    }

    /// Normalises each sample over (C, H, W), no affine. x: [N, C, H, W] -> same shape.
    public func layerNorm(_ x: Var, eps: Float = 1e-5, unbiased: Bool = false) -> Var {
        let d = NCHW(x.value, "layerNorm")
        return normalize(x, groups: d.n, size: d.c * d.plane, eps: eps, unbiased: unbiased)
    }

    private func normalize(_ x: Var, groups: Int, size: Int, eps: Float, unbiased: Bool) -> Var {
        let xv = x.value
        let st = GroupStats(xv.data, groups: groups, size: size, unbiased: unbiased, eps: eps)
        let y = Tensor(uninitialized: xv.shape)
        Parallel.forEach(0..<groups) { g in
            vaffine(xv.data + g * size, y.data + g * size, size, st.rstd[g], -st.mean[g] * st.rstd[g])
        }
        let dd = Float(unbiased ? size - 1 : size)
        return record(y, inputs: [x], kind: .norm) { [unowned self] dy in
            let dx = Tensor(uninitialized: xv.shape)
            Parallel.forEach(0..<groups) { g in
                let gy = dy.data + g * size
                let gx = xv.data + g * size
                let (mu, r) = (st.mean[g], st.rstd[g])
                let s1 = vsum(gy, size)
                let sc = vdotCentered(gy, gx, mu, size)
                vbackward(
                    gy, gx, dx.data + g * size, size, p: r, qi: -r * r * r * sc / dd, mi: mu, r: -r * s1 / Float(size))
            }
            self.accumulate(x, dx)
        }
    }

    /// U-GAT-IT ILN (spec A.1): `rho`, `gamma`, `beta` [1, C, 1, 1]. Unbiased statistics by default.
    public func iln(_ x: Var, rho: Var, gamma: Var, beta: Var, eps: Float = 1e-5, unbiased: Bool = true) -> Var {
        instanceLayerNorm(x, rho: rho, gamma: gamma, beta: beta, perSample: false, eps: eps, unbiased: unbiased)
    }

    /// U-GAT-IT adaILN (spec A.1): `rho` [1, C, 1, 1]; `gamma`, `beta` [N, C] from the MLP. Unbiased statistics.
    public func adaILN(_ x: Var, rho: Var, gamma: Var, beta: Var, eps: Float = 1e-5, unbiased: Bool = true) -> Var {
        instanceLayerNorm(x, rho: rho, gamma: gamma, beta: beta, perSample: true, eps: eps, unbiased: unbiased)
    }

    private func instanceLayerNorm(
        _ x: Var, rho: Var, gamma: Var, beta: Var, perSample: Bool,
        eps: Float, unbiased: Bool
    ) -> Var {
        let d = NCHW(x.value, perSample ? "adaILN" : "iln")
        let (nb, c, m) = (d.n, d.c, d.plane)
        precondition(rho.value.count == c, "ILN: rho \(rho.shape) for \(c) channels")
        let gCount = perSample ? nb * c : c
        precondition(
            gamma.value.count == gCount && beta.value.count == gCount,
            "ILN: gamma \(gamma.shape), beta \(beta.shape) for input \(x.shape)")
        let xv = x.value
        let rv = rho.value
        let gv = gamma.value
        let bv = beta.value
        let sIn = GroupStats(xv.data, groups: nb * c, size: m, unbiased: unbiased, eps: eps)
        let sLn = GroupStats(xv.data, groups: nb, size: c * m, unbiased: unbiased, eps: eps)
        @inline(__always) func gi(_ n: Int, _ ch: Int) -> Int { perSample ? n * c + ch : ch }
        let y = Tensor(uninitialized: xv.shape)
        Parallel.forEach(0..<(nb * c)) { pl in
            let n = pl / c
            let ch = pl % c
            let (ri, rl, mi, ml) = (sIn.rstd[pl], sLn.rstd[n], sIn.mean[pl], sLn.mean[n])
            let (p, g) = (rv[ch], gv[gi(n, ch)])
            let a = g * (p * ri + (1 - p) * rl)
            let b = bv[gi(n, ch)] - g * (p * mi * ri + (1 - p) * ml * rl)
            vaffine(xv.data + pl * m, y.data + pl * m, m, a, b)
        }
        let di = Float(unbiased ? m - 1 : m)
        let ml = Float(c * m)
        let dl = Float(unbiased ? c * m - 1 : c * m)
        return record(y, inputs: [x, rho, gamma, beta], kind: .norm) { [unowned self] dy in
            // per-plane sums: S1 = Σdy, S2 = Σdy·x_in, S3 = Σdy·x_ln, D23 = Σdy·(x_in − x_ln) (not S2 − S3: they can agree
            // to many digits, and ρ's gradient is their difference)
            var s1 = [Float](repeating: 0, count: nb * c)
            var s2 = s1
            var s3 = s1
            var d23 = s1
            s1.withUnsafeMutableBufferPointer { p1 in
                s2.withUnsafeMutableBufferPointer { p2 in
                    s3.withUnsafeMutableBufferPointer { p3 in
                        d23.withUnsafeMutableBufferPointer { p4 in
                            Parallel.forEach(0..<(nb * c)) { pl in
                                let n = pl / c
                                let gy = dy.data + pl * m
                                let gx = xv.data + pl * m
                                p1[pl] = vsum(gy, m)
                                p2[pl] = sIn.rstd[pl] * vdotCentered(gy, gx, sIn.mean[pl], m)
                                p3[pl] = sLn.rstd[n] * vdotCentered(gy, gx, sLn.mean[n], m)
                                p4[pl] = vdotDifference(
                                    gy, gx, m, mi: sIn.mean[pl], ri: sIn.rstd[pl], ml: sLn.mean[n], rl: sLn.rstd[n])
                            }
                        }
                    }
                }
            }
            if self.needsGrad(x) {
                let dx = Tensor(uninitialized: xv.shape)
                for n in 0..<nb {
                    var aLn: Float = 0
                    var bLn: Float = 0  // Σ_c γ(1−ρ)S1, Σ_c γ(1−ρ)S3
                    for ch in 0..<c {
                        let w = gv[gi(n, ch)] * (1 - rv[ch])
                        aLn += w * s1[n * c + ch]
                        bLn += w * s3[n * c + ch]
                    }
                    let (rl, mul) = (sLn.rstd[n], sLn.mean[n])
                    Parallel.forEach(0..<c) { ch in
                        let pl = n * c + ch
                        let (ri, mui) = (sIn.rstd[pl], sIn.mean[pl])
                        let gp = gv[gi(n, ch)] * rv[ch]
                        let gq = gv[gi(n, ch)] * (1 - rv[ch])
                        vbackward(
                            dy.data + pl * m, xv.data + pl * m, dx.data + pl * m, m,
                            p: gp * ri + gq * rl, qi: -ri * ri * gp * s2[pl] / di, mi: mui,
                            ql: -rl * rl * bLn / dl, ml: mul, r: -ri * gp * s1[pl] / Float(m) - rl * aLn / ml)
                    }
                }
                self.accumulate(x, dx)
            }
            if self.needsGrad(rho) {
                let dr = Tensor(zeros: rv.shape)
                for pl in 0..<(nb * c) {
                    let ch = pl % c
                    dr[ch] += gv[gi(pl / c, ch)] * d23[pl]
                }
                self.accumulate(rho, dr)
            }
            if self.needsGrad(gamma) {
                let dg = Tensor(zeros: gv.shape)
                for pl in 0..<(nb * c) {
                    let ch = pl % c
                    let p = rv[ch]
                    dg[gi(pl / c, ch)] += p * s2[pl] + (1 - p) * s3[pl]
                }
                self.accumulate(gamma, dg)
            }
            if self.needsGrad(beta) {
                let db = Tensor(zeros: bv.shape)
                for pl in 0..<(nb * c) { db[gi(pl / c, pl % c)] += s1[pl] }
                self.accumulate(beta, db)
            }
        }
    }
}
