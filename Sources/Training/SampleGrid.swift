import Engine
import Foundation
import UGATIT

/// Sample grids like the official trainer's (spec B.5): one column per image, 7 rows — real, identity heatmap,
/// identity, translation heatmap, translation, cycle heatmap, cycle reconstruction. Heatmaps are min-max scaled
/// (a constant map renders as its minimum, JET's dark blue, instead of NaN, spec G.25), up-sampled bilinearly to
/// S×S and coloured with JET.
public enum SampleGrid {
    /// An RGB8 image, rows top to bottom, pixels interleaved.
    public struct RGB8 {
        public let width: Int, height: Int
        public var pixels: [UInt8]
        public init(width: Int, height: Int) {
            self.width = width
            self.height = height
            pixels = [UInt8](repeating: 0, count: width * height * 3)
        }
    }

    /// The 7-row grid for translating `images` [N, 3, S, S] with `forward` (A2B or B2A) and back with `backward`.
    /// Runs in evaluation mode (spectral-norm state untouched; generators behave the same in both modes).
    public static func render(images: Tensor, forward: ResnetGenerator, backward: ResnetGenerator) -> RGB8 {
        let n = images.shape[0]
        let s = images.shape[2]
        let w = images.shape[3]
        let plane = 3 * s * w
        var grid = RGB8(width: n * w, height: 7 * s)
        // one image at a time: the generators treat images independently, and a tape of all n images through three
        // generator passes would hold more memory than a training step
        for i in 0..<n {
            let one = Tensor(
                shape: [1, 3, s, w], Array(UnsafeBufferPointer(start: images.data + i * plane, count: plane)))
            let t = Tape(training: false)
            let x = t.constant(one)
            let idt = backward(t, x)
            let fwd = forward(t, x)
            let cyc = backward(t, fwd.image)
            let rows: [(Tensor, Bool)] = [
                (one, false), (idt.heatmap.value, true), (idt.image.value, false),
                (fwd.heatmap.value, true), (fwd.image.value, false),
                (cyc.heatmap.value, true), (cyc.image.value, false),
            ]
            for (r, (tensor, isHeat)) in rows.enumerated() {
                let tile = isHeat ? heatmap(tensor, index: 0, height: s, width: w) : image(tensor, index: 0)
                blit(tile, into: &grid, x: i * w, y: r * s)
            }
        }
        return grid
    }

    /// Image i of [N, 3, H, W] in [-1, 1] as RGB8.
    public static func image(_ t: Tensor, index i: Int) -> RGB8 {
        let h = t.shape[2]
        let w = t.shape[3]
        let plane = h * w
        var out = RGB8(width: w, height: h)
        let base = t.data + i * 3 * plane
        for p in 0..<plane {
            for c in 0..<3 {
                let v = (base[c * plane + p] + 1) * 127.5
                out.pixels[p * 3 + c] = UInt8(max(0, min(255, v.rounded())))
            }
        }
        return out
    }

    /// Heatmap i of [N, 1, h, w] scaled to `height`×`width` and JET-coloured.
    public static func heatmap(_ t: Tensor, index i: Int, height: Int, width: Int) -> RGB8 {
        let h = t.shape[2]
        let w = t.shape[3]
        let m = t.data + i * h * w
        var lo = Float.infinity
        var hi = -Float.infinity
        for j in 0..<(h * w) {
            lo = min(lo, m[j])
            hi = max(hi, m[j])
        }
        let span = hi - lo
        var out = RGB8(width: width, height: height)
        for y in 0..<height {
            // bilinear with half-pixel centres (OpenCV's INTER_LINEAR convention)
            let sy = max(0, min(Float(h - 1), (Float(y) + 0.5) * Float(h) / Float(height) - 0.5))
            let y0 = Int(sy)
            let y1 = min(y0 + 1, h - 1)
            let fy = sy - Float(y0)
            for x in 0..<width {
                let sx = max(0, min(Float(w - 1), (Float(x) + 0.5) * Float(w) / Float(width) - 0.5))
                let x0 = Int(sx)
                let x1 = min(x0 + 1, w - 1)
                let fx = sx - Float(x0)
                let v =
                    (m[y0 * w + x0] * (1 - fx) + m[y0 * w + x1] * fx) * (1 - fy)
                    + (m[y1 * w + x0] * (1 - fx) + m[y1 * w + x1] * fx) * fy
                let u = span > 0 && span.isFinite ? (v - lo) / span : 0
                let (r, g, b) = jet(u)
                let o = (y * width + x) * 3
                out.pixels[o] = r
                out.pixels[o + 1] = g
                out.pixels[o + 2] = b
            }
        }
        return out
    }

    /// The JET colour map (as OpenCV's COLORMAP_JET) for u in [0, 1].
    static func jet(_ u: Float) -> (UInt8, UInt8, UInt8) {
        func ch(_ x: Float) -> UInt8 { UInt8(max(0, min(1, x)) * 255) }
        return (ch(1.5 - abs(4 * u - 3)), ch(1.5 - abs(4 * u - 2)), ch(1.5 - abs(4 * u - 1)))
    }

    public static func blit(_ tile: RGB8, into grid: inout RGB8, x: Int, y: Int) {
        for r in 0..<tile.height {
            let src = r * tile.width * 3
            let dst = ((y + r) * grid.width + x) * 3
            grid.pixels.replaceSubrange(dst..<(dst + tile.width * 3), with: tile.pixels[src..<(src + tile.width * 3)])
        }
    }
}
