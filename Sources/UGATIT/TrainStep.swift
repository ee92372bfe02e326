import Engine

/// Loss weights (spec B.2/B.4 defaults: adv 1, cycle 10, identity 10, CAM 1000).
public struct LossWeights: Codable, Equatable, Sendable {
    public var adv: Float = 1
    public var cycle: Float = 10
    public var identity: Float = 10
    public var cam: Float = 1000
    /// Face2Webtoon group classification loss (spec C.2): weight of the D term (real images) and of the G term
    /// (translated images). The original scales the D term by adv_weight and the G term by group_weight (G.9);
    /// here both are explicit, default 1.
    public var groupD: Float = 1
    public var groupG: Float = 1
    /// Whether the group terms enter the losses (they are computed and logged either way when labels are given).
    public var useGroupLoss = true
    public init() {}
}

/// How the base learning rate grows with the global batch B (images per domain per step, all ranks together).
public enum LRScaling: String, Codable, Sendable, CaseIterable {
    /// lr·1: the batch-1 recipe at any batch.
    case none
    /// lr·√B (the square-root rule for adaptive optimizers, Malladi et al. 2022).
    case sqrt
    /// lr·B (Goyal et al. 2017).
    case linear

    public func factor(globalBatch b: Int) -> Double {
        switch self {
        case .none: return 1
        case .sqrt: return Double(b).squareRoot()
        case .linear: return Double(b)
        }
    }
}

/// Adam settings and the learning-rate schedule (spec B.3, with batch scaling and warm-up).
///
/// The lr of global step s (1-based) of I steps, with B_s the global batch of the run doing step s and n_s the
/// images per domain seen after it (n_s = n_{s−1} + B_s, stored in checkpoints as images_seen):
///
///     lr(s) = lr0 · k(min(B_s, B_max)) · min(1, n_s / N_warm) · d(s),
///     d(s) = 1 for s ≤ I/2, else max(0, 1 − (s − I/2)/(I/2))
///
/// k = 1, √B or B (`lrScaling`), B_max = `lrScalingMaxBatch` (0: no cap); the warm-up factor is 1 when N_warm = 0.
/// The decay counts global steps and the warm-up counts images, so both continue where they were when a run resumes
/// at another world size; only k changes, to the new global batch (with `linear` up to B_max, lr per image stays lr0).
///
/// The defaults, `linear` capped at global batch 8, come from the convergence study (docs/convergence.md): linear
/// reached batch 1's final KID in 0.24-0.60× the images at global batch 4 and 8, sqrt and none needed 0.76-1.50×;
/// nothing above global batch 8 was measured, hence the cap. At global batch 1 every rule is lr0.
public struct OptimizerConfig: Codable, Equatable, Sendable {
    public var lr: Double = 1e-4
    public var beta1: Double = 0.5
    public var beta2: Double = 0.999
    public var weightDecay: Double = 1e-4
    /// Linear decay to 0 over the second half of `iterations`.
    public var decay = true
    /// Batch scaling rule k(B) of the base lr.
    public var lrScaling: LRScaling = .linear
    /// The global batch above which k(B) stops growing (0: no cap).
    public var lrScalingMaxBatch = 8
    /// Linear warm-up from 0 over the first N images per domain (0: none).
    public var warmupImages = 0
    public init() {}

    enum CodingKeys: String, CodingKey {
        case lr, beta1, beta2, weightDecay, decay, lrScaling, lrScalingMaxBatch, warmupImages
    }

