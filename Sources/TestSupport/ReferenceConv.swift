import Engine

/// Naive Float64 reference implementations of every engine primitive (docs/reference.md §R.4, principle 3: "a reference before
/// any optimization"). Written from the PyTorch definitions with plain loops: no im2col, no BLAS, no code shared
/// with `Engine`. Shapes follow the engine (NCHW activations, OIHW conv weights, [out, in] linear weights).
public enum Ref {}

// MARK: - Convolution, padding, linear

extension Ref {
    /// The source index of padded coordinate `i` (in −pad ..< n + pad) for a dimension of size `n`:
    /// itself if inside, nil for zero padding, or the mirror image without repeating the border (numpy "reflect").
    static func padSource(_ i: Int, _ n: Int, reflect: Bool) -> Int? {
        if i >= 0 && i < n { return i }
        guard reflect else { return nil }
        var j = i
        while j < 0 || j >= n { j = j < 0 ? -j : 2 * (n - 1) - j }  // fold at 0 and n − 1
        return j
    }

    /// PyTorch F.conv2d (dilation 1, groups 1) after padding by `padding` with zeros or by reflection.
    /// x: [N, Cin, H, W], w: [Cout, Cin, kH, kW], b: [Cout] or nil -> [N, Cout, Ho, Wo].
    public static func conv2d(
        _ x: DTensor, _ w: DTensor, _ b: DTensor? = nil, stride: Int = 1, padding: Int = 0,
        mode: PaddingMode = .zeros
    ) -> DTensor {
        var y = DTensor(zeros: [x.shape[0], w.shape[0]] + convOutputSize(x, w, stride, padding))
        convTaps(x, w, stride: stride, padding: padding, mode: mode) { yi, xi, wi in
            y.data[yi] += x.data[xi] * w.data[wi]
        }
        if let b {
            let (cout, p) = (y.shape[1], y.shape[2] * y.shape[3])
            for i in 0..<y.count { y.data[i] += b.data[(i / p) % cout] }
        }
        return y
    }

    /// The adjoint of `conv2d` (its exact gradient: the transpose of the same tap loop):
    /// (dx, dw, db) for upstream gradient dy [N, Cout, Ho, Wo]. Used where finite differences would be too slow;
    /// it is itself checked against finite differences of `conv2d` in ConvTests.
    public static func conv2dBackward(
        _ x: DTensor, _ w: DTensor, _ dy: DTensor, stride: Int = 1, padding: Int = 0,
        mode: PaddingMode = .zeros
    ) -> (dx: DTensor, dw: DTensor, db: DTensor) {
        var dx = DTensor(zeros: x.shape)
        var dw = DTensor(zeros: w.shape)
        var db = DTensor(zeros: [w.shape[0]])
        convTaps(x, w, stride: stride, padding: padding, mode: mode) { yi, xi, wi in
            dx.data[xi] += dy.data[yi] * w.data[wi]
            dw.data[wi] += dy.data[yi] * x.data[xi]
        }
        let (cout, p) = (dy.shape[1], dy.shape[2] * dy.shape[3])
        for i in 0..<dy.count { db.data[(i / p) % cout] += dy.data[i] }
        return (dx, dw, db)
    }

    static func convOutputSize(_ x: DTensor, _ w: DTensor, _ stride: Int, _ padding: Int) -> [Int] {
        [(x.shape[2] + 2 * padding - w.shape[2]) / stride + 1, (x.shape[3] + 2 * padding - w.shape[3]) / stride + 1]
    }

