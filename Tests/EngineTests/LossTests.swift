import Engine
import TestSupport
import XCTest

/// mse, l1, bceWithLogits, crossEntropy (mean reduction), and the reductions mean, sum, weightedSum.
final class LossTests: XCTestCase {
    // MARK: - Gradient checks

    func testMSEGradCheck() {
        var rng = testRNG("mse")
        let x = rng.normalTensor([2, 1, 3, 3])
        let t = rng.normalTensor([2, 1, 3, 3])
        gradCheck([x, t], reference: { Ref.mse($0[0], $0[1]) }, op: { $0.mse($1[0], $1[1]) }, "both differentiable")
        gradCheck(
            [x, t], differentiable: [true, false], reference: { Ref.mse($0[0], $0[1]) },
            op: { $0.mse($1[0], $1[1]) }, "constant target")
        for target in [Float(1), 0] {
            gradCheck(
                [x], reference: { Ref.mse($0[0], DTensor(Tensor(repeating: target, shape: x.shape))) },
                op: { $0.mse($1[0], target) }, "LSGAN target \(target)")
        }
    }

    func testL1GradCheck() {
        var rng = testRNG("l1")
        let t = rng.normalTensor([2, 3, 2, 2])
        let d = rng.normalTensor([2, 3, 2, 2], minMagnitude: 1e-3)
        let x = Tensor(uninitialized: t.shape)
        for i in 0..<x.count { x[i] = t[i] + d[i] }  // |x − t| ≥ 1e-3 (away from the kink)
        gradCheck([x, t], reference: { Ref.l1($0[0], $0[1]) }, op: { $0.l1($1[0], $1[1]) })
    }

    func testL1GradientAtKinkIsZero() {
        // torch.sign(0) = 0: equal elements get no gradient
        let tape = Tape()
        let x = tape.input(Tensor(shape: [3], [1, 2, 3]))
        let t = tape.constant(Tensor(shape: [3], [0, 2, 4]))
        tape.backward(tape.l1(x, t))
        XCTAssertEqual(tape.grad(of: x)!.array, [1.0 / 3, 0, -1.0 / 3])
    }

    func testBCEWithLogitsGradCheck() {
        var rng = testRNG("bce")
        let x = rng.normalTensor([2, 1, 3, 4], std: 2)
        let t = Tensor(uninitialized: x.shape)
        for i in 0..<t.count { t[i] = i % 3 == 0 ? 1 : (i % 3 == 1 ? 0 : 0.3) }
        gradCheck(
            [x, t], differentiable: [true, false], reference: { Ref.bceWithLogits($0[0], $0[1]) },
            op: { $0.bceWithLogits($1[0], $1[1]) })
        for target in [Float(1), 0] {
            gradCheck(
                [x], reference: { Ref.bceWithLogits($0[0], DTensor(Tensor(repeating: target, shape: x.shape))) },
                op: { $0.bceWithLogits($1[0], target) }, "constant target \(target)")
        }
    }

    func testBCEWithLogitsLargeLogitsAreFinite() {
        // the naive formula would give log(0); the engine's stable form must not
        let tape = Tape()
        let x = tape.input(Tensor(shape: [4], [-100, -40, 40, 100]))
        let y = tape.bceWithLogits(x, tape.constant(Tensor(shape: [4], [1, 0, 1, 0])))
        tape.backward(y)
        // losses: 100, ~0, ~0, 100 -> mean 50
        XCTAssertEqual(Double(y.value[0]), 50, accuracy: 1e-4)
        assertClose(tape.grad(of: x)!, [-0.25, 0, 0, 0.25], atol: 1e-12, rtol: 0)
    }

    func testBCETargetGetsNoGradient() {
        // Engine convention (Losses.swift): bce targets are labels and receive no gradient, even when requested.
        let tape = Tape()
        let x = tape.input(Tensor(shape: [2], [0.3, -0.7]))
        let t = tape.input(Tensor(shape: [2], [1, 0]))
        tape.backward(tape.bceWithLogits(x, t))
        XCTAssertNil(tape.grad(of: t))
        XCTAssertNotNil(tape.grad(of: x))
    }