    /// Configurations written before these fields existed keep their meaning: `lrScaling` absent is `none` (the only
    /// rule then), `lrScalingMaxBatch` absent is no cap, `warmupImages` absent is 0.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        lr = try c.decode(Double.self, forKey: .lr)
        beta1 = try c.decode(Double.self, forKey: .beta1)
        beta2 = try c.decode(Double.self, forKey: .beta2)
        weightDecay = try c.decode(Double.self, forKey: .weightDecay)
        decay = try c.decode(Bool.self, forKey: .decay)
        lrScaling = try c.decodeIfPresent(LRScaling.self, forKey: .lrScaling) ?? .none
        lrScalingMaxBatch = try c.decodeIfPresent(Int.self, forKey: .lrScalingMaxBatch) ?? 0
        warmupImages = try c.decodeIfPresent(Int.self, forKey: .warmupImages) ?? 0
    }

    /// The global batch the scaling rule sees: min(B, B_max), or B without a cap.
    public func scalingBatch(_ b: Int) -> Int { lrScalingMaxBatch > 0 ? min(b, lrScalingMaxBatch) : b }

    /// The base lr at global batch B: lr0 · k(min(B, B_max)).
    public func scaledLearningRate(globalBatch b: Int) -> Double {
        lr * lrScaling.factor(globalBatch: scalingBatch(b))
    }

    /// The decay factor d(s) in closed form (the original subtracts lr0/(I/2) once per step, which drifts to
    /// −1.95e−16; spec B.3 and G.22).
    public func decayFactor(step s: Int, iterations: Int) -> Double {
        let half = iterations / 2
        guard decay, half > 0, s > half else { return 1 }
        return max(0, 1 - Double(s - half) / Double(half))
    }

    /// The warm-up factor min(1, n / N_warm) after n images per domain.
    public func warmupFactor(imagesSeen n: Int) -> Double {
        warmupImages > 0 ? min(1, Double(n) / Double(warmupImages)) : 1
    }

    /// lr(s) above. `imagesSeen` counts the images of step s itself (n_s, not n_{s−1}), so the first step of a
    /// warm-up does not waste its batch at lr 0.
    public func learningRate(step s: Int, iterations: Int, globalBatch: Int = 1, imagesSeen: Int? = nil) -> Double {
        scaledLearningRate(globalBatch: globalBatch) * warmupFactor(imagesSeen: imagesSeen ?? s * globalBatch)
            * decayFactor(step: s, iterations: iterations)
    }
}

/// The two image domains: A = faces (photos), B = webtoon.
public enum Domain: String, Codable, Sendable {
    case a = "A"
    case b = "B"
}

/// Transforms every image a discriminator sees (ADA hooks in here); identity by default.
public protocol DiscriminatorAugment: AnyObject {
    /// x: [N, 3, S, S] images of `domain` about to be judged; returns the same shape.
    func augment(_ t: Tape, _ x: Var, domain: Domain) -> Var
    /// The patch logits of the global and local discriminator on (augmented) real images of `domain`, D phase.
    func observeReal(domain: Domain, global: Tensor, local: Tensor)
}

/// Scalar values of one phase, by name (`d.loss`, `d.adv_GA`, `g.rec_A`, ...), for logging and tests.
public typealias LossValues = [String: Float]

/// The keys of `LossValues` that code reads back (the progress line, benchmarks); written with the same constants.
public enum LossKey {
    public static let dLoss = "d.loss", gLoss = "g.loss"
    public static let recA = "g.rec_A", recB = "g.rec_B", idtA = "g.idt_A", idtB = "g.idt_B"
}

/// One U-GAT-IT training step (spec B.2): D update then G update, with the original's losses and weights.
/// Differences from UGATIT-pytorch, by design: fakes are detached in the D update and the discriminators'
/// parameter gradients are not computed in the G update (same result, less work; spec G.18).
///
/// Gradients and updates are split (`discriminatorGradients` … `applyDiscriminator`) so that a data-parallel
/// trainer can all-reduce between them.
public final class UGATITStep {
    public let model: UGATITModel
    public var weights: LossWeights
    public let gOptimizer: Adam
    public let dOptimizer: Adam
    public weak var augment: DiscriminatorAugment?
    /// Generator parameters that receive no update in the next G phase (selective backprop, spec C.3): no gradient,
    /// so Adam leaves value, moments and step count untouched; gradients still flow through them.
    public var frozenGenerator: [Parameter] = []

