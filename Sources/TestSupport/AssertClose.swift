import Engine
import XCTest

// Tolerance checks for tests (docs/reference.md §R.4):
// shapes first, then every element must satisfy |a − b| ≤ atol + rtol·|b|, where b is the reference.
// A failure reports the worst element (largest abs diff), its index, and the first few failing pairs,
// in the spirit of llm.c's check_tensor.

/// The outcome of comparing `actual` with `expected` element-wise.
public struct Closeness {
    /// Number of elements that fail |a − b| ≤ atol + rtol·|b| (NaN anywhere counts as failing).
    public var failures = 0
    /// The largest |a − b| and where it occurs (nil when there are no elements).
    public var maxAbsDiff = 0.0
    public var maxAbsDiffIndex: Int?
    /// The largest |a − b| / (atol + rtol·|b|): below 1 means every element passes, and how much room is left.
    public var worstRatio = 0.0
    /// Up to `keep` failing (index, actual, expected) triples, in index order.
    public var firstFailures: [(index: Int, actual: Double, expected: Double)] = []

    public var passed: Bool { failures == 0 }

    public init(_ actual: [Double], _ expected: [Double], atol: Double, rtol: Double, keep: Int = 5) {
        precondition(atol >= 0 && rtol >= 0, "tolerances must be non-negative (atol \(atol), rtol \(rtol))")
        precondition(actual.count == expected.count, "Closeness: \(actual.count) vs \(expected.count) elements")
        for i in 0..<actual.count {
            let a = actual[i]
            let b = expected[i]
            let d = abs(a - b)
            let allowed = atol + rtol * abs(b)
            let bad = !(d <= allowed)  // NaN fails
            if d > maxAbsDiff || (d.isNaN && !maxAbsDiff.isNaN) || maxAbsDiffIndex == nil {
                maxAbsDiff = d
                maxAbsDiffIndex = i
            }
            if allowed > 0 { worstRatio = max(worstRatio, d / allowed) } else if d > 0 { worstRatio = .infinity }
            if d.isNaN { worstRatio = .nan }
            if bad {
                failures += 1
                if firstFailures.count < keep { firstFailures.append((i, a, b)) }
            }
        }
    }

    /// A multi-line report of the failure (empty when passed).
    public func report(count: Int, shape: [Int]?, atol: Double, rtol: Double) -> String {
        guard !passed else { return "" }
        var s = "\(failures) of \(count) elements differ beyond atol \(atol) + rtol \(rtol)·|expected|"
        if let i = maxAbsDiffIndex {
            let at = shape.map { " \(multiIndex(i, $0))" } ?? ""
            s += "; max |diff| \(maxAbsDiff) at flat index \(i)\(at)"
        }
        for f in firstFailures {
            let at = shape.map { " \(multiIndex(f.index, $0))" } ?? ""
            s += "\n  [\(f.index)]\(at): actual \(f.actual), expected \(f.expected), diff \(f.actual - f.expected)"
        }
        return s
    }
}

/// The multi-index of flat (row-major) index `i` in `shape`.
public func multiIndex(_ i: Int, _ shape: [Int]) -> [Int] {
    var r = [Int](repeating: 0, count: shape.count)
    var k = i
    for d in stride(from: shape.count - 1, through: 0, by: -1) where shape[d] > 0 {
        r[d] = k % shape[d]
        k /= shape[d]
    }
    return r
}

/// Asserts that `actual` and `expected` have the same shape and |a − b| ≤ atol + rtol·|b| element-wise.
public func assertClose(
    _ actual: [Double], shape actualShape: [Int]? = nil, _ expected: [Double],
    shape expectedShape: [Int]? = nil, atol: Double, rtol: Double, _ message: @autoclosure () -> String = "",
    file: StaticString = #filePath, line: UInt = #line
) {
    let prefix = message().isEmpty ? "" : message() + ": "
    if let sa = actualShape, let sb = expectedShape, sa != sb {
        XCTFail("\(prefix)shape \(sa) differs from expected \(sb)", file: file, line: line)
        return
    }
    guard actual.count == expected.count else {
        XCTFail("\(prefix)\(actual.count) elements, expected \(expected.count)", file: file, line: line)
        return
    }
    let c = Closeness(actual, expected, atol: atol, rtol: rtol)
    if !c.passed {
        XCTFail(
            prefix + c.report(count: actual.count, shape: expectedShape ?? actualShape, atol: atol, rtol: rtol),
            file: file, line: line)
    }
}

