import Engine
import TestSupport
import XCTest

/// reflectionPad2d, upsampleNearest2x, global pools, concatChannels, sumChannels, reshape, and the broadcasting
/// binary ops add/sub/mul.
final class ShapeTests: XCTestCase {
    // MARK: - Padding and resampling

    func testReflectionPadGradCheck() {
        var rng = testRNG("reflection pad")
        // p = 1 and p = 3 (the generator's pads), p = 0, and p = H − 1 (the largest allowed), odd sizes, batch 3
        for (shape, p) in [
            ([2, 3, 5, 4], 1), ([1, 2, 5, 6], 3), ([3, 1, 3, 3], 0), ([1, 1, 4, 5], 3), ([1, 2, 2, 7], 1),
        ] {
            let x = rng.normalTensor(shape)
            gradCheck(
                [x], reference: { Ref.reflectionPad2d($0[0], p) }, op: { $0.reflectionPad2d($1[0], p) },
                "\(shape) pad \(p)")
        }
    }

    func testReflectionPadValues() {
        // numpy "reflect": the border pixel is not repeated. Padded row i reads input row |i − 2| folded at 2.
        let tape = Tape()
        let y = tape.reflectionPad2d(tape.constant(Tensor(shape: [1, 1, 3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9])), 2)
        XCTAssertEqual(y.shape, [1, 1, 7, 7])
        XCTAssertEqual(Array(y.value.array[0..<7]), [9, 8, 7, 8, 9, 8, 7], "row 0 mirrors input row 2")
        XCTAssertEqual(Array(y.value.array[21..<28]), [6, 5, 4, 5, 6, 5, 4], "row 3 mirrors input row 1")
        XCTAssertEqual(Array(y.value.array[42..<49]), [3, 2, 1, 2, 3, 2, 1], "row 6 mirrors input row 0")
    }

    func testUpsampleNearest2xGradCheck() {
        var rng = testRNG("upsample")
        for shape in [[2, 3, 3, 5], [1, 1, 1, 1], [3, 2, 2, 1]] {
            let x = rng.normalTensor(shape)
            gradCheck([x], reference: { Ref.upsampleNearest2x($0[0]) }, op: { $0.upsampleNearest2x($1[0]) }, "\(shape)")
        }
    }

    // MARK: - Pooling and channel ops

    func testGlobalAvgPoolGradCheck() {
        var rng = testRNG("avg pool")
        for shape in [[2, 3, 5, 4], [1, 1, 1, 1], [3, 2, 7, 3]] {
            let x = rng.normalTensor(shape)
            gradCheck([x], reference: { Ref.globalAvgPool($0[0]) }, op: { $0.globalAvgPool($1[0]) }, "\(shape)")
        }
    }

    func testGlobalMaxPoolGradCheck() {
        var rng = testRNG("max pool")
        for shape in [[2, 3, 5, 4], [1, 1, 1, 1], [3, 2, 3, 7]] {
            let x = rng.normalTensor(shape)
            gradCheck([x], reference: { Ref.globalMaxPool($0[0]) }, op: { $0.globalMaxPool($1[0]) }, "\(shape)")
        }
    }

    func testGlobalMaxPoolTieGoesToFirstMaximum() {
        let tape = Tape()
        let x = tape.input(Tensor(shape: [1, 1, 2, 2], [1, 3, 3, -1]))
        let y = tape.globalMaxPool(x)
        tape.backward(y, seed: Tensor(shape: [1, 1], [5]))
        XCTAssertEqual(y.value.array, [3])
        XCTAssertEqual(tape.grad(of: x)!.array, [0, 5, 0, 0])
    }

    func testConcatChannelsGradCheck() {
        var rng = testRNG("concat")
        let a = rng.normalTensor([2, 3, 4, 3])
        let b = rng.normalTensor([2, 1, 4, 3])
        let c = rng.normalTensor([2, 2, 4, 3])
        gradCheck([a, b, c], reference: { Ref.concatChannels($0) }, op: { $0.concatChannels($1) }, "three inputs")
        gradCheck(
            [a, b, c], differentiable: [true, false, true], reference: { Ref.concatChannels($0) },
            op: { $0.concatChannels($1) }, "middle input constant")
        let f = rng.normalTensor([3, 4])
        let g = rng.normalTensor([3, 2])
        gradCheck([f, g], reference: { Ref.concatChannels($0) }, op: { $0.concatChannels($1) }, "[N, F] features")
    }

    func testSumChannelsGradCheck() {
        var rng = testRNG("sum channels")
        for shape in [[2, 3, 4, 5], [1, 1, 3, 3]] {
            let x = rng.normalTensor(shape)
            gradCheck([x], reference: { Ref.sumChannels($0[0]) }, op: { $0.sumChannels($1[0]) }, "\(shape)")
        }
    }

    func testReshapeGradCheck() {
        var rng = testRNG("reshape")
        let x = rng.normalTensor([2, 3, 2, 2])
        // reshape, then an op that is not element-wise in the new shape, so a wrong layout would show
        gradCheck(
            [x], reference: { Ref.linear(Ref.reshape($0[0], [2, 12]), Ref.reshape($0[0], [2, 12])) },
            op: { t, v in t.linear(t.reshape(v[0], [2, 12]), t.reshape(v[0], [2, 12])) })
        gradCheck(
            [x], reference: { Ref.globalAvgPool(Ref.reshape($0[0], [3, 2, 4, 1])) },
            op: { t, v in t.globalAvgPool(t.reshape(v[0], [3, 2, 4, 1])) }, "to [3, 2, 4, 1]")
    }