    /// Calls body(yIndex, xIndex, wIndex) for every product w[co, ci, ki, kj]·xpad[n, ci, oh·s + ki, ow·s + kj]
    /// of the convolution whose padded tap is not a zero (flat indices into y, x and w).
    static func convTaps(
        _ x: DTensor, _ w: DTensor, stride: Int, padding: Int, mode: PaddingMode,
        _ body: (Int, Int, Int) -> Void
    ) {
        let (n, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, kh, kw) = (w.shape[0], w.shape[2], w.shape[3])
        precondition(w.shape[1] == cin, "Ref.conv2d: weight \(w.shape) for input \(x.shape)")
        let out = convOutputSize(x, w, stride, padding)
        let (ho, wo) = (out[0], out[1])
        let reflect = mode == .reflect
        // source row of (oh, ki) and column of (ow, kj), nil for a zero-padding tap
        let rows = (0..<(ho * kh)).map { padSource(($0 / kh) * stride - padding + $0 % kh, h, reflect: reflect) }
        let cols = (0..<(wo * kw)).map { padSource(($0 / kw) * stride - padding + $0 % kw, wd, reflect: reflect) }
        for b0 in 0..<n {
            for co in 0..<cout {
                for oh in 0..<ho {
                    for ow in 0..<wo {
                        let yi = ((b0 * cout + co) * ho + oh) * wo + ow
                        for ci in 0..<cin {
                            for ki in 0..<kh {
                                guard let ih = rows[oh * kh + ki] else { continue }
                                for kj in 0..<kw {
                                    guard let iw = cols[ow * kw + kj] else { continue }
                                    body(
                                        yi, ((b0 * cin + ci) * h + ih) * wd + iw, ((co * cin + ci) * kh + ki) * kw + kj)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// PyTorch ReflectionPad2d(p): [N, C, H, W] -> [N, C, H + 2p, W + 2p].
    public static func reflectionPad2d(_ x: DTensor, _ p: Int) -> DTensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        var y = DTensor(zeros: [n, c, h + 2 * p, w + 2 * p])
        for b in 0..<n {
            for ch in 0..<c {
                for i in 0..<(h + 2 * p) {
                    for j in 0..<(w + 2 * p) {
                        y[b, ch, i, j] =
                            x[b, ch, padSource(i - p, h, reflect: true)!, padSource(j - p, w, reflect: true)!]
                    }
                }
            }
        }
        return y
    }

    /// F.linear: x [N, in], w [out, in], b [out] or nil -> [N, out].
    public static func linear(_ x: DTensor, _ w: DTensor, _ b: DTensor? = nil) -> DTensor {
        let (n, fin, fout) = (x.shape[0], x.shape[1], w.shape[0])
        precondition(w.shape[1] == fin, "Ref.linear: weight \(w.shape) for input \(x.shape)")
        var y = DTensor(zeros: [n, fout])
        for i in 0..<n {
            for o in 0..<fout {
                var s = b?[o] ?? 0
                for k in 0..<fin { s += x[i * fin + k] * w[o * fin + k] }
                y[i * fout + o] = s
            }
        }
        return y
    }

    // MARK: - Resampling, pooling, channel ops

    /// F.interpolate(scale_factor=2, mode="nearest"): y[i, j] = x[i / 2, j / 2].
    public static func upsampleNearest2x(_ x: DTensor) -> DTensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        var y = DTensor(zeros: [n, c, 2 * h, 2 * w])
        for b in 0..<n {
            for ch in 0..<c {
                for i in 0..<(2 * h) {
                    for j in 0..<(2 * w) {
                        y[b, ch, i, j] = x[b, ch, i / 2, j / 2]
                    }
                }
            }
        }
        return y
    }

    /// adaptive_avg_pool2d(x, 1).view(N, C).
    public static func globalAvgPool(_ x: DTensor) -> DTensor {
        planeReduce(x) { $0.reduce(0, +) / Double($0.count) }
    }

    /// adaptive_max_pool2d(x, 1).view(N, C).
    public static func globalMaxPool(_ x: DTensor) -> DTensor {
        planeReduce(x) { $0.max()! }
    }

    static func planeReduce(_ x: DTensor, _ f: ([Double]) -> Double) -> DTensor {
        let (n, c) = (x.shape[0], x.shape[1])
        let m = x.shape[2] * x.shape[3]
        var y = DTensor(zeros: [n, c])
        for p in 0..<(n * c) { y[p] = f(Array(x.data[(p * m)..<((p + 1) * m)])) }
        return y
    }

    /// torch.cat(xs, dim=1) for tensors of rank ≥ 2 that agree outside dimension 1 (NCHW channels, [N, F]).
    public static func concatChannels(_ xs: [DTensor]) -> DTensor {
        let n = xs[0].shape[0]
        let inner = xs[0].shape.dropFirst(2).reduce(1, *)
        let ctot = xs.reduce(0) { $0 + $1.shape[1] }
        var y = DTensor(zeros: [n, ctot] + xs[0].shape.dropFirst(2))
        for b in 0..<n {
            var c0 = 0
            for x in xs {
                precondition(
                    x.shape.count == xs[0].shape.count && x.shape[0] == n
                        && x.shape.dropFirst(2) == xs[0].shape.dropFirst(2), "Ref.concatChannels: \(x.shape)")
                for ch in 0..<x.shape[1] {
                    for k in 0..<inner { y[(b * ctot + c0 + ch) * inner + k] = x[(b * x.shape[1] + ch) * inner + k] }
                }
                c0 += x.shape[1]
            }
        }
        return y
    }

    /// x.sum(dim=1, keepdim=True): [N, C, H, W] -> [N, 1, H, W].
    public static func sumChannels(_ x: DTensor) -> DTensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        var y = DTensor(zeros: [n, 1, h, w])
        for b in 0..<n { for ch in 0..<c { for i in 0..<h { for j in 0..<w { y[b, 0, i, j] += x[b, ch, i, j] } } } }
        return y
    }

    /// x.view(shape).
    public static func reshape(_ x: DTensor, _ shape: [Int]) -> DTensor { x.reshaped(shape) }
}
