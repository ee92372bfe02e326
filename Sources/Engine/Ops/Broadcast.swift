// Binary ops with NumPy/PyTorch broadcasting for tensors of rank ≤ 4 (shapes are right-aligned; each
// dimension pair is equal or one of them is 1). y: the broadcast shape. Backward sums the gradient over
// the broadcast dimensions of each input.
//   add: y = a + b      sub: y = a − b      mul: y = a · b
// Typical uses: residual sums, x ⊙ w with w [1, C, 1, 1] (CAM re-weighting), x + b with b [N, C, 1, 1].

/// The four dimensions of a right-aligned broadcast, and the element strides of each operand (0 = broadcast).
struct Broadcast4 {
    let out: [Int]  // 4 dims
    let sa: [Int], sb: [Int]
    let outShape: [Int]  // the real (unpadded) result shape

    init(_ a: [Int], _ b: [Int], _ op: String) {
        precondition(a.count <= 4 && b.count <= 4, "\(op): rank > 4 not supported (\(a), \(b))")
        let r = max(a.count, b.count)
        let pa = [Int](repeating: 1, count: 4 - a.count) + a
        let pb = [Int](repeating: 1, count: 4 - b.count) + b
        var o = [Int](repeating: 1, count: 4)
        for i in 0..<4 {
            precondition(pa[i] == pb[i] || pa[i] == 1 || pb[i] == 1, "\(op): shapes \(a) and \(b) do not broadcast")
            o[i] = max(pa[i], pb[i])
        }
        func strides(_ s: [Int]) -> [Int] {
            var st = [0, 0, 0, 0]
            var acc = 1
            for i in stride(from: 3, through: 0, by: -1) {
                st[i] = s[i] == 1 ? 0 : acc
                acc *= s[i]
            }
            return st
        }
        out = o
        sa = strides(pa)
        sb = strides(pb)
        outShape = Array(o.suffix(r))
    }

    /// Calls body(outOffset, aOffset, bOffset, innerCount, aInnerStride, bInnerStride) for every innermost row.
    @inline(__always)
    func rows(_ body: (Int, Int, Int, Int, Int, Int) -> Void) {
        var o = 0
        for i0 in 0..<out[0] {
            for i1 in 0..<out[1] {
                for i2 in 0..<out[2] {
                    body(
                        o, i0 * sa[0] + i1 * sa[1] + i2 * sa[2], i0 * sb[0] + i1 * sb[1] + i2 * sb[2],
                        out[3], sa[3], sb[3])
                    o += out[3]
                }
            }
        }
    }
}

/// Sums g (shape `bc.out`) down to an operand with strides `s` (0 = broadcast) and shape `shape`.
func reduceBroadcast(
    _ g: UnsafePointer<Float>, _ bc: Broadcast4, strides s: [Int], shape: [Int],
    scaleBy other: UnsafePointer<Float>? = nil, otherStrides os: [Int] = []
) -> Tensor {
    let r = Tensor(zeros: shape)
    let d = r.data
    var o = 0
    for i0 in 0..<bc.out[0] {
        for i1 in 0..<bc.out[1] {
            for i2 in 0..<bc.out[2] {
                let base = i0 * s[0] + i1 * s[1] + i2 * s[2]
                let n = bc.out[3]
                let st = s[3]
                if let other {
                    let ob = i0 * os[0] + i1 * os[1] + i2 * os[2]
                    let ost = os[3]
                    for j in 0..<n { d[base + j * st] += g[o + j] * other[ob + j * ost] }
                } else {
                    for j in 0..<n { d[base + j * st] += g[o + j] }
                }
                o += n
            }
        }
    }
    return r
}

extension Tape {
    public enum BinaryOp { case add, sub, mul }

    /// a (op) b with broadcasting; see the file header for shapes.
    public func binary(_ a: Var, _ b: Var, _ op: BinaryOp) -> Var {
        let av = a.value
        let bv = b.value
        let bc = Broadcast4(av.shape, bv.shape, "\(op)")
        let y = Tensor(uninitialized: bc.outShape)
        let pa = av.data
        let pb = bv.data
        let py = y.data
        bc.rows { o, ia, ib, n, sa, sb in
            switch op {
            case .add: for j in 0..<n { py[o + j] = pa[ia + j * sa] + pb[ib + j * sb] }
            case .sub: for j in 0..<n { py[o + j] = pa[ia + j * sa] - pb[ib + j * sb] }
            case .mul: for j in 0..<n { py[o + j] = pa[ia + j * sa] * pb[ib + j * sb] }
            }
        }
        return record(y, inputs: [a, b]) { [unowned self] dy in
            let same = av.shape == bv.shape
            if self.needsGrad(a) {
                switch op {
                case .add, .sub:
                    if av.shape == bc.outShape {
                        self.accumulate(a, dy, owned: false)
                    } else {
                        self.accumulate(a, reduceBroadcast(dy.data, bc, strides: bc.sa, shape: av.shape))
                    }
                case .mul:
                    self.accumulate(
                        a,
                        reduceBroadcast(
                            dy.data, bc, strides: bc.sa, shape: av.shape,
                            scaleBy: pb, otherStrides: bc.sb))
                }
            }
            if self.needsGrad(b) {
                switch op {
                case .add:
                    if same || bv.shape == bc.outShape {
                        self.accumulate(b, dy, owned: false)
                    } else {
                        self.accumulate(b, reduceBroadcast(dy.data, bc, strides: bc.sb, shape: bv.shape))
                    }
                case .sub:
                    let r = reduceBroadcast(dy.data, bc, strides: bc.sb, shape: bv.shape)
                    for i in 0..<r.count { r[i] = -r[i] }
                    self.accumulate(b, r)
                case .mul:
                    self.accumulate(
                        b,
                        reduceBroadcast(
                            dy.data, bc, strides: bc.sb, shape: bv.shape,
                            scaleBy: pa, otherStrides: bc.sa))
                }
            }
        }
    }

    public func add(_ a: Var, _ b: Var) -> Var { binary(a, b, .add) }
    public func sub(_ a: Var, _ b: Var) -> Var { binary(a, b, .sub) }
    public func mul(_ a: Var, _ b: Var) -> Var { binary(a, b, .mul) }
}
