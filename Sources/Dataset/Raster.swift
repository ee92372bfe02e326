/// A tiny antialiased rasteriser for the procedural demo faces: shapes are signed distance
/// functions in normalised coordinates (0…1 across the image, negative inside), painted in order.
struct Shape {
    var x0: Float, y0: Float, x1: Float, y1: Float  // bounding box, normalised
    let sdf: (Float, Float) -> Float

    /// An ellipse; `taper` > 0 narrows it below the centre (an egg, for chins).
    static func ellipse(_ cx: Float, _ cy: Float, _ rx: Float, _ ry: Float, taper: Float = 0) -> Shape {
        Shape(x0: cx - rx, y0: cy - ry, x1: cx + rx, y1: cy + ry) { x, y in
            let dy = (y - cy) / ry
            let narrow = 1 - taper * max(0, dy) * max(0, dy)
            let dx = (x - cx) / (rx * narrow)
            return ((dx * dx + dy * dy).squareRoot() - 1) * min(rx * narrow, ry)
        }
    }

    /// A segment of radius r (round ends).
    static func capsule(_ ax: Float, _ ay: Float, _ bx: Float, _ by: Float, _ r: Float) -> Shape {
        Shape(x0: min(ax, bx) - r, y0: min(ay, by) - r, x1: max(ax, bx) + r, y1: max(ay, by) + r) { x, y in
            let px = x - ax
            let py = y - ay
            let dx = bx - ax
            let dy = by - ay
            let t = max(0, min(1, (px * dx + py * dy) / max(dx * dx + dy * dy, 1e-12)))
            let ex = px - t * dx
            let ey = py - t * dy
            return (ex * ex + ey * ey).squareRoot() - r
        }
    }

    /// An axis-aligned box with corner radius r.
    static func box(_ x0: Float, _ y0: Float, _ x1: Float, _ y1: Float, radius r: Float = 0) -> Shape {
        let cx = (x0 + x1) / 2
        let cy = (y0 + y1) / 2
        let hx = (x1 - x0) / 2 - r
        let hy = (y1 - y0) / 2 - r
        return Shape(x0: x0, y0: y0, x1: x1, y1: y1) { x, y in
            let qx = abs(x - cx) - hx
            let qy = abs(y - cy) - hy
            let ox = max(qx, 0)
            let oy = max(qy, 0)
            return (ox * ox + oy * oy).squareRoot() + min(max(qx, qy), 0) - r
        }
    }

    /// Grown by w (w < 0 shrinks): used for outlines drawn under a shape.
    func expanded(_ w: Float) -> Shape {
        let f = sdf
        return Shape(x0: x0 - w, y0: y0 - w, x1: x1 + w, y1: y1 + w) { f($0, $1) - w }
    }

    /// The band of width w around the boundary.
    func ring(_ w: Float) -> Shape {
        let f = sdf
        return Shape(x0: x0 - w, y0: y0 - w, x1: x1 + w, y1: y1 + w) { abs(f($0, $1)) - w / 2 }
    }

    func union(_ o: Shape) -> Shape {
        let f = sdf
        let g = o.sdf
        return Shape(x0: min(x0, o.x0), y0: min(y0, o.y0), x1: max(x1, o.x1), y1: max(y1, o.y1)) {
            min(f($0, $1), g($0, $1))
        }
    }

    func intersection(_ o: Shape) -> Shape {
        let f = sdf
        let g = o.sdf
        return Shape(x0: max(x0, o.x0), y0: max(y0, o.y0), x1: min(x1, o.x1), y1: min(y1, o.y1)) {
            max(f($0, $1), g($0, $1))
        }
    }

    /// The part above the line y = limit (smaller y).
    func above(_ limit: Float) -> Shape {
        let f = sdf
        return Shape(x0: x0, y0: y0, x1: x1, y1: min(y1, limit)) { x, y in max(f(x, y), y - limit) }
    }

    /// The part below the line y = limit.
    func below(_ limit: Float) -> Shape {
        let f = sdf
        return Shape(x0: x0, y0: max(y0, limit), x1: x1, y1: y1) { x, y in max(f(x, y), limit - y) }
    }
}

/// An RGB colour with components in 0…1.
struct Color {
    var r: Float, g: Float, b: Float
    init(_ r: Float, _ g: Float, _ b: Float) {
        self.r = r
        self.g = g
        self.b = b
    }
    static func * (c: Color, s: Float) -> Color { Color(c.r * s, c.g * s, c.b * s) }
    static func + (a: Color, b: Color) -> Color { Color(a.r + b.r, a.g + b.g, a.b + b.b) }
    func mixed(_ o: Color, _ t: Float) -> Color { self * (1 - t) + o * t }
}

/// A float RGB canvas of n×n pixels.
struct Canvas {
    let n: Int
    var px: [Float]

    init(size n: Int, background: (Float, Float) -> Color) {
        self.n = n
        px = [Float](repeating: 0, count: n * n * 3)
        for y in 0..<n {
            for x in 0..<n {
                let c = background((Float(x) + 0.5) / Float(n), (Float(y) + 0.5) / Float(n))
                let i = (y * n + x) * 3
                px[i] = c.r
                px[i + 1] = c.g
                px[i + 2] = c.b
            }
        }
    }

    mutating func paint(_ s: Shape, _ color: Color, alpha: Float = 1) {
        paint(s, alpha: alpha) { _, _ in color }
    }

    /// Blends `color(x, y)` over the shape with antialiased coverage (one pixel of ramp).
    mutating func paint(_ s: Shape, alpha: Float = 1, color: (Float, Float) -> Color) {
        let fn = Float(n)
        let xa = max(0, Int(((s.x0 * fn) - 1).rounded(.down)))
        let xb = min(n - 1, Int((s.x1 * fn + 1).rounded(.up)))
        let ya = max(0, Int(((s.y0 * fn) - 1).rounded(.down)))
        let yb = min(n - 1, Int((s.y1 * fn + 1).rounded(.up)))
        guard xa <= xb, ya <= yb else { return }
        for y in ya...yb {
            let v = (Float(y) + 0.5) / fn
            for x in xa...xb {
                let u = (Float(x) + 0.5) / fn
                let cover = max(0, min(1, 0.5 - s.sdf(u, v) * fn)) * alpha
                if cover <= 0 { continue }
                let c = color(u, v)
                let i = (y * n + x) * 3
                px[i] += (c.r - px[i]) * cover
                px[i + 1] += (c.g - px[i + 1]) * cover
                px[i + 2] += (c.b - px[i + 2]) * cover
            }
        }
    }

    /// Quantised to RGB8, with per-pixel grain of ±`grain` (hash of `seed` and the position).
    func image(grain: Float, seed: UInt64) -> RGBImage {
        var out = [UInt8](repeating: 0, count: px.count)
        for i in 0..<px.count {
            var noise: Float = 0
            if grain > 0 {
                var z = seed &+ UInt64(i / 3) &* 0x9E37_79B9_7F4A_7C15
                z = (z ^ (z >> 31)) &* 0xBF58_476D_1CE4_E5B9
                z ^= z >> 29
                noise = (Float(z >> 40) * 0x1p-24 - 0.5) * 2 * grain  // same for the 3 channels: luminance grain
            }
            out[i] = UInt8(max(0, min(255, ((px[i] + noise) * 255).rounded())))
        }
        return RGBImage(width: n, height: n, pixels: out)
    }
}
