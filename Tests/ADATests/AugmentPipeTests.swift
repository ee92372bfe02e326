import ADA
import Engine
import Foundation
import TestSupport
import XCTest

/// The geometric pipeline (spec D.1-D.2): identity at p = 0, each forced transform against its exact image on a
/// smooth picture, exact adjoint (= the gradient of a linear map), independent per-image draws.
final class AugmentPipeTests: XCTestCase {
    /// A smooth test picture: channel c at pixel (x, y) is f_c(x, y).
    static func f(_ c: Int, _ x: Double, _ y: Double) -> Double {
        0.6 * sin(0.21 * x + 0.13 * y + Double(c)) + 0.3 * cos(0.17 * y - 0.07 * x * Double(c + 1))
    }

    func smoothImage(_ h: Int, _ w: Int) -> Tensor {
        let t = Tensor(uninitialized: [1, 3, h, w])
        for c in 0..<3 {
            for y in 0..<h { for x in 0..<w { t[(c * h + y) * w + x] = Float(Self.f(c, Double(x), Double(y))) } }
        }
        return t
    }

    func testZeroStrengthLeavesImagesUntouched() {
        var cfg = ADAConfig()
        cfg.p = 0
        let ada = AdaptiveAugment(config: cfg, seed: 1)
        ada.beginStep(1, globalIndices: [0, 1])
        let t = Tape()
        var rng = RandomGenerator(seed: 2)
        let x = t.input(rng.uniformTensor([2, 3, 16, 16], -1, 1))
        let y = ada.augment(t, x, domain: .b)
        XCTAssertEqual(y.value.array, x.value.array)
    }

    func testResamplingChainIsNearIdentityForATinyTransform() {
        let t = Tape()
        var rng = RandomGenerator(seed: 3)
        let x = t.input(rng.uniformTensor([1, 3, 24, 20], -1, 1))
        let y = AugmentPipe.apply(t, x, inverse: .rotate(1e-12))
        XCTAssertEqual(y.shape, x.shape)
        var worst: Float = 0
        for i in 0..<x.value.count { worst = max(worst, abs(y.value[i] - x.value[i])) }
        XCTAssertLessThan(worst, 1e-5, "chain at (near) identity deviates by \(worst)")
    }

    /// Each forced transform against the picture evaluated at the exactly transformed coordinates, away from borders.
    func testEachForcedTransformMatchesItsExactImage() {
        let (h, w) = (40, 40)
        let cx = Double(w - 1) / 2
        let cy = Double(h - 1) / 2
        var cases: [(String, AugmentDebug, (Double, Double) -> (Double, Double))] = []
        var d = AugmentDebug()
        d.xflip = true
        cases.append(("xflip", d, { (-$0, $1) }))
        d = AugmentDebug()
        d.rotate90 = 1
        cases.append(("rotate90", d, { x, y in (-y, x) }))  // G_inv = rotate(π/2), as stylegan2-ada
        d = AugmentDebug()
        d.translateInt = (0.1, -0.05)  // 4 and −2 pixels
        cases.append(("translate-int", d, { ($0 - 4, $1 + 2) }))
        d = AugmentDebug()
        d.scale = 1.25
        cases.append(("scale", d, { ($0 / 1.25, $1 / 1.25) }))
        d = AugmentDebug()
        d.rotate = 0.4
        cases.append(("rotate", d, { x, y in (cos(0.4) * x - sin(0.4) * y, sin(0.4) * x + cos(0.4) * y) }))
        d = AugmentDebug()
        d.aniso = 1.2
        cases.append(("aniso", d, { ($0 / 1.2, $1 * 1.2) }))
        d = AugmentDebug()
        d.translateFrac = (0.03, 0.02)
        cases.append(("translate-frac", d, { ($0 - 0.03 * 40, $1 - 0.02 * 40) }))
        for (name, debug, source) in cases {
            var rng = RandomGenerator(seed: 5)
            let inv = AugmentPipe.sampleInverse(p: 0, width: w, height: h, debug: debug, rng: &rng)
            let t = Tape()
            let y = AugmentPipe.apply(t, t.constant(smoothImage(h, w)), inverse: inv).value
            var worst = 0.0
            var checked = 0
            for c in 0..<3 {
                for i in 0..<h {
                    for j in 0..<w {
                        let (sx, sy) = source(Double(j) - cx, Double(i) - cy)
                        let (px, py) = (sx + cx, sy + cy)
                        guard px > 3, px < Double(w - 4), py > 3, py < Double(h - 4) else { continue }
                        worst = max(worst, abs(Double(y[(c * h + i) * w + j]) - Self.f(c, px, py)))
                        checked += 1
                    }
                }
            }
            XCTAssertGreaterThan(checked, 1000, name)
            XCTAssertLessThan(worst, 0.02, "\(name): max deviation \(worst) from the exactly transformed picture")
        }
    }

    /// The chain is linear in the image, so its gradient is its adjoint: <A x, r> = <x, Aᵀ r> exactly.
    func testGradientIsTheExactAdjoint() {
        var rng = RandomGenerator(seed: 7)
        for trial in 0..<4 {
            let inv = AugmentPipe.sampleInverse(p: 1, width: 14, height: 11, rng: &rng)
            let x = rng.normalTensor([1, 3, 11, 14])
            let r = rng.normalTensor([1, 3, 11, 14])
            let t = Tape()
            let xv = t.input(x)
            let y = AugmentPipe.apply(t, xv, inverse: inv)
            t.backward(y, seed: r)
            guard let g = t.grad(of: xv) else { return XCTFail("no gradient (trial \(trial))") }
            var lhs = 0.0
            var rhs = 0.0
            for i in 0..<x.count {
                lhs += Double(y.value[i]) * Double(r[i])
                rhs += Double(x[i]) * Double(g[i])
            }
            XCTAssertEqual(lhs, rhs, accuracy: 1e-4 * max(1, abs(lhs)), "trial \(trial)")
        }
    }

    func testImagesOfABatchGetIndependentTransformsFromTheirGlobalIndex() {
        var cfg = ADAConfig()
        cfg.mode = .fixed
        cfg.p = 1
        let ada = AdaptiveAugment(config: cfg, seed: 11)
        let img = smoothImage(16, 16)
        let pair = Tensor(uninitialized: [2, 3, 16, 16])
        pair.data.update(from: img.data, count: img.count)
        (pair.data + img.count).update(from: img.data, count: img.count)
        ada.beginStep(3, globalIndices: [0, 1])
        var t = Tape()
        let y = ada.augment(t, t.constant(pair), domain: .a).value
        XCTAssertNotEqual(Array(y.array[0..<img.count]), Array(y.array[img.count...]))
        // the same global index on another "rank" gets the same transform
        ada.beginStep(3, globalIndices: [1])
        t = Tape()
        let single = ada.augment(t, t.constant(img), domain: .a).value
        XCTAssertEqual(single.array, Array(y.array[img.count...]))
    }
}
