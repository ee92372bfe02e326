/// Which rank writes which tensor. Greedy largest-first: tensors sorted by byte size (descending, ties by
/// name) each go to the rank with the fewest bytes so far (ties: lowest rank). Deterministic, so every rank
/// computes the same plan from the same list, and the largest shard exceeds the mean by at most one tensor.
public struct ShardPlan: Equatable, Sendable {
    /// `rank[i]`: the rank that writes tensor i (index in the input list).
    public let rank: [Int]
    /// Raw bytes assigned to each rank.
    public let bytes: [Int]

    public init(names: [String], byteCounts: [Int], worldSize: Int) {
        precondition(
            names.count == byteCounts.count && worldSize >= 1,
            "plan: \(names.count) names, \(byteCounts.count) sizes, world \(worldSize)")
        let order = names.indices.sorted {
            byteCounts[$0] != byteCounts[$1] ? byteCounts[$0] > byteCounts[$1] : names[$0] < names[$1]
        }
        var rank = [Int](repeating: 0, count: names.count)
        var load = [Int](repeating: 0, count: worldSize)
        for i in order {
            let r = load.indices.min { load[$0] != load[$1] ? load[$0] < load[$1] : $0 < $1 }!
            rank[i] = r
            load[r] += byteCounts[i]
        }
        self.rank = rank
        bytes = load
    }

    /// Indices of the tensors rank `r` writes, in input order (the order inside its shard).
    public func tensors(of r: Int) -> [Int] { rank.indices.filter { rank[$0] == r } }
}
