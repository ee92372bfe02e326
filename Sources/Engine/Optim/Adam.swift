import CKernels
import Foundation

/// Adam exactly as `torch.optim.Adam` (single-tensor path, Kingma & Ba 2015 with PyTorch's conventions):
///   g ← grad + weight_decay·θ (coupled L2)          m ← lerp(m, g, 1 − β1)        v ← β2·v + (1 − β2)·g²
///   θ ← θ − lr/(1 − β1^t) · m / (sqrt(v)/sqrt(1 − β2^t) + eps),   t counted per parameter.
/// Parameters without a gradient this step (`hasGrad == false`) are skipped entirely: value, moments and
/// step count stay as they were (PyTorch skips `.grad is None`; selective backprop relies on this).
///
/// Sharded (`shard`, ZeRO stage 1): the rank keeps the moments of, and updates, only the elements `ShardLayout` gives
/// it; the same per-element arithmetic, so the values it computes are bit-identical to the unsharded ones. Step
/// counts stay per parameter on every rank.
public final class Adam {
    public var lr: Double
    public let beta1: Double, beta2: Double, eps: Double, weightDecay: Double
    public let parameters: [Parameter]
    /// First and second moments, one tensor per parameter (same order as `parameters`): the elements of `owned[i]`,
    /// concatenated (all of them unless sharded).
    public private(set) var m: [Tensor]
    public private(set) var v: [Tensor]
    /// Per-parameter step counts.
    public var steps: [Int]
    /// The element ranges of each parameter whose moments this rank keeps and whose values it updates, in increasing
    /// order: the whole parameter unless sharded.
    public private(set) var owned: [[Range<Int>]]
    /// The ZeRO-1 layout and this rank, once sharded.
    public private(set) var shard: (layout: ShardLayout, rank: Int)?

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
        owned = parameters.map { [0..<$0.value.count] }
    }

    /// Keeps only rank `rank`'s share of the moments (ZeRO stage 1): the elements of `layout`'s blocks of this rank;
    /// parameters the layout does not cover (excluded from it) stay whole. The moments restart from zero: shard before
    /// the first step or before loading a checkpoint.
    public func shard(_ layout: ShardLayout, rank: Int) {
        precondition(rank >= 0 && rank < layout.worldSize, "Adam.shard: rank \(rank) of \(layout.worldSize)")
        shard = (layout, rank)
        owned = parameters.indices.map { Self.ranges(parameters[$0], layout, rank: rank) }
        m = owned.map { Tensor(zeros: [$0.reduce(0) { $0 + $1.count }]) }
        v = owned.map { Tensor(zeros: [$0.reduce(0) { $0 + $1.count }]) }
    }

    /// Whether every rank keeps parameter i's moments whole (not sharded, or left out of the layout).
    public func keepsWhole(_ i: Int) -> Bool {
        guard let (layout, _) = shard else { return true }
        return !layout.covers(Self.arenaRange(parameters[i]))
    }

    /// The element ranges of parameter i that rank r keeps (`owned` for this rank; any rank's for checkpoints).
    public func owned(_ i: Int, rank r: Int) -> [Range<Int>] {
        guard let (layout, me) = shard, r != me else { return owned[i] }
        return Self.ranges(parameters[i], layout, rank: r)
    }

    private static func arenaRange(_ p: Parameter) -> Range<Int> { p.offset..<(p.offset + p.value.count) }

    /// Rank r's elements of `p` under `layout`: its blocks, or the whole parameter when the layout leaves it out.
    private static func ranges(_ p: Parameter, _ layout: ShardLayout, rank r: Int) -> [Range<Int>] {
        let range = arenaRange(p)
        return layout.covers(range) ? layout.owned(range, rank: r) : [0..<p.value.count]
    }

    /// One update of every parameter that has a gradient.
    public func step() { Breakdown.span(.adam) { update { _ in true } } }

    /// One update of the parameters that have a gradient and pass `include`: a part of `step()`, the same floats for
    /// them (the arithmetic and the step count are per parameter). A data-parallel trainer updates a part whose
    /// gradients arrived first, then the rest (`UGATITStep.applyGenB2AAhead`).
    public func step(where include: (Parameter) -> Bool) { Breakdown.span(.adam) { update(include) } }

    private func update(_ include: (Parameter) -> Bool) {
        for (i, p) in parameters.enumerated() where p.hasGrad && include(p) {
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
            var at = 0  // into the owned moments
            for r in owned[i] {
                let th = p.value.data + r.lowerBound
                let g = p.grad.data + r.lowerBound
                let mm = m[i].data + at
                let vv = v[i].data + at
                at += r.count
                // blocks of 2^15 elements, each by a C loop that clang vectorises (f2w_adam_update, CKernels):
                // Swift left this loop scalar (vsqrtss/vdivss, 3-3.8 ns per element at 96/16) and SIMD16 in Swift
                // still took its square roots one lane at a time (2 ns). The C target is built without FMA
                // contraction, so every element gets the floats of the expressions in this type's comment.
                let grain = 1 << 15
                Parallel.forEach(0..<(r.count + grain - 1) / grain) { b in
                    let lo = b * grain
                    let n = min(grain, r.count - lo)
                    let (th, g, mm, vv) = (th + lo, g + lo, mm + lo, vv + lo)
                    f2w_adam_update(n, th, g, mm, vv, wd, w1, b2, w2, stepSize, bc2Sqrt, e)
                }
            }
        }
    }
}

