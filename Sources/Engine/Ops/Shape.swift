// Shape-changing ops on NCHW tensors: reflection padding, nearest ×2 up-sampling, channel concatenation,
// global average / max pooling and the channel sum used for CAM heatmaps.

extension Tape {
    /// PyTorch ReflectionPad2d(p): [N, C, H, W] -> [N, C, H + 2p, W + 2p]; needs p < H and p < W.
    public func reflectionPad2d(_ x: Var, _ p: Int) -> Var { pad2d(x, left: p, right: p, top: p, bottom: p) }

    /// Nearest-neighbour ×2 up-sampling: [N, C, H, W] -> [N, C, 2H, 2W], y[i, j] = x[i / 2, j / 2].
    public func upsampleNearest2x(_ x: Var) -> Var {
        let d = NCHW(x.value, "upsampleNearest2x")
        let xv = x.value
        let wo = 2 * d.w
        let y = Tensor(uninitialized: [d.n, d.c, 2 * d.h, wo])
        Parallel.forEach(0..<(d.n * d.c), grain: 4) { pl in
            let s = xv.data + pl * d.plane
            let o = y.data + pl * 4 * d.plane
            for i in 0..<d.h {
                let r = o + 2 * i * wo
                for j in 0..<d.w {
                    let v = s[i * d.w + j]
                    r[2 * j] = v
                    r[2 * j + 1] = v
                }
                (r + wo).update(from: r, count: wo)
            }
        }
        return record(y, inputs: [x]) { [unowned self] dy in
            let dx = Tensor(uninitialized: xv.shape)
            Parallel.forEach(0..<(d.n * d.c), grain: 4) { pl in
                let g = dy.data + pl * 4 * d.plane
                let o = dx.data + pl * d.plane
                for i in 0..<d.h {
                    let r0 = g + 2 * i * wo
                    let r1 = r0 + wo
                    for j in 0..<d.w { o[i * d.w + j] = r0[2 * j] + r0[2 * j + 1] + r1[2 * j] + r1[2 * j + 1] }
                }
            }
            self.accumulate(x, dx)
        }
    }

    /// Concatenation along dimension 1: [N, C_i, ...]... -> [N, ΣC_i, ...] (NCHW channels, or [N, F] features).
    public func concatChannels(_ xs: [Var]) -> Var {
        precondition(!xs.isEmpty, "concatChannels of nothing")
        let s0 = xs[0].shape
        precondition(s0.count >= 2, "concatChannels needs rank ≥ 2, got \(s0)")
        let n = s0[0]
        let inner = s0.dropFirst(2).reduce(1, *)
        let cs = xs.map { v -> Int in
            let s = v.shape
            precondition(
                s.count == s0.count && s[0] == n && Array(s.dropFirst(2)) == Array(s0.dropFirst(2)),
                "concatChannels: \(s) does not match \(s0) outside dimension 1")
            return s[1]
        }
        let ctot = cs.reduce(0, +)
        let y = Tensor(uninitialized: [n, ctot] + Array(s0.dropFirst(2)))
        for b in 0..<n {
            var c0 = 0
            for (k, v) in xs.enumerated() {
                (y.data + (b * ctot + c0) * inner).update(from: v.value.data + b * cs[k] * inner, count: cs[k] * inner)
                c0 += cs[k]
            }
        }
        return record(y, inputs: xs) { [unowned self] dy in
            var c0 = 0
            for (k, v) in xs.enumerated() {
                if self.needsGrad(v) {
                    let dx = Tensor(uninitialized: v.shape)
                    for b in 0..<n {
                        (dx.data + b * cs[k] * inner).update(
                            from: dy.data + (b * ctot + c0) * inner, count: cs[k] * inner)
                    }
                    self.accumulate(v, dx)
                }
                c0 += cs[k]
            }
        }
    }

