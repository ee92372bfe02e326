/// Which rank keeps and updates which optimizer state: ZeRO stage 1 (Rajbhandari et al. 2020, "ZeRO: Memory
/// Optimizations Toward Training Trillion Parameter Models", §5.1, P_os), over one parameter arena.
///
/// The arena (less the `excluding` ranges: parameters whose gradients travel another way and whose state stays
/// replicated, e.g. FC.0 under the low-rank exchange) is cut into gradient buckets of at most `bucketElements`
/// floats, the same buckets the gradient averaging uses. Each bucket is split into `worldSize` blocks,
/// rank r's block being [offset + count·r/N, offset + count·(r+1)/N): a reduce-scatter of the bucket leaves each rank
/// the summed gradient of its block, the rank updates that block's parameters with its share of the Adam moments,
/// and an all-gather of the bucket hands every rank the updated values. Splitting every bucket (rather than the
/// arena once) keeps each collective bucket-sized and lets the reduce-scatters overlap backward like the all-reduces.
public struct ShardLayout: Sendable {
    /// The gradient buckets in the arena, (offset, count), in arena order. One empty bucket at the end of the arena when
    /// nothing is left to reduce.
    public let buckets: [(offset: Int, count: Int)]
    public let worldSize: Int

    /// - Parameters: `arenaCount`: elements in the arena; `excluding`: (offset, count) ranges left out; `splitAt`:
    ///   offsets where a bucket must end (network boundaries, so that one network's gradients do not wait in a
    ///   bucket for another's); `bucketElements` ≥ 1.
    public init(
        arenaCount n: Int, excluding: [(Int, Int)] = [], splitAt: [Int] = [], bucketElements: Int, worldSize: Int
    ) {
        precondition(bucketElements >= 1 && worldSize >= 1, "ShardLayout: bucket \(bucketElements), world \(worldSize)")
        var out: [(offset: Int, count: Int)] = []
        // a split is an empty exclusion: segments end there
        for (o, l) in Self.segments(count: n, excluding: excluding + splitAt.map { ($0, 0) }) where l > 0 {
            var a = o
            while a < o + l {
                let len = min(bucketElements, o + l - a)
                out.append((a, len))
                a += len
            }
        }
        buckets = out.isEmpty ? [(n, 0)] : out
        self.worldSize = worldSize
    }

    /// [0, count) without the `excluding` ranges (offset, length), as (offset, length) segments in order.
    public static func segments(count n: Int, excluding: [(Int, Int)]) -> [(Int, Int)] {
        var out: [(Int, Int)] = []
        var at = 0
        for (o, l) in excluding.sorted(by: { $0.0 < $1.0 }) {
            if o > at { out.append((at, o - at)) }
            at = max(at, o + l)
        }
        if at < n { out.append((at, n - at)) }
        return out
    }

    /// Rank r's block of bucket b, as an arena range.
    public func block(_ b: Int, rank r: Int) -> Range<Int> {
        let (o, c) = buckets[b]
        return (o + c * r / worldSize)..<(o + c * (r + 1) / worldSize)
    }

    /// Elements of each rank's block of bucket b (for the collectives' counts).
    public func counts(_ b: Int) -> [Int] { (0..<worldSize).map { block(b, rank: $0).count } }

    /// Whether the buckets cover the arena range `range` (false for an excluded, replicated parameter).
    public func covers(_ range: Range<Int>) -> Bool {
        buckets.contains { $0.count > 0 && $0.offset < range.upperBound && range.lowerBound < $0.offset + $0.count }
    }

    /// The parts of the arena range `range` in rank r's blocks, relative to `range.lowerBound`, in increasing order.
    public func owned(_ range: Range<Int>, rank r: Int) -> [Range<Int>] {
        var out: [Range<Int>] = []
        for b in buckets.indices {
            let k = block(b, rank: r).clamped(to: range)
            if !k.isEmpty { out.append((k.lowerBound - range.lowerBound)..<(k.upperBound - range.lowerBound)) }
        }
        return out
    }

    /// Elements of rank r's blocks in all buckets (the sharded optimizer state per moment).
    public func ownedCount(rank r: Int) -> Int { buckets.indices.reduce(0) { $0 + block($1, rank: r).count } }
}
