import Engine
import Foundation

/// Probability multipliers and strengths of the augmentations (stylegan2-ada's "bg" preset, spec D.1).
public struct AugmentConfig: Codable, Equatable, Sendable {
    public var xflip = 1.0, rotate90 = 1.0, xint = 1.0
    public var scale = 1.0, rotate = 1.0, aniso = 1.0, xfrac = 1.0
    public var xintMax = 0.125, scaleStd = 0.2, rotateMax = 1.0, anisoStd = 0.2, xfracStd = 0.125
    public init() {}
}

/// Forces transforms in tests (each nil field keeps the random draw).
public struct AugmentDebug {
    public var xflip: Bool?
    public var rotate90: Int?
    public var translateInt: (Double, Double)?  // fractions of W and H
    public var scale: Double?
    public var rotate: Double?  // radians, as the pre-rotation
    public var aniso: Double?
    public var translateFrac: (Double, Double)?
    public init() {}
}

/// Adaptive discriminator augmentation's pixel-blitting and geometric transforms (Karras et al. 2020,
/// stylegan2-ada-pytorch `training/augment.py`, spec D.1-D.2), differentiable with respect to the images.
///
/// Per image, each transform is applied with probability (multiplier · p), with its own random parameter; all are
/// folded into one inverse matrix (output pixel -> input pixel) and executed in one resampling pass: reflect
/// padding, ×2 up-sampling with the sym6 low-pass filter, bilinear sampling, ×2 down-sampling with the same
/// filter. Every random number comes from the image's own generator, so the result depends only on that generator.
public enum AugmentPipe {
    /// The sym6 wavelet low-pass decomposition filter (12 taps, sums to √2), as stylegan2-ada uses for the geometric
    /// chain; normalised to sum 1 before use.
    public static let sym6: [Double] = [
        0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148,
    ]
    static var filter: [Float] {
        let s = sym6.reduce(0, +)
        return sym6.map { Float($0 / s) }
    }
    static let hzPad = 3  // sym6 taps / 4

    /// Draws the inverse transform of one image of size w×h at strength p (every draw happens whatever p is,
    /// so the generator's state advances the same way at every strength).
    public static func sampleInverse(
        p: Double, width w: Int, height h: Int, config c: AugmentConfig = AugmentConfig(),
        debug: AugmentDebug? = nil, rng: inout RandomGenerator
    ) -> Affine2D {
        func coin(_ prob: Double) -> Bool { rng.uniformDouble() < prob }
        func normal() -> Double { Double(rng.normal()) }
        var g = Affine2D.identity
        // blit: x-flip (i ∈ {0, 1}), 90° rotations (k ∈ 0..3), integer translation
        var flip = floor(rng.uniformDouble() * 2)
        if !coin(c.xflip * p) { flip = 0 }
        if let f = debug?.xflip { flip = f ? 1 : 0 }
        g = g * .scale(1 - 2 * flip, 1)
        var k = floor(rng.uniformDouble() * 4)
        if !coin(c.rotate90 * p) { k = 0 }
        if let r = debug?.rotate90 { k = Double(r) }
        g = g * .rotate(Double.pi / 2 * k)
        var t = ((rng.uniformDouble() * 2 - 1) * c.xintMax, (rng.uniformDouble() * 2 - 1) * c.xintMax)
        if !coin(c.xint * p) { t = (0, 0) }
        if let d = debug?.translateInt { t = d }
        g = g * .translate(-(t.0 * Double(w)).rounded(), -(t.1 * Double(h)).rounded())
        // geom: isotropic scale, pre-rotation, anisotropic scale, post-rotation, fractional translation
        var s = exp2(normal() * c.scaleStd)
        if !coin(c.scale * p) { s = 1 }
        if let d = debug?.scale { s = d }
        g = g * .scale(1 / s, 1 / s)
        let pRot = 1 - (max(0, min(1, 1 - c.rotate * p))).squareRoot()
        var theta = (rng.uniformDouble() * 2 - 1) * Double.pi * c.rotateMax
        if !coin(pRot) { theta = 0 }
        if let d = debug?.rotate { theta = d }
        g = g * .rotate(theta)
        var a = exp2(normal() * c.anisoStd)
        if !coin(c.aniso * p) { a = 1 }
        if let d = debug?.aniso { a = d }
        g = g * .scale(1 / a, a)
        var theta2 = (rng.uniformDouble() * 2 - 1) * Double.pi * c.rotateMax
        if !coin(pRot) || debug != nil { theta2 = 0 }
        g = g * .rotate(theta2)
        var f = (normal() * c.xfracStd, normal() * c.xfracStd)
        if !coin(c.xfrac * p) { f = (0, 0) }
        if let d = debug?.translateFrac { f = d }
        g = g * .translate(-f.0 * Double(w), -f.1 * Double(h))
        return g
    }

