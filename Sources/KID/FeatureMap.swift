import Engine

/// An NHWC feature map, possibly a channel slice of a wider one.
///
/// `tensor` holds [n, h, w, stride] floats; this map is channels `offset ..< offset + channels` of every pixel.
/// NHWC keeps a pixel's channels contiguous, so a 1×1 conv over a whole batch is one matrix product
/// [n·h·w, Cin]·Wᵀ, the branch outputs of an Inception block are written straight into their slice of the
/// concatenated output, and im2col copies whole channel vectors.
struct FeatureMap {
    let tensor: Tensor
    let n: Int, h: Int, w: Int
    let offset: Int, channels: Int, stride: Int

    /// A new contiguous map (uninitialised).
    init(n: Int, h: Int, w: Int, channels: Int) {
        tensor = Tensor(uninitialized: [n, h, w, channels])
        self.n = n
        self.h = h
        self.w = w
        offset = 0
        self.channels = channels
        stride = channels
    }

    /// A contiguous map over `t` [n, h, w, c].
    init(_ t: Tensor) {
        precondition(t.rank == 4, "FeatureMap expects [N, H, W, C], got \(t.shape)")
        tensor = t
        n = t.shape[0]
        h = t.shape[1]
        w = t.shape[2]
        offset = 0
        channels = t.shape[3]
        stride = channels
    }

    private init(_ base: FeatureMap, offset: Int, channels: Int) {
        tensor = base.tensor
        n = base.n
        h = base.h
        w = base.w
        self.offset = offset
        self.channels = channels
        stride = base.stride
    }

    /// Channels `lo ..< lo + count` of this map (shares storage).
    func slice(_ lo: Int, _ count: Int) -> FeatureMap {
        precondition(lo >= 0 && count >= 0 && lo + count <= channels, "slice \(lo)+\(count) of \(channels) channels")
        return FeatureMap(self, offset: offset + lo, channels: count)
    }

    var pixels: Int { n * h * w }
    var isContiguous: Bool { offset == 0 && channels == stride }
    /// The first channel of pixel `p` (p = (b·h + y)·w + x).
    @inline(__always) func at(_ p: Int) -> UnsafeMutablePointer<Float> { tensor.data + p * stride + offset }

    /// A contiguous copy as a [n, c, h, w] (NCHW) tensor, for comparisons with PyTorch.
    func nchw() -> Tensor {
        let t = Tensor(uninitialized: [n, channels, h, w])
        for b in 0..<n {
            for y in 0..<h {
                for x in 0..<w {
                    let src = at((b * h + y) * w + x)
                    for c in 0..<channels { t[((b * channels + c) * h + y) * w + x] = src[c] }
                }
            }
        }
        return t
    }
}

/// Pooling over 3×3 (or k×k) windows of an NHWC map, forward only.
enum Pool {
    case max
    /// Average over the window's pixels inside the image (avg_pool2d with count_include_pad=False).
    case averageExcludingPadding
}

/// Output side of a k-window with `stride` and `pad` (floor mode, as PyTorch's ceil_mode=False).
@inline(__always) func pooledSide(_ n: Int, k: Int, stride: Int, pad: Int) -> Int { (n + 2 * pad - k) / stride + 1 }

extension FeatureMap {
    /// `kind` pooling with a k×k window: [N, H, W, C] → `out` [N, Ho, Wo, C] (a map or a slice of the caller's).
    /// Max pooling ignores padded positions (PyTorch pads with −∞); averaging divides by the in-image count.
    func pool(_ kind: Pool, k: Int, stride s: Int, pad: Int, into out: FeatureMap) {
        let ho = pooledSide(h, k: k, stride: s, pad: pad)
        let wo = pooledSide(w, k: k, stride: s, pad: pad)
        precondition(
            out.n == n && out.h == ho && out.w == wo && out.channels == channels,
            "pool: output \(out.n)x\(out.h)x\(out.w)x\(out.channels), expected \(n)x\(ho)x\(wo)x\(channels)")
        let c = channels
        Profile.time("kid.pool") {
            Parallel.forEach(0..<(n * ho), grain: 2) { row in
                let b = row / ho
                let oy = row % ho
                let y0 = max(0, oy * s - pad)
                let y1 = min(h, oy * s - pad + k)
                for ox in 0..<wo {
                    let x0 = max(0, ox * s - pad)
                    let x1 = min(w, ox * s - pad + k)
                    let d = out.at(row * wo + ox)
                    let first = at((b * h + y0) * w + x0)
                    for j in 0..<c { d[j] = first[j] }
                    for y in y0..<y1 {
                        for x in x0..<x1 where y != y0 || x != x0 {
                            let src = at((b * h + y) * w + x)
                            switch kind {
                            case .max: for j in 0..<c { d[j] = Swift.max(d[j], src[j]) }
                            case .averageExcludingPadding: for j in 0..<c { d[j] += src[j] }
                            }
                        }
                    }
                    if kind == .averageExcludingPadding {
                        let inv = 1 / Float((y1 - y0) * (x1 - x0))
                        for j in 0..<c { d[j] *= inv }
                    }
                }
            }
        }
    }

    /// A new map holding `pool(kind, k, stride, pad)` of this one.
    func pooled(_ kind: Pool, k: Int, stride s: Int, pad: Int) -> FeatureMap {
        let out = FeatureMap(
            n: n, h: pooledSide(h, k: k, stride: s, pad: pad),
            w: pooledSide(w, k: k, stride: s, pad: pad), channels: channels)
        pool(kind, k: k, stride: s, pad: pad, into: out)
        return out
    }

    /// Mean over all pixels of each image: [N, H, W, C] → [N, C] (the 8×8 avg_pool2d head at 299×299).
    func globalAverage() -> Tensor {
        let y = Tensor(zeros: [n, channels])
        let inv = 1 / Float(h * w)
        for b in 0..<n {
            let d = y.data + b * channels
            for p in 0..<(h * w) {
                let src = at(b * h * w + p)
                for j in 0..<channels { d[j] += src[j] }
            }
            for j in 0..<channels { d[j] *= inv }
        }
        return y
    }
}
