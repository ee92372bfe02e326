import Engine
import Foundation

// MARK: - Activations, broadcasting arithmetic, losses, reductions, grid sampling

extension Ref {
    public static func map(_ x: DTensor, _ f: (Double) -> Double) -> DTensor { DTensor(shape: x.shape, x.data.map(f)) }
    public static func relu(_ x: DTensor) -> DTensor { map(x) { $0 > 0 ? $0 : 0 } }
    public static func leakyRelu(_ x: DTensor, slope: Double = 0.2) -> DTensor { map(x) { $0 > 0 ? $0 : slope * $0 } }
    public static func tanh(_ x: DTensor) -> DTensor { map(x) { Foundation.tanh($0) } }
    public static func sigmoid(_ x: DTensor) -> DTensor { map(x) { 1 / (1 + Foundation.exp(-$0)) } }
    public static func scale(_ x: DTensor, _ s: Double) -> DTensor { map(x) { $0 * s } }

    /// The broadcast shape of `a` and `b` (NumPy rules: right-aligned, each pair equal or one of them 1).
    public static func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int] {
        let r = max(a.count, b.count)
        let pa = [Int](repeating: 1, count: r - a.count) + a
        let pb = [Int](repeating: 1, count: r - b.count) + b
        return zip(pa, pb).map { x, y in
            precondition(x == y || x == 1 || y == 1, "Ref.broadcastShape: \(a) and \(b) do not broadcast")
            return max(x, y)
        }
    }

    /// The flat index into a tensor of `shape` that output multi-index `idx` (of the broadcast rank) reads.
    static func broadcastIndex(_ idx: [Int], _ shape: [Int]) -> Int {
        let off = idx.count - shape.count
        var flat = 0
        for d in 0..<shape.count { flat = flat * shape[d] + (shape[d] == 1 ? 0 : idx[off + d]) }
        return flat
    }

    /// f(a, b) element-wise with broadcasting.
    public static func broadcast(_ a: DTensor, _ b: DTensor, _ f: (Double, Double) -> Double) -> DTensor {
        let s = broadcastShape(a.shape, b.shape)
        var y = DTensor(zeros: s)
        for i in 0..<y.count {
            let idx = multiIndex(i, s)
            y[i] = f(a[broadcastIndex(idx, a.shape)], b[broadcastIndex(idx, b.shape)])
        }
        return y
    }

    public static func add(_ a: DTensor, _ b: DTensor) -> DTensor { broadcast(a, b, +) }
    public static func sub(_ a: DTensor, _ b: DTensor) -> DTensor { broadcast(a, b, -) }
    public static func mul(_ a: DTensor, _ b: DTensor) -> DTensor { broadcast(a, b, *) }

    // MARK: Losses and reductions (mean reduction; results have shape [1])

    static func scalar(_ v: Double) -> DTensor { DTensor(shape: [1], [v]) }

    public static func mse(_ x: DTensor, _ t: DTensor) -> DTensor {
        scalar(zip(x.data, t.data).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } / Double(x.count))
    }

    public static func l1(_ x: DTensor, _ t: DTensor) -> DTensor {
        scalar(zip(x.data, t.data).reduce(0) { $0 + abs($1.0 - $1.1) } / Double(x.count))
    }

    /// −mean(t·log σ(z) + (1 − t)·log(1 − σ(z))) written from the definition (fine for moderate |z|).
    public static func bceWithLogits(_ z: DTensor, _ t: DTensor) -> DTensor {
        var s = 0.0
        for (zi, ti) in zip(z.data, t.data) {
            let p = 1 / (1 + Foundation.exp(-zi))
            s -= ti * Foundation.log(p) + (1 - ti) * Foundation.log(1 - p)
        }
        return scalar(s / Double(z.count))
    }

    /// mean_n(log Σ_k exp(z[n, k]) − z[n, label_n]).
    public static func crossEntropy(_ z: DTensor, labels: [Int]) -> DTensor {
        let (n, k) = (z.shape[0], z.shape[1])
        var s = 0.0
        for i in 0..<n {
            let row = Array(z.data[(i * k)..<((i + 1) * k)])
            s += Foundation.log(row.reduce(0) { $0 + Foundation.exp($1) }) - row[labels[i]]
        }
        return scalar(s / Double(n))
    }

    public static func sum(_ x: DTensor) -> DTensor { scalar(x.data.reduce(0, +)) }
    public static func mean(_ x: DTensor) -> DTensor { scalar(x.data.reduce(0, +) / Double(x.count)) }

    /// Σ w_i·x_i over one-element tensors.
    public static func weightedSum(_ weights: [Double], _ xs: [DTensor]) -> DTensor {
        scalar(zip(weights, xs).reduce(0) { $0 + $1.0 * $1.1[0] })
    }

    // MARK: Grid sampling

    /// F.grid_sample(x, grid, mode="bilinear", padding_mode=zeros|reflection, align_corners=False).
    /// x [N, C, H, W], grid [N, Ho, Wo, 2] holding (x, y) in [−1, 1] -> [N, C, Ho, Wo].
    public static func gridSample(_ x: DTensor, grid: DTensor, padding: GridPadding) -> DTensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (ho, wo) = (grid.shape[1], grid.shape[2])
        /// Pixel coordinate of normalised g (−1 is the outer edge of pixel 0); reflection folds the coordinate
        /// at the image's outer edges (−0.5 and size − 0.5) until it lies inside, then clamps to the pixel centres.
        func coordinate(_ g: Double, _ size: Int) -> Double {
            var p = ((g + 1) * Double(size) - 1) / 2
            guard padding == .reflection else { return p }
            let lo = -0.5
            let hi = Double(size) - 0.5
            while p < lo || p > hi { p = p < lo ? 2 * lo - p : 2 * hi - p }
            return min(max(p, 0), Double(size - 1))
        }
        var y = DTensor(zeros: [n, c, ho, wo])
        for b in 0..<n {
            for i in 0..<ho {
                for j in 0..<wo {
                    let g = ((b * ho + i) * wo + j) * 2
                    let px = coordinate(grid[g], w)
                    let py = coordinate(grid[g + 1], h)
                    let x0 = Int(px.rounded(.down))
                    let y0 = Int(py.rounded(.down))
                    let fx = px - Double(x0)
                    let fy = py - Double(y0)
                    let taps = [
                        (y0, x0, (1 - fx) * (1 - fy)), (y0, x0 + 1, fx * (1 - fy)),
                        (y0 + 1, x0, (1 - fx) * fy), (y0 + 1, x0 + 1, fx * fy),
                    ]
                    for ch in 0..<c {
                        var s = 0.0
                        for (yy, xx, wt) in taps where yy >= 0 && yy < h && xx >= 0 && xx < w {
                            s += wt * x[b, ch, yy, xx]
                        }
                        y[b, ch, i, j] = s
                    }
                }
            }
        }
        return y
    }
}
