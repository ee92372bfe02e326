/// Reverse-mode automatic differentiation over a recorded sequence of ops (a tape).
///
/// Model code only writes forward computations on `Var`s. Every op appends one node holding its output and,
/// if any input needs a gradient, a closure that turns the output's gradient into its inputs' gradients.
/// Saved state lives in that closure, so the same network can be called any number of times per step
/// (U-GAT-IT calls each generator three times and each discriminator several times).
///
/// Parameters enter through `param(_:)`: their gradients are added (+=) into the parameter's gradient
/// buffer, so gradients of several calls sum, and a parameter that is not `trainable` costs no gradient work.
public final class Tape {
    final class Node {
        let value: Tensor
        let requiresGrad: Bool
        var grad: Tensor?
        var gradIsShared = false  // grad is borrowed from another node: copy before accumulating
        var backward: ((Tensor) -> Void)?
        var kind = TimeKind.other  // what its forward and backward count as (`Breakdown`)
        let parameter: Parameter?
        init(value: Tensor, requiresGrad: Bool, parameter: Parameter?) {
            self.value = value
            self.requiresGrad = requiresGrad
            self.parameter = parameter
        }
    }

    var nodes: [Node] = []
    /// Each parameter's first leaf on this tape: its gradient is final once backward has passed that node.
    var firstUse: [ObjectIdentifier: (node: Int, parameter: Parameter)] = [:]
    /// Called during `backward` with every parameter this tape used, as soon as no node is left that could add to its
    /// gradient (after the node of its first use), so that its all-reduce can start while backward goes on.
    public var onGradientFinal: ((Parameter) -> Void)?
    /// Training mode: spectral norm advances its power iteration on every call (PyTorch's `module.train()`).
    public var training: Bool

    public init(training: Bool = true) { self.training = training }

    /// The number of recorded nodes.
    public var count: Int { nodes.count }

    // MARK: - Leaves

    /// A leaf that receives no gradient (input images, targets).
    public func constant(_ t: Tensor) -> Var {
        append(Node(value: t, requiresGrad: false, parameter: nil))
    }

    /// A leaf whose gradient can be read with `grad(of:)` after `backward` (used by tests and gradient checks).
    public func input(_ t: Tensor, requiresGrad: Bool = true) -> Var {
        append(Node(value: t, requiresGrad: requiresGrad, parameter: nil))
    }

    /// A parameter leaf. If `p.trainable`, backward adds into `p.grad` and marks `p.hasGrad`.
    public func param(_ p: Parameter) -> Var {
        let v = append(Node(value: p.value, requiresGrad: p.trainable, parameter: p))
        if firstUse[ObjectIdentifier(p)] == nil { firstUse[ObjectIdentifier(p)] = (v.id, p) }
        return v
    }

    /// The same value cut from the graph (PyTorch's `detach()`): no gradient flows back through it.
    public func detach(_ x: Var) -> Var { constant(x.value) }

    private func append(_ n: Node) -> Var {
        nodes.append(n)
        return Var(tape: self, id: nodes.count - 1)
    }

    // MARK: - Recording ops

    /// Whether `x` needs a gradient (an op skips work for inputs that do not).
    @inline(__always) public func needsGrad(_ x: Var) -> Bool { nodes[x.id].requiresGrad }

    /// Records an op output. `backward` is kept only if some input needs a gradient; it receives the output's
    /// gradient (never to be mutated) and must call `accumulate` for the inputs that need one. `kind`: what the
    /// op's time counts as in `Breakdown` (its forward ends here).
    public func record(
        _ value: Tensor, inputs: [Var], kind: TimeKind = .elementwise, backward: @escaping (Tensor) -> Void
    ) -> Var {
        Breakdown.end(kind)
        let req = inputs.contains { nodes[$0.id].requiresGrad }
        let n = Node(value: value, requiresGrad: req, parameter: nil)
        n.kind = kind
        if req { n.backward = backward }
        return append(n)
    }

    /// Adds `g` to the gradient of `x`. `owned: true` hands over `g` (the caller will not touch it again);
    /// otherwise `g` may be shared with other nodes and is copied before any in-place accumulation.
    public func accumulate(_ x: Var, _ g: Tensor, owned: Bool = true) {
        let n = nodes[x.id]
        guard n.requiresGrad else { return }
        precondition(g.count == n.value.count, "gradient \(g.shape) for value \(n.value.shape)")
        if let p = n.parameter {
            p.grad.add(g)
            p.hasGrad = true
            return
        }
        if let existing = n.grad {
            if n.gradIsShared {
                let c = existing.copy()
                c.add(g)
                n.grad = c
                n.gradIsShared = false
            } else {
                existing.add(g)
            }
        } else {
            n.grad = g
            n.gradIsShared = !owned
        }
    }

    /// Adds a gradient that `add` writes as `g[i] += …` over x's element count: straight into the gradient buffer of a
    /// parameter leaf, otherwise into zeros that are then accumulated as above. The sums are the same floats as
    /// forming the gradient first and accumulating it.
    public func accumulate(_ x: Var, adding add: (UnsafeMutablePointer<Float>) -> Void) {
        let n = nodes[x.id]
        guard n.requiresGrad else { return }
        if let p = n.parameter {
            add(p.grad.data)
            p.hasGrad = true
            return
        }
        let g = Tensor(zeros: n.value.shape)
        add(g.data)
        accumulate(x, g)
    }

    /// Marks a parameter leaf as having a gradient this step without adding to it (its gradient is formed elsewhere,
    /// e.g. from `LowRankGradient` factors).
    public func markGradient(_ x: Var) {
        guard nodes[x.id].requiresGrad, let p = nodes[x.id].parameter else { return }
        p.hasGrad = true
    }

    // MARK: - Backward

    /// Back-propagates from `root`, seeded with `seed` (default: 1 for a one-element root).
    /// Each node's closure runs once, in reverse recording order; its saved state is released as it goes.
    public func backward(_ root: Var, seed: Tensor? = nil) {
        precondition(root.tape === self, "backward on a Var of another tape")
        let s =
            seed
            ?? {
                precondition(root.value.count == 1, "backward from a non-scalar \(root.value.shape) needs a seed")
                return Tensor(repeating: 1, shape: root.value.shape)
            }()
        accumulate(root, s, owned: false)
        // parameters by first use, latest first: reported once backward has gone below that node
        let final = onGradientFinal.map { _ in firstUse.values.sorted { $0.node > $1.node } } ?? []
        var next = 0
        for i in stride(from: root.id, through: 0, by: -1) {
            while next < final.count && final[next].node >= i {
                onGradientFinal?(final[next].parameter)
                next += 1
            }
            let n = nodes[i]
            guard let g = n.grad, let bw = n.backward else { continue }
            n.backward = nil
            Breakdown.end(.other)  // the tape's own bookkeeping
            bw(g)
            Breakdown.end(n.kind)
            if n.parameter == nil && i != root.id { n.grad = nil }
        }
        while next < final.count {
            onGradientFinal?(final[next].parameter)
            next += 1
        }
    }

    /// The gradient accumulated for an `input` leaf (nil if none reached it).
    public func grad(of x: Var) -> Tensor? { nodes[x.id].grad }
}

/// A value recorded on a `Tape`. It does not keep its tape alive (op closures hold Vars, and a strong
/// reference would make every tape a retain cycle): use a Var only while its tape exists.
public struct Var {
    public unowned let tape: Tape
    public let id: Int
    public var value: Tensor { tape.nodes[id].value }
    public var shape: [Int] { value.shape }
}
