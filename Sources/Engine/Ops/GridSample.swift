import Foundation

// Bilinear grid sampling (PyTorch F.grid_sample, mode "bilinear", align_corners = false).
//   x: [N, C, H, W], grid: [N, Ho, Wo, 2] with (x, y) in [-1, 1] (−1 = left/top edge of the first pixel),
//   y: [N, C, Ho, Wo]. Source pixel coordinate ix = ((gx + 1)·W − 1)/2, likewise iy.
//   Padding .zeros: taps outside the image contribute 0. .reflection: the coordinate is reflected about the
//   image border (−0.5 and W − 0.5) and clipped to [0, W − 1], as PyTorch does.
// Differentiable with respect to x only (ADA samples images through a fixed, randomly drawn grid).

public enum GridPadding { case zeros, reflection }

/// The four taps of one output sample: flat source indices (−1 when outside) and bilinear weights.
struct BilinearTaps {
    var idx: (Int, Int, Int, Int)
    var w: (Float, Float, Float, Float)
}

func sourceCoordinate(_ g: Float, _ size: Int, _ pad: GridPadding) -> Float {
    var c = ((g + 1) * Float(size) - 1) / 2
    if pad == .reflection {
        // reflect about −0.5 and size − 0.5 (twice_low = −1, twice_high = 2·size − 1), then clip
        let mn: Float = -0.5
        let span = Float(size)
        let a = abs(c - mn)
        let extra = fmodf(a, span)
        let flips = Int(floorf(a / span))
        c = flips % 2 == 0 ? extra + mn : span - extra + mn
        c = min(Float(size - 1), max(c, 0))
    }
    return c
}

func bilinearTaps(_ gx: Float, _ gy: Float, h: Int, w: Int, _ pad: GridPadding) -> BilinearTaps {
    let ix = sourceCoordinate(gx, w, pad)
    let iy = sourceCoordinate(gy, h, pad)
    let x0 = Int(floorf(ix))
    let y0 = Int(floorf(iy))
    let fx = ix - Float(x0)
    let fy = iy - Float(y0)
    func at(_ yy: Int, _ xx: Int) -> Int { (yy >= 0 && yy < h && xx >= 0 && xx < w) ? yy * w + xx : -1 }
    return BilinearTaps(
        idx: (at(y0, x0), at(y0, x0 + 1), at(y0 + 1, x0), at(y0 + 1, x0 + 1)),
        w: ((1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy))
}

extension Tape {
    /// Samples `x` at `grid` (a constant); see the file header for shapes and conventions.
    public func gridSample(_ x: Var, grid: Tensor, padding: GridPadding) -> Var {
        let d = NCHW(x.value, "gridSample")
        precondition(
            grid.rank == 4 && grid.shape[0] == d.n && grid.shape[3] == 2,
            "gridSample: grid \(grid.shape) for input \(x.shape) (expects [\(d.n), Ho, Wo, 2])")
        let (ho, wo) = (grid.shape[1], grid.shape[2])
        let taps = (0..<(d.n * ho * wo)).map { i in
            bilinearTaps(grid[2 * i], grid[2 * i + 1], h: d.h, w: d.w, padding)
        }
        let xv = x.value
        let po = ho * wo
        let y = Tensor(uninitialized: [d.n, d.c, ho, wo])
        Parallel.forEach(0..<(d.n * d.c), grain: 2) { pl in
            let n = pl / d.c
            let src = xv.data + pl * d.plane
            let dst = y.data + pl * po
            for j in 0..<po {
                let t = taps[n * po + j]
                var v: Float = 0
                if t.idx.0 >= 0 { v += src[t.idx.0] * t.w.0 }
                if t.idx.1 >= 0 { v += src[t.idx.1] * t.w.1 }
                if t.idx.2 >= 0 { v += src[t.idx.2] * t.w.2 }
                if t.idx.3 >= 0 { v += src[t.idx.3] * t.w.3 }
                dst[j] = v
            }
        }
        return record(y, inputs: [x]) { [unowned self] dy in
            let dx = Tensor(zeros: xv.shape)
            Parallel.forEach(0..<(d.n * d.c), grain: 2) { pl in
                let n = pl / d.c
                let g = dy.data + pl * po
                let o = dx.data + pl * d.plane
                for j in 0..<po {
                    let t = taps[n * po + j]
                    let v = g[j]
                    if t.idx.0 >= 0 { o[t.idx.0] += v * t.w.0 }
                    if t.idx.1 >= 0 { o[t.idx.1] += v * t.w.1 }
                    if t.idx.2 >= 0 { o[t.idx.2] += v * t.w.2 }
                    if t.idx.3 >= 0 { o[t.idx.3] += v * t.w.3 }
                }
            }
            self.accumulate(x, dx)
        }
    }
}
