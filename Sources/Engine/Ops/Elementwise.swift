import Foundation

// Element-wise activations. Shapes: any; y has x's shape.
// Kink conventions follow PyTorch: ReLU'(0) = 0 (from y > 0); LeakyReLU'(0) = slope (from x > 0).

extension Tape {
    /// max(x, 0).
    public func relu(_ x: Var) -> Var {
        let xv = x.value
        let n = xv.count
        let y = Tensor(uninitialized: xv.shape)
        let a = xv.data
        let o = y.data
        for i in 0..<n { o[i] = max(a[i], 0) }
        return record(y, inputs: [x]) { [unowned self] dy in
            let dx = Tensor(uninitialized: xv.shape)
            let g = dy.data
            let d = dx.data
            let yy = y.data
            for i in 0..<n { d[i] = yy[i] > 0 ? g[i] : 0 }
            self.accumulate(x, dx)
        }
    }

    /// x for x > 0, slope·x otherwise (PyTorch LeakyReLU; the discriminators use slope 0.2).
    public func leakyRelu(_ x: Var, slope: Float = 0.2) -> Var {
        let xv = x.value
        let n = xv.count
        let y = Tensor(uninitialized: xv.shape)
        let a = xv.data
        let o = y.data
        for i in 0..<n { o[i] = a[i] > 0 ? a[i] : a[i] * slope }
        return record(y, inputs: [x]) { [unowned self] dy in
            let dx = Tensor(uninitialized: xv.shape)
            let g = dy.data
            let d = dx.data
            for i in 0..<n { d[i] = a[i] > 0 ? g[i] : g[i] * slope }
            self.accumulate(x, dx)
        }
    }

    /// tanh(x); backward uses 1 − y².
    public func tanh(_ x: Var) -> Var {
        let xv = x.value
        let n = xv.count
        let y = Tensor(uninitialized: xv.shape)
        let a = xv.data
        let o = y.data
        for i in 0..<n { o[i] = Foundation.tanh(a[i]) }
        return record(y, inputs: [x]) { [unowned self] dy in
            let dx = Tensor(uninitialized: xv.shape)
            let g = dy.data
            let d = dx.data
            for i in 0..<n { d[i] = g[i] * (1 - o[i] * o[i]) }
            self.accumulate(x, dx)
        }
    }

    /// 1 / (1 + e^−x); backward uses y(1 − y).
    public func sigmoid(_ x: Var) -> Var {
        let xv = x.value
        let n = xv.count
        let y = Tensor(uninitialized: xv.shape)
        let a = xv.data
        let o = y.data
        for i in 0..<n { o[i] = 1 / (1 + Foundation.exp(-a[i])) }
        return record(y, inputs: [x]) { [unowned self] dy in
            let dx = Tensor(uninitialized: xv.shape)
            let g = dy.data
            let d = dx.data
            for i in 0..<n { d[i] = g[i] * o[i] * (1 - o[i]) }
            self.accumulate(x, dx)
        }
    }

    /// s·x for a constant s.
    public func scale(_ x: Var, _ s: Float) -> Var {
        let xv = x.value
        let n = xv.count
        let y = Tensor(uninitialized: xv.shape)
        for i in 0..<n { y.data[i] = xv.data[i] * s }
        return record(y, inputs: [x]) { [unowned self] dy in
            let dx = Tensor(uninitialized: xv.shape)
            for i in 0..<n { dx.data[i] = dy.data[i] * s }
            self.accumulate(x, dx)
        }
    }

    /// A view of x with a new shape of the same element count (PyTorch `view`/`flatten`).
    public func reshape(_ x: Var, _ shape: [Int]) -> Var {
        let xv = x.value
        let y = xv.reshaped(shape)
        return record(y, inputs: [x]) { [unowned self] dy in
            self.accumulate(x, dy.reshaped(xv.shape), owned: false)
        }
    }
}
