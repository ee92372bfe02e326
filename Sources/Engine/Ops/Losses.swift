import Foundation

// Losses and reductions (PyTorch defaults: mean reduction). Every result has shape [1].
//   mse(x, t)      = mean((x − t)²)
//   l1(x, t)       = mean(|x − t|)                      (d/dx at x = t is 0, as torch.sign)
//   bceWithLogits  = mean(max(z, 0) − z·y + log(1 + e^−|z|))
//   crossEntropy   = mean_n(−log softmax(z_n)[label_n]), z: [N, K]
//   mean, sum      over all elements

extension Tape {
    /// Mean squared error against `target` (same shape).
    public func mse(_ x: Var, _ target: Var) -> Var { pointwiseLoss(x, target.value, target, kind: .mse) }
    /// Mean squared error against a constant (LSGAN targets 1 and 0).
    public func mse(_ x: Var, _ target: Float) -> Var {
        pointwiseLoss(x, Tensor(repeating: target, shape: x.shape), nil, kind: .mse)
    }
    /// Mean absolute error against `target` (same shape).
    public func l1(_ x: Var, _ target: Var) -> Var { pointwiseLoss(x, target.value, target, kind: .l1) }
    /// Binary cross-entropy on logits against `target` (same shape, values in [0, 1]).
    public func bceWithLogits(_ x: Var, _ target: Var) -> Var { pointwiseLoss(x, target.value, target, kind: .bce) }
    /// Binary cross-entropy on logits against a constant target.
    public func bceWithLogits(_ x: Var, _ target: Float) -> Var {
        pointwiseLoss(x, Tensor(repeating: target, shape: x.shape), nil, kind: .bce)
    }

    private enum PointwiseLoss { case mse, l1, bce }

    /// The target only receives a gradient for mse and l1 (bce targets are labels).
    private func pointwiseLoss(_ x: Var, _ t: Tensor, _ tv: Var?, kind: PointwiseLoss) -> Var {
        let xv = x.value
        precondition(xv.shape == t.shape, "\(kind) loss: input \(xv.shape) vs target \(t.shape)")
        let n = xv.count
        var s = 0.0
        for i in 0..<n {
            let z = xv[i]
            let y = t[i]
            switch kind {
            case .mse:
                let d = z - y
                s += Double(d * d)
            case .l1: s += Double(abs(z - y))
            case .bce: s += Double(max(z, 0) - z * y + log1p(exp(-abs(z))))
            }
        }
        let out = Tensor(shape: [1], [Float(s / Double(n))])
        return record(out, inputs: [x] + (tv.map { [$0] } ?? [])) { [unowned self] dy in
            let g = dy[0] / Float(n)
            let dx = Tensor(uninitialized: xv.shape)
            for i in 0..<n {
                let z = xv[i]
                let y = t[i]
                switch kind {
                case .mse: dx[i] = 2 * (z - y) * g
                case .l1: dx[i] = z > y ? g : (z < y ? -g : 0)
                case .bce: dx[i] = (1 / (1 + exp(-z)) - y) * g
                }
            }
            if let tv, kind != .bce, self.needsGrad(tv) {
                let dt = Tensor(uninitialized: xv.shape)
                for i in 0..<n { dt[i] = -dx[i] }
                self.accumulate(tv, dt)
            }
            self.accumulate(x, dx)
        }
    }

    /// Softmax cross-entropy: logits [N, K], integer labels in 0..<K, mean over N.
    public func crossEntropy(_ logits: Var, labels: [Int]) -> Var {
        let zv = logits.value
        precondition(
            zv.rank == 2 && zv.shape[0] == labels.count,
            "crossEntropy: logits \(zv.shape) for \(labels.count) labels")
        let (n, k) = (zv.shape[0], zv.shape[1])
        precondition(labels.allSatisfy { $0 >= 0 && $0 < k }, "crossEntropy: labels \(labels) outside 0..<\(k)")
        let prob = Tensor(uninitialized: zv.shape)
        var loss = 0.0
        for i in 0..<n {
            let row = zv.data + i * k
            let p = prob.data + i * k
            var mx = row[0]
            for j in 1..<k { mx = max(mx, row[j]) }
            var s: Double = 0
            for j in 0..<k { s += exp(Double(row[j] - mx)) }
            let lse = Double(mx) + log(s)
            for j in 0..<k { p[j] = Float(exp(Double(row[j]) - lse)) }
            loss += lse - Double(row[labels[i]])
        }
        let out = Tensor(shape: [1], [Float(loss / Double(n))])
        return record(out, inputs: [logits]) { [unowned self] dy in
            let g = dy[0] / Float(n)
            let dz = Tensor(uninitialized: zv.shape)
            for i in 0..<n {
                for j in 0..<k { dz[i * k + j] = (prob[i * k + j] - (j == labels[i] ? 1 : 0)) * g }
            }
            self.accumulate(logits, dz)
        }
    }

    /// Sum of all elements -> [1].
    public func sum(_ x: Var) -> Var { reduceAll(x, mean: false) }
    /// Mean of all elements -> [1].
    public func mean(_ x: Var) -> Var { reduceAll(x, mean: true) }

    private func reduceAll(_ x: Var, mean: Bool) -> Var {
        let xv = x.value
        let n = xv.count
        var s = 0.0
        for i in 0..<n { s += Double(xv[i]) }
        let out = Tensor(shape: [1], [Float(mean ? s / Double(n) : s)])
        return record(out, inputs: [x]) { [unowned self] dy in
            self.accumulate(x, Tensor(repeating: mean ? dy[0] / Float(n) : dy[0], shape: xv.shape))
        }
    }

    /// Σ w_i·x_i for one-element values (combining weighted losses).
    public func weightedSum(_ terms: [(Float, Var)]) -> Var {
        precondition(terms.allSatisfy { $0.1.value.count == 1 }, "weightedSum expects one-element values")
        let out = Tensor(shape: [1], [Tape.weightedSumValue(terms)])
        return record(out, inputs: terms.map(\.1)) { [unowned self] dy in
            for (w, v) in terms where self.needsGrad(v) { self.accumulate(v, Tensor(shape: [1], [w * dy[0]])) }
        }
    }

    /// The value `weightedSum` records, summed in the same order (for a loss whose terms are back-propagated apart).
    public static func weightedSumValue(_ terms: [(Float, Var)]) -> Float {
        terms.reduce(Float(0)) { $0 + $1.0 * $1.1.value[0] }
    }
}