/// Tensor against tensor (shapes must be equal).
public func assertClose(
    _ actual: Tensor, _ expected: Tensor, atol: Double, rtol: Double,
    _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line
) {
    assertClose(
        actual.array.map(Double.init), shape: actual.shape, expected.array.map(Double.init),
        shape: expected.shape, atol: atol, rtol: rtol, message(), file: file, line: line)
}

/// Tensor against a Float64 reference tensor (shapes must be equal).
public func assertClose(
    _ actual: Tensor, _ expected: DTensor, atol: Double, rtol: Double,
    _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line
) {
    assertClose(
        actual.array.map(Double.init), shape: actual.shape, expected.data, shape: expected.shape,
        atol: atol, rtol: rtol, message(), file: file, line: line)
}

/// Tensor against literal values (the tensor's element count must match; no shape is given for the values).
public func assertClose(
    _ actual: Tensor, _ expected: [Double], atol: Double, rtol: Double,
    _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line
) {
    assertClose(
        actual.array.map(Double.init), shape: actual.shape, expected, atol: atol, rtol: rtol, message(),
        file: file, line: line)
}

/// Float arrays (no shapes: element counts must match).
public func assertClose(
    _ actual: [Float], _ expected: [Float], atol: Double, rtol: Double,
    _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line
) {
    assertClose(
        actual.map(Double.init), expected.map(Double.init), atol: atol, rtol: rtol, message(),
        file: file, line: line)
}

/// Asserts bit-for-bit equality of two tensors (shape and every element's bit pattern).
public func assertBitwiseEqual(
    _ actual: Tensor, _ expected: Tensor, _ message: @autoclosure () -> String = "",
    file: StaticString = #filePath, line: UInt = #line
) {
    let prefix = message().isEmpty ? "" : message() + ": "
    guard actual.shape == expected.shape else {
        XCTFail("\(prefix)shape \(actual.shape) differs from expected \(expected.shape)", file: file, line: line)
        return
    }
    if let i = (0..<actual.count).first(where: { actual[$0].bitPattern != expected[$0].bitPattern }) {
        XCTFail(
            "\(prefix)element \(i) \(multiIndex(i, actual.shape)) is \(actual[i]), expected \(expected[i]) bit for bit",
            file: file, line: line)
    }
}

/// max_i |a_i − b_i| / max_i |b_i|: the distance of `a` from the reference `b` relative to the reference's scale (the
/// parity measure of the step and KID goldens; an element-wise relative bound means nothing for entries that are
/// ~0 by cancellation). Computed in Double; max_i |a_i − b_i| when `b` is all zeros.
public func scaledMaxDifference<A: Collection, B: Collection>(_ a: A, _ b: B) -> Double
where A.Element == Float, B.Element == Float {
    precondition(a.count == b.count, "scaledMaxDifference: \(a.count) vs \(b.count) elements")
    var diff = 0.0
    var scale = 0.0
    for (x, y) in zip(a, b) {
        diff = max(diff, abs(Double(x) - Double(y)))
        scale = max(scale, abs(Double(y)))
    }
    return scale == 0 ? diff : diff / scale
}

/// `scaledMaxDifference` of two tensors of the same shape.
public func scaledMaxDifference(_ a: Tensor, _ b: Tensor) -> Double {
    precondition(a.shape == b.shape, "scaledMaxDifference: shapes \(a.shape) and \(b.shape)")
    return scaledMaxDifference(a.buffer, b.buffer)
}
