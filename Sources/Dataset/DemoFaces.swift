import Engine

/// Procedural faces with known attributes, for the `--demo` data set and for tests.
///
/// Groups follow Face2Webtoon's four (spec C.1), by visible attributes:
/// 0 long hair, no glasses · 1 short hair, no glasses · 2 short hair, glasses · 3 long hair, glasses.
public enum DemoFaces {
    /// Domain A: shaded "photos" (gradients, soft grain). Domain B: flat "webtoon" drawings
    /// (flat colours, dark outlines, big eyes).
    public enum Style: Sendable { case photo, webtoon }

    public static func hasLongHair(group: Int) -> Bool { group == 0 || group == 3 }
    public static func hasGlasses(group: Int) -> Bool { group == 2 || group == 3 }

    /// One size×size face of `group` in `style`; all variation (face shape, skin, hair colour, eye
    /// spacing, position, colours) is drawn from `rng`.
    public static func render(style: Style, group: Int, size: Int, rng: inout RandomGenerator) -> RGBImage {
        precondition((0...3).contains(group), "demo group \(group) is not in 0...3")
        let p = Params(group: group, style: style, rng: &rng)
        var c = style == .photo ? photoBackground(p, size) : Canvas(size: size) { _, _ in p.bg0 }
        Painter(p: p, style: style).draw(on: &c)
        return c.image(grain: style == .photo ? 0.025 : 0, seed: rng.next())
    }

    static func photoBackground(_ p: Params, _ size: Int) -> Canvas {
        Canvas(size: size) { x, y in
            let t = y * 0.8 + x * 0.2
            let vignette = 1 - 0.25 * ((x - 0.5) * (x - 0.5) + (y - 0.5) * (y - 0.5))
            return p.bg0.mixed(p.bg1, t) * vignette
        }
    }

    /// The random appearance of one face (normalised coordinates).
    struct Params {
        let longHair: Bool, glasses: Bool
        let cx: Float, cy: Float, rx: Float, ry: Float, taper: Float
        let eyeDX: Float, eyeY: Float, eyeScale: Float, mouthY: Float, mouthW: Float, light: Float
        let skin: Color, hair: Color, iris: Color, lips: Color, cloth: Color, frame: Color, bg0: Color, bg1: Color

        init(group: Int, style: Style, rng: inout RandomGenerator) {
            func u(_ a: Float, _ b: Float) -> Float { rng.uniform(a, b) }
            func pick(_ cs: [Color]) -> Color { cs[rng.int(cs.count)] }
            func jitter(_ c: Color, _ a: Float) -> Color {
                Color(c.r + rng.uniform(-a, a), c.g + rng.uniform(-a, a), c.b + rng.uniform(-a, a))
            }
            longHair = DemoFaces.hasLongHair(group: group)
            glasses = DemoFaces.hasGlasses(group: group)
            cx = 0.5 + u(-0.04, 0.04)
            cy = 0.47 + u(-0.03, 0.03)
            rx = u(0.20, 0.25)
            ry = rx * u(1.18, 1.38)
            taper = u(0.05, 0.35)
            eyeDX = rx * u(0.36, 0.46)
            eyeY = cy - ry * u(0.02, 0.14)
            eyeScale = style == .webtoon ? u(1.5, 1.9) : u(0.9, 1.1)
            mouthY = cy + ry * u(0.50, 0.62)
            mouthW = rx * u(0.22, 0.34)
            light = u(-1, 1)
            if style == .photo {
                skin = jitter(
                    pick([
                        Color(0.96, 0.80, 0.69), Color(0.90, 0.72, 0.58), Color(0.80, 0.60, 0.45),
                        Color(0.65, 0.45, 0.32), Color(0.47, 0.32, 0.22), Color(0.98, 0.86, 0.76),
                    ]), 0.03)
                hair = jitter(
                    pick([
                        Color(0.08, 0.06, 0.05), Color(0.25, 0.16, 0.10), Color(0.45, 0.30, 0.17),
                        Color(0.78, 0.64, 0.40), Color(0.50, 0.22, 0.12), Color(0.55, 0.55, 0.55),
                    ]), 0.03)
                bg0 = jitter(Color(0.55, 0.58, 0.60), 0.25)
                bg1 = jitter(Color(0.35, 0.37, 0.40), 0.2)
            } else {
                skin = jitter(pick([Color(1.0, 0.89, 0.82), Color(0.99, 0.85, 0.76), Color(0.95, 0.80, 0.70)]), 0.02)
                hair = jitter(
                    pick([
                        Color(0.12, 0.10, 0.14), Color(0.35, 0.22, 0.15), Color(0.62, 0.42, 0.25),
                        Color(0.95, 0.85, 0.55), Color(0.85, 0.55, 0.65), Color(0.35, 0.40, 0.70),
                    ]), 0.02)
                bg0 = jitter(
                    pick([
                        Color(0.85, 0.92, 0.98), Color(0.98, 0.92, 0.85), Color(0.90, 0.98, 0.90),
                        Color(0.96, 0.90, 0.98),
                    ]), 0.03)
                bg1 = bg0
            }
            iris = pick([
                Color(0.30, 0.18, 0.10), Color(0.20, 0.40, 0.65), Color(0.25, 0.50, 0.30), Color(0.12, 0.10, 0.10),
            ])
            lips = jitter(Color(0.75, 0.35, 0.35), 0.06)
            cloth = jitter(
                pick([
                    Color(0.2, 0.3, 0.6), Color(0.7, 0.2, 0.2), Color(0.9, 0.9, 0.9), Color(0.2, 0.2, 0.2),
                    Color(0.3, 0.6, 0.4),
                ]), 0.05)
            frame = pick([Color(0.08, 0.08, 0.08), Color(0.35, 0.20, 0.10), Color(0.55, 0.10, 0.10)])
        }
    }
}
