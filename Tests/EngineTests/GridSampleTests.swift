import Engine
import TestSupport
import XCTest

/// gridSample (bilinear, align_corners = false, zeros or reflection padding), differentiable w.r.t. the image.
final class GridSampleTests: XCTestCase {
    private func check(
        _ name: String, x xs: [Int], out: (Int, Int), range: Float, padding: GridPadding,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        var rng = testRNG(name)
        let x = rng.normalTensor(xs)
        let grid = rng.uniformTensor([xs[0], out.0, out.1, 2], -range, range)
        gradCheck(
            [x, grid], differentiable: [true, false],
            reference: { Ref.gridSample($0[0], grid: $0[1], padding: padding) },
            op: { $0.gridSample($1[0], grid: $1[1].value, padding: padding) }, name, file: file, line: line)
    }

    func testZerosPaddingGradCheck() {
        check("zeros", x: [2, 3, 6, 5], out: (4, 7), range: 1.2, padding: .zeros)
    }

    func testReflectionPaddingGradCheck() {
        check("reflection", x: [2, 3, 6, 5], out: (4, 7), range: 1.2, padding: .reflection)
    }

    func testReflectionFarOutside() {
        // coordinates several image widths outside: the reflection folds more than once
        check("reflection far", x: [1, 2, 4, 5], out: (5, 6), range: 4, padding: .reflection)
    }

    func testZerosFarOutsideGivesZero() {
        check("zeros far", x: [1, 2, 4, 5], out: (5, 6), range: 4, padding: .zeros)
        let tape = Tape()
        let y = tape.gridSample(
            tape.constant(Tensor(repeating: 1, shape: [1, 1, 3, 3])),
            grid: Tensor(shape: [1, 1, 2, 2], [-2, 0, 0, 3]), padding: .zeros)
        XCTAssertEqual(y.value.array, [0, 0])
    }

    func testSingleChannelOddSizes() {
        check("one channel", x: [3, 1, 5, 3], out: (3, 5), range: 1.1, padding: .zeros)
        check("one channel reflection", x: [3, 1, 5, 3], out: (3, 5), range: 1.1, padding: .reflection)
    }

    func testIdentityGridReproducesTheImage() {
        // align_corners = false: pixel j's centre is at g = (2j + 1)/W − 1
        var rng = testRNG("identity grid")
        let (h, w) = (5, 7)
        let x = rng.normalTensor([2, 3, h, w])
        let grid = Tensor(uninitialized: [2, h, w, 2])
        for b in 0..<2 {
            for i in 0..<h {
                for j in 0..<w {
                    let o = ((b * h + i) * w + j) * 2
                    grid[o] = Float(2 * j + 1) / Float(w) - 1
                    grid[o + 1] = Float(2 * i + 1) / Float(h) - 1
                }
            }
        }
        for padding in [GridPadding.zeros, .reflection] {
            let tape = Tape()
            let y = tape.gridSample(tape.constant(x), grid: grid, padding: padding)
            assertClose(y.value, x, atol: 1e-6, rtol: 1e-6, "\(padding)")
        }
    }

    func testReflectionAtTheBorderMirrors() {
        // W = 4: the image spans pixel coordinates [−0.5, 3.5]; reflection folds about those edges, then clamps
        // to the pixel centres [0, 3]
        let x = Tensor(shape: [1, 1, 1, 4], [1, 2, 3, 4])
        let gx: [Float] = [1.5, 1.25, -1.25, 2, 0.875]  // pixel coordinates 4.5, 4, −1, 5.5, 3.25
        let grid = Tensor(shape: [1, 1, 5, 2], gx.flatMap { [$0, 0] })
        let tape = Tape()
        let y = tape.gridSample(tape.constant(x), grid: grid, padding: .reflection)
        // 4.5 -> 2.5 (3.5); 4 -> 3 (4); −1 -> 0 (1); 5.5 -> 1.5 (2.5); 3.25 stays, clamped to 3 (4)
        let expected: [Double] = [3.5, 4, 1, 2.5, 4]
        assertClose(y.value, expected, atol: 1e-6, rtol: 0)
        assertClose(
            Ref.gridSample(DTensor(x), grid: DTensor(grid), padding: .reflection).data, expected,
            atol: 1e-12, rtol: 0, "reference")
    }

    // MARK: - Golden (torch)

    private func golden(
        _ name: String, _ padding: GridPadding, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let f = try Fixture.load(name)
        XCTAssertEqual(try f.meta("align_corners"), "false")
        XCTAssertEqual(try f.meta("padding_mode"), padding == .zeros ? "zeros" : "reflection")
        let grid = try f["grid"]
        try assertGolden(
            f, inputs: ["x"], differentiable: ["x"], op: { $0.gridSample($1[0], grid: grid, padding: padding) },
            file: file, line: line)
    }

    /// Golden: Scripts/golden/make_golden.py case grid_sample_zeros (F.grid_sample bilinear, zeros,
    /// align_corners=False, x [2, 3, 6, 5], grid [2, 4, 7, 2] in [−1.2, 1.2]).
    func testGoldenGridSampleZeros() throws { try golden("grid_sample_zeros", .zeros) }

    /// Golden: Scripts/golden/make_golden.py case grid_sample_reflection (F.grid_sample bilinear, reflection,
    /// align_corners=False, x [2, 3, 6, 5], grid [2, 4, 7, 2] in [−1.2, 1.2]).
    func testGoldenGridSampleReflection() throws { try golden("grid_sample_reflection", .reflection) }
}
