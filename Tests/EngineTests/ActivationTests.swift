import Engine
import TestSupport
import XCTest

/// relu, leakyRelu, tanh, sigmoid, scale.
final class ActivationTests: XCTestCase {
    // MARK: - Gradient checks (inputs kept ≥ 1e-3 away from the kink at 0)

    func testReluGradCheck() {
        var rng = testRNG("relu")
        for shape in [[2, 3, 4, 5], [1, 1, 3, 1], [7]] {
            let x = rng.normalTensor(shape, minMagnitude: 1e-3)
            gradCheck([x], reference: { Ref.relu($0[0]) }, op: { $0.relu($1[0]) }, "\(shape)")
        }
    }

    func testLeakyReluGradCheck() {
        var rng = testRNG("leaky relu")
        for slope in [Float(0.2), 0.01] {
            let x = rng.normalTensor([3, 2, 3, 3], minMagnitude: 1e-3)
            gradCheck(
                [x], reference: { Ref.leakyRelu($0[0], slope: Double(slope)) },
                op: { $0.leakyRelu($1[0], slope: slope) }, "slope \(slope)")
        }
    }

    func testTanhGradCheck() {
        var rng = testRNG("tanh")
        let x = rng.normalTensor([2, 3, 3, 5], std: 2)
        gradCheck([x], reference: { Ref.tanh($0[0]) }, op: { $0.tanh($1[0]) })
    }

    func testSigmoidGradCheck() {
        var rng = testRNG("sigmoid")
        let x = rng.normalTensor([1, 4, 3, 3], std: 3)
        gradCheck([x], reference: { Ref.sigmoid($0[0]) }, op: { $0.sigmoid($1[0]) })
    }

    func testScaleGradCheck() {
        var rng = testRNG("scale")
        let x = rng.normalTensor([2, 5])
        for s in [Float(10), -0.5, 0] {
            gradCheck([x], reference: { Ref.scale($0[0], Double(s)) }, op: { $0.scale($1[0], s) }, "s \(s)")
        }
    }

    // MARK: - Kinks and saturation (PyTorch conventions)

    func testKinkConventionsMatchPyTorch() {
        // ReLU'(0) = 0 (torch threshold_backward on x > 0); LeakyReLU'(0) = slope (torch uses x > 0)
        let x = Tensor(shape: [4], [-1, 0, -0, 1])
        let tape = Tape()
        let v = tape.input(x)
        let r = tape.relu(v)
        let l = tape.leakyRelu(v, slope: 0.2)
        let y = tape.add(r, tape.scale(l, 10))
        tape.backward(y, seed: Tensor(repeating: 1, shape: [4]))
        XCTAssertEqual(r.value.array, [0, 0, 0, 1])
        XCTAssertEqual(l.value.array, [-0.2, 0, 0, 1])
        // d/dx (relu + 10·leaky) = [0 + 2, 0 + 2, 0 + 2, 1 + 10]
        XCTAssertEqual(tape.grad(of: v)!.array, [2, 2, 2, 11])
    }

    func testSaturationIsFinite() {
        let x = Tensor(shape: [4], [-100, -30, 30, 100])
        let tape = Tape()
        let v = tape.input(x)
        let s = tape.sigmoid(v)
        let t = tape.tanh(v)
        tape.backward(tape.add(s, t), seed: Tensor(repeating: 1, shape: [4]))
        XCTAssertEqual(s.value.array.map { $0.rounded() }, [0, 0, 1, 1])
        XCTAssertEqual(t.value.array, [-1, -1, 1, 1])
        XCTAssertTrue(
            tape.grad(of: v)!.array.allSatisfy { $0.isFinite && $0 >= 0 && $0 < 1e-12 },
            "\(tape.grad(of: v)!.array)")
    }

    // MARK: - Golden (torch)

    /// Golden: Scripts/golden/make_golden.py case relu (F.relu, x [2, 3, 4, 5] away from 0).
    func testGoldenRelu() throws {
        try assertGolden(try Fixture.load("relu"), inputs: ["x"], differentiable: ["x"]) { $0.relu($1[0]) }
    }

    /// Golden: Scripts/golden/make_golden.py case leaky_relu (F.leaky_relu slope 0.2, x [2, 3, 4, 5]).
    func testGoldenLeakyRelu() throws {
        let f = try Fixture.load("leaky_relu")
        let slope = Float(try f.number("slope"))
        XCTAssertEqual(slope, 0.2)
        try assertGolden(f, inputs: ["x"], differentiable: ["x"]) { $0.leakyRelu($1[0], slope: slope) }
    }

    /// Golden: Scripts/golden/make_golden.py case tanh (torch.tanh, x [2, 3, 4, 5]).
    func testGoldenTanh() throws {
        try assertGolden(try Fixture.load("tanh"), inputs: ["x"], differentiable: ["x"]) { $0.tanh($1[0]) }
    }

    /// Golden: Scripts/golden/make_golden.py case sigmoid (torch.sigmoid, x [2, 3, 4, 5]).
    func testGoldenSigmoid() throws {
        try assertGolden(try Fixture.load("sigmoid"), inputs: ["x"], differentiable: ["x"]) { $0.sigmoid($1[0]) }
    }
}