    /// genA2B(realA) and genB2A(realB) recorded by the D phase on the tapes that the G phase continues: valid while
    /// the generators are unchanged (cleared by `applyGenerator`) and for the same input tensors and frozen set.
    private struct PendingTranslations {
        let chains: Chains
        let realA: Tensor, realB: Tensor
        let frozen: [ObjectIdentifier]
    }
    private var pendingTranslations: PendingTranslations?
    /// genB2A(realB) for the next D phase, on its own tape, recorded by `translateAhead` after `applyGenB2AAhead`:
    /// valid while genB2A is unchanged and for the same input tensor and frozen set.
    private struct ChainBAhead {
        let tape: Tape
        let b: Var
        let b2a: GeneratorOutput
        let realB: Tensor
        let frozen: [ObjectIdentifier]
    }
    private var chainBAhead: ChainBAhead?
    /// Whether genB2A's update of this step was taken ahead (`applyGenB2AAhead`), so that `applyGenerator` updates
    /// only genA2B.
    private var genB2AUpdatedAhead = false
    /// Whether the last D phase took its genB2A(realB) from `translateAhead` (metrics.jsonl `g_b2a_ahead`).
    public private(set) var usedTranslationAhead = false
    /// Called during each phase's backward with every parameter whose gradient is final (`Tape.onGradientFinal`),
    /// from the thread of either chain (see `Chains`).
    public var onGradientFinal: ((Parameter) -> Void)?
    /// Called once in the G phase, after the generators' forward passes and the backward of the G loss's terms that
    /// need no discriminator (cycle, identity, CAM), before the first discriminator call, then cleared: a data-parallel
    /// trainer finishes the D phase's all-reduce and update here, so that this work runs while the D gradients are on
    /// the wire (the G loss's adversarial terms need the updated discriminators, the rest does not).
    public var beforeJudging: (() -> Void)?

    /// The G phase as two mirror-image chains, each on its own tape, run side by side by `Parallel.pair`:
    /// A: realA → genA2B → fakeA2B → (genB2A → fakeA2B2A, D_B), and genB2A(realA);
    /// B: realB → genB2A → fakeB2A → (genA2B → fakeB2A2B, D_A), and genA2B(realB).
    /// Every G loss term lies in one chain, so each chain back-propagates its own part of G_loss; both chains use
    /// both generators, so the A tape keeps its generator gradients apart until they are summed
    /// (`Tape.backward(_:_:)`). Results do not depend on the thread count.
    private struct Chains {
        let tapeA: Tape, tapeB: Tape
        let a: Var, b: Var
        let a2b: GeneratorOutput, b2a: GeneratorOutput
    }

    /// The chains' first calls: genA2B(realA) on A's tape, genB2A(realB) on B's (or B's from `translateAhead`).
    private func translate(realA: Tensor, realB: Tensor) -> Chains {
        let m = model
        let tapeA = Tape(separateGradients: true)
        let frozen = frozenGenerator.map(ObjectIdentifier.init)
        usedTranslationAhead = false
        if let c = chainBAhead, c.realB === realB, c.frozen == frozen {
            chainBAhead = nil
            usedTranslationAhead = true
            // B's cache holds only genB2A's transforms, made after its update: shared as below
            tapeA.winogradWeights = c.tape.winogradWeights
            // chain A as the first half of a pair, as below: the same threads, so the same floats
            let ((a, a2b), _) = Parallel.pair(
                { () -> (Var, GeneratorOutput) in
                    let a = tapeA.constant(realA)
                    return (a, m.genA2B(tapeA, a))
                }, {})
            return Chains(tapeA: tapeA, tapeB: c.tape, a: a, b: c.b, a2b: a2b, b2a: c.b2a)
        }
        chainBAhead = nil
        let tapeB = Tape()
        // the generators do not change while these tapes live (the same condition as `PendingTranslations`)
        let shared = WinogradWeightCache()
        tapeA.winogradWeights = shared
        tapeB.winogradWeights = shared
        let ((a, a2b), (b, b2a)) = Parallel.pair(
            { () -> (Var, GeneratorOutput) in
                let a = tapeA.constant(realA)
                return (a, m.genA2B(tapeA, a))
            },
            { () -> (Var, GeneratorOutput) in
                let b = tapeB.constant(realB)
                return (b, m.genB2A(tapeB, b))
            })
        return Chains(tapeA: tapeA, tapeB: tapeB, a: a, b: b, a2b: a2b, b2a: b2a)
    }