    // MARK: - Broadcasting binary ops

    private let broadcastPairs: [([Int], [Int])] = [
        ([2, 3, 4, 5], [1, 3, 1, 1]),  // CAM weights
        ([2, 3, 4, 5], [2, 3, 1, 1]),  // per-sample bias
        ([3, 1, 5], [2, 1, 4, 1]),  // both operands broadcast, different ranks
        ([5], [2, 3, 4, 5]),  // a rank-1 first operand
        ([1], [2, 3]),  // scalar-like first operand
        ([2, 3], [1]),  // scalar-like second operand
        ([1, 1], [1]),  // one element each
        ([2, 3], [2, 3]),  // same shape
        ([1, 3, 1, 1], [2, 3, 4, 5]),  // only the first operand broadcast
    ]

    func testBinaryOpsGradCheck() {
        var rng = testRNG("binary")
        for (sa, sb) in broadcastPairs {
            let a = rng.normalTensor(sa)
            let b = rng.normalTensor(sb)
            gradCheck([a, b], reference: { Ref.add($0[0], $0[1]) }, op: { $0.add($1[0], $1[1]) }, "add \(sa) \(sb)")
            gradCheck([a, b], reference: { Ref.sub($0[0], $0[1]) }, op: { $0.sub($1[0], $1[1]) }, "sub \(sa) \(sb)")
            gradCheck([a, b], reference: { Ref.mul($0[0], $0[1]) }, op: { $0.mul($1[0], $1[1]) }, "mul \(sa) \(sb)")
        }
    }

    func testBinaryOpsWithOneConstantOperand() {
        var rng = testRNG("binary constant")
        let a = rng.normalTensor([2, 3, 2, 2])
        let b = rng.normalTensor([1, 3, 1, 1])
        for (da, db) in [(true, false), (false, true)] {
            gradCheck(
                [a, b], differentiable: [da, db], reference: { Ref.sub($0[0], $0[1]) },
                op: { $0.sub($1[0], $1[1]) }, "sub \(da) \(db)")
            gradCheck(
                [a, b], differentiable: [da, db], reference: { Ref.mul($0[0], $0[1]) },
                op: { $0.mul($1[0], $1[1]) }, "mul \(da) \(db)")
        }
    }

    // MARK: - Golden (torch)

    private func goldenUnary(
        _ name: String, _ op: @escaping (Tape, Var) -> Var, file: StaticString = #filePath,
        line: UInt = #line
    ) throws {
        try assertGolden(
            try Fixture.load(name), inputs: ["x"], differentiable: ["x"], op: { op($0, $1[0]) },
            file: file, line: line)
    }

    /// Golden: Scripts/golden/make_golden.py case reflection_pad_p1 (F.pad reflect (1, 1, 1, 1), x [2, 3, 5, 4]).
    func testGoldenReflectionPadP1() throws { try goldenUnary("reflection_pad_p1") { $0.reflectionPad2d($1, 1) } }

    /// Golden: Scripts/golden/make_golden.py case reflection_pad_p3 (F.pad reflect (3, 3, 3, 3), x [1, 2, 5, 6]).
    func testGoldenReflectionPadP3() throws { try goldenUnary("reflection_pad_p3") { $0.reflectionPad2d($1, 3) } }

    /// Golden: Scripts/golden/make_golden.py case upsample_nearest2x (F.interpolate nearest ×2, x [2, 3, 3, 5]).
    func testGoldenUpsampleNearest2x() throws { try goldenUnary("upsample_nearest2x") { $0.upsampleNearest2x($1) } }

    /// Golden: Scripts/golden/make_golden.py case global_avg_pool (adaptive_avg_pool2d(x, 1), x [2, 3, 5, 4]).
    func testGoldenGlobalAvgPool() throws { try goldenUnary("global_avg_pool") { $0.globalAvgPool($1) } }

    /// Golden: Scripts/golden/make_golden.py case global_max_pool (adaptive_max_pool2d(x, 1), x [2, 3, 5, 4]).
    func testGoldenGlobalMaxPool() throws { try goldenUnary("global_max_pool") { $0.globalMaxPool($1) } }

    /// Golden: Scripts/golden/make_golden.py case concat_channels (torch.cat dim 1, a [2, 3, 4, 4], b [2, 2, 4, 4]).
    func testGoldenConcatChannels() throws {
        try assertGolden(try Fixture.load("concat_channels"), inputs: ["a", "b"], differentiable: ["a", "b"]) {
            $0.concatChannels($1)
        }
    }

    /// Golden: Scripts/golden/make_golden.py case mul_broadcast (x [2, 3, 4, 5] * w [1, 3, 1, 1]).
    func testGoldenMulBroadcast() throws {
        try assertGolden(try Fixture.load("mul_broadcast"), inputs: ["x", "w"], differentiable: ["x", "w"]) {
            $0.mul($1[0], $1[1])
        }
    }

    /// Golden: Scripts/golden/make_golden.py case add_broadcast (x [2, 3, 4, 5] + b [2, 3, 1, 1]).
    func testGoldenAddBroadcast() throws {
        try assertGolden(try Fixture.load("add_broadcast"), inputs: ["x", "b"], differentiable: ["x", "b"]) {
            $0.add($1[0], $1[1])
        }
    }
}
