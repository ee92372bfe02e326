import Engine

// Parameterised layers as used by U-GAT-IT. Each registers its tensors in a ParameterStore under the
// official UGATIT-pytorch state_dict key (`<prefix>.weight`, `<prefix>.weight_orig`, `weight_u`, ...), in the
// order PyTorch emits them, and is called with a Tape. No layer keeps activations: a layer can be called any
// number of times per step.

/// Conv2d (OIHW weight, optional bias) with zero or reflection padding fused in.
public struct Conv {
    public let weight: Parameter
    public let bias: Parameter?
    public let stride: Int, padding: Int, mode: PaddingMode

    public init(
        _ store: ParameterStore, _ prefix: String, cin: Int, cout: Int, kernel: Int, stride: Int = 1,
        padding: Int = 0, mode: PaddingMode = .zeros, bias: Bool, rng: inout RandomGenerator
    ) {
        let ws = [cout, cin, kernel, kernel]
        weight = store.add("\(prefix).weight", Init.kaimingUniform(ws, &rng))
        self.bias = bias ? store.add("\(prefix).bias", Init.bias(cout, weightShape: ws, &rng)) : nil
        self.stride = stride
        self.padding = padding
        self.mode = mode
    }

    /// x: [N, cin, H, W] -> [N, cout, Ho, Wo].
    public func callAsFunction(_ t: Tape, _ x: Var) -> Var {
        t.conv2d(x, t.param(weight), bias.map { t.param($0) }, stride: stride, padding: padding, mode: mode)
    }
}

/// Linear layer ([out, in] weight, optional bias).
public struct Linear {
    public let weight: Parameter
    public let bias: Parameter?

    public init(_ store: ParameterStore, _ prefix: String, fin: Int, fout: Int, bias: Bool, rng: inout RandomGenerator)
    {
        weight = store.add("\(prefix).weight", Init.kaimingUniform([fout, fin], &rng))
        self.bias = bias ? store.add("\(prefix).bias", Init.bias(fout, weightShape: [fout, fin], &rng)) : nil
    }

    /// x: [N, fin] -> [N, fout]. With `lowRank`, the weight gradient is kept as factors (`LowRankGradient`).
    public func callAsFunction(_ t: Tape, _ x: Var, lowRank: LowRankGradient? = nil) -> Var {
        t.linear(x, t.param(weight), bias.map { t.param($0) }, lowRank: lowRank)
    }
}

/// The spectral-norm state of one weight: `weight_orig` (parameter), `weight_u`, `weight_v` (buffers),
/// initialised as PyTorch does (normal vectors scaled to unit length).
public struct SpectralWeight {
    public let weightOrig: Parameter
    public let u: Buffer, v: Buffer

    init(_ store: ParameterStore, _ prefix: String, _ w: Tensor, rng: inout RandomGenerator) {
        weightOrig = store.add("\(prefix).weight_orig", w)
        let rows = w.shape[0]
        let cols = w.count / rows
        u = store.addBuffer("\(prefix).weight_u", SpectralWeight.unitNormal(rows, &rng))
        v = store.addBuffer("\(prefix).weight_v", SpectralWeight.unitNormal(cols, &rng))
    }

    static func unitNormal(_ n: Int, _ rng: inout RandomGenerator) -> Tensor {
        let t = rng.normalTensor([n])
        var s: Float = 0
        for i in 0..<n { s += t[i] * t[i] }
        let norm = max(s.squareRoot(), 1e-12)
        for i in 0..<n { t[i] /= norm }
        return t
    }

    /// W/σ; advances u, v when the tape is in training mode.
    public func normalized(_ t: Tape) -> Var { t.spectralNorm(t.param(weightOrig), u: u.value, v: v.value) }
}

/// Spectrally normalised Conv2d (torch.nn.utils.spectral_norm(nn.Conv2d(...))). Keys: bias, weight_orig, u, v.
public struct SNConv {
    public let bias: Parameter?
    public let weight: SpectralWeight
    public let stride: Int, padding: Int, mode: PaddingMode