    /// Records the next D phase's genB2A(realB) now, with the G phase's trainable flags for `frozenGenerator` (set it
    /// to the next step's first): `discriminatorGradients` on the same realB tensor then computes only genA2B(realA).
    /// Call after `applyGenB2AAhead` (genB2A must not change before that D phase). The same floats as computing it
    /// there: a separate tape, the same parameters and input. Why: a data-parallel trainer runs it while genA2B's
    /// bucket is still on the wire (`Trainer`, docs/distributed.md §4).
    public func translateAhead(realB: Tensor) {
        precondition(genB2AUpdatedAhead, "translateAhead: genB2A's update must come first (applyGenB2AAhead)")
        setGeneratorTrainable()
        let tape = Tape()
        tape.winogradWeights = WinogradWeightCache()
        let m = model
        // as the second half of a pair, as `translate` runs chain B: the same threads, so the same floats
        let (_, (b, b2a)) = Parallel.pair({}, { () -> (Var, GeneratorOutput) in
            let b = tape.constant(realB)
            return (b, m.genB2A(tape, b))
        })
        chainBAhead = ChainBAhead(
            tape: tape, b: b, b2a: b2a, realB: realB, frozen: frozenGenerator.map(ObjectIdentifier.init))
    }

    public init(
        model: UGATITModel, weights: LossWeights = LossWeights(), optimizer: OptimizerConfig = OptimizerConfig()
    ) {
        self.model = model
        self.weights = weights
        func adam(_ s: ParameterStore) -> Adam {
            Adam(
                s.parameters, lr: optimizer.lr, beta1: optimizer.beta1, beta2: optimizer.beta2,
                weightDecay: optimizer.weightDecay)
        }
        gOptimizer = adam(model.generators)
        dOptimizer = adam(model.discriminators)
    }

    public func setLearningRate(_ lr: Double) {
        gOptimizer.lr = lr
        dOptimizer.lr = lr
    }

    /// The G phase's trainable flags: every generator parameter except the frozen ones.
    private func setGeneratorTrainable() {
        model.generators.setTrainable(true)
        for p in frozenGenerator { p.trainable = false }
    }

    private func judged(_ t: Tape, _ x: Var, _ domain: Domain) -> Var { augment?.augment(t, x, domain: domain) ?? x }

    /// The D loss's terms on real images (spec B.2: MSE(D(real), 1) and its CAM twin per discriminator, and the group
    /// classification of real images, spec C.2), back-propagated into zeroed D gradients: the first half of the D
    /// phase. Only the discriminators' current parameters and the real images enter it, so a data-parallel trainer
    /// can compute it for the next step while the generators' all-reduce is on the wire (`Trainer`), and
    /// `discriminatorGradients(…, judged:)` then adds the fake half. Both paths compute the two halves apart, on their
    /// own tapes, so they give the same floats. No gradient is reported final (`onGradientFinal`): the fake half does.
    public struct RealJudgement {
        /// The images judged (the D phase checks that it receives the same tensors).
        public let realA: Tensor, realB: Tensor
        /// Per domain: the real halves of `d.adv_*` and `d.cam_*`, the group terms, and the domain's real loss.
        fileprivate let values: (a: LossValues, b: LossValues)
        fileprivate let loss: (a: Float, b: Float)
        /// The global and local patch logits on the (augmented) real images, for ADA's r_t (spec D.3).
        fileprivate let logits: (a: (Tensor, Tensor), b: (Tensor, Tensor))
    }

