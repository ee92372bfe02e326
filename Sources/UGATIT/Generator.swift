import Engine

/// Generator hyper-parameters (spec A.2). `ngf` = base channels c, `blocks` = residual blocks n, `imageSize` = S.
public struct GeneratorConfig: Codable, Equatable, Sendable {
    public var ngf: Int
    public var blocks: Int
    public var imageSize: Int
    public var light: Bool

    public init(ngf: Int = 64, blocks: Int = 4, imageSize: Int = 256, light: Bool = true) {
        self.ngf = ngf
        self.blocks = blocks
        self.imageSize = imageSize
        self.light = light
    }

    /// FC.0's input width in full mode: ((((S // 4)·S) // 4)·c)·4, as the original computes it (= S²c/4).
    public var fullFCInput: Int { ((((imageSize / 4) * imageSize) / 4) * ngf) * 4 }

    /// Closed form of the parameter count (spec A.5), for checks.
    public var parameterCount: Int {
        let (c, n) = (ngf, blocks)
        let common = 576 * n * c * c + 315 * c + 8 * n * c
        return light ? 276 * c * c + common : 260 * c * c + fullFCInput * 4 * c + common
    }
}

/// The outputs of one generator call.
public struct GeneratorOutput {
    /// Translated image [N, 3, H, W] in [-1, 1] (tanh).
    public let image: Var
    /// CAM logits [N, 2] (gap, gmp): the auxiliary classifier "is this from my source domain".
    public let camLogit: Var
    /// Channel sum of the CAM feature map [N, 1, H/4, W/4] (visualisation).
    public let heatmap: Var
}

/// U-GAT-IT ResnetGenerator (spec A.2): encoder with IN, CAM attention, gamma/beta MLP, adaILN residual
/// decoder, ILN up-sampling, tanh output. Parameter keys are UGATIT-pytorch's (`DownBlock.1.weight`, ...).
public final class ResnetGenerator {
    public let config: GeneratorConfig
    // The layers are readable so that exporters (ONNX) can walk the same structure as `callAsFunction`.
    public let down: [Conv]  // DownBlock.1, .5, .9 (7×7 s1, 3×3 s2, 3×3 s2; reflect pads fused)
    public let encoderBlocks: [(Conv, Conv)]  // DownBlock.{12...}.conv_block.{1,5}
    public let gapFC: Linear, gmpFC: Linear, conv1x1: Conv
    public let fc: [Linear]  // FC.0, FC.2
    public let gamma: Linear, beta: Linear
    public let decoderBlocks: [(Conv, AdaILN, Conv, AdaILN)]  // UpBlock1_k.{conv1, norm1, conv2, norm2}
    public let up: [(Conv, ILN)]  // UpBlock2.{2,3}, UpBlock2.{7,8}
    public let output: Conv  // UpBlock2.11

    /// When set, FC.0's weight gradient is collected as factors for an exact low-rank exchange between ranks
    /// (`LowRankGradient`) instead of being formed densely.
    public var fcLowRank: LowRankGradient?

    /// FC.0's weight [4c, in]: in = 4c (light) or S²c/4 (full).
    public var fcFirstWeight: Parameter { fc[0].weight }

    /// The parameters of the encoder residual blocks (the "bottleneck" of selective backprop, spec C.3).
    public var encoderBlockParameters: [Parameter] { encoderBlocks.flatMap { [$0.0.weight, $0.1.weight] } }

