import Engine
import Foundation
import TestSupport
import XCTest

/// RandomGenerator (xoshiro256** seeded through SplitMix64) and the PyTorch default initialisation.
final class RandomTests: XCTestCase {
    private func draws(_ g: inout RandomGenerator, _ n: Int) -> [UInt64] { (0..<n).map { _ in g.next() } }

    func testSameSeedSameSequence() {
        var a = RandomGenerator(seed: 42)
        var b = RandomGenerator(seed: 42)
        XCTAssertEqual(draws(&a, 1000), draws(&b, 1000))
        var c = RandomGenerator(seed: 42, stream: [3, 7])
        var d = RandomGenerator(seed: 42, stream: [3, 7])
        XCTAssertEqual(c.normalTensor([50]).array, d.normalTensor([50]).array)
    }

    func testSavedStateRestoresTheExactContinuation() throws {
        var g = RandomGenerator(seed: 7, stream: [1, 2])
        _ = draws(&g, 37)
        _ = g.normal()
        _ = g.uniform()
        let saved = g.state
        let expected = draws(&g, 100)
        var restored = RandomGenerator(state: saved)
        XCTAssertEqual(draws(&restored, 100), expected)
        // a Codable round trip (checkpoints) restores it too
        var h = RandomGenerator(state: saved)
        let decoded = try JSONDecoder().decode(RandomGenerator.self, from: JSONEncoder().encode(h))
        XCTAssertEqual(decoded, h)
        var d2 = decoded
        XCTAssertEqual(draws(&d2, 100), draws(&h, 100))
    }

    func testDifferentSeedsAndStreamsDiffer() {
        let keys: [(UInt64, [UInt64])] = [
            (0, []), (1, []), (0, [0]), (0, [1]), (0, [0, 1]), (0, [1, 0]),
            (0, [0, 0]), (1, [0]), (2, [5, 9]), (2, [5, 10]),
        ]
        var firsts: [[UInt64]] = []
        for (seed, stream) in keys {
            var g = RandomGenerator(seed: seed, stream: stream)
            firsts.append(draws(&g, 4))
        }
        XCTAssertEqual(
            Set(firsts.map { $0.description }).count, keys.count, "every (seed, stream) gives its own sequence")
        // streams are not shifted copies of each other either
        let all = firsts.flatMap { $0 }
        XCTAssertEqual(Set(all).count, all.count)
    }

    /// Independent SplitMix64 + xoshiro256** (Blackman & Vigna), written from the published reference code.
    func testMatchesReferenceXoshiro256StarStar() {
        func splitmix(_ x: inout UInt64) -> UInt64 {
            x = x &+ 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
        var sm: UInt64 = 0
        var s = (0..<4).map { _ in splitmix(&sm) }
        XCTAssertEqual(s[0], 0xE220_A839_7B1D_CDAF, "published first SplitMix64 output for seed 0")
        var g = RandomGenerator(seed: 0)
        XCTAssertEqual(g.state, s)
        for i in 0..<1000 {
            let result = rotl(s[1] &* 5, 7) &* 9
            let t = s[1] << 17
            s[2] ^= s[0]
            s[3] ^= s[1]
            s[1] ^= s[2]
            s[0] ^= s[3]
            s[2] ^= t
            s[3] = rotl(s[3], 45)
            let got = g.next()
            if got != result { return XCTFail("output \(i): \(got) vs reference \(result)") }
        }
    }

    func testUniformRange() {
        var g = RandomGenerator(seed: 11)
        var sum = 0.0
        var lo = Float(1)
        var hi = Float(0)
        for _ in 0..<100_000 {
            let u = g.uniform()
            XCTAssert(u >= 0 && u < 1, "uniform() = \(u) outside [0, 1)")
            sum += Double(u)
            lo = min(lo, u)
            hi = max(hi, u)
        }
        XCTAssertEqual(sum / 100_000, 0.5, accuracy: 0.005)
        XCTAssertLessThan(lo, 1e-3)
        XCTAssertGreaterThan(hi, 1 - 1e-3)
        for _ in 0..<10_000 {
            let d = g.uniformDouble()
            let r = g.uniform(-2, 3)
            XCTAssert(d >= 0 && d < 1, "uniformDouble() = \(d)")
            XCTAssert(r >= -2 && r < 3, "uniform(-2, 3) = \(r)")
        }
    }

    func testNormalMoments() {
        var g = RandomGenerator(seed: 12)
        let n = 100_000
        var s = 0.0
        var s2 = 0.0
        var tail = 0
        for _ in 0..<n {
            let z = Double(g.normal())
            XCTAssert(z.isFinite)
            s += z
            s2 += z * z
            if abs(z) > 1.959964 { tail += 1 }
        }
        let mean = s / Double(n)
        let variance = s2 / Double(n) - mean * mean
        XCTAssertEqual(mean, 0, accuracy: 0.02)  // ~6 standard errors
        XCTAssertEqual(variance, 1, accuracy: 0.03)
        XCTAssertEqual(Double(tail) / Double(n), 0.05, accuracy: 0.005, "two-sided 5% tail")
        let t = g.normalTensor([10_000], std: 0.1).array
        let std = (t.reduce(0) { $0 + Double($1 * $1) } / 10_000).squareRoot()
        XCTAssertEqual(std, 0.1, accuracy: 0.005)
    }

    func testIntCoversRange() {
        var g = RandomGenerator(seed: 13)
        var counts = [Int](repeating: 0, count: 7)
        for _ in 0..<7000 { counts[g.int(7)] += 1 }
        XCTAssert(counts.allSatisfy { $0 > 850 && $0 < 1150 }, "\(counts)")
    }

    func testKaimingUniformBoundsAndShape() {
        var g = RandomGenerator(seed: 14)
        for shape in [[64, 8, 3, 3], [10, 300], [4, 1, 7, 7]] {
            let fanIn = shape.dropFirst().reduce(1, *)
            XCTAssertEqual(Init.fanIn(shape), fanIn)
            let b = 1 / Float(fanIn).squareRoot()
            let w = Init.kaimingUniform(shape, &g)
            XCTAssertEqual(w.shape, shape)
            let v = w.array
            XCTAssert(v.allSatisfy { $0 >= -b && $0 <= b }, "\(shape): a value outside ±\(b)")
            if v.count >= 3000 {
                XCTAssertLessThan(v.min()!, -0.98 * b)
                XCTAssertGreaterThan(v.max()!, 0.98 * b)
                // ten equal bins over [−b, b] each hold about a tenth (loose: ±20%)
                var bins = [Int](repeating: 0, count: 10)
                for x in v { bins[min(9, Int((x + b) / (2 * b) * 10))] += 1 }
                let expected = Double(v.count) / 10
                XCTAssert(bins.allSatisfy { abs(Double($0) - expected) < 0.2 * expected }, "\(shape): bins \(bins)")
            }
            let bias = Init.bias(shape[0], weightShape: shape, &g)
            XCTAssertEqual(bias.shape, [shape[0]])
            XCTAssert(bias.array.allSatisfy { $0 >= -b && $0 <= b })
        }
    }
}
