/// A linear layer's weight gradient kept as its factors instead of a dense matrix (the exact low-rank form):
/// dW = Σ over the layer's calls of dYᵀ·X, with X [rows, in] the call's input and dY [rows, out] its output gradient.
///
/// For the full generator's FC.0 ([256, S²c/4] weights, 268M at 256/64) a step has 3 calls of one row per image, so
/// ranks can exchange the factors (rows·(in + out) floats) instead of all-reducing in·out floats and form the same
/// sum on every rank (docs/reference.md §R.5). `Tape.linear(_:_:_:lowRank:)` fills it during backward.
public final class LowRankGradient {
    public let inFeatures: Int
    public let outFeatures: Int
    /// Rows of X and dY collected since the last `reset`, row-major.
    public private(set) var x: [Float] = []
    public private(set) var dy: [Float] = []

    public init(inFeatures: Int, outFeatures: Int) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
    }

    public var rows: Int { x.count / max(inFeatures, 1) }

    /// Adds one call's input x [n, in] and output gradient dy [n, out].
    func append(x xv: Tensor, dy g: Tensor) {
        precondition(xv.count == g.count / outFeatures * inFeatures, "low-rank factors \(xv.shape), \(g.shape)")
        x.append(contentsOf: xv.buffer)
        dy.append(contentsOf: g.buffer)
    }

    public func reset() {
        x.removeAll(keepingCapacity: true)
        dy.removeAll(keepingCapacity: true)
    }

    /// grad [out, in] += scale · dYᵀ·X over `rows` rows of the given factors (one GEMM with k = rows).
    public static func accumulate(
        dy: UnsafePointer<Float>, x: UnsafePointer<Float>, rows: Int, scale: Float, into grad: Tensor
    ) {
        let (out, fin) = (grad.shape[0], grad.shape[1])
        sgemm(transA: true, m: out, n: fin, k: rows, alpha: scale, dy, x, beta: 1, grad.data)
    }
}
