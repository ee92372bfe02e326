import Engine
import Foundation
import TestSupport
import XCTest

// Shared pieces of the golden tests: the fixtures are this target's resources (Tests/EngineTests/Fixtures,
// written by Scripts/golden/make_golden.py), and every op case follows the script's conventions: inputs under
// their names, `y` the output, `dy` the upstream gradient (absent for losses: backward of the scalar itself),
// `grad_<input>` the input gradients.

/// Golden tolerances (the brief for these tests): forward rtol 1e-5 with a tiny atol, gradients rtol 1e-4.
enum GoldenTolerance {
    static let forwardAtol = 1e-6, forwardRtol = 1e-5
    static let gradientAtol = 1e-5, gradientRtol = 1e-4
}

extension Fixture {
    /// `Tests/EngineTests/Fixtures/<name>.safetensors` from this test target's bundle.
    static func load(_ name: String) throws -> Fixture {
        guard let dir = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
            throw FixtureError.notFound("Fixtures directory in the EngineTests bundle")
        }
        let f = try Fixture(directory: dir, name: name)
        XCTAssertEqual(f.metadata["case"], name, "fixture \(name) records another case name")
        return f
    }
}

/// Runs `op` on the fixture's `inputs` (those in `differentiable` require a gradient), compares `y`, runs the
/// backward seeded with the fixture's `dy` (or 1 for a loss) and compares each `grad_<name>`.
/// Returns the tape and the input variables for further checks.
@discardableResult
func assertGolden(
    _ f: Fixture, inputs: [String], differentiable: [String], op: (Tape, [Var]) throws -> Var,
    file: StaticString = #filePath, line: UInt = #line
) throws -> (Tape, [Var]) {
    let tape = Tape()
    let vars = try inputs.map { tape.input(try f[$0], requiresGrad: differentiable.contains($0)) }
    let y = try op(tape, vars)
    assertClose(
        y.value, try f["y"], atol: GoldenTolerance.forwardAtol, rtol: GoldenTolerance.forwardRtol,
        "\(f.name): y", file: file, line: line)
    let seed: Tensor? = f.names.contains("dy") ? try f["dy"] : nil
    tape.backward(y, seed: seed)
    for (name, v) in zip(inputs, vars) where differentiable.contains(name) {
        guard let g = tape.grad(of: v) else {
            XCTFail("\(f.name): no gradient for \(name)", file: file, line: line)
            continue
        }
        assertClose(
            g, try f["grad_" + name], atol: GoldenTolerance.gradientAtol, rtol: GoldenTolerance.gradientRtol,
            "\(f.name): grad_\(name)", file: file, line: line)
    }
    return (tape, vars)
}

/// A seeded generator for one test (a distinct stream per test name keeps tests independent of their order).
func testRNG(_ name: String, seed: UInt64 = 20_240_601) -> RandomGenerator {
    RandomGenerator(seed: seed, stream: name.unicodeScalars.map { UInt64($0.value) })
}