    /// Zeroes the D gradients and back-propagates the real half of D_loss (see `RealJudgement`).
    /// realA, realB: [N, 3, S, S] in [-1, 1]; labels: group per image (Face2Webtoon groups) or nil. Draws the
    /// augmentations of the real images (A, then B: the original order) from `augment`.
    public func judgeReal(realA: Tensor, realB: Tensor, labelsA: [Int]? = nil, labelsB: [Int]? = nil) -> RealJudgement {
        let m = model
        let w = weights
        m.discriminators.zeroGrad()
        m.discriminators.setTrainable(true)
        let (tapeA, tapeB) = (Tape(), Tape())
        let ra = judged(tapeA, tapeA.constant(realA), .a)
        let rb = judged(tapeB, tapeB.constant(realB), .b)
        func domain(
            _ t: Tape, _ real: Var, _ name: String, global: Discriminator, local: Discriminator, labels: [Int]?
        ) -> (values: LossValues, loss: Float, logits: (Tensor, Tensor)) {
            let realG = global(t, real)
            let realL = local(t, real)
            var values: LossValues = [:]
            var terms = adversarialTerms(
                t, [("G" + name, realG), ("L" + name, realL)], target: 1, keys: ("d.adv_", "d.cam_"), into: &values)
            // group classification of real images (heads on the B side, and the A side if configured)
            terms += groupTerms(
                t, [(name, realG, realL, labels)], weight: w.groupD, prefix: "d", accuracyName: "acc_real",
                into: &values)
            let loss = t.weightedSum(terms)
            t.backward(loss)
            return (values, loss.value[0], (realG.logit.value, realL.logit.value))
        }
        let (byB, byA) = Parallel.pair(
            { domain(tapeB, rb, "B", global: m.disGB, local: m.disLB, labels: labelsB) },
            { domain(tapeA, ra, "A", global: m.disGA, local: m.disLA, labels: labelsA) })
        return RealJudgement(
            realA: realA, realB: realB, values: (byA.values, byB.values), loss: (byA.loss, byB.loss),
            logits: (byA.logits, byB.logits))
    }

    /// D phase: zeroes D gradients and back-propagates D_loss into them. realA, realB: [N, 3, S, S] in [-1, 1].
    ///
    /// D_loss is computed in two halves: the real images' terms (`judgeReal`, or `judged` when the trainer computed
    /// them ahead), then the fakes' terms, MSE(D(fake), 0) and its CAM twin, whose backward adds to the same gradients
    /// and reports them final. The two domains' discriminators (GA, LA judge A; GB, LB judge B) share nothing, so each
    /// domain has its own tape and the two run side by side (`Parallel.pair`); augmentations are drawn in the original
    /// order (real A, real B, fake A, fake B), and each discriminator sees its real image before its fake one, as in
    /// the original (spectral norm's power iteration advances on every call).
    @discardableResult
    public func discriminatorGradients(
        realA: Tensor, realB: Tensor, labelsA: [Int]? = nil, labelsB: [Int]? = nil, judged real: RealJudgement? = nil
    ) -> LossValues {
        let m = model
        precondition(
            real.map { $0.realA === realA && $0.realB === realB } ?? true,
            "discriminatorGradients: the real half was judged on other images")
        let r = real ?? judgeReal(realA: realA, realB: realB, labelsA: labelsA, labelsB: labelsB)
        // The translations judged here are exactly the first two of the G phase (the D update does not touch the
        // generators): record them on the G phase's tapes, with its trainable flags, so that it does not recompute them.
        setGeneratorTrainable()
        let chains = translate(realA: realA, realB: realB)
        pendingTranslations = PendingTranslations(
            chains: chains, realA: realA, realB: realB, frozen: frozenGenerator.map(ObjectIdentifier.init))
        m.discriminators.setTrainable(true)
        m.generators.setTrainable(false)
        let (tapeA, tapeB) = (Tape(), Tape())
        let fa = judged(tapeA, tapeA.constant(chains.b2a.image.value), .a)
        let fb = judged(tapeB, tapeB.constant(chains.a2b.image.value), .b)
        /// One domain's fake terms, global then local; backward then finishes the local one first (reverse arena
        /// order, the order in which the overlapped all-reduce takes the buckets: Tape.onGradientFinal, PhaseAverage).
        func domain(
            _ t: Tape, _ fake: Var, _ name: String, global: Discriminator, local: Discriminator, real: LossValues,
            realLoss: Float
        ) -> LossValues {
            var fakes: LossValues = [:]
            let terms = adversarialTerms(
                t, [("G" + name, global(t, fake)), ("L" + name, local(t, fake))], target: 0,
                keys: ("d.adv_", "d.cam_"), into: &fakes)
            // each logged term is its real part plus its fake part, as the original's MSE(real, 1) + MSE(fake, 0)
            var values = real.merging(fakes) { $0 + $1 }
            let loss = t.weightedSum(terms)
            values[LossKey.dLoss] = realLoss + loss.value[0]
            t.onGradientFinal = onGradientFinal
            t.backward(loss)
            return values
        }
        // domain B first: on one thread LB's gradients, whose bucket PhaseAverage takes first (the last in the arena),
        // are final before any of A's (the order of finals is then LB, GB, LA, GA; the buckets go LB, LA, GB, GA)
        let (byB, byA) = Parallel.pair(
            { domain(tapeB, fb, "B", global: m.disGB, local: m.disLB, real: r.values.b, realLoss: r.loss.b) },
            { domain(tapeA, fa, "A", global: m.disGA, local: m.disLA, real: r.values.a, realLoss: r.loss.a) })
        augment?.observeReal(domain: .a, global: r.logits.a.0, local: r.logits.a.1)
        augment?.observeReal(domain: .b, global: r.logits.b.0, local: r.logits.b.1)
        var values = byA.merging(byB) { $1 }
        values[LossKey.dLoss] = byA[LossKey.dLoss]! + byB[LossKey.dLoss]!
        return values
    }

