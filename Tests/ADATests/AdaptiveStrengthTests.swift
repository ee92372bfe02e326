import ADA
import Engine
import XCTest

/// The strength heuristic (spec D.3, LSGAN threshold 0.5): r_t from the reduced signs, p moves by
/// (global batch · interval)/(kimg · 1000) towards the target, clamped to [0, 1].
final class AdaptiveStrengthTests: XCTestCase {
    func make(p: Double) -> AdaptiveAugment {
        var c = ADAConfig()
        c.p = p
        c.interval = 4
        c.kimg = 500
        c.target = 0.6
        return AdaptiveAugment(config: c, seed: 0)
    }

    func testSignsAreCountedAroundOneHalf() {
        let a = make(p: 0)
        a.observeReal(
            domain: .b, global: Tensor(shape: [1, 1, 2, 2], [0.9, 0.7, 0.2, 0.51]), local: Tensor(zeros: [1, 1, 3, 3]))
        XCTAssertEqual(a.takeLocalStats(), [0, 0, 2, 4])  // local D not used by default
        XCTAssertEqual(a.takeLocalStats(), [0, 0, 0, 0])
    }

    /// Rank 0 reports all positive, rank 1 all negative: the global mean is 0 < 0.6, so p falls by one step.
    func testGlobalMeanDecidesAndStepSizeFollowsTheGlobalBatch() {
        let a = make(p: 0.5)
        for _ in 0..<4 { a.addGlobalStats([0, 0, 36 - 36, 72]) }  // per step: +36 from rank 0, −36 from rank 1
        let rt = a.adjust(globalBatch: 2)
        XCTAssertEqual(rt[1]!, 0)
        XCTAssertNil(rt[0], "domain A saw nothing and keeps its p")
        XCTAssertEqual(a.state.p[1], 0.5 - 2.0 * 4 / 500_000, accuracy: 1e-15)
        XCTAssertEqual(a.state.p[0], 0.5)
        for _ in 0..<4 { a.addGlobalStats([72, 72, 72, 72]) }
        a.adjust(globalBatch: 2)
        XCTAssertEqual(a.state.p[1], 0.5, accuracy: 1e-15)
        XCTAssertEqual(a.state.p[0], 0.5 + 8.0 / 500_000, accuracy: 1e-15)
    }

    func testStrengthIsClampedToTheUnitInterval() {
        let a = make(p: 0)
        a.addGlobalStats([-10, 10, -10, 10])
        a.adjust(globalBatch: 1_000_000)
        XCTAssertEqual(a.state.p, [0, 0])
        a.addGlobalStats([10, 10, 10, 10])
        a.adjust(globalBatch: 1_000_000)
        XCTAssertEqual(a.state.p, [1, 1])
    }

    func testStateRoundTripsThroughJSON() throws {
        let a = make(p: 0.25)
        a.addGlobalStats([3, 4, -1, 2])
        let data = try JSONEncoder().encode(a.state)
        XCTAssertEqual(try JSONDecoder().decode(ADAState.self, from: data), a.state)
    }
}
