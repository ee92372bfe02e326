import Foundation

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
    /// Each parameter's last leaf on this tape.
    var lastUse: [ObjectIdentifier: Int] = [:]
    /// Called during `backward` with every parameter this tape used, as soon as no node is left that could add to its
    /// gradient (after the node of its first use), so that its all-reduce can start while backward goes on.
    public var onGradientFinal: ((Parameter) -> Void)?
    /// Training mode: spectral norm advances its power iteration on every call (PyTorch's `module.train()`).
    public var training: Bool
    /// Where parameter gradients go when not straight into `Parameter.grad` (the second tape of `backward(_:_:)`).
    public let separate: SeparateGradients?
    /// Winograd weight transforms shared by the tapes of one phase whose weights do not change meanwhile (nil: each
    /// conv call makes its own, in forward and again in backward).
    public var winogradWeights: WinogradWeightCache?

    /// - Parameter separateGradients: keep this tape's parameter gradients apart (see `backward(_:_:)`).
    public init(training: Bool = true, separateGradients: Bool = false) {
        self.training = training
        separate = separateGradients ? SeparateGradients() : nil
    }

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
        precondition(!walkAddedGradient(to: p), "Tape.param: backward(_:above:) has added \(p.name)'s gradient already")
        let v = append(Node(value: p.value, requiresGrad: p.trainable, parameter: p))
        if firstUse[ObjectIdentifier(p)] == nil { firstUse[ObjectIdentifier(p)] = (v.id, p) }
        lastUse[ObjectIdentifier(p)] = v.id
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
        precondition(!inputs.contains(where: reachedByWalk), "Tape.record: an input backward(_:above:) has walked")
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
        if let h = holding, x.id < h.boundary, n.parameter == nil {  // `backward(_:above:)`: kept for the next walk
            heldBack[h.consumer, default: []].append((x.id, g, !owned))
            return
        }
        if let p = n.parameter {
            if let separate { separate.buffer(p).add(g) } else { p.grad.add(g) }
            marked(p)
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
            add((separate?.buffer(p) ?? p.grad).data)
            marked(p)
            return
        }
        let g = Tensor(zeros: n.value.shape)
        add(g.data)
        accumulate(x, g)
    }

    /// dW += dyᵀ·x for a linear layer's weight W [out, in], with dy [rows, out] and x [rows, in]: one GEMM into the
    /// gradient, no dense dW formed (1 GB per call for the full generator's FC.0). On a tape with separate gradients a
    /// large weight's product is deferred to the merge (`SeparateGradients`), so that no second copy of it is held.
    func accumulateLinearWeight(_ weight: Var, dy: Tensor, x: Tensor) {
        let n = nodes[weight.id]
        guard n.requiresGrad else { return }
        let (fout, fin, rows) = (n.value.shape[0], n.value.shape[1], dy.count / max(n.value.shape[0], 1))
        if let separate, let p = n.parameter, n.value.count >= SeparateGradients.deferredWeightFloats {
            separate.deferLinear(p, dy: dy, x: x)
            marked(p)
            return
        }
        accumulate(weight) { grad in
            sgemm(transA: true, m: fout, n: fin, k: rows, dy.data, x.data, beta: 1, grad)
        }
    }

    /// Marks a parameter leaf as having a gradient this step without adding to it (its gradient is formed elsewhere,
    /// e.g. from `LowRankGradient` factors).
    public func markGradient(_ x: Var) {
        guard nodes[x.id].requiresGrad, let p = nodes[x.id].parameter else { return }
        marked(p)
    }

    /// Records that `p` got a gradient this step (`Parameter.hasGrad`, or the separate gradients' own record).
    /// Every path that adds to a parameter's gradient passes here.
    private func marked(_ p: Parameter) {
        if holding != nil { parametersWalked.insert(ObjectIdentifier(p)) }
        if let separate { separate.mark(p) } else { p.hasGrad = true }
    }

    /// Appends a call's factors to a low-rank gradient (`Tape.linear`); a tape with separate gradients stages them.
    func appendLowRank(_ lowRank: LowRankGradient, x: Tensor, dy: Tensor) {
        if let separate { separate.stage(lowRank, x: x, dy: dy) } else { lowRank.append(x: x, dy: dy) }
    }

    // MARK: - Backward

    /// Back-propagates from `root`, seeded with `seed` (default: 1 for a one-element root).
    /// Each node's closure runs once, in reverse recording order; its saved state is released as it goes.
    /// Gradients held back by an earlier `backward(_:above:)` are added to their nodes when this walk reaches them.
    public func backward(_ root: Var, seed: Tensor? = nil) {
        precondition(root.tape === self, "backward on a Var of another tape")
        accumulate(root, seed ?? Self.unitSeed(root), owned: false)
        // parameters by first use, latest first: reported once backward has gone below that node; those whose every
        // use lay in the nodes an earlier `backward(_:above:)` walked are final already, and reported first
        var final = onGradientFinal.map { _ in firstUse.values.sorted { $0.node > $1.node } } ?? []
        if let w = walked, onGradientFinal != nil {
            let walkedOnly = { (u: (node: Int, parameter: Parameter)) in
                u.node >= w.lowestNode && self.lastUse[ObjectIdentifier(u.parameter)]! <= w.root
            }
            for u in final where walkedOnly(u) { onGradientFinal?(u.parameter) }
            final.removeAll(where: walkedOnly)
        }
        walked = nil
        parametersWalked.removeAll()
        var next = 0
        for i in stride(from: root.id, through: 0, by: -1) {
            while next < final.count && final[next].node >= i {
                onGradientFinal?(final[next].parameter)
                next += 1
            }
            // node i was walked by `backward(_:above:)`: what it sent below the boundary is added now, where one walk
            // over the whole loss would have added it
            if !heldBack.isEmpty, let held = heldBack.removeValue(forKey: i) {
                for h in held { accumulate(Var(tape: self, id: h.node), h.grad, owned: !h.shared) }
            }
            step(i, root: root)
        }
        while next < final.count {
            onGradientFinal?(final[next].parameter)
            next += 1
        }
        precondition(heldBack.isEmpty, "backward: its root lies below gradients that backward(_:above:) held back")
    }

    /// Back-propagates from `root` through the nodes recorded at or after `boundary` only (and reports no gradient
    /// final): a first part of a loss whose other part is not yet recorded, e.g. the G loss's cycle, identity and CAM
    /// terms before the discriminators have been updated to judge the fakes (`UGATITStep.generatorGradients`).
    /// What a walked node sends to a node below `boundary` is held back, and the next `backward` adds it when its walk
    /// passes the node that sent it: where one walk over the whole loss would have added it, so every node's gradient
    /// is summed in the same order and the results are the same floats. Parameter leaves are not held back: a
    /// parameter used among the walked nodes must not be used again afterwards (checked), so its contributions come in
    /// one walk's order either way. The walked nodes are done: no later node may take one as an input (checked), and
    /// the next `backward` reports first (`onGradientFinal`) the parameters whose every leaf lies among them.
    /// One such walk at a time, before a `backward` from a root recorded after it.
    public func backward(_ root: Var, above boundary: Int) {
        precondition(root.tape === self, "backward on a Var of another tape")
        precondition(boundary <= root.id, "backward(_:above:): boundary \(boundary) above the root \(root.id)")
        precondition(walked == nil && heldBack.isEmpty, "backward(_:above:): one at a time, then a whole backward")
        // a node recorded after `root` but before this walk would escape `walkAddedGradient` and `reachedByWalk`
        precondition(root.id == nodes.count - 1, "backward(_:above:): the root must be the newest node")
        accumulate(root, Self.unitSeed(root), owned: false)
        for i in stride(from: root.id, through: boundary, by: -1) {
            holding = (boundary, i)
            step(i, root: root)
        }
        holding = nil
        walked = (boundary, root.id)
    }

    /// One node of a backward walk: runs its closure once with its gradient, then releases what it no longer needs.
    private func step(_ i: Int, root: Var) {
        let n = nodes[i]
        guard let g = n.grad, let bw = n.backward else { return }
        n.backward = nil
        Breakdown.end(.other)  // the tape's own bookkeeping
        bw(g)
        Breakdown.end(n.kind)
        if n.parameter == nil && i != root.id { n.grad = nil }
    }

    /// The nodes the last `backward(_:above:)` walked: a parameter whose every leaf lies among them has its whole
    /// gradient from this tape.
    private var walked: (lowestNode: Int, root: Int)?
    /// The parameters the walk added gradient to: parameter leaves are not held back, their parts go in at once.
    private var parametersWalked: Set<ObjectIdentifier> = []

    /// Whether the last `backward(_:above:)` added to `p`'s gradient: a further use would add its part after the
    /// walked ones, where one walk over the whole loss adds it before them (a different float sum of three or more
    /// parts). A parameter used among the walked nodes without a gradient (frozen) may be used again.
    func walkAddedGradient(to p: Parameter) -> Bool { walked != nil && parametersWalked.contains(ObjectIdentifier(p)) }

    /// Whether node `x` is done: walked by `backward(_:above:)`, or a leaf of a parameter the walk added to. A later
    /// node taking it as an input would send a gradient that is lost or out of order.
    func reachedByWalk(_ x: Var) -> Bool {
        guard let w = walked else { return false }
        if x.id >= w.lowestNode && x.id <= w.root { return true }
        return nodes[x.id].parameter.map { parametersWalked.contains(ObjectIdentifier($0)) } ?? false
    }
    /// While `backward(_:above:)` runs node `consumer`'s closure: gradients for nodes below `boundary` are held back.
    private var holding: (boundary: Int, consumer: Int)?
    /// What `backward(_:above:)` held back, by the node that sent it, in the order sent.
    private var heldBack: [Int: [(node: Int, grad: Tensor, shared: Bool)]] = [:]

    private static func unitSeed(_ root: Var) -> Tensor {
        precondition(root.value.count == 1, "backward from a non-scalar \(root.value.shape) needs a seed")
        return Tensor(repeating: 1, shape: root.value.shape)
    }

    /// Back-propagates two tapes that may share parameters, side by side (`Parallel.pair`): `first`'s tape adds into
    /// `Parameter.grad` as `backward` does, `second`'s tape (made with `separateGradients: true`) into buffers of its
    /// own, and each parameter's two parts are summed (first + second) as soon as neither tape can add to it any more.
    /// Then `onGradientFinal` is called with it, from either thread. Low-rank factors of the second tape follow the
    /// first's, appended after both tapes are done: a parameter with a `LowRankGradient` is reported before its
    /// factors are complete (its gradient is formed from them after the phase, `PhaseAverage.finish`). The sums are the same floats whether the halves ran one after the other or at the same time.
    public static func backward(_ first: Var, _ second: Var, onGradientFinal: ((Parameter) -> Void)? = nil) {
        let (a, b) = (first.tape, second.tape)
        guard let separate = b.separate else { preconditionFailure("Tape.backward(_:_:): the second tape needs separateGradients") }
        precondition(a.separate == nil && a !== b, "Tape.backward(_:_:): two tapes, the first without separate gradients")
        // how many of the two tapes have yet to report each parameter final
        var pending: [ObjectIdentifier: Int] = [:]
        for t in [a, b] { for id in t.firstUse.keys { pending[id, default: 0] += 1 } }
        let lock = NSLock()
        let report: (Parameter) -> Void = { p in
            lock.lock()
            let id = ObjectIdentifier(p)
            pending[id]! -= 1
            let last = pending[id] == 0
            lock.unlock()
            guard last else { return }
            separate.merge(p)
            onGradientFinal?(p)
        }
        a.onGradientFinal = report
        b.onGradientFinal = report
        _ = Parallel.pair({ a.backward(first) }, { b.backward(second) })
        a.onGradientFinal = nil
        b.onGradientFinal = nil
        separate.mergeLowRank()
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

/// A tape's parameter gradients kept apart from `Parameter.grad` while another tape adds into it at the same time
/// (`Tape.backward(_:_:)`), summed into it once a parameter is final. Buffers are made on first use and released at
/// the merge, so at most the second tape's parameters are held twice.
public final class SeparateGradients {
    private let lock = NSLock()  // the buffers are made on the second tape's thread and merged on either
    private var buffers: [ObjectIdentifier: Tensor] = [:]
    private var marks: Set<ObjectIdentifier> = []
    private var lowRank: [(LowRankGradient, Tensor, Tensor)] = []
    private var deferred: [ObjectIdentifier: [(dy: Tensor, x: Tensor)]] = [:]
    /// Linear weights of at least this many floats get their gradient products deferred to the merge.
    static let deferredWeightFloats = 1 << 20

    /// p's gradient buffer, zero on first use.
    func buffer(_ p: Parameter) -> Tensor {
        lock.lock()
        defer { lock.unlock() }
        if let g = buffers[ObjectIdentifier(p)] { return g }
        let g = Tensor(zeros: p.shape)
        buffers[ObjectIdentifier(p)] = g
        return g
    }

    func mark(_ p: Parameter) {
        lock.lock()
        marks.insert(ObjectIdentifier(p))
        lock.unlock()
    }

    func stage(_ l: LowRankGradient, x: Tensor, dy: Tensor) {
        lock.lock()
        lowRank.append((l, x, dy))
        lock.unlock()
    }

    func deferLinear(_ p: Parameter, dy: Tensor, x: Tensor) {
        lock.lock()
        deferred[ObjectIdentifier(p), default: []].append((dy, x))
        lock.unlock()
    }

    /// p.grad += p's buffer, then += dyᵀ·x for each deferred linear call in order, and p.hasGrad if this tape gave
    /// it a gradient; the buffer and factors are released.
    func merge(_ p: Parameter) {
        let id = ObjectIdentifier(p)
        lock.lock()
        let g = buffers.removeValue(forKey: id)
        let calls = deferred.removeValue(forKey: id) ?? []
        let marked = marks.remove(id) != nil
        lock.unlock()
        if let g { p.grad.add(g) }
        let (fout, fin) = (p.shape[0], p.shape.count > 1 ? p.shape[1] : 1)
        for (dy, x) in calls {
            sgemm(transA: true, m: fout, n: fin, k: dy.count / fout, dy.data, x.data, beta: 1, p.grad.data)
        }
        if marked { p.hasGrad = true }
    }

    /// Appends the staged low-rank factors, in the order this tape produced them.
    func mergeLowRank() {
        for (l, x, dy) in lowRank { l.append(x: x, dy: dy) }
        lowRank = []
    }
}
