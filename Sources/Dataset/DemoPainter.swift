/// Draws one face from `DemoFaces.Params`, back to front. Photo style shades colours by position;
/// webtoon style uses flat colours and draws a dark outline under every part.
struct Painter {
    let p: DemoFaces.Params
    let style: DemoFaces.Style
    var flat: Bool { style == .webtoon }
    let ink = Color(0.16, 0.10, 0.10)
    var line: Float { 0.011 }

    /// Fills a shape; webtoon parts get an outline first.
    func fill(_ c: inout Canvas, _ s: Shape, _ color: Color, outline: Bool = true, shade: Float = 0) {
        if flat {
            if outline { c.paint(s.expanded(line), ink) }
            c.paint(s, color)
        } else {
            // Soft directional light plus darkening toward the bottom: reads as a rounded surface.
            c.paint(s) { x, y in
                let lit = 1 + shade * (0.18 * self.p.light * (x - self.p.cx) / self.p.rx - 0.25 * (y - self.p.cy))
                return color * max(0.4, lit)
            }
        }
    }

    func draw(on c: inout Canvas) {
        let p = self.p
        // Hair behind the head (long hair falls to the shoulders).
        if p.longHair {
            let back = Shape.ellipse(p.cx, p.cy - p.ry * 0.05, p.rx * 1.32, p.ry * 1.12)
                .union(
                    .box(
                        p.cx - p.rx * 1.32, p.cy - p.ry * 0.1, p.cx + p.rx * 1.32, p.cy + p.ry * 1.45,
                        radius: p.rx * 0.3))
            fill(&c, back, p.hair * 0.85, shade: 1)
        }
        // Shoulders and neck.
        fill(&c, .ellipse(p.cx, p.cy + p.ry + 0.33, 0.42, 0.24), p.cloth, shade: 1)
        fill(
            &c, .box(p.cx - p.rx * 0.42, p.cy + p.ry * 0.4, p.cx + p.rx * 0.42, p.cy + p.ry + 0.14, radius: 0.02),
            p.skin * 0.86, shade: 1)
        // Ears, then the face.
        for s: Float in [-1, 1] {
            fill(
                &c, .ellipse(p.cx + s * p.rx * 0.97, p.cy + p.ry * 0.05, p.rx * 0.16, p.ry * 0.2), p.skin * 0.93,
                shade: 1)
        }
        let face = Shape.ellipse(p.cx, p.cy, p.rx, p.ry, taper: p.taper)
        if flat {
            fill(&c, face, p.skin)
            // One flat cel shadow on the side away from the light.
            let side: Float = p.light >= 0 ? -1 : 1
            let shadowSide = Shape.box(side < 0 ? 0 : p.cx + p.rx * 0.55, 0, side < 0 ? p.cx - p.rx * 0.55 : 1, 1)
            c.paint(face.intersection(shadowSide), p.skin * 0.9)
        } else {
            c.paint(face) { x, y in
                let dx = (x - p.cx) / p.rx
                let dy = (y - p.cy) / p.ry
                let dome = max(0, 1 - dx * dx - dy * dy).squareRoot()
                return p.skin * (0.72 + 0.28 * dome + 0.1 * p.light * dx)
            }
        }
        drawHairFront(&c, face)
        drawEyes(&c)
        drawNoseAndMouth(&c)
        if p.glasses { drawGlasses(&c) }
    }

    func drawHairFront(_ c: inout Canvas, _ face: Shape) {
        let p = self.p
        let cap = Shape.ellipse(p.cx, p.cy - p.ry * 0.32, p.rx * 1.1, p.ry * 0.82).above(p.cy - p.ry * 0.42)
        // A fringe that dips on one side, so the hairline is not a straight cut.
        let fringe = Shape.ellipse(p.cx - p.rx * 0.35 * p.light, p.cy - p.ry * 0.45, p.rx * 0.75, p.ry * 0.22)
            .intersection(face)
        var hair = cap.union(fringe)
        if p.longHair {
            for s: Float in [-1, 1] {
                hair = hair.union(
                    .capsule(
                        p.cx + s * p.rx * 0.98, p.cy - p.ry * 0.45, p.cx + s * p.rx * 1.05,
                        p.cy + p.ry * 0.85, p.rx * 0.17))
            }
        } else {
            for s: Float in [-1, 1] {  // short sideburns
                hair = hair.union(
                    .capsule(
                        p.cx + s * p.rx * 0.95, p.cy - p.ry * 0.5, p.cx + s * p.rx * 0.96,
                        p.cy - p.ry * 0.12, p.rx * 0.07))
            }
        }
        fill(&c, hair, p.hair, shade: 1.5)
        if flat {  // a highlight band
            c.paint(
                Shape.ellipse(p.cx, p.cy - p.ry * 0.5, p.rx * 0.75, p.ry * 0.35).ring(0.018)
                    .above(p.cy - p.ry * 0.6), p.hair.mixed(Color(1, 1, 1), 0.35))
        }
    }

