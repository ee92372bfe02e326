@testable import Engine
import XCTest

/// `Tensor.allFinite` (the vectorised `f2w_all_finite`): every kind of non-finite float is found wherever it lies,
/// and finite extremes (largest, subnormal, −0) are not mistaken for one.
final class FiniteCheckTests: XCTestCase {
    func testFindsEveryNonFiniteValueAnywhere() {
        let n = 3 * 4096 + 37  // three whole blocks and a tail
        var x = [Float](repeating: 1.5, count: n)
        XCTAssertTrue(Tensor.allFinite(x, count: n))
        for bad in [Float.nan, -Float.nan, Float.infinity, -Float.infinity, Float.signalingNaN] {
            for i in [0, 4095, 4096, 8191, n - 1] {
                x[i] = bad
                XCTAssertFalse(Tensor.allFinite(x, count: n), "\(bad) at \(i)")
                XCTAssertTrue(Tensor.allFinite(x, count: i), "\(bad) at \(i) lies past the first \(i) floats")
                x[i] = 1.5
            }
        }
    }

    func testFiniteExtremesAreFinite() {
        let x: [Float] = [
            .greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude, .leastNormalMagnitude, -0, 0,
        ]
        XCTAssertTrue(Tensor.allFinite(x, count: x.count))
        XCTAssertTrue(Tensor(shape: [x.count], x).isFinite)
        XCTAssertTrue(Tensor.allFinite(x, count: 0), "nothing to check")
    }
}
