import Foundation

/// Adam exactly as `torch.optim.Adam` (single-tensor path, Kingma & Ba 2015 with PyTorch's conventions):
///   g ← grad + weight_decay·θ (coupled L2)          m ← lerp(m, g, 1 − β1)        v ← β2·v + (1 − β2)·g²
///   θ ← θ − lr/(1 − β1^t) · m / (sqrt(v)/sqrt(1 − β2^t) + eps),   t counted per parameter.
/// Parameters without a gradient this step (`hasGrad == false`) are skipped entirely: value, moments and
/// step count stay as they were (PyTorch skips `.grad is None`; selective backprop relies on this).
public final class Adam {
    public var lr: Double
    public let beta1: Double, beta2: Double, eps: Double, weightDecay: Double
    public let parameters: [Parameter]
    /// First and second moments, one tensor per parameter (same order as `parameters`).
    public private(set) var m: [Tensor]
    public private(set) var v: [Tensor]
    /// Per-parameter step counts.
    public var steps: [Int]

    public init(
        _ parameters: [Parameter], lr: Double, beta1: Double = 0.9, beta2: Double = 0.999,
        eps: Double = 1e-8, weightDecay: Double = 0
    ) {
        self.parameters = parameters
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        m = parameters.map { Tensor(zeros: $0.shape) }
        v = parameters.map { Tensor(zeros: $0.shape) }
        steps = [Int](repeating: 0, count: parameters.count)
    }

    /// One update of every parameter that has a gradient.
    public func step() { Breakdown.span(.adam) { update() } }

    private func update() {
        for (i, p) in parameters.enumerated() where p.hasGrad {
            steps[i] += 1
            let t = Double(steps[i])
            let bc1 = 1 - pow(beta1, t)
            let bc2 = 1 - pow(beta2, t)
            let stepSize = Float(lr / bc1)
            let bc2Sqrt = Float(bc2.squareRoot())
            let wd = Float(weightDecay)
            let w1 = Float(1 - beta1)
            let b2 = Float(beta2)
            let w2 = Float(1 - beta2)
            let e = Float(eps)
            let th = p.value.data
            let g = p.grad.data
            let mm = m[i].data
            let vv = v[i].data
            Parallel.forEach(0..<p.value.count, grain: 1 << 15) { j in
                let gj = wd != 0 ? g[j] + wd * th[j] : g[j]
                // torch lerp: weight ≥ 0.5 computes end − (end − start)·(1 − weight)
                mm[j] = w1 < 0.5 ? mm[j] + w1 * (gj - mm[j]) : gj - (gj - mm[j]) * (1 - w1)
                vv[j] = vv[j] * b2 + w2 * (gj * gj)
                let denom = vv[j].squareRoot() / bc2Sqrt + e
                th[j] = th[j] - stepSize * (mm[j] / denom)
            }
        }
    }
}
