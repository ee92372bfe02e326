import Foundation

/// A line plot as inline SVG: raw values faint, an exponential moving average solid on top, optional error bars,
/// linear or log10 y axis. No scripts, fonts or network: the HTML report embeds it as it is.
struct SVGPlot {
    struct Series {
        var name: String
        var points: [(x: Double, y: Double)]
        var spread: [Double]? = nil  // ± per point (error bars), e.g. kid_std
    }

    var title: String
    var xLabel: String
    var series: [Series]
    var logY = false
    var smoothing = 0.6  // EMA weight of the past, as TensorBoard's slider; 0: raw only
    let width = 600.0
    let height = 280.0
    static let colors = [
        "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
        "#7f7f7f", "#bcbd22",
    ]

    /// Log scale is used only where every value is positive.
    static func wantsLog(_ series: [Series]) -> Bool {
        let ys = series.flatMap { $0.points.map(\.y) }.filter(\.isFinite)
        guard let lo = ys.min(), let hi = ys.max(), lo > 0 else { return false }
        return hi / lo > 20
    }

    func render() -> String {
        let left = 64.0
        let right = 150.0
        let top = 28.0
        let bottom = 38.0
        let pw = width - left - right
        let ph = height - top - bottom
        let ty: (Double) -> Double = logY ? { log10($0) } : { $0 }
        let finite = series.flatMap { s in s.points.filter { $0.y.isFinite && (!logY || $0.y > 0) } }
        var out =
            "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plot\" width=\"\(Int(width))\" height=\"\(Int(height))\" "
        out += "viewBox=\"0 0 \(Int(width)) \(Int(height))\" data-points=\"\(finite.count)\">"
        out += "<rect x=\"0\" y=\"0\" width=\"\(width)\" height=\"\(height)\" fill=\"#fff\"/>"
        out +=
            "<text x=\"\(left)\" y=\"18\" font-size=\"14\" font-weight=\"bold\">\(esc(title))\(logY ? " (log scale)" : "")</text>"
        guard let x0 = finite.map(\.x).min(), let x1 = finite.map(\.x).max(),
            let y0 = finite.map({ ty($0.y) }).min(), let y1 = finite.map({ ty($0.y) }).max()
        else { return out + "<text x=\"\(left)\" y=\"\(top + ph / 2)\" font-size=\"12\">no values yet</text></svg>" }
        let xs = x1 > x0 ? x1 - x0 : 1
        let pad = (y1 - y0) * 0.05 + (y1 == y0 ? 0.5 : 0)
        let ylo = y0 - pad
        let yhi = y1 + pad
        let px = { (x: Double) in left + (x - x0) / xs * pw }
        let py = { (y: Double) in top + (1 - (ty(y) - ylo) / (yhi - ylo)) * ph }
        out += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(pw)\" height=\"\(ph)\" fill=\"none\" stroke=\"#999\"/>"
        // grid lines and labels at round values: 1, 2 or 5 × 10^k apart (log axis: decades, or 1-2-5 within one)
        let yTicks =
            logY ? SVGPlot.logTicks(ylo, yhi).map { (log10($0), fmt($0)) } : SVGPlot.niceTicks(ylo, yhi).map { ($0, fmt($0)) }
        for (yv, label) in yTicks {
            let yy = top + (1 - (yv - ylo) / (yhi - ylo)) * ph
            out += "<line x1=\"\(left)\" x2=\"\(left + pw)\" y1=\"\(r(yy))\" y2=\"\(r(yy))\" stroke=\"#eee\"/>"
            out += "<text x=\"\(left - 4)\" y=\"\(r(yy + 4))\" font-size=\"10\" text-anchor=\"end\">\(label)</text>"
        }
        for xv in SVGPlot.niceTicks(x0, x1) {
            let xx = left + (xv - x0) / xs * pw
            out += "<text x=\"\(r(xx))\" y=\"\(top + ph + 14)\" font-size=\"10\" text-anchor=\"middle\">\(fmt(xv))</text>"
        }
        out +=
            "<text x=\"\(left + pw / 2)\" y=\"\(height - 6)\" font-size=\"11\" text-anchor=\"middle\">\(esc(xLabel))</text>"
        for (k, s) in series.enumerated() {
            let c = SVGPlot.colors[k % SVGPlot.colors.count]
            // past the palette, the same colours come back dashed
            let dash = k >= SVGPlot.colors.count ? " stroke-dasharray=\"5 3\"" : ""
            let pts = s.points.filter { $0.y.isFinite && (!logY || $0.y > 0) }
            guard !pts.isEmpty else { continue }
            let raw = pts.map { "\(r(px($0.x))),\(r(py($0.y)))" }.joined(separator: " ")
            if smoothing > 0 && pts.count > 2 {
                out +=
                    "<polyline points=\"\(raw)\" fill=\"none\" stroke=\"\(c)\" stroke-opacity=\"0.25\" stroke-width=\"1\"/>"
                var ema = ty(pts[0].y)
                let smooth = pts.map { p -> String in
                    ema = smoothing * ema + (1 - smoothing) * ty(p.y)
                    let yy = top + (1 - (ema - ylo) / (yhi - ylo)) * ph
                    return "\(r(px(p.x))),\(r(yy))"
                }.joined(separator: " ")
                out += "<polyline points=\"\(smooth)\" fill=\"none\" stroke=\"\(c)\" stroke-width=\"1.8\"\(dash)/>"
            } else {
                out += "<polyline points=\"\(raw)\" fill=\"none\" stroke=\"\(c)\" stroke-width=\"1.8\"/>"
                for p in pts { out += "<circle cx=\"\(r(px(p.x)))\" cy=\"\(r(py(p.y)))\" r=\"2.5\" fill=\"\(c)\"/>" }
            }
            if let sp = s.spread {
                for (p, e) in zip(s.points, sp) where p.y.isFinite && e.isFinite && (!logY || p.y - e > 0) {
                    out +=
                        "<line x1=\"\(r(px(p.x)))\" x2=\"\(r(px(p.x)))\" y1=\"\(r(py(p.y - e)))\" y2=\"\(r(py(p.y + e)))\" stroke=\"\(c)\"/>"
                }
            }
            let ly = top + 12 + Double(k) * 14
            out +=
                "<line x1=\"\(left + pw + 6)\" x2=\"\(left + pw + 19)\" y1=\"\(ly - 7)\" y2=\"\(ly - 7)\" stroke=\"\(c)\" stroke-width=\"2.5\"\(dash)/>"
            out += "<text x=\"\(left + pw + 22)\" y=\"\(ly - 4)\" font-size=\"10\">\(esc(s.name))</text>"
        }
        return out + "</svg>"
    }

