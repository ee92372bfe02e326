import ADA
import Dataset
import Engine
import Foundation
import UGATIT

/// Everything that defines a training run; written into every checkpoint so that `translate`, `inspect` and
/// resume read the model shape from it instead of asking again.
public struct TrainConfig: Codable, Equatable, Sendable {
    public var model: ModelConfig
    public var weights: LossWeights
    public var optimizer: OptimizerConfig
    public var iterations: Int
    public var batchSize: Int
    public var seed: UInt64
    /// Progress line every N steps.
    public var printEvery: Int
    /// Sample grids every N steps (0: only at the end).
    public var sampleEvery: Int
    /// Checkpoint every N steps (0: only at the end).
    public var saveEvery: Int
    /// Adaptive discriminator augmentation.
    public var ada = ADAConfig()
    /// Group feeding (Face2Webtoon), or nil to ignore group folders.
    public var groups: GroupConfig?
    /// Selective backprop of the encoder residual blocks (spec C.3).
    public var bottleneck: BottleneckUpdate = .group0
    /// The base group whose steps update the bottleneck in `.group0` mode.
    public var baseGroup = 0
    /// How the generators' FC.0 weight gradients travel between ranks (nil: `.auto`).
    public var fcExchange: FCExchange?
    /// The gradients' wire format in the all-reduce (nil: fp32).
    public var gradWire: GradWire?
    /// ZeRO stage 1: each rank keeps the Adam moments of 1/N of the parameters (nil: false). Checkpoints store the
    /// moments whole either way, so a run can resume with or without it at any world size.
    public var shardOptimizer: Bool?

    public init(
        model: ModelConfig, weights: LossWeights = LossWeights(), optimizer: OptimizerConfig = OptimizerConfig(),
        iterations: Int, batchSize: Int = 1, seed: UInt64 = 0, printEvery: Int = 10,
        sampleEvery: Int = 500, saveEvery: Int = 1000
    ) {
        self.model = model
        self.weights = weights
        self.optimizer = optimizer
        self.iterations = iterations
        self.batchSize = batchSize
        self.seed = seed
        self.printEvery = printEvery
        self.sampleEvery = sampleEvery
        self.saveEvery = saveEvery
    }

    /// Problems that make this run impossible, as messages for the user.
    public func problems() -> [String] {
        var out = model.problems()
        if iterations < 1 { out.append("iterations must be at least 1") }
        if batchSize < 1 { out.append("batch size must be at least 1") }
        return out
    }

    public func json() -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return (try? String(data: e.encode(self), encoding: .utf8)) ?? "{}"
    }
}

/// How FC.0's weight gradient is exchanged between ranks (`train --fc-exchange`).
public enum FCExchange: String, Codable, Sendable, CaseIterable {
    /// `lowrank` for the full generator when it moves fewer bytes than the all-reduce, else `dense`.
    case auto
    /// Part of the gradient all-reduce, as every other parameter.
    case dense
    /// Exact low-rank form: every rank all-gathers the inputs and output gradients of FC.0's calls
    /// (`LowRankGradient`, `DataParallel.average(lowRank:)`).
    case lowrank

    /// FC.0 calls per generator in a G update, per image: translation, cycle and identity (spec B.2).
    public static let callsPerImage = 3

    /// Floats one rank sends per step for one generator's FC.0: a ring all-reduce of in·out floats moves
    /// 2(N − 1)/N of them; an all-gather of rows·(in + out) factor floats moves (N − 1) times its own share.
    public static func floatsPerRank(
        lowRank: Bool, inFeatures fin: Int, outFeatures fout: Int, rows: Int, worldSize n: Int
    ) -> Double {
        let nn = Double(n)
        return lowRank ? (nn - 1) * Double(rows * (fin + fout)) : 2 * (nn - 1) / nn * Double(fin * fout)
    }

    /// Whether FC.0 goes low-rank for this model, world size and batch per rank.
    public func usesLowRank(model: ModelConfig, worldSize n: Int, batchPerRank b: Int) -> Bool {
        switch self {
        case .dense: return false
        case .lowrank: return true
        case .auto:
            guard !model.light, n > 1 else { return false }
            let d = 4 * model.ch
            let fin = GeneratorConfig(ngf: model.ch, blocks: model.blocks, imageSize: model.imageSize).fullFCInput
            let rows = FCExchange.callsPerImage * b
            return FCExchange.floatsPerRank(lowRank: true, inFeatures: fin, outFeatures: d, rows: rows, worldSize: n)
                < FCExchange.floatsPerRank(lowRank: false, inFeatures: fin, outFeatures: d, rows: rows, worldSize: n)
        }
    }
}

extension FCExchange {
    /// Sets up the low-rank exchange on the generators' FC.0 when this mode uses it for `model`.
    /// - Returns: the (weight, factors) pairs for `DataParallel.average(lowRank:)`; empty for the dense path.
    public func attach(to model: UGATITModel, worldSize: Int, batchPerRank: Int) -> [(Parameter, LowRankGradient)] {
        guard usesLowRank(model: model.config, worldSize: worldSize, batchPerRank: batchPerRank) else { return [] }
        return [model.genA2B, model.genB2A].map { g in
            let w = g.fcFirstWeight
            let f = LowRankGradient(inFeatures: w.shape[1], outFeatures: w.shape[0])
            g.fcLowRank = f
            return (w, f)
        }
    }
}

/// Where training batches come from (a prefetching image loader, or generated data for benchmarks).
public protocol BatchSource: AnyObject {
    /// The (A, B) batch for 1-based `step`.
    func batch(step: Int) throws -> (a: Batch, b: Batch)
    /// Seconds the caller has spent waiting for data so far.
    var waitSeconds: Double { get }
    /// Number of separately ordered sample streams (group slots), and the one step s draws from.
    var groupSlots: Int { get }
    func groupSlot(step s: Int) -> Int
    /// What every rank's data must agree on (image counts per domain and group): ranks reading other data would
    /// train on a mixture nobody asked for. Empty: nothing to compare.
    var agreement: String { get }
}

extension BatchSource {
    public var agreement: String { "" }
}

/// When the generators' encoder residual blocks ("bottleneck", DownBlock.12...) are updated (spec C.3).
public enum BottleneckUpdate: String, Codable, Sendable {
    /// Only on steps of the base group (the Face2Webtoon README's meaning): no gradient, moment or decay otherwise.
    case group0
    /// Never (what the published Face2Webtoon code does).
    case frozen
    /// On every step.
    case always
}