    /// Global average pooling (adaptive_avg_pool2d to 1×1): [N, C, H, W] -> [N, C].
    public func globalAvgPool(_ x: Var) -> Var {
        let d = NCHW(x.value, "globalAvgPool")
        let xv = x.value
        let y = Tensor(uninitialized: [d.n, d.c])
        for pl in 0..<(d.n * d.c) { y[pl] = vsum(xv.data + pl * d.plane, d.plane) / Float(d.plane) }
        return record(y, inputs: [x]) { [unowned self] dy in
            let dx = Tensor(uninitialized: xv.shape)
            for pl in 0..<(d.n * d.c) {
                (dx.data + pl * d.plane).update(repeating: dy[pl] / Float(d.plane), count: d.plane)
            }
            self.accumulate(x, dx)
        }
    }

    /// Global max pooling (adaptive_max_pool2d to 1×1): [N, C, H, W] -> [N, C]; the gradient goes to the first
    /// maximal element of each plane.
    public func globalMaxPool(_ x: Var) -> Var {
        let d = NCHW(x.value, "globalMaxPool")
        let xv = x.value
        let y = Tensor(uninitialized: [d.n, d.c])
        var arg = [Int](repeating: 0, count: d.n * d.c)
        for pl in 0..<(d.n * d.c) {
            let s = xv.data + pl * d.plane
            var best = s[0]
            var bi = 0
            for i in 1..<d.plane where s[i] > best || best.isNaN {
                best = s[i]
                bi = i
            }
            y[pl] = best
            arg[pl] = bi
        }
        return record(y, inputs: [x]) { [unowned self] dy in
            let dx = Tensor(zeros: xv.shape)
            for pl in 0..<(d.n * d.c) { dx[pl * d.plane + arg[pl]] = dy[pl] }
            self.accumulate(x, dx)
        }
    }

    /// Sum over channels: [N, C, H, W] -> [N, 1, H, W] (the CAM heatmap).
    public func sumChannels(_ x: Var) -> Var {
        let d = NCHW(x.value, "sumChannels")
        let xv = x.value
        let y = Tensor(zeros: [d.n, 1, d.h, d.w])
        for n in 0..<d.n {
            let o = y.data + n * d.plane
            for c in 0..<d.c {
                let s = xv.data + (n * d.c + c) * d.plane
                for i in 0..<d.plane { o[i] += s[i] }
            }
        }
        return record(y, inputs: [x]) { [unowned self] dy in
            let dx = Tensor(uninitialized: xv.shape)
            for n in 0..<d.n {
                for c in 0..<d.c {
                    (dx.data + (n * d.c + c) * d.plane).update(from: dy.data + n * d.plane, count: d.plane)
                }
            }
            self.accumulate(x, dx)
        }
    }
}

extension Tape {
    /// Sample i of a batch: [N, ...] -> [1, ...] (a copy; the gradient goes back to that sample).
    public func batchItem(_ x: Var, _ i: Int) -> Var {
        let s = x.shape
        let per = x.value.count / s[0]
        precondition(i >= 0 && i < s[0], "batchItem \(i) of \(s)")
        let y = Tensor(uninitialized: [1] + Array(s.dropFirst()))
        y.data.update(from: x.value.data + i * per, count: per)
        return record(y, inputs: [x]) { [unowned self] dy in
            let dx = Tensor(zeros: s)
            (dx.data + i * per).update(from: dy.data, count: per)
            self.accumulate(x, dx)
        }
    }

    /// Concatenation along the batch dimension: [N_i, ...] -> [ΣN_i, ...].
    public func concatBatch(_ xs: [Var]) -> Var {
        precondition(!xs.isEmpty, "concatBatch of nothing")
        let rest = Array(xs[0].shape.dropFirst())
        precondition(xs.allSatisfy { Array($0.shape.dropFirst()) == rest }, "concatBatch: \(xs.map(\.shape))")
        let counts = xs.map { $0.value.count }
        let y = Tensor(uninitialized: [xs.reduce(0) { $0 + $1.shape[0] }] + rest)
        var off = 0
        for (v, c) in zip(xs, counts) {
            (y.data + off).update(from: v.value.data, count: c)
            off += c
        }
        return record(y, inputs: xs) { [unowned self] dy in
            var off = 0
            for (v, c) in zip(xs, counts) {
                if self.needsGrad(v) {
                    let dx = Tensor(uninitialized: v.shape)
                    dx.data.update(from: dy.data + off, count: c)
                    self.accumulate(v, dx)
                }
                off += c
            }
        }
    }
}
