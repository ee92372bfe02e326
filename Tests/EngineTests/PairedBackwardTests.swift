import XCTest

@testable import Engine

/// `Tape.backward(_:_:)`: two tapes that share parameters back-propagate side by side; each shared parameter gets the
/// sum of both tapes' gradients, reported once, and the result does not depend on the thread count.
final class PairedBackwardTests: XCTestCase {
    /// w is used on both tapes (twice on the first), v only on the second, u only on the first; the low-rank layer
    /// l on both.
    func run(threads: Int, paired: Bool) -> (grads: [[Float]], hasGrad: [Bool], reports: [String: Int], rows: Int) {
        Runtime.configure(threads: threads)
        defer { Runtime.configure(threads: 1) }
        var rng = RandomGenerator(seed: 5)
        let w = Parameter(name: "w", value: rng.normalTensor([4, 4]))
        let v = Parameter(name: "v", value: rng.normalTensor([4, 4]))
        let u = Parameter(name: "u", value: rng.normalTensor([4, 4]))
        let l = Parameter(name: "l", value: rng.normalTensor([3, 4]))
        let factors = LowRankGradient(inFeatures: 4, outFeatures: 3)
        let (x1, x2) = (rng.normalTensor([2, 4]), rng.normalTensor([3, 4]))
        let first = Tape()
        let second = paired ? Tape(separateGradients: true) : first
        let h1 = first.tanh(first.linear(first.tanh(first.linear(first.input(x1), first.param(w))), first.param(w)))
        let y1 = first.sum(first.linear(first.tanh(first.linear(h1, first.param(u))), first.param(l), lowRank: factors))
        let h2 = second.tanh(second.linear(second.input(x2), second.param(v)))
        let y2 = second.sum(second.linear(second.tanh(second.linear(h2, second.param(w))), second.param(l), lowRank: factors))
        var reports: [String: Int] = [:]
        var gradAtReport: [String: [Float]] = [:]
        let lock = NSLock()
        let hook: (Parameter) -> Void = { p in
            lock.lock()
            reports[p.name, default: 0] += 1
            gradAtReport[p.name] = p.grad.array
            lock.unlock()
        }
        if paired {
            Tape.backward(y1, y2, onGradientFinal: hook)
        } else {
            first.onGradientFinal = hook
            first.backward(first.add(y1, y2))
        }
        for p in [w, v, u] { XCTAssertEqual(gradAtReport[p.name], p.grad.array, "\(p.name) changed after its report") }
        let dl = Tensor(zeros: [3, 4])
        LowRankGradient.accumulate(dy: factors.dy, x: factors.x, rows: factors.rows, scale: 1, into: dl)
        return ([w, v, u].map(\.grad.array) + [dl.array], [w, v, u, l].map(\.hasGrad), reports, factors.rows)
    }

    func testPairedBackwardSumsSharedGradientsOnAnyThreadCount() {
        let one = run(threads: 1, paired: true)
        let two = run(threads: 2, paired: true)
        let reference = run(threads: 1, paired: false)
        XCTAssertEqual(one.grads, two.grads, "bit for bit on 1 and 2 threads")
        for (i, (a, b)) in zip(one.grads, reference.grads).enumerated() {
            XCTAssertLessThan(zip(a, b).map { abs($0 - $1) }.max()!, 1e-5, "gradient \(i) against one tape")
            XCTAssertTrue(a.contains { $0 != 0 }, "gradient \(i) is not zero")
        }
        for r in [one, two] {
            XCTAssertEqual(r.hasGrad, [true, true, true, true])
            XCTAssertEqual(r.reports, ["w": 1, "v": 1, "u": 1, "l": 1], "each parameter reported once")
            XCTAssertEqual(r.rows, 5, "low-rank factors of both tapes: 2 + 3 rows")
        }
    }