    /// G phase: zeroes G gradients and back-propagates G_loss into them (the two chains of `Chains`), in two walks per
    /// chain: the terms that need no discriminator through the cycle and identity calls, then (after `beforeJudging`)
    /// the adversarial and group terms, down through the translation. The gradients are the same floats as one walk
    /// over the whole loss (`Tape.backward(_:above:)`).
    @discardableResult
    public func generatorGradients(
        realA: Tensor, realB: Tensor, labelsA: [Int]? = nil, labelsB: [Int]? = nil
    ) -> LossValues {
        let m = model
        let w = weights
        m.generators.zeroGrad()
        setGeneratorTrainable()
        m.discriminators.setTrainable(false)
        let c: Chains
        if let p = pendingTranslations, p.realA === realA, p.realB === realB,
            p.frozen == frozenGenerator.map(ObjectIdentifier.init)
        {
            c = p.chains
        } else {
            c = translate(realA: realA, realB: realB)
        }
        pendingTranslations = nil
        let (tapeA, tapeB) = (c.tapeA, c.tapeB)
        // what the tapes held before the G phase: the translations, whose gradients wait for the judged terms
        let boundary = (a: tapeA.count, b: tapeB.count)
        let ((a2b2a, a2a), (b2a2b, b2b)) = Parallel.pair(
            { (m.genB2A(tapeA, c.a2b.image), m.genB2A(tapeA, c.a)) },
            { (m.genA2B(tapeB, c.b2a.image), m.genA2B(tapeB, c.b)) })
        /// One chain's terms of G_loss that need no discriminator: its cycle and identity terms and the CAM terms of
        /// its generator calls, back-propagated at once through the cycle and identity calls
        /// (`Tape.backward(_:above:)`), which leaves the translation's part for the walk after judging.
        func ownTerms(
            _ t: Tape, above boundary: Int, real: Var, cycle: GeneratorOutput, identity: GeneratorOutput,
            translation: GeneratorOutput, source: String
        ) -> (terms: [(Float, Var)], values: LossValues, cam: (source: Float, identity: Float)) {
            let rec = t.l1(cycle.image, real)
            let idt = t.l1(identity.image, real)
            // camA = BCE(genB2A(realB) cam, 1) + BCE(genB2A(realA) cam, 0): its first part lies in chain B, its second
            // in chain A (and likewise camB)
            let camSource = t.bceWithLogits(translation.camLogit, 1)
            let camIdentity = t.bceWithLogits(identity.camLogit, 0)
            let terms = [(w.cycle, rec), (w.identity, idt), (w.cam, camSource), (w.cam, camIdentity)]
            t.backward(t.weightedSum(terms), above: boundary)
            let values = ["g.rec_\(source)": rec.value[0], "g.idt_\(source)": idt.value[0]]
            return (terms, values, (camSource.value[0], camIdentity.value[0]))
        }
        // The generators' own terms do not need the discriminators: with overlap, their backward through four of the
        // six generator calls runs while the D all-reduce is still on the wire (`beforeJudging` comes after it).
        let (ownA, ownB) = Parallel.pair(
            {
                ownTerms(
                    tapeA, above: boundary.a, real: c.a, cycle: a2b2a, identity: a2a, translation: c.a2b, source: "A")
            },
            {
                ownTerms(
                    tapeB, above: boundary.b, real: c.b, cycle: b2a2b, identity: b2b, translation: c.b2a, source: "B")
            })
        if let hook = beforeJudging {
            beforeJudging = nil
            hook()
        }
        // augmentations drawn in the original order (A's fakes, then B's), each on the tape of the chain it judges
        let fa = judged(tapeB, c.b2a.image, .a)
        let fb = judged(tapeA, c.a2b.image, .b)
        /// One chain's judged terms of G_loss: the adversarial and group terms of the fakes it made. `loss` is the
        /// chain's whole G_loss, summed in the original's order (adversarial, cycle, identity, CAM, group).
        func judgedTerms(
            _ t: Tape, fake: Var, _ judge: String, global: Discriminator, local: Discriminator, labels: [Int]?,
            own: [(Float, Var)]
        ) -> (values: LossValues, root: Var, loss: Float) {
            let fakeG = global(t, fake)
            let fakeL = local(t, fake)
            var values: LossValues = [:]
            let adversarial = adversarialTerms(
                t, [("G" + judge, fakeG), ("L" + judge, fakeL)], target: 1, keys: ("g.adv_", "g.cam_adv_"),
                into: &values)
            // a translated face of group g should be classified as group g (and a translated webtoon face likewise)
            let group = groupTerms(
                t, [(judge, fakeG, fakeL, labels)], weight: w.groupG, prefix: "g", accuracyName: "acc_fake",
                into: &values)
            return (values, t.weightedSum(adversarial + group), Tape.weightedSumValue(adversarial + own + group))
        }
        let (byA, byB) = Parallel.pair(
            {
                judgedTerms(
                    tapeA, fake: fb, "B", global: m.disGB, local: m.disLB, labels: labelsA, own: ownA.terms)
            },
            {
                judgedTerms(
                    tapeB, fake: fa, "A", global: m.disGA, local: m.disLA, labels: labelsB, own: ownB.terms)
            })
        var values = byA.values.merging(byB.values) { $1 }.merging(ownA.values) { $1 }.merging(ownB.values) { $1 }
        values["g.cam_A"] = ownB.cam.source + ownA.cam.identity
        values["g.cam_B"] = ownA.cam.source + ownB.cam.identity
        values[LossKey.gLoss] = byA.loss + byB.loss
        // B's chain first: on one thread, genB2A's gradients (the last in the arena) are then final as soon as B's
        // chain is done (A's part of them was walked before judging, and A's walk reports them first), and their
        // all-reduce runs behind A's D_B and genA2B(realA) backward (PhaseAverage takes the buckets last to first)
        Tape.backward(byB.root, byA.root, onGradientFinal: onGradientFinal)
        return values
    }