    func testCrossEntropyGradCheck() {
        var rng = testRNG("cross entropy")
        for (shape, labels) in [([3, 4], [2, 0, 3]), ([1, 2], [1]), ([5, 4], [0, 1, 2, 3, 3])] {
            let z = rng.normalTensor(shape, std: 2)
            gradCheck(
                [z], reference: { Ref.crossEntropy($0[0], labels: labels) },
                op: { $0.crossEntropy($1[0], labels: labels) }, "\(shape)")
        }
    }

    func testCrossEntropyLargeLogitsAreFinite() {
        let tape = Tape()
        let z = tape.input(Tensor(shape: [1, 3], [1000, 0, -1000]))
        let y = tape.crossEntropy(z, labels: [1])
        tape.backward(y)
        XCTAssertEqual(y.value[0], 1000, accuracy: 1e-3)
        XCTAssertEqual(tape.grad(of: z)!.array, [1, -1, 0])
    }

    func testReductionsGradCheck() {
        var rng = testRNG("reductions")
        let x = rng.normalTensor([2, 3, 4])
        gradCheck([x], reference: { Ref.mean($0[0]) }, op: { $0.mean($1[0]) }, "mean")
        gradCheck([x], reference: { Ref.sum($0[0]) }, op: { $0.sum($1[0]) }, "sum")
        let one = rng.normalTensor([1])
        gradCheck([one], reference: { Ref.mean($0[0]) }, op: { $0.mean($1[0]) }, "mean of one")
    }

    func testWeightedSumGradCheck() {
        var rng = testRNG("weighted sum")
        let xs = (0..<4).map { _ in rng.normalTensor([1]) }
        let w: [Float] = [1, 10, 1000, -0.5]  // adv, cycle, cam, and a negative weight
        gradCheck(
            xs, reference: { Ref.weightedSum(w.map(Double.init), $0) },
            op: { t, v in t.weightedSum(Array(zip(w, v))) })
        gradCheck(
            xs, differentiable: [true, false, true, false], reference: { Ref.weightedSum(w.map(Double.init), $0) },
            op: { t, v in t.weightedSum(Array(zip(w, v))) }, "some constant terms")
    }

    // MARK: - Golden (torch)

    /// Golden: Scripts/golden/make_golden.py case mse (F.mse_loss mean, x and target [2, 1, 3, 3]).
    func testGoldenMSE() throws {
        try assertGolden(try Fixture.load("mse"), inputs: ["x", "target"], differentiable: ["x"]) {
            $0.mse($1[0], $1[1])
        }
    }

    /// Golden: Scripts/golden/make_golden.py case l1 (F.l1_loss mean, x and target [2, 3, 4, 4], |x − t| ≥ 1e-3).
    func testGoldenL1() throws {
        try assertGolden(try Fixture.load("l1"), inputs: ["x", "target"], differentiable: ["x"]) { $0.l1($1[0], $1[1]) }
    }

    /// Golden: Scripts/golden/make_golden.py case bce_with_logits (F.binary_cross_entropy_with_logits mean, x [2, 2]).
    func testGoldenBCEWithLogits() throws {
        try assertGolden(try Fixture.load("bce_with_logits"), inputs: ["x", "target"], differentiable: ["x"]) {
            $0.bceWithLogits($1[0], $1[1])
        }
    }

    /// Golden: Scripts/golden/make_golden.py case cross_entropy (F.cross_entropy mean, logits [3, 4], labels stored
    /// as float32 class indices).
    func testGoldenCrossEntropy() throws {
        let f = try Fixture.load("cross_entropy")
        let labels = try f["labels"].array.map { Int($0) }
        XCTAssertEqual(labels, [2, 0, 3])
        try assertGolden(f, inputs: ["logits"], differentiable: ["logits"]) { $0.crossEntropy($1[0], labels: labels) }
    }

    /// Golden: Scripts/golden/make_golden.py case mean_all (x.mean(), x [2, 3, 4], backward with a random scalar dy).
    func testGoldenMeanAll() throws {
        try assertGolden(try Fixture.load("mean_all"), inputs: ["x"], differentiable: ["x"]) { $0.mean($1[0]) }
    }

    /// Golden: Scripts/golden/make_golden.py case sum_all (x.sum(), x [2, 3, 4], backward with a random scalar dy).
    func testGoldenSumAll() throws {
        try assertGolden(try Fixture.load("sum_all"), inputs: ["x"], differentiable: ["x"]) { $0.sum($1[0]) }
    }
}
