import Engine

/// Discriminator hyper-parameters (spec A.3). `layers` = L: L − 2 stride-2 convs then one stride-1 conv.
public struct DiscriminatorConfig: Codable, Equatable, Sendable {
    public var ndf: Int
    public var layers: Int
    /// Number of groups of the Face2Webtoon group classifier head (spec C.2), or nil for none.
    public var groups: Int?
    /// CAM channel re-weighting: the spectrally normalised weight W/σ (what the paper means, default), or the raw
    /// `weight_orig` as UGATIT-pytorch does (spec G.19), for behaviour identical to imported PyTorch models.
    public var camUsesRawWeight: Bool

    public init(ndf: Int = 64, layers: Int, groups: Int? = nil, camUsesRawWeight: Bool = false) {
        self.ndf = ndf
        self.layers = layers
        self.groups = groups
        self.camUsesRawWeight = camUsesRawWeight
    }

    /// Channels of the last trunk conv, K = ndf·2^(L−2).
    public var width: Int { ndf << (layers - 2) }

    /// Side of the patch-logit map for an S×S input, or nil if the input is too small (spec A.3 size rule:
    /// a stride-2 conv halves, the stride-1 conv and the head each remove 1; reflect padding needs side ≥ 2).
    public func logitSide(imageSize s: Int) -> Int? {
        var n = s
        for _ in 0..<(layers - 2) {
            guard n >= 2 else { return nil }
            n = (n + 2 - 4) / 2 + 1
        }
        guard n >= 2 else { return nil }
        let cam = n - 1  // stride-1 conv
        guard cam >= 2 else { return nil }  // head: reflect pad 1 needs side ≥ 2
        return cam - 1
    }

    /// The documented depth rule for img sizes other than 256: the largest L whose trunk output side
    /// S/2^(L−2) is at least `minSide` (8 for the global D, 32 for the local D), never below 3.
    /// Gives the original's 7 and 5 at 256, 6 and 4 at 128, 5 and 3 at 96 and 64.
    public static func defaultLayers(imageSize s: Int, minSide: Int) -> Int {
        var l = 3
        while s >> (l - 1) >= minSide { l += 1 }
        return l
    }

    /// Closed form of the parameter count (spec A.5), plus the group head if any.
    public var parameterCount: Int {
        let c = ndf
        let l = layers
        let k = width
        let trunk = 49 * c + 32 * c * c * ((1 << (2 * (l - 3))) - 1) / 3 + c * ((1 << (l - 2)) - 2)
        return trunk + 10 * k * k + 20 * k + (groups.map { $0 * k + $0 } ?? 0)
    }
}

/// The outputs of one discriminator call.
public struct DiscriminatorOutput {
    /// Patch logits [N, 1, h, w] (LSGAN: 1 real, 0 fake).
    public let logit: Var
    /// CAM logits [N, 2].
    public let camLogit: Var
    /// [N, 1, h + 1, w + 1] channel sum of the CAM features.
    public let heatmap: Var
    /// Group logits [N, groups] if the discriminator has a group head.
    public let groupLogit: Var?
}

/// U-GAT-IT PatchGAN discriminator with CAM (spec A.3), spectral norm on every conv and the CAM linears,
/// LeakyReLU 0.2, and optionally Face2Webtoon's group classifier (`group_classfier`, sic, spec C.2).
public final class Discriminator {
    public let config: DiscriminatorConfig
    let trunk: [SNConv]  // model.1, model.4, ...
    let gapFC: SNLinear, gmpFC: SNLinear
    let conv1x1: Conv
    let head: SNConv  // conv
    let groupHead: SNLinear?  // group_classfier

    public init(_ store: ParameterStore, prefix p: String, config: DiscriminatorConfig, rng: inout RandomGenerator) {
        precondition(config.layers >= 3, "discriminator needs at least 3 layers, got \(config.layers)")
        self.config = config
        let c = config.ndf
        let k = config.width
        gapFC = SNLinear(store, "\(p).gap_fc", fin: k, fout: 1, bias: false, rng: &rng)
        gmpFC = SNLinear(store, "\(p).gmp_fc", fin: k, fout: 1, bias: false, rng: &rng)
        conv1x1 = Conv(store, "\(p).conv1x1", cin: 2 * k, cout: k, kernel: 1, bias: true, rng: &rng)
        head = SNConv(
            store, "\(p).conv", cin: k, cout: 1, kernel: 4, stride: 1, padding: 1, mode: .reflect, bias: false,
            rng: &rng)
        groupHead = config.groups.map {
            SNLinear(store, "\(p).group_classfier", fin: k, fout: $0, bias: true, rng: &rng)
        }
        var convs: [SNConv] = []
        var cin = 3
        var cout = c
        for i in 0..<(config.layers - 1) {
            let strideTwo = i < config.layers - 2
            convs.append(
                SNConv(
                    store, "\(p).model.\(3 * i + 1)", cin: cin, cout: cout, kernel: 4, stride: strideTwo ? 2 : 1,
                    padding: 1, mode: .reflect, bias: true, rng: &rng))
            cin = cout
            cout *= 2
        }
        trunk = convs
    }

    /// Judges x: [N, 3, S, S]. Each call in a training-mode tape advances every spectral-norm u, v once.
    public func callAsFunction(_ t: Tape, _ input: Var) -> DiscriminatorOutput {
        precondition(
            config.logitSide(imageSize: min(input.shape[2], input.shape[3])) != nil,
            "discriminator with \(config.layers) layers cannot judge \(input.shape[2])x\(input.shape[3]) images")
        var x = input
        for conv in trunk { x = t.leakyRelu(conv(t, x), slope: 0.2) }
        let gapW = gapFC.weight.normalized(t)
        let gmpW = gmpFC.weight.normalized(t)
        let raw = config.camUsesRawWeight
        let (features, camLogit) = classActivation(
            t, x, gap: gapW, gmp: gmpW,
            gapFeature: raw ? t.param(gapFC.weight.weightOrig) : nil,
            gmpFeature: raw ? t.param(gmpFC.weight.weightOrig) : nil)
        x = t.leakyRelu(conv1x1(t, features), slope: 0.2)
        let heatmap = t.sumChannels(x)
        let group = groupHead.map { $0(t, t.globalAvgPool(x)) }
        return DiscriminatorOutput(
            logit: head(t, x), camLogit: camLogit,
            heatmap: heatmap, groupLogit: group)
    }
}