    public init(
        _ store: ParameterStore, _ prefix: String, cin: Int, cout: Int, kernel: Int, stride: Int,
        padding: Int = 0, mode: PaddingMode = .zeros, bias: Bool, rng: inout RandomGenerator
    ) {
        let ws = [cout, cin, kernel, kernel]
        let w = Init.kaimingUniform(ws, &rng)
        let b = bias ? Init.bias(cout, weightShape: ws, &rng) : nil
        self.bias = b.map { store.add("\(prefix).bias", $0) }
        weight = SpectralWeight(store, prefix, w, rng: &rng)
        self.stride = stride
        self.padding = padding
        self.mode = mode
    }

    /// (W ∗ x)/σ + b: the same as (W/σ) ∗ x + b up to rounding, without a pass that writes W/σ, one that reads it
    /// and a W/σ copy kept for backward (for the deepest discriminator conv at 128/32, 34 MB each; the output it
    /// scales in place is 9K floats). `Tape.inverseSpectralNorm`, `Tape.scaleAndBiasInPlace`.
    public func callAsFunction(_ t: Tape, _ x: Var) -> Var {
        let w = t.param(weight.weightOrig)
        let s = t.inverseSpectralNorm(w, u: weight.u.value, v: weight.v.value)
        let y = t.conv2d(x, w, nil, stride: stride, padding: padding, mode: mode)
        return t.scaleAndBiasInPlace(y, scale: s, bias: bias.map { t.param($0) })
    }
}

/// Spectrally normalised Linear. Keys: bias (if any), weight_orig, weight_u, weight_v.
public struct SNLinear {
    public let bias: Parameter?
    public let weight: SpectralWeight

    public init(_ store: ParameterStore, _ prefix: String, fin: Int, fout: Int, bias: Bool, rng: inout RandomGenerator)
    {
        let w = Init.kaimingUniform([fout, fin], &rng)
        let b = bias ? Init.bias(fout, weightShape: [fout, fin], &rng) : nil
        self.bias = b.map { store.add("\(prefix).bias", $0) }
        weight = SpectralWeight(store, prefix, w, rng: &rng)
    }

    public func callAsFunction(_ t: Tape, _ x: Var) -> Var {
        t.linear(x, weight.normalized(t), bias.map { t.param($0) })
    }
}

/// ILN (spec A.1): rho 0, gamma 1, beta 0 at start, each [1, C, 1, 1]; unbiased statistics.
public struct ILN {
    public let rho: Parameter, gamma: Parameter, beta: Parameter

    public init(_ store: ParameterStore, _ prefix: String, channels c: Int) {
        rho = store.add("\(prefix).rho", Tensor(repeating: 0, shape: [1, c, 1, 1]))
        gamma = store.add("\(prefix).gamma", Tensor(repeating: 1, shape: [1, c, 1, 1]))
        beta = store.add("\(prefix).beta", Tensor(repeating: 0, shape: [1, c, 1, 1]))
    }

    public func callAsFunction(_ t: Tape, _ x: Var) -> Var {
        t.iln(x, rho: t.param(rho), gamma: t.param(gamma), beta: t.param(beta))
    }
}

/// adaILN's own parameter (spec A.1): rho [1, C, 1, 1] starting at 0.9; gamma and beta come from the MLP.
public struct AdaILN {
    public let rho: Parameter

    public init(_ store: ParameterStore, _ prefix: String, channels c: Int) {
        rho = store.add("\(prefix).rho", Tensor(repeating: 0.9, shape: [1, c, 1, 1]))
    }

    /// x: [N, C, H, W]; gamma, beta: [N, C].
    public func callAsFunction(_ t: Tape, _ x: Var, gamma: Var, beta: Var) -> Var {
        t.adaILN(x, rho: t.param(rho), gamma: gamma, beta: beta)
    }
}
