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

/// Where training batches come from (a prefetching image loader, or generated data for benchmarks).
public protocol BatchSource: AnyObject {
    /// The (A, B) batch for 1-based `step`.
    func batch(step: Int) throws -> (a: Batch, b: Batch)
    /// Seconds the caller has spent waiting for data so far.
    var waitSeconds: Double { get }
    /// Number of separately ordered sample streams (group slots), and the one step s draws from.
    var groupSlots: Int { get }
    func groupSlot(step s: Int) -> Int
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
