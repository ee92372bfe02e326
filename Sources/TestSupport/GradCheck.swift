import Engine
import Foundation
import XCTest

/// What a gradient check measured: the worst |diff| / (atol + rtol·|ref|) of the forward and of each checked
/// gradient (below 1 passes; the distance from 1 is the margin), for tests that want to report or tighten.
public struct GradCheckReport {
    public var forwardRatio = 0.0
    public var gradientRatios: [Int: Double] = [:]
    /// The Float64 central-difference gradients, by input index.
    public var numericGradients: [Int: DTensor] = [:]
}

/// Checks an engine op against a Float64 reference (docs/reference.md §R.4, tier 1):
///
/// 1. the engine's float32 forward against `reference` evaluated on the same input values (widened to Float64);
/// 2. a random upstream gradient dy (seeded), `tape.backward(y, seed: dy)`, and every differentiable input's
///    engine gradient against central differences of L(x) = Σ reference(x)·dy computed in Float64, with step
///    h = `step`·max(1, |x_j|). Each difference is also recomputed with step 2h; the two must agree within
///    `fdAtol` + `fdRtol`·|g| (tight: this catches a reference that is not smooth at the chosen inputs, e.g. an
///    input at a ReLU kink or a max-pool tie, so that the engine is never compared with a meaningless number);
/// 3. that the op changed neither its inputs nor dy, that every differentiable input received a gradient of
///    its own shape, and that no non-differentiable input received one.
///
/// - Parameters:
///   - inputs: the float32 inputs (draw them from a seeded `RandomGenerator`).
///   - differentiable: which inputs get `requiresGrad` (default: all). Others enter as non-differentiable inputs.
///   - reference: the naive Float64 forward (a `Ref` function); it receives the inputs in order.
///   - op: the engine op, given the tape and one `Var` per input.
///   - atol, rtol: engine (float32) vs reference tolerances for the forward and the gradients.
@discardableResult
public func gradCheck(
    _ inputs: [Tensor], differentiable: [Bool]? = nil,
    reference: ([DTensor]) -> DTensor,
    op: (Tape, [Var]) -> Var,
    seed: UInt64 = 0x5EED,
    atol: Double = 1e-5, rtol: Double = 1e-4,
    step: Double = 1e-6, fdAtol: Double = 1e-7, fdRtol: Double = 1e-6,
    _ message: @autoclosure () -> String = "",
    file: StaticString = #filePath, line: UInt = #line
) -> GradCheckReport {
    let label = message().isEmpty ? "" : message() + ": "
    let diff = differentiable ?? [Bool](repeating: true, count: inputs.count)
    precondition(diff.count == inputs.count, "gradCheck: \(diff.count) flags for \(inputs.count) inputs")
    var report = GradCheckReport()
    let x64 = inputs.map { DTensor($0) }
    let originals = inputs.map { $0.copy() }

    // (a) forward
    let tape = Tape()
    let vars = inputs.enumerated().map { tape.input($1, requiresGrad: diff[$0]) }
    let y = op(tape, vars)
    let yRef = reference(x64)
    assertClose(y.value, yRef, atol: atol, rtol: rtol, "\(label)forward", file: file, line: line)
    report.forwardRatio =
        y.value.shape == yRef.shape
        ? Closeness(DTensor(y.value).data, yRef.data, atol: atol, rtol: rtol).worstRatio : .infinity

    // (b) backward with a random upstream gradient
    let dy = gradCheckUpstream(y.shape, seed: seed)
    let dyCopy = dy.copy()
    tape.backward(y, seed: dy)
    let dy64 = DTensor(dy)
    assertBitwiseEqual(dy, dyCopy, "\(label)backward modified the seed dy", file: file, line: line)
    for (i, t) in inputs.enumerated() {
        assertBitwiseEqual(t, originals[i], "\(label)the op modified input \(i)", file: file, line: line)
    }

    func loss(_ xs: [DTensor]) -> Double {
        let r = reference(xs)
        var s = 0.0
        for k in 0..<r.count { s += r[k] * dy64[k] }
        return s
    }
    for i in inputs.indices {
        let g = tape.grad(of: vars[i])
        guard diff[i] else {
            if let g {
                XCTFail("\(label)non-differentiable input \(i) received a gradient \(g.shape)", file: file, line: line)
            }
            continue
        }
        guard let g else {
            XCTFail("\(label)input \(i) received no gradient", file: file, line: line)
            continue
        }
        var xs = x64
        var num = DTensor(zeros: x64[i].shape)
        var fdBad: [String] = []
        for j in 0..<xs[i].count {
            let x0 = x64[i][j]
            let h = step * max(1, abs(x0))
            func at(_ v: Double) -> Double {
                xs[i][j] = v
                return loss(xs)
            }
            let g1 = (at(x0 + h) - at(x0 - h)) / (2 * h)
            let g2 = (at(x0 + 2 * h) - at(x0 - 2 * h)) / (4 * h)
            xs[i][j] = x0
            num[j] = g1
            if !(abs(g1 - g2) <= fdAtol + fdRtol * abs(g1)), fdBad.count < 5 {
                fdBad.append("[\(j)] \(multiIndex(j, x64[i].shape)): step h gives \(g1), 2h gives \(g2)")
            }
        }
        if !fdBad.isEmpty {
            XCTFail(
                "\(label)finite differences of the reference are inconsistent for input \(i) (kink or tie at the "
                    + "chosen inputs?):\n  " + fdBad.joined(separator: "\n  "), file: file, line: line)
        }
        report.numericGradients[i] = num
        assertClose(g, num, atol: atol, rtol: rtol, "\(label)gradient of input \(i)", file: file, line: line)
        report.gradientRatios[i] =
            g.shape == num.shape
            ? Closeness(DTensor(g).data, num.data, atol: atol, rtol: rtol).worstRatio : .infinity
    }
    if ProcessInfo.processInfo.environment["GRADCHECK_VERBOSE"] != nil {
        let grads = report.gradientRatios.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
        print("gradCheck \(label)\(file):\(line) forward ratio \(report.forwardRatio), gradient ratios \(grads)")
    }
    return report
}

/// The upstream gradient dy that `gradCheck(…, seed:)` draws for an output of `shape`, so that a test can
/// reproduce the check's backward pass (e.g. to compare a reference backward with `numericGradients`).
public func gradCheckUpstream(_ shape: [Int], seed: UInt64 = 0x5EED) -> Tensor {
    var rng = RandomGenerator(seed: seed, stream: [0x67_72_61_64])
    return rng.normalTensor(shape)
}