    /// Registers the generator's parameters under `prefix` (e.g. "genA2B") in official key order.
    public init(_ store: ParameterStore, prefix: String, config: GeneratorConfig, rng: inout RandomGenerator) {
        precondition(
            config.imageSize % 4 == 0 && config.imageSize >= 8,
            "generator: img size \(config.imageSize) must be a multiple of 4, ≥ 8")
        precondition(config.ngf >= 1 && config.blocks >= 0, "generator: ngf \(config.ngf), blocks \(config.blocks)")
        self.config = config
        let c = config.ngf
        let d = 4 * c
        let p = prefix
        // Registration order = the order PyTorch's state_dict lists them (spec A.4).
        gapFC = Linear(store, "\(p).gap_fc", fin: d, fout: 1, bias: false, rng: &rng)
        gmpFC = Linear(store, "\(p).gmp_fc", fin: d, fout: 1, bias: false, rng: &rng)
        conv1x1 = Conv(store, "\(p).conv1x1", cin: 2 * d, cout: d, kernel: 1, bias: true, rng: &rng)
        let fcIn = config.light ? d : config.fullFCInput
        let gammaBeta: (Linear, Linear)
        let fcPrelim: [Linear]
        // FC is registered after UpBlock1_k in PyTorch, but gamma/beta before; keep both orders exact.
        gammaBeta = (
            Linear(store, "\(p).gamma", fin: d, fout: d, bias: false, rng: &rng),
            Linear(store, "\(p).beta", fin: d, fout: d, bias: false, rng: &rng)
        )
        var dec: [(Conv, AdaILN, Conv, AdaILN)] = []
        for k in 0..<config.blocks {
            let b = "\(p).UpBlock1_\(k + 1)"
            let c1 = Conv(
                store, "\(b).conv1", cin: d, cout: d, kernel: 3, padding: 1, mode: .reflect, bias: false, rng: &rng)
            let n1 = AdaILN(store, "\(b).norm1", channels: d)
            let c2 = Conv(
                store, "\(b).conv2", cin: d, cout: d, kernel: 3, padding: 1, mode: .reflect, bias: false, rng: &rng)
            let n2 = AdaILN(store, "\(b).norm2", channels: d)
            dec.append((c1, n1, c2, n2))
        }
        down = [
            Conv(
                store, "\(p).DownBlock.1", cin: 3, cout: c, kernel: 7, padding: 3, mode: .reflect, bias: false,
                rng: &rng),
            Conv(
                store, "\(p).DownBlock.5", cin: c, cout: 2 * c, kernel: 3, stride: 2, padding: 1, mode: .reflect,
                bias: false, rng: &rng),
            Conv(
                store, "\(p).DownBlock.9", cin: 2 * c, cout: d, kernel: 3, stride: 2, padding: 1, mode: .reflect,
                bias: false, rng: &rng),
        ]
        var enc: [(Conv, Conv)] = []
        for i in 0..<config.blocks {
            let b = "\(p).DownBlock.\(12 + i).conv_block"
            enc.append(
                (
                    Conv(
                        store, "\(b).1", cin: d, cout: d, kernel: 3, padding: 1, mode: .reflect, bias: false, rng: &rng),
                    Conv(
                        store, "\(b).5", cin: d, cout: d, kernel: 3, padding: 1, mode: .reflect, bias: false, rng: &rng)
                ))
        }
        fcPrelim = [
            Linear(store, "\(p).FC.0", fin: fcIn, fout: d, bias: false, rng: &rng),
            Linear(store, "\(p).FC.2", fin: d, fout: d, bias: false, rng: &rng),
        ]
        up = [
            (
                Conv(
                    store, "\(p).UpBlock2.2", cin: d, cout: 2 * c, kernel: 3, padding: 1, mode: .reflect, bias: false,
                    rng: &rng),
                ILN(store, "\(p).UpBlock2.3", channels: 2 * c)
            ),
            (
                Conv(
                    store, "\(p).UpBlock2.7", cin: 2 * c, cout: c, kernel: 3, padding: 1, mode: .reflect, bias: false,
                    rng: &rng),
                ILN(store, "\(p).UpBlock2.8", channels: c)
            ),
        ]
        output = Conv(
            store, "\(p).UpBlock2.11", cin: c, cout: 3, kernel: 7, padding: 3, mode: .reflect, bias: false, rng: &rng)
        gamma = gammaBeta.0
        beta = gammaBeta.1
        decoderBlocks = dec
        encoderBlocks = enc
        fc = fcPrelim
    }

    /// Translates x: [N, 3, H, W] in [-1, 1]. The full (non-light) model needs H = W = imageSize.
    public func callAsFunction(_ t: Tape, _ input: Var) -> GeneratorOutput {
        let s = input.shape
        precondition(s.count == 4 && s[1] == 3, "generator expects [N, 3, H, W], got \(s)")
        precondition(
            config.light || (s[2] == config.imageSize && s[3] == config.imageSize),
            "full generator needs \(config.imageSize)x\(config.imageSize) input, got \(s[2])x\(s[3])")
        var x = input
        for conv in down { x = t.relu(t.instanceNorm(conv(t, x))) }
        for (c1, c2) in encoderBlocks {
            x = t.add(x, t.instanceNorm(c2(t, t.relu(t.instanceNorm(c1(t, x))))))
        }
        let (cam, camLogit) = classActivation(t, x, gap: t.param(gapFC.weight), gmp: t.param(gmpFC.weight))
        x = t.relu(conv1x1(t, cam))
        let heatmap = t.sumChannels(x)
        let n = x.shape[0]
        var h = config.light ? t.globalAvgPool(x) : t.reshape(x, [n, x.value.count / n])
        for (i, layer) in fc.enumerated() { h = t.relu(layer(t, h, lowRank: i == 0 ? fcLowRank : nil)) }
        let g = gamma(t, h)
        let b = beta(t, h)
        for (c1, n1, c2, n2) in decoderBlocks {
            let y = t.relu(n1(t, c1(t, x), gamma: g, beta: b))
            x = t.add(x, n2(t, c2(t, y), gamma: g, beta: b))
        }
        for (conv, norm) in up { x = t.relu(norm(t, conv(t, t.upsampleNearest2x(x)))) }
        return GeneratorOutput(image: t.tanh(output(t, x)), camLogit: camLogit, heatmap: heatmap)
    }
}

/// The CAM block shared by generator and discriminator (spec A.2 steps 1-4): logits from the average- and
/// max-pooled features x [N, C, H, W] through `gap`/`gmp` ([1, C], no bias), and x re-weighted channel-wise
/// by `gapFeature`/`gmpFeature` (the same weights, except in the discriminator's raw-weight mode), concatenated.
/// - Returns: features [N, 2C, H, W] and logits [N, 2].
func classActivation(
    _ t: Tape, _ x: Var, gap: Var, gmp: Var, gapFeature: Var? = nil, gmpFeature: Var? = nil
)
    -> (features: Var, logit: Var)
{
    let c = x.shape[1]
    let gapLogit = t.linear(t.globalAvgPool(x), gap)
    let gmpLogit = t.linear(t.globalMaxPool(x), gmp)
    let gapFeat = t.mul(x, t.reshape(gapFeature ?? gap, [1, c, 1, 1]))
    let gmpFeat = t.mul(x, t.reshape(gmpFeature ?? gmp, [1, c, 1, 1]))
    return (t.concatChannels([gapFeat, gmpFeat]), t.concatChannels([gapLogit, gmpLogit]))
}
