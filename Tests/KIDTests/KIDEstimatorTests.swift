import Engine
import TestSupport
import XCTest

@testable import KID

/// The unbiased MMD² / KID estimator (spec E.1) and the subset rule.
final class KIDEstimatorTests: XCTestCase {
    let x = FeatureMatrix(rows: [[1, 0, 2], [0, 1, 1], [1, 1, 0], [2, 0, 1]])
    let y = FeatureMatrix(rows: [[0, 0, 1], [1, 0, 0], [2, 1, 1], [0, 2, 0]])

    /// Spec F: X, Y with d = 3, m = 4 ⇒ MMD²_u = −2.2530864197530853 (measured with the F2W/abdulfatir estimator).
    func testSpecWorkedVector() throws {
        XCTAssertEqual(try KIDEstimator.mmd2(x, y), -2.2530864197530853, accuracy: 1e-13)
        // As KID: m = min(4, 4, 1000) = 4 = both set sizes, so a single subset (the whole sets), std 0.
        let r = try KIDEstimator.kid(real: y, fake: x)
        XCTAssertEqual(r.kid, -2.2530864197530853, accuracy: 1e-13)
        XCTAssertEqual(r.std, 0)
        XCTAssertEqual(r.subsets, 1)
        XCTAssertEqual(r.subsetSize, 4)
        // The estimator is symmetric in the two sets.
        XCTAssertEqual(try KIDEstimator.mmd2(y, x), -2.2530864197530853, accuracy: 1e-13)
    }

    /// Case `inception_random`, tensors kid.x / kid.y [30, 16]: numpy float64 MMD² of the full sets.
    func testMatchesNumpyOnFixture() throws {
        let f = try KIDFixtures.load("inception_random")
        let a = FeatureMatrix(try f["kid.x"])
        let b = FeatureMatrix(try f["kid.y"])
        let expected = try f.number("kid_mmd2")
        XCTAssertEqual(try KIDEstimator.mmd2(a, b), expected, accuracy: 1e-12 * max(1, abs(expected)))
    }

    /// Subsets: seeded (same seed, same value), drawn without replacement, and the two computation paths
    /// (all-pairs dot products vs per-subset) agree.
    func testSubsetsAreSeededAndPathsAgree() throws {
        var rng = RandomGenerator(seed: 7)
        let real = FeatureMatrix(rows: (0..<50).map { _ in (0..<8).map { _ in Double(rng.normal()) } })
        let fake = FeatureMatrix(rows: (0..<40).map { _ in (0..<8).map { _ in Double(rng.normal()) * 1.5 + 0.5 } })
        let a = try KIDEstimator.kid(real: real, fake: fake, subsets: 20, subsetSize: 25, seed: 3)
        let b = try KIDEstimator.kid(real: real, fake: fake, subsets: 20, subsetSize: 25, seed: 3, precomputeLimit: 0)
        let c = try KIDEstimator.kid(real: real, fake: fake, subsets: 20, subsetSize: 25, seed: 4)
        XCTAssertEqual(a.subsets, 20)
        XCTAssertEqual(a.subsetSize, 25)
        XCTAssertEqual(a.kid, b.kid, accuracy: 1e-12 * abs(a.kid))
        XCTAssertEqual(a.std, b.std, accuracy: 1e-12 * abs(a.std))
        XCTAssertNotEqual(a.kid, c.kid)
        XCTAssertGreaterThan(a.std, 0)
        // m = min(N_real, N_fake, subsetSize)
        XCTAssertEqual(try KIDEstimator.kid(real: real, fake: fake, subsets: 2).subsetSize, 40)
        var r2 = RandomGenerator(seed: 1)
        let s = KIDEstimator.sample(30, 30, &r2)
        XCTAssertEqual(Set(s).count, 30, "without replacement")
        XCTAssertNotEqual(s, Array(0..<30), "shuffled")
    }

    /// KID separates distributions: about 0 for two samples of one distribution, clearly positive for a shift.
    func testSameDistributionNearZeroShiftedPositive() throws {
        var rng = RandomGenerator(seed: 11)
        func set(_ n: Int, shift: Double) -> FeatureMatrix {
            FeatureMatrix(rows: (0..<n).map { _ in (0..<16).map { _ in abs(Double(rng.normal())) + shift } })
        }
        let a = set(200, shift: 0)
        let b = set(200, shift: 0)
        let c = set(200, shift: 0.5)
        let same = try KIDEstimator.kid(real: a, fake: b, subsets: 10, subsetSize: 100)
        let shifted = try KIDEstimator.kid(real: a, fake: c, subsets: 10, subsetSize: 100)
        XCTAssertLessThan(abs(same.kid), 3 * same.std + 1e-3)
        XCTAssertGreaterThan(shifted.kid, 10 * max(abs(same.kid), same.std))
    }

    func testErrors() {
        let one = FeatureMatrix(rows: [[1, 2, 3]])
        XCTAssertThrowsError(try KIDEstimator.kid(real: one, fake: x)) { XCTAssertTrue("\($0)".contains("at least 2")) }
        XCTAssertThrowsError(try KIDEstimator.kid(real: FeatureMatrix(rows: [[1, 2], [3, 4]]), fake: x)) {
            XCTAssertTrue("\($0)".contains("dimensions differ"))
        }
        XCTAssertThrowsError(try KIDEstimator.mmd2(x, FeatureMatrix(rows: [[1, 2, 3], [4, 5, 6]])))
    }
}