    /// LSGAN terms (spec B.2) of discriminator outputs against `target`: MSE of the patch logits and of the CAM logit,
    /// each weighted by adv_weight; logs them as `<keys.adv><name>` and `<keys.cam><name>`.
    private func adversarialTerms(
        _ t: Tape, _ outputs: [(String, DiscriminatorOutput)], target: Float, keys: (adv: String, cam: String),
        into values: inout LossValues
    ) -> [(Float, Var)] {
        var terms: [(Float, Var)] = []
        for (name, o) in outputs {
            let adv = t.mse(o.logit, target)
            let cam = t.mse(o.camLogit, target)
            values[keys.adv + name] = adv.value[0]
            values[keys.cam + name] = cam.value[0]
            terms += [(weights.adv, adv), (weights.adv, cam)]
        }
        return terms
    }

    /// Cross-entropy of the global and local group heads against `labels`, per side that has heads and labels;
    /// logs `<prefix>.group_<side>` and `<prefix>.group_<accuracyName>_<side>` (global head).
    private func groupTerms(
        _ t: Tape, _ sides: [(String, DiscriminatorOutput, DiscriminatorOutput, [Int]?)], weight: Float,
        prefix: String, accuracyName: String, into values: inout LossValues
    ) -> [(Float, Var)] {
        var terms: [(Float, Var)] = []
        for (name, g, l, labels) in sides {
            guard let labels, let gl = g.groupLogit, let ll = l.groupLogit else { continue }
            let ce = t.add(t.crossEntropy(gl, labels: labels), t.crossEntropy(ll, labels: labels))
            values["\(prefix).group_\(name)"] = ce.value[0]
            values["\(prefix).group_\(accuracyName)_\(name)"] = accuracy(gl.value, labels)
            if weights.useGroupLoss { terms.append((weight, ce)) }
        }
        return terms
    }

