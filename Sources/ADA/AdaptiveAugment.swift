import Engine
import Foundation
import UGATIT

/// ADA settings (spec D.3, adapted to LSGAN: sign(logit − 0.5), since U-GAT-IT's targets are 1 and 0).
public struct ADAConfig: Codable, Equatable, Sendable {
    public enum Mode: String, Codable, Sendable { case adaptive, fixed, off }
    public var mode: Mode = .adaptive
    /// Initial (adaptive) or constant (fixed) strength p, for both domains.
    public var p: Double = 0
    public var target: Double = 0.6
    /// Steps between adjustments.
    public var interval: Int = 4
    /// Thousands of images for p to move by 1.
    public var kimg: Double = 500
    /// Which discriminators' outputs on augmented real images feed r_t.
    public var useGlobal = true
    public var useLocal = false
    public var augment = AugmentConfig()
    public init() {}
}

/// The per-domain augmentation state that must survive a checkpoint: strength p and the r_t accumulators.
public struct ADAState: Codable, Equatable, Sendable {
    public var p: [Double]  // [p_A, p_B]
    public var signSum: [Double] = [0, 0]  // global Σ sign(logit − 0.5) since the last adjustment, per domain
    public var count: [Double] = [0, 0]
    public var lastRt: [Double] = [0, 0]
}

/// Adaptive discriminator augmentation for U-GAT-IT (one strength per domain, p_A for the A-side discriminators,
/// p_B for the B side). Plugs into `UGATITStep` as its `DiscriminatorAugment`.
///
/// Randomness: image i of a call uses `RandomGenerator(seed:, stream: [step, call, globalIndex(i), domain])`, so a
/// sample gets the same transform whichever rank holds it. The trainer sets `step` and `globalIndices` per step.
public final class AdaptiveAugment: DiscriminatorAugment {
    public let config: ADAConfig
    public var state: ADAState
    public let seed: UInt64
    public var step = 0
    /// Global sample index (position in the global batch) of each image of this rank's batch.
    public var globalIndices: [Int] = [0]
    public var debug: AugmentDebug?
    /// Debug: record this sign for every observed logit instead of the real one (distributed tests).
    public var forcedSign: Double?
    private var call = 0
    /// This rank's statistics since the last reduction: [signSum_A, count_A, signSum_B, count_B].
    public private(set) var localStats: [Double] = [0, 0, 0, 0]

    public init(config: ADAConfig, seed: UInt64) {
        self.config = config
        self.seed = seed
        state = ADAState(p: [config.mode == .off ? 0 : config.p, config.mode == .off ? 0 : config.p])
    }

    public func p(_ d: Domain) -> Double { state.p[d == .a ? 0 : 1] }

    /// Starts a step: resets the call counter (the D phase and the G phase draw fresh transforms). `callsMade`: calls
    /// of step s already drawn (a trainer that judged the step's real images ahead, `UGATITStep.judgeReal`, resumes
    /// the count after them, so that every call of a step draws the same transforms either way).
    public func beginStep(_ s: Int, globalIndices: [Int], callsMade: Int = 0) {
        step = s
        call = callsMade
        self.globalIndices = globalIndices
    }

    /// The calls drawn so far in this step.
    public var callsThisStep: Int { call }

    public func augment(_ t: Tape, _ x: Var, domain: Domain) -> Var {
        guard config.mode != .off || debug != nil else { return x }
        let pd = p(domain)
        call += 1
        let n = x.shape[0]
        precondition(
            globalIndices.count == n, "AdaptiveAugment: \(globalIndices.count) global indices for a batch of \(n)")
        let (h, w) = (x.shape[2], x.shape[3])
        var items: [Var] = []
        var any = false
        for i in 0..<n {
            var rng = RandomGenerator(
                seed: seed,
                stream: [
                    0x4144_41, UInt64(step), UInt64(call), UInt64(globalIndices[i]),
                    domain == .a ? 0 : 1,
                ])
            let inv = AugmentPipe.sampleInverse(
                p: pd, width: w, height: h, config: config.augment, debug: debug, rng: &rng)
            any = any || !inv.isIdentity
            items.append(inv.isIdentity ? t.batchItem(x, i) : AugmentPipe.apply(t, t.batchItem(x, i), inverse: inv))
        }
        return any ? (n == 1 ? items[0] : t.concatBatch(items)) : x
    }

    /// Accumulates sign(logit − 0.5) over the patch logits of augmented real images (D phase).
    public func observeReal(domain: Domain, global: Tensor, local: Tensor) {
        guard config.mode == .adaptive else { return }
        let k = domain == .a ? 0 : 2
        for (use, l) in [(config.useGlobal, global), (config.useLocal, local)] where use {
            for i in 0..<l.count { localStats[k] += forcedSign ?? (l[i] > 0.5 ? 1 : (l[i] < 0.5 ? -1 : 0)) }
            localStats[k + 1] += Double(l.count)
        }
    }

    /// Takes this rank's statistics for the all-reduce (and clears them).
    public func takeLocalStats() -> [Double] {
        defer { localStats = [0, 0, 0, 0] }
        return localStats
    }

    /// Adds globally reduced statistics [signSum_A, count_A, signSum_B, count_B].
    public func addGlobalStats(_ s: [Double]) {
        state.signSum[0] += s[0]
        state.count[0] += s[1]
        state.signSum[1] += s[2]
        state.count[1] += s[3]
    }

    /// The adjustment after `interval` steps (spec D.3): r_t = mean sign; p ← clamp(p + sign(r_t − target)·
    /// (global batch · interval)/(kimg · 1000), 0, 1). A domain without observations keeps its p.
    /// - Returns: r_t per domain (nil where nothing was observed).
    @discardableResult
    public func adjust(globalBatch: Int) -> [Double?] {
        guard config.mode == .adaptive else { return [nil, nil] }
        var out: [Double?] = [nil, nil]
        for d in 0..<2 where state.count[d] > 0 {
            let rt = state.signSum[d] / state.count[d]
            let delta = Double(globalBatch * config.interval) / (config.kimg * 1000)
            let sign: Double = rt > config.target ? 1 : (rt < config.target ? -1 : 0)
            state.p[d] = min(max(state.p[d] + sign * delta, 0), 1)
            state.lastRt[d] = rt
            out[d] = rt
            state.signSum[d] = 0
            state.count[d] = 0
        }
        return out
    }
}
