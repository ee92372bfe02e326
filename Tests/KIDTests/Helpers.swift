import Engine
import Foundation
import TestSupport
import XCTest

@testable import KID

/// The fixtures written by Scripts/golden/make_inception_golden.py.
enum KIDFixtures {
    static var directory: URL { Bundle.module.url(forResource: "Fixtures", withExtension: nil)! }
    static func load(_ name: String) throws -> Fixture { try Fixture(directory: directory, name: name) }
    /// The two synthetic test images of the fixtures: number 0 at 256×256, number 1 at 320×240.
    static let images = [(0, 256, 256), (1, 320, 240)]
}

/// max_i |a_i − b_i| / max_i |b_i| (the parity measure of docs/kid.md).
func maxRelativeDifference(_ a: Tensor, _ b: Tensor) -> Double { scaledMaxDifference(a, b) }

/// ‖a − b‖₂ / ‖b‖₂.
func l2RelativeDifference(_ a: Tensor, _ b: Tensor) -> Double {
    precondition(a.shape == b.shape, "shapes \(a.shape) and \(b.shape)")
    var d = 0.0
    var n = 0.0
    for i in 0..<a.count {
        d += (Double(a[i]) - Double(b[i])) * (Double(a[i]) - Double(b[i]))
        n += Double(b[i]) * Double(b[i])
    }
    return (d / max(n, .leastNonzeroMagnitude)).squareRoot()
}
