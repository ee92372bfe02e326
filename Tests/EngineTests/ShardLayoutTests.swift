import Engine
import XCTest

/// ZeRO-1 ownership (`ShardLayout`): every element of the covered arena belongs to exactly one rank, blocks are
/// even within a bucket, and excluded ranges belong to nobody.
final class ShardLayoutTests: XCTestCase {
    func testBlocksPartitionEveryBucketEvenly() {
        let l = ShardLayout(arenaCount: 23, excluding: [(5, 4)], bucketElements: 6, worldSize: 3)
        XCTAssertEqual(l.buckets.map { [$0.offset, $0.count] }, [[0, 5], [9, 6], [15, 6], [21, 2]])
        XCTAssertEqual(l.counts(0), [1, 2, 2])  // ⌊5r/3⌋ boundaries: 0, 1, 3, 5
        XCTAssertEqual(l.counts(1), [2, 2, 2])
        XCTAssertEqual(l.counts(3), [0, 1, 1])
        var owner = [Int](repeating: -1, count: 23)
        for b in l.buckets.indices {
            for r in 0..<3 {
                for i in l.block(b, rank: r) {
                    XCTAssertEqual(owner[i], -1, "element \(i) owned twice")
                    owner[i] = r
                }
            }
        }
        XCTAssertEqual(owner.indices.filter { owner[$0] == -1 }, [5, 6, 7, 8], "exactly the excluded range unowned")
        XCTAssertEqual((0..<3).map(l.ownedCount(rank:)).reduce(0, +), 19)
    }

    func testBucketsEndAtNetworkBoundaries() {
        // a split at 12 (where the second network begins) and one inside the excluded range, which changes nothing
        let l = ShardLayout(arenaCount: 23, excluding: [(5, 4)], splitAt: [12, 6], bucketElements: 6, worldSize: 2)
        XCTAssertEqual(l.buckets.map { [$0.offset, $0.count] }, [[0, 5], [9, 3], [12, 6], [18, 5]])
        let store = ParameterStore()
        store.add("genA2B.a", Tensor(zeros: [3]))
        store.add("genA2B.b", Tensor(zeros: [2]))
        store.add("genB2A.a", Tensor(zeros: [3]))
        store.add("genB2A.b", Tensor(zeros: [1]))
        store.finalize()
        XCTAssertEqual(store.networkStarts, [5])
    }

    func testOwnedRangesOfAParameterCoverItOnce() {
        let l = ShardLayout(arenaCount: 100, bucketElements: 30, worldSize: 4)
        let param = 25..<70  // spans three buckets
        XCTAssertTrue(l.covers(param))
        var seen = [Int](repeating: 0, count: param.count)
        for r in 0..<4 {
            let ranges = l.owned(param, rank: r)
            XCTAssertEqual(ranges, ranges.sorted { $0.lowerBound < $1.lowerBound })
            for k in ranges { for j in k { seen[j] += 1 } }
        }
        XCTAssertEqual(seen, [Int](repeating: 1, count: param.count))
        let excluded = ShardLayout(arenaCount: 100, excluding: [(40, 20)], bucketElements: 30, worldSize: 4)
        XCTAssertFalse(excluded.covers(40..<60))
        XCTAssertTrue(excluded.covers(35..<45))
    }

    /// A sharded Adam updates exactly its owned elements, with the same numbers as the unsharded one there.
    func testShardedAdamUpdatesItsBlocksAsTheWholeOne() {
        func model() -> ParameterStore {
            let s = ParameterStore()
            s.add("a", Tensor(shape: [7], (0..<7).map { Float($0) * 0.1 }))
            s.add("b", Tensor(shape: [2, 5], (0..<10).map { Float($0) * -0.2 }))
            s.finalize()
            for p in s.parameters {
                for i in 0..<p.grad.count { p.grad[i] = Float(i + 1) * 0.01 * Float(p.value.count) }
                p.hasGrad = true
            }
            return s
        }
        let whole = model()
        let reference = Adam(whole.parameters, lr: 0.01)
        reference.step()
        let layout = ShardLayout(arenaCount: 17, bucketElements: 6, worldSize: 2)
        for rank in 0..<2 {
            let s = model()
            let before = s.values.array
            let adam = Adam(s.parameters, lr: 0.01)
            adam.shard(layout, rank: rank)
            adam.step()
            let mine = Set(layout.buckets.indices.flatMap { layout.block($0, rank: rank) })
            for i in 0..<17 {
                XCTAssertEqual(s.values[i], mine.contains(i) ? whole.values[i] : before[i], "rank \(rank) element \(i)")
            }
            XCTAssertEqual(adam.m.reduce(0) { $0 + $1.count }, layout.ownedCount(rank: rank))
            XCTAssertEqual(adam.steps, [1, 1])
        }
    }
}
