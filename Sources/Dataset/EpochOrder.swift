import Engine
import Foundation

/// Epoch shuffling and the rank sharding rule.
///
/// The global sample stream is the concatenation of one permutation of 0..<count per epoch
/// (Fisher–Yates driven by `RandomGenerator(seed:, stream: [tagPermutation, epoch, tag])`). Rank r
/// of W takes the stream positions p with p mod W == r. So for a fixed global batch (B·W), the set of
/// samples in a step is the same whatever the number of ranks.
public final class EpochOrder: @unchecked Sendable {
    public let count: Int
    public let seed: UInt64
    public let tag: UInt64
    private let lock = NSLock()
    private var cache: [Int: [Int]] = [:]

    /// - Parameter tag: separates independent streams (e.g. the domain, or domain·16 + group).
    public init(count: Int, seed: UInt64, tag: UInt64 = 0) {
        precondition(count > 0, "EpochOrder over an empty set")
        self.count = count
        self.seed = seed
        self.tag = tag
    }

    /// A permutation of 0..<count for (seed, epoch, tag).
    public static func permutation(count: Int, seed: UInt64, epoch: Int, tag: UInt64 = 0) -> [Int] {
        var rng = RandomGenerator(seed: seed, stream: [0x5045_524D, UInt64(bitPattern: Int64(epoch)), tag])  // "PERM"
        var p = Array(0..<count)
        var i = count - 1
        while i > 0 {
            p.swapAt(i, rng.int(i + 1))
            i -= 1
        }
        return p
    }

    /// The elements of `order` at positions i with i mod worldSize == rank.
    public static func shard<T>(_ order: [T], rank: Int, worldSize: Int) -> [T] {
        precondition(worldSize > 0 && rank >= 0 && rank < worldSize, "rank \(rank) of \(worldSize)")
        return order.enumerated().filter { $0.offset % worldSize == rank }.map(\.element)
    }

    /// The permutation of `epoch` (cached; the two most recent epochs are kept).
    public func order(epoch: Int) -> [Int] {
        lock.lock()
        if let p = cache[epoch] {
            lock.unlock()
            return p
        }
        lock.unlock()
        let p = EpochOrder.permutation(count: count, seed: seed, epoch: epoch, tag: tag)
        lock.lock()
        if cache.count >= 2, let oldest = cache.keys.min() { cache[oldest] = nil }
        cache[epoch] = p
        lock.unlock()
        return p
    }

    /// Stream position p (0, 1, 2, … across epochs) as (epoch, index).
    public func item(at p: Int) -> (index: Int, epoch: Int) {
        let e = p / count
        return (order(epoch: e)[p % count], e)
    }

    /// Rank `rank`'s share of global step `step` with `batchSize` samples per rank: stream positions
    /// (step·batchSize + j)·worldSize + rank for j in 0..<batchSize.
    public func batchItems(step: Int, batchSize: Int, rank: Int = 0, worldSize: Int = 1) -> [(index: Int, epoch: Int)] {
        precondition(worldSize > 0 && rank >= 0 && rank < worldSize, "rank \(rank) of \(worldSize)")
        return (0..<batchSize).map { item(at: (step * batchSize + $0) * worldSize + rank) }
    }
}