    func r(_ v: Double) -> String { String(format: "%.1f", v) }

    /// Round values in [lo, hi], 1, 2 or 5 × 10^k apart, about four intervals (at least the two ends when the range
    /// is empty).
    static func niceTicks(_ lo: Double, _ hi: Double) -> [Double] {
        guard hi > lo else { return [lo] }
        let raw = (hi - lo) / 4
        let e = floor(log10(raw))
        let p = pow(10, e)
        let m = [1.0, 2, 5, 10].first { $0 * p >= raw } ?? 10
        let step = m * p
        // tick n is n·m·10^e, computed as an integer over a power of ten so that 0.6 prints as 0.6
        let value = { (n: Double) in e < 0 ? n * m / pow(10, -e) : n * m * p }
        var ticks: [Double] = []
        var n = ceil(lo / step)
        while value(n) <= hi + step * 1e-9 {
            ticks.append(value(n) + 0)  // + 0 turns -0 into 0
            n += 1
        }
        return ticks
    }

    /// Values for a log axis spanning log10 values [lo, hi]: the powers of ten inside, or 1, 2, 5 × 10^k when fewer
    /// than two powers fall inside.
    static func logTicks(_ lo: Double, _ hi: Double) -> [Double] {
        let decades = Array(Int(ceil(lo))...max(Int(ceil(lo)), Int(floor(hi))))
            .map { pow(10, Double($0)) }.filter { log10($0) <= hi }
        if decades.count >= 2 { return decades }
        var out: [Double] = []
        for k in Int(floor(lo))...Int(ceil(hi)) {
            for m in [1.0, 2, 5] {
                let v = m * pow(10, Double(k))
                if log10(v) >= lo && log10(v) <= hi { out.append(v) }
            }
        }
        return out
    }
}

func fmt(_ v: Double) -> String {
    let a = abs(v)
    if a == 0 { return "0" }
    if a >= 1e5 || a < 1e-3 { return String(format: "%.2g", v) }
    if a >= 100 { return String(format: "%.0f", v) }
    return String(format: "%.3g", v)
}

func esc(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
}