    /// Adam step on the discriminators.
    /// (Both updates end with `TensorMemory.releaseFreedMemory()`: the phase's activations have just been freed.)
    public func applyDiscriminator() {
        dOptimizer.step()
        TensorMemory.releaseFreedMemory()
    }

    /// Adam step on the generators, then rho clipped to [0, 1] (only genA2B's step after `applyGenB2AAhead`).
    public func applyGenerator() {
        pendingTranslations = nil
        if genB2AUpdatedAhead {
            genB2AUpdatedAhead = false
            gOptimizer.step { !genB2AIDs.contains(ObjectIdentifier($0)) }
        } else {
            chainBAhead = nil
            gOptimizer.step()
        }
        model.clipRho()
        TensorMemory.releaseFreedMemory()
    }

    /// genB2A's parameters (in the generators' store, after genA2B's).
    public private(set) lazy var genB2AParameters = model.generators.parameters.filter { $0.name.hasPrefix("genB2A.") }
    private lazy var genB2AIDs = Set(genB2AParameters.map(ObjectIdentifier.init))

    /// The first part of the generators' update, taken ahead: Adam on genB2A alone, then genB2A's rho clipped;
    /// `applyGenerator` then updates genA2B (and clips its rho). The same floats as one update of both: Adam's
    /// arithmetic and step count are per parameter, and the clip is per element. Why: genB2A's gradients are final
    /// first, so a data-parallel trainer has them averaged first and can translate with the new genB2A
    /// (`translateAhead`) while genA2B's are still on the wire.
    public func applyGenB2AAhead() {
        precondition(!genB2AUpdatedAhead, "applyGenB2AAhead: called twice in one step")
        pendingTranslations = nil
        chainBAhead = nil
        genB2AUpdatedAhead = true
        gOptimizer.step { genB2AIDs.contains(ObjectIdentifier($0)) }
        model.clipRho(genB2AParameters)
    }

    /// A whole single-process step: D gradients, D update, G gradients, G update.
    @discardableResult
    public func step(realA: Tensor, realB: Tensor) -> LossValues {
        var v = discriminatorGradients(realA: realA, realB: realB)
        applyDiscriminator()
        v.merge(generatorGradients(realA: realA, realB: realB)) { $1 }
        applyGenerator()
        return v
    }
}

/// Share of rows of logits [N, K] whose arg-max is the label.
func accuracy(_ logits: Tensor, _ labels: [Int]) -> Float {
    let k = logits.shape[1]
    var hits = 0
    for (i, y) in labels.enumerated() {
        var best = 0
        for j in 1..<k where logits[i * k + j] > logits[i * k + best] { best = j }
        if best == y { hits += 1 }
    }
    return Float(hits) / Float(max(labels.count, 1))
}
