import Distributed
import Engine
import XCTest

@testable import Training

/// The gradient all-reduce's bucket layout around parameters that go by the low-rank exchange.
final class DataParallelTests: XCTestCase {
    func testSegmentsLeaveOutTheExcludedRanges() {
        XCTAssertEqual(DataParallel.segments(count: 10, excluding: []).map { [$0.0, $0.1] }, [[0, 10]])
        XCTAssertEqual(
            DataParallel.segments(count: 10, excluding: [(6, 2), (0, 3)]).map { [$0.0, $0.1] }, [[3, 3], [8, 2]])
        XCTAssertEqual(DataParallel.segments(count: 4, excluding: [(0, 4)]).map { [$0.0, $0.1] }, [])
    }

    /// On one rank, `average(lowRank:)` forms the factor product into the gradient and leaves the rest alone.
    func testOneRankLowRankAverageFormsTheGradient() {
        let store = ParameterStore()
        let a = store.add("a", Tensor(shape: [2], [1, 2]))
        let w = store.add("w", Tensor(zeros: [2, 3]))
        store.finalize()
        a.grad.assign(Tensor(shape: [2], [0.5, -1]))
        let f = LowRankGradient(inFeatures: 3, outFeatures: 2)
        let t = Tape()
        let y = t.linear(t.input(Tensor(shape: [1, 3], [1, 2, 3])), t.param(w), lowRank: f)
        t.backward(y, seed: Tensor(shape: [1, 2], [1, -2]))
        var values: [Float] = [7]
        let ok = DataParallel(comm: SingleRankCommunicator()).average(
            store, values: &values, operation: "g", lowRank: [(w, f)])
        XCTAssertTrue(ok)
        XCTAssertEqual(values, [7])
        XCTAssertEqual(a.grad.array, [0.5, -1])
        XCTAssertEqual(w.grad.array, [1, 2, 3, -2, -4, -6])  // dyᵀ·x
        XCTAssertEqual(f.rows, 0, "factors are consumed")
    }
}