    func drawEyes(_ c: inout Canvas) {
        let p = self.p
        let k = p.eyeScale
        for s: Float in [-1, 1] {
            let ex = p.cx + s * p.eyeDX
            let ey = p.eyeY
            let browY = ey - p.ry * (flat ? 0.24 : 0.17)
            fill(
                &c, .capsule(ex - s * 0.03, browY + 0.006, ex + s * 0.035, browY - 0.004, flat ? 0.006 : 0.008),
                p.hair * 0.7, outline: false)
            // Webtoon eyes are big and almond-shaped with a heavy lash line but no full outline:
            // a closed dark ring around the eye would read as glasses.
            let white = Shape.ellipse(ex, ey, 0.042 * k, (flat ? 0.026 : 0.02) * k)
            c.paint(white, Color(0.97, 0.97, 0.97))
            let irisR = (flat ? 0.024 : 0.016) * k
            c.paint(
                Shape.ellipse(ex, ey + (flat ? 0.003 : 0), irisR, irisR * (flat ? 1.2 : 1)).intersection(white), p.iris)
            c.paint(Shape.ellipse(ex, ey, irisR * 0.45, irisR * 0.45).intersection(white), Color(0.03, 0.03, 0.03))
            c.paint(
                .ellipse(ex + irisR * 0.35, ey - irisR * 0.35, irisR * 0.22, irisR * 0.22), Color(1, 1, 1), alpha: 0.9)
            if flat {
                let top = Shape.ellipse(ex, ey + 0.004 * k, 0.046 * k, 0.03 * k).ring(0.009).above(ey - 0.006 * k)
                c.paint(top, ink)
            }
        }
    }

    func drawNoseAndMouth(_ c: inout Canvas) {
        let p = self.p
        let noseY = (p.eyeY + p.mouthY) / 2
        if flat {
            c.paint(.capsule(p.cx, noseY - 0.005, p.cx + 0.006, noseY + 0.006, 0.004), ink * 2.5)
            c.paint(.ellipse(p.cx, p.mouthY, p.mouthW * 0.55, 0.012).below(p.mouthY - 0.002), Color(0.55, 0.15, 0.2))
            for s: Float in [-1, 1] {  // blush
                c.paint(
                    .ellipse(p.cx + s * p.eyeDX * 1.15, p.eyeY + p.ry * 0.3, 0.035, 0.015), Color(1, 0.6, 0.6),
                    alpha: 0.45)
            }
        } else {
            c.paint(.ellipse(p.cx + 0.01 * p.light, noseY, 0.022, 0.05), p.skin * 0.8, alpha: 0.35)
            for s: Float in [-1, 1] {
                c.paint(.ellipse(p.cx + s * 0.016, noseY + 0.035, 0.008, 0.005), p.skin * 0.45, alpha: 0.7)
            }
            c.paint(.ellipse(p.cx, p.mouthY, p.mouthW, 0.018), p.lips)
            c.paint(.capsule(p.cx - p.mouthW * 0.9, p.mouthY, p.cx + p.mouthW * 0.9, p.mouthY, 0.003), p.lips * 0.5)
        }
    }

    func drawGlasses(_ c: inout Canvas) {
        let p = self.p
        let lx = 0.055 * max(p.eyeScale, 1.1)
        let ly = 0.042 * max(p.eyeScale, 1.1) * (flat ? 0.9 : 1)
        let w: Float = flat ? 0.014 : 0.011
        for s: Float in [-1, 1] {
            let ex = p.cx + s * p.eyeDX
            let lens = Shape.ellipse(ex, p.eyeY, lx, ly)
            if !flat { c.paint(lens, Color(0.75, 0.85, 0.95), alpha: 0.18) }
            c.paint(lens.ring(w), p.frame)
            // Temple arm toward the ear.
            c.paint(
                .capsule(ex + s * lx, p.eyeY - ly * 0.2, p.cx + s * p.rx * 0.98, p.eyeY - ly * 0.1, w * 0.4), p.frame)
        }
        c.paint(
            .capsule(p.cx - p.eyeDX + lx, p.eyeY - ly * 0.2, p.cx + p.eyeDX - lx, p.eyeY - ly * 0.2, w * 0.45), p.frame)
    }
}
