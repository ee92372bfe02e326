import Foundation
import XCTest

@testable import Engine

/// `Breakdown` splits wall-clock by kind of work: the kinds add up to the time measured, and each kind gets the
/// work that is its own (bench train prints these as time_<kind>_s).
final class BreakdownTests: XCTestCase {
    func testKindsAddUpAndGoWhereTheWorkIs() {
        var rng = RandomGenerator(seed: 3)
        let x = rng.normalTensor([2, 8, 24, 24])
        let w = rng.normalTensor([16, 8, 3, 3], std: 0.1)
        Breakdown.start()
        let t0 = Breakdown.mark  // the clock reads that bound the measured interval (a wall clock read outside
        for _ in 0..<3 {          // them would also count a preemption between them and the test's own read)
            let t = Tape()
            let xi = t.input(x)
            let y = t.relu(t.instanceNorm(t.conv2d(xi, t.input(w), nil, stride: 1, padding: 1, mode: .reflect)))
            t.backward(t.mean(y))
        }
        let kinds = Breakdown.stop()
        let wall = Breakdown.mark - t0
        let total = kinds.values.reduce(0, +)
        XCTAssertEqual(total, wall, accuracy: 1e-6, "\(kinds)")
        for k in [TimeKind.gemm, .im2col, .norm, .elementwise, .alloc] {
            XCTAssertGreaterThan(kinds[k]!, 0, "\(k) \(kinds)")
        }
        XCTAssertEqual(kinds[.adam], 0)
        XCTAssertEqual(kinds[.communication], 0)
        XCTAssertFalse(Breakdown.enabled)
    }

    func testOtherThreadsAndNestedSpansAreNotCountedTwice() {
        Breakdown.start()
        let t0 = Breakdown.mark
        Breakdown.span(.adam) {
            Breakdown.span(.gemm) { usleep(2000) }  // nested: belongs to the outer span
            let done = DispatchSemaphore(value: 0)
            Thread { Breakdown.span(.alloc) { usleep(1000) }; done.signal() }.start()
            done.wait()
        }
        let kinds = Breakdown.stop()
        let wall = Breakdown.mark - t0
        XCTAssertEqual(kinds[.gemm], 0)
        XCTAssertEqual(kinds[.alloc], 0)
        XCTAssertGreaterThanOrEqual(kinds[.adam]!, 0.003)
        XCTAssertEqual(kinds.values.reduce(0, +), wall, accuracy: 1e-6)
    }
}
