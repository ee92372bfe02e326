import XCTest

@testable import Engine

/// `Tape.onGradientFinal` reports each parameter once no node is left that adds to its gradient: a parameter used
/// twice only after backward has passed its first use, and before the nodes recorded ahead of that use.
final class GradientFinalTests: XCTestCase {
    func testAParameterIsFinalAfterItsFirstUseOnly() {
        var rng = RandomGenerator(seed: 1)
        let a = Parameter(name: "a", value: rng.normalTensor([3, 3]))  // used first and last
        let b = Parameter(name: "b", value: rng.normalTensor([3, 3]))  // used once, in the middle
        let c = Parameter(name: "c", value: rng.normalTensor([3, 3]))  // used once, first of all
        let t = Tape()
        let x = t.input(rng.normalTensor([2, 3]))
        let h0 = t.tanh(t.linear(x, t.param(c)))
        let h1 = t.tanh(t.linear(h0, t.param(a)))
        let h2 = t.tanh(t.linear(h1, t.param(b)))
        let h3 = t.linear(h2, t.param(a))
        assertReports(t, from: t.sum(h3), order: ["b", "a", "c"], parameters: [a, b, c])
    }

    /// Back-propagates `root` and checks the order of the reports, and that no gradient changed after its report.
    private func assertReports(
        _ t: Tape, from root: Var, order expected: [String], parameters: [Parameter], line: UInt = #line
    ) {
        var order: [String] = []
        var gradAtReport: [String: [Float]] = [:]
        t.onGradientFinal = { p in
            order.append(p.name)
            gradAtReport[p.name] = p.grad.array
        }
        t.backward(root)
        XCTAssertEqual(order, expected, line: line)
        for p in parameters {
            XCTAssertEqual(gradAtReport[p.name], p.grad.array, "\(p.name) changed after its report", line: line)
        }
    }

    /// After `backward(_:above:)`, the next walk reports first the parameters whose every use it covered (here `w`,
    /// used only in the walked part), and the others as usual: `v`, used only after, once its leaf is walked; `c`, used
    /// below the boundary and in the walked part, once the walk has passed its first leaf, below the boundary.
    func testParametersUsedOnlyInAnEarlierWalkAreReportedFirst() {
        var rng = RandomGenerator(seed: 2)
        let ps = ["c", "w", "v"].map { Parameter(name: $0, value: rng.normalTensor([3, 3])) }
        let (c, w, v) = (ps[0], ps[1], ps[2])
        let t = Tape()
        let x = t.input(rng.normalTensor([2, 3]))
        let h = t.tanh(t.linear(x, t.param(c)))
        let boundary = t.count
        let early = t.linear(t.tanh(t.linear(h, t.param(w))), t.param(c))
        t.backward(t.sum(early), above: boundary)
        let late = t.linear(t.tanh(h), t.param(v))
        assertReports(t, from: t.sum(late), order: ["w", "v", "c"], parameters: ps)
        XCTAssertTrue(c.grad.array.contains { $0 != 0 } && w.grad.array.contains { $0 != 0 })
    }
}
