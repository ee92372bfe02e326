import XCTest

@testable import Engine

/// `Tape.linear(lowRank:)` keeps the weight gradient as factors whose product is the dense gradient.
final class LowRankGradientTests: XCTestCase {
    func testFactorsGiveTheDenseWeightGradientOverSeveralCalls() {
        var rng = RandomGenerator(seed: 9)
        let w = Parameter(name: "w", value: rng.normalTensor([5, 7]))
        let w2 = Parameter(name: "w2", value: w.value.copy())
        let inputs = [rng.normalTensor([2, 7]), rng.normalTensor([1, 7]), rng.normalTensor([3, 7])]
        let f = LowRankGradient(inFeatures: 7, outFeatures: 5)
        for (p, lowRank) in [(w, nil), (w2, f)] as [(Parameter, LowRankGradient?)] {
            let t = Tape()
            let outs = inputs.map { t.tanh(t.linear(t.input($0), t.param(p), lowRank: lowRank)) }
            t.backward(t.sum(t.concatBatch(outs.map { t.reshape($0, [$0.shape[0], 5, 1, 1]) })))
        }
        XCTAssertTrue(w2.hasGrad)
        XCTAssertEqual(w2.grad.array, [Float](repeating: 0, count: 35), "no dense gradient was formed")
        XCTAssertEqual(f.rows, 6)
        f.x.withUnsafeBufferPointer { x in
            f.dy.withUnsafeBufferPointer { dy in
                LowRankGradient.accumulate(dy: dy.baseAddress!, x: x.baseAddress!, rows: 6, scale: 1, into: w2.grad)
            }
        }
        for i in 0..<35 { XCTAssertEqual(w2.grad[i], w.grad[i], accuracy: 1e-5 * max(1, abs(w.grad[i]))) }
    }
}