    /// Applies the inverse transform `inv` to image x: [1, C, H, W] (spec D.2's chain). Identity returns x itself.
    public static func apply(_ t: Tape, _ x: Var, inverse inv: Affine2D) -> Var {
        if inv.isIdentity { return x }
        let (h, w) = (x.shape[2], x.shape[3])
        let cx = Double(w - 1) / 2
        let cy = Double(h - 1) / 2
        // margins: where the output corners come from, plus the filter's reach, within [0, side − 1]
        var m = [-Double.infinity, -Double.infinity, -Double.infinity, -Double.infinity]  // x0, y0, x1, y1
        for (px, py) in [(-cx, -cy), (cx, -cy), (cx, cy), (-cx, cy)] {
            let (qx, qy) = inv.apply(px, py)
            m[0] = max(m[0], -qx)
            m[1] = max(m[1], -qy)
            m[2] = max(m[2], qx)
            m[3] = max(m[3], qy)
        }
        let extra = [Double(hzPad * 2) - cx, Double(hzPad * 2) - cy]
        let limit = [Double(w - 1), Double(h - 1)]
        let pad = (0..<4).map { i in Int(ceil(min(max(m[i] + extra[i % 2], 0), limit[i % 2]))) }
        var g = Affine2D.translate(Double(pad[0] - pad[2]) / 2, Double(pad[1] - pad[3]) / 2) * inv
        var y = t.pad2d(x, left: pad[0], right: pad[2], top: pad[1], bottom: pad[3])
        // ×2 up-sampling (upfirdn2d.upsample2d: pads 6 and 5, gain 2 per axis)
        let f2 = filter.map { $0 * 2 }
        y = t.upfirdn1d(y, axis: .width, filter: f2, up: 2, pad0: 6, pad1: 5)
        y = t.upfirdn1d(y, axis: .height, filter: f2, up: 2, pad0: 6, pad1: 5)
        g = .scale(2, 2) * g * .scale(0.5, 0.5)
        g = .translate(-0.5, -0.5) * g * .translate(0.5, 0.5)
        // bilinear sampling onto the 2× output grid (affine_grid, align_corners = false)
        let hu = y.shape[2]
        let wu = y.shape[3]
        let ho = 2 * (h + 2 * hzPad)
        let wo = 2 * (w + 2 * hzPad)
        g = .scale(2 / Double(wu), 2 / Double(hu)) * g * .scale(Double(wo) / 2, Double(ho) / 2)
        let grid = Tensor(uninitialized: [1, ho, wo, 2])
        for i in 0..<ho {
            let yn = (2 * Double(i) + 1) / Double(ho) - 1
            for j in 0..<wo {
                let xn = (2 * Double(j) + 1) / Double(wo) - 1
                let (gx, gy) = g.apply(xn, yn)
                grid[2 * (i * wo + j)] = Float(gx)
                grid[2 * (i * wo + j) + 1] = Float(gy)
            }
        }
        y = t.gridSample(y, grid: grid, padding: .zeros)
        // ×2 down-sampling and crop (upfirdn2d.downsample2d with padding −6, flip_filter: pads −1, −1)
        y = t.upfirdn1d(y, axis: .width, filter: filter, down: 2, pad0: -1, pad1: -1, flip: true)
        y = t.upfirdn1d(y, axis: .height, filter: filter, down: 2, pad0: -1, pad1: -1, flip: true)
        return y
    }
}
