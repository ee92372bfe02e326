import Engine
import XCTest

@testable import TestSupport

/// The checkers themselves must be able to fail: each case below feeds assertClose or gradCheck something wrong
/// and asserts that a failure with the right message was recorded (failures are captured, not reported).
final class TestSupportTests: XCTestCase {
    func testScaledMaxDifference() {
        XCTAssertEqual(scaledMaxDifference([1, 2, -4] as [Float], [1, 2, 4] as [Float]), 2)        // |−4 − 4| / 4
        XCTAssertEqual(scaledMaxDifference([1, 2] as [Float], [1, 2] as [Float]), 0)
        XCTAssertEqual(scaledMaxDifference([0.5, 0] as [Float], [0, 0] as [Float]), 0.5)         // zero reference: absolute
        XCTAssertEqual(scaledMaxDifference(Tensor(shape: [2], [1, 3]), Tensor(shape: [2], [1, 2])), 0.5)
    }

    private var captured: [String]?

    override func recordFailure(
        withDescription description: String, inFile filePath: String, atLine lineNumber: Int,
        expected: Bool
    ) {
        if captured != nil {
            captured!.append(description)
        } else {
            super.recordFailure(withDescription: description, inFile: filePath, atLine: lineNumber, expected: expected)
        }
    }

    /// The failure messages recorded while running `body`.
    private func failures(_ body: () -> Void) -> [String] {
        captured = []
        body()
        defer { captured = nil }
        return captured!
    }

    private func assertFails(_ fragment: String, file: StaticString = #filePath, line: UInt = #line, _ body: () -> Void)
    {
        let got = failures(body)
        XCTAssertTrue(
            got.contains { $0.contains(fragment) }, "expected a failure mentioning \"\(fragment)\", got \(got)",
            file: file, line: line)
    }

    func testAssertClosePassesAndFails() {
        XCTAssertEqual(failures { assertClose([1, 2, 3], [1, 2.00001, 3], atol: 0, rtol: 1e-5) }, [])
        assertFails("max |diff| 0.5 at flat index 1 [0, 1]") {
            assertClose(
                Tensor(shape: [1, 3], [1, 2.5, 3]), Tensor(shape: [1, 3], [1, 2, 3]), atol: 1e-3, rtol: 1e-3)
        }
        assertFails("shape [3] differs from expected [1, 3]") {
            assertClose(Tensor(shape: [3], [1, 2, 3]), Tensor(shape: [1, 3], [1, 2, 3]), atol: 1, rtol: 1)
        }
        assertFails("1 of 2 elements") { assertClose([Float.nan, 1], [0, 1], atol: 1, rtol: 1) }
        assertFails("is 2.0, expected 1.0 bit for bit") {
            assertBitwiseEqual(Tensor(shape: [2], [0, 2]), Tensor(shape: [2], [0, 1]))
        }
    }

    func testClosenessMeasuresTheMargin() {
        let c = Closeness([1.0, 2.0, 3.5], [1.0, 2.1, 3.0], atol: 0.1, rtol: 0.1)
        XCTAssertEqual(c.failures, 1)
        XCTAssertEqual(c.maxAbsDiffIndex, 2)
        XCTAssertEqual(c.maxAbsDiff, 0.5, accuracy: 1e-12)
        XCTAssertEqual(c.worstRatio, 0.5 / 0.4, accuracy: 1e-12)
        XCTAssertEqual(c.firstFailures.map(\.index), [2])
    }

    func testGradCheckCatchesAWrongBackward() {
        let x = Tensor(shape: [3], [0.5, -1, 2])
        // y = x² with a backward that returns 3x·dy instead of 2x·dy
        assertFails("gradient of input 0") {
            gradCheck(
                [x], reference: { Ref.mul($0[0], $0[0]) },
                op: { tape, v in
                    let xv = v[0].value
                    let y = Tensor(shape: xv.shape, xv.array.map { $0 * $0 })
                    return tape.record(y, inputs: [v[0]]) { [unowned tape] dy in
                        tape.accumulate(v[0], Tensor(shape: xv.shape, zip(xv.array, dy.array).map { 3 * $0 * $1 }))
                    }
                })
        }
    }

    func testGradCheckCatchesAWrongForward() {
        var rng = testRNG("wrong forward")
        assertFails("forward") {
            gradCheck(
                [rng.normalTensor([4], minMagnitude: 0.1)], reference: { Ref.leakyRelu($0[0], slope: 0.01) },
                op: { $0.relu($1[0]) })
        }
    }

    func testGradCheckCatchesAKinkInTheReference() {
        // 1.5e-6 is within 2h of the ReLU kink: steps h and 2h see different slopes
        assertFails("finite differences of the reference are inconsistent") {
            gradCheck([Tensor(shape: [2], [1.5e-6, 1])], reference: { Ref.relu($0[0]) }, op: { $0.relu($1[0]) })
        }
    }

    func testGradCheckCatchesAnOpThatMutatesItsInput() {
        assertFails("the op modified input 0") {
            gradCheck(
                [Tensor(shape: [2], [1, 2])], reference: { $0[0] },
                op: { tape, v in
                    let y = v[0].value.copy()
                    v[0].value[0] = 7
                    return tape.record(y, inputs: [v[0]]) { [unowned tape] in tape.accumulate(v[0], $0, owned: false) }
                })
        }
    }

    func testGradCheckCatchesAMissingGradient() {
        assertFails("input 1 received no gradient") {
            gradCheck(
                [Tensor(shape: [2], [1, 2]), Tensor(shape: [2], [3, 4])], reference: { Ref.add($0[0], $0[1]) },
                op: { tape, v in tape.add(v[0], tape.detach(v[1])) })
        }
    }

    /// mpirun interleaves the ranks' writes: a worker line that another rank's unfinished line precedes still counts.
    func testWorkerLinesAfterAnotherRanksFragment() {
        let output = "noise\nF2WMPI rank=0 size=2 check=a ok\n\tF2WMPI rank=1 size=2 check=a ok\n\t Executed 1 test\n"
        let r = MPIJob.Result(exitCode: 0, output: output, seconds: 1, timedOut: false)
        XCTAssertEqual(r.workerLines, ["rank=0 size=2 check=a ok", "rank=1 size=2 check=a ok"])
    }
}
