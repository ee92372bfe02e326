// linear: y = x · Wᵀ + b
//   x: [N, in], W: [out, in], b: [out] or none, y: [N, out].
//   dx = dy · W, dW += dyᵀ · x, db += Σ_n dy.

extension Tape {
    /// PyTorch `F.linear`. Shapes in the file header.
    ///   - lowRank: when given, the weight's gradient is not formed: backward appends (x, dy) to it and marks the
    ///     weight as having a gradient; the caller forms dW later (`LowRankGradient`).
    public func linear(_ x: Var, _ weight: Var, _ bias: Var? = nil, lowRank: LowRankGradient? = nil) -> Var {
        let xs = x.shape
        let ws = weight.shape
        precondition(
            xs.count == 2 && ws.count == 2 && ws[1] == xs[1],
            "linear: input \(xs) does not fit weight \(ws) (expects [N, \(ws.count == 2 ? ws[1] : -1)])")
        let (n, fin, fout) = (xs[0], xs[1], ws[0])
        if let b = bias { precondition(b.shape == [fout], "linear: bias \(b.shape), expected [\(fout)]") }
        let xv = x.value
        let wv = weight.value
        let y = Tensor(uninitialized: [n, fout])
        if let b = bias?.value { for i in 0..<n { (y.data + i * fout).update(from: b.data, count: fout) } }
        sgemm(transB: true, m: n, n: fout, k: fin, xv.data, wv.data, beta: bias == nil ? 0 : 1, y.data)
        return record(y, inputs: [x, weight] + (bias.map { [$0] } ?? []), kind: .other) { [unowned self] dy in
            if self.needsGrad(x) {
                let dx = Tensor(uninitialized: xs)
                sgemm(m: n, n: fin, k: fout, dy.data, wv.data, dx.data)
                self.accumulate(x, dx)
            }
            if let lowRank, self.needsGrad(weight) {
                precondition(lowRank.inFeatures == fin && lowRank.outFeatures == fout, "low-rank factors of \(ws)")
                self.appendLowRank(lowRank, x: xv, dy: dy)
                self.markGradient(weight)
            } else if self.needsGrad(weight) {
                self.accumulateLinearWeight(weight, dy: dy, x: xv)
            }
            if let bias, self.needsGrad(bias) {
                let db = Tensor(zeros: [fout])
                for i in 0..<n { for j in 0..<fout { db[j] += dy[i * fout + j] } }
                self.accumulate(bias, db)
            }
        }
    }
}
