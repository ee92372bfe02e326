import Engine

// Forward-only conv + ReLU on NHWC maps:
//   out[p, co] = relu(b[co] + Σ_{ki, kj, ci} W[co, (ki·kW + kj)·Cin + ci] · xpad[n, oh·s + ki, ow·s + kj, ci])
//   x: [N, H, W, Cin] (a map or a channel slice), W: [Cout, kH·kW·Cin] (ConvLayer), out: [N, Ho, Wo, Cout],
//   Ho = (H + 2·padH − kH) / s + 1, Wo likewise; xpad is x with zero padding (per axis).
// Method: the output pixels of the whole batch, P = N·Ho·Wo, in chunks of rows (~1 MiB of patches each). A 1×1 conv on a contiguous map
// reads x itself as the [chunk, Cin] patch matrix; otherwise im2col copies each tap's channel vector (whole
// kW·Cin runs when the row lies inside the image). The product y[chunk, Cout] = patches · Wᵀ + b runs in the
// engine's sgemm (`denseForward`: no tape, nothing is recorded for a backward pass), then ReLU
// scatters y into the destination slices, so Inception's concatenation costs no extra pass.

extension ConvLayer {
    /// Output side for an input side (height with kH/padH, or width with kW/padW).
    func outputSize(h: Int, w: Int) -> (Int, Int) {
        ((h + 2 * padH - kh) / stride + 1, (w + 2 * padW - kw) / stride + 1)
    }

    /// Patch rows per chunk: about 1 MiB of patches (or of outputs), at least 256 rows. Measured on 16 images,
    /// 1 thread: 2^16–2^18 floats per chunk took 3.3–3.5 s of CPU, 2^20 3.7–3.9 s, 2^22 3.9–4.0 s.
    func chunkRows(pixels: Int) -> Int { min(pixels, max(256, (1 << 18) / max(kh * kw * cin, cout))) }

    /// relu(conv(x)) into `outputs`: consecutive slices whose channel counts add up to `cout`
    /// (e.g. [block output slice, tower input] for several 1×1 convs stacked into one layer).
    func forward(_ x: FeatureMap, into outputs: [FeatureMap]) {
        precondition(x.channels == cin, "\(name): input has \(x.channels) channels, the weights expect \(cin)")
        let (ho, wo) = outputSize(h: x.h, w: x.w)
        precondition(ho > 0 && wo > 0, "\(name): \(kh)x\(kw) kernel does not fit a \(x.h)x\(x.w) input")
        precondition(
            outputs.reduce(0) { $0 + $1.channels } == cout
                && outputs.allSatisfy { $0.n == x.n && $0.h == ho && $0.w == wo },
            "\(name): outputs \(outputs.map { [$0.n, $0.h, $0.w, $0.channels] }) do not fit [\(x.n), \(ho), \(wo), \(cout)]"
        )
        let pixels = x.n * ho * wo
        let k = kh * kw * cin
        let rows = chunkRows(pixels: pixels)
        let direct = isPointwise && x.isContiguous
        let patches = direct ? nil : Tensor(uninitialized: [rows, k])
        for p0 in Swift.stride(from: 0, to: pixels, by: rows) {
            let m = min(rows, pixels - p0)
            let a: Tensor
            if let patches {
                Profile.time("kid.im2col") { im2col(x, ho: ho, wo: wo, pixels: p0, count: m, into: patches.data) }
                a = Tensor(view: patches.data, shape: [m, k], owner: patches)
            } else {
                a = Tensor(view: x.at(p0), shape: [m, k], owner: x.tensor)
            }
            let y = Profile.time(Profile.enabled ? "kid.gemm \(name)" : "") {
                denseForward(a, weight: weight, bias: bias)  // [m, cout], freed after the scatter
            }
            Profile.time("kid.relu_scatter") { scatterReLU(y, pixels: p0, count: m, into: outputs) }
        }
    }

    /// A new map holding relu(conv(x)).
    func callAsFunction(_ x: FeatureMap) -> FeatureMap {
        let (ho, wo) = outputSize(h: x.h, w: x.w)
        let out = FeatureMap(n: x.n, h: ho, w: wo, channels: cout)
        forward(x, into: [out])
        return out
    }

    /// Patch rows for output pixels [p0, p0 + count): cols[(p − p0)·K + (ki·kW + kj)·Cin + ci].
    private func im2col(
        _ x: FeatureMap, ho: Int, wo: Int, pixels p0: Int, count: Int,
        into cols: UnsafeMutablePointer<Float>
    ) {
        let k = kh * kw * cin
        let c = cin
        let runs = x.isContiguous  // a contiguous map: kW taps are one run
        let base = x.at(0)
        let ps = x.stride
        let h = x.h
        let w = x.w  // raw values: no class access in the loop
        Parallel.forEach(0..<count, grain: 32) { r in
            let p = p0 + r
            let b = p / (ho * wo)
            let oy = (p / wo) % ho
            let ox = p % wo
            let dst = cols + r * k
            for ki in 0..<kh {
                let y = oy * stride - padH + ki
                let row = dst + ki * kw * c
                guard y >= 0 && y < h else {
                    row.update(repeating: 0, count: kw * c)
                    continue
                }
                let x0 = ox * stride - padW
                let src = base + ((b * h + y) * w) * ps
                if runs && x0 >= 0 && x0 + kw <= w {
                    row.update(from: src + x0 * ps, count: kw * c)
                    continue
                }
                for kj in 0..<kw {
                    let xx = x0 + kj
                    if xx >= 0 && xx < w {
                        (row + kj * c).update(from: src + xx * ps, count: c)
                    } else {
                        (row + kj * c).update(repeating: 0, count: c)
                    }
                }
            }
        }
    }

    /// outputs[q][p0 + r, j] = max(0, y[r, c_q + j]) where c_q is the first column of slice q.
    private func scatterReLU(_ y: Tensor, pixels p0: Int, count: Int, into outputs: [FeatureMap]) {
        let n = cout
        let src0 = y.data
        let dests = outputs.map { (base: $0.at(p0), stride: $0.stride, channels: $0.channels) }
        dests.withUnsafeBufferPointer { dests in
            Parallel.forEach(0..<count, grain: 64) { r in
                var s = src0 + r * n
                for o in dests {
                    let d = o.base + r * o.stride
                    for j in 0..<o.channels { d[j] = max(0, s[j]) }
                    s += o.channels
                }
            }
        }
    }
}