    func testALargeLinearWeightOfTheSecondTapeIsDeferredToTheMerge() {
        // a 1024 × 1024 weight (≥ SeparateGradients.deferredWeightFloats) used on both tapes, twice on the second
        var rng = RandomGenerator(seed: 9)
        let w = Parameter(name: "w", value: rng.normalTensor([1024, 1024], std: 0.03))
        let (x1, x2, x3) = (rng.normalTensor([2, 1024]), rng.normalTensor([1, 1024]), rng.normalTensor([3, 1024]))
        func run(threads: Int, paired: Bool) -> [Float] {
            Runtime.configure(threads: threads)
            defer { Runtime.configure(threads: 1) }
            w.grad.fill(0)
            w.hasGrad = false
            let first = Tape()
            let second = paired ? Tape(separateGradients: true) : first
            let y1 = first.sum(first.tanh(first.linear(first.input(x1), first.param(w))))
            let y2 = second.sum(second.tanh(second.linear(second.input(x2), second.param(w))))
            let y3 = second.sum(second.linear(second.input(x3), second.param(w)))
            let y23 = second.add(y2, y3)
            if paired { Tape.backward(y1, y23) } else { first.backward(first.add(y1, y23)) }
            XCTAssertTrue(w.hasGrad)
            return w.grad.array
        }
        let (one, two, reference) = (run(threads: 1, paired: true), run(threads: 2, paired: true), run(threads: 1, paired: false))
        XCTAssertEqual(one, two, "bit for bit on 1 and 2 threads")
        XCTAssertLessThan(zip(one, reference).map { abs($0 - $1) }.max()!, 1e-5)
        XCTAssertGreaterThan(one.map(abs).max()!, 0.1)
    }

    func testLargeGEMMsSplitInsideAHalfGiveTheSameFloats() {
        // with 4 threads each half has 2 and OpenBLAS 1: sgemm splits a large product by columns (n ≥ 32) or rows
        // where the kernel keeps the floats (Runtime.gemmSplitKeepsFloats), and keeps it whole where it does not
        var rng = RandomGenerator(seed: 8)
        let cases = [(rng.normalTensor([64, 256]), rng.normalTensor([512, 256])), (rng.normalTensor([4096, 64]), rng.normalTensor([24, 64]))]
        func run(threads: Int) -> [[Float]] {
            Runtime.configure(threads: threads)
            defer { Runtime.configure(threads: 1) }
            return cases.flatMap { (x, w) -> [[Float]] in
                let (a, b) = Parallel.pair(
                    { () -> [[Float]] in
                        let t = Tape()
                        let (xv, wv) = (t.input(x), t.input(w))
                        let y = t.linear(xv, wv)
                        t.backward(y, seed: Tensor(repeating: 0.5, shape: y.shape))
                        return [y.value.array, t.grad(of: xv)!.array, t.grad(of: wv)!.array]
                    }, { () -> [[Float]] in [] })
                XCTAssertTrue(b.isEmpty)
                return a
            }
        }
        XCTAssertEqual(run(threads: 4), run(threads: 1))
    }

    func testTheSplitProbeKnowsOpenBLASsKernels() {
        // measured with OpenBLAS 0.3.21: SkylakeX (on a Xeon), Sandybridge and Prescott (on an EPYC) sum each element
        // of C in an order fixed by k; the Haswell kernel (OpenBLAS's choice on AMD Zen too) in an order that depends
        // on the product's shape
        switch Runtime.blasCore {
        case "SkylakeX", "Sandybridge", "Prescott":
            XCTAssertTrue(Runtime.gemmSplitKeepsFloats, Runtime.blasCore)
        case "Haswell", "Zen":
            XCTAssertFalse(Runtime.gemmSplitKeepsFloats, Runtime.blasCore)
        default:
            break
        }
    }

    func testPairRunsHalvesWithTheirShareOfThreads() {
        Runtime.configure(threads: 3)
        defer { Runtime.configure(threads: 1) }
        let (a, b) = Parallel.pair({ (Parallel.threads, Runtime.blasThreads) }, { (Parallel.threads, Runtime.blasThreads) })
        XCTAssertEqual(a.0, 2)
        XCTAssertEqual(b.0, 1)
        XCTAssertEqual(a.1, 1, "OpenBLAS on one thread inside a pair")
        XCTAssertEqual(Parallel.threads, 3)
        XCTAssertEqual(Runtime.blasThreads, 3, "restored after")
        Runtime.configure(threads: 1)
        var order: [Int] = []
        _ = Parallel.pair({ order.append(1) }, { order.append(2) })
        XCTAssertEqual(order, [1, 2], "one thread: first, then second")
    }
}
