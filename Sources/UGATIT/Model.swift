import Engine

/// The architecture of the whole system (spec A): two generators and four discriminators.
public struct ModelConfig: Codable, Equatable, Sendable {
    public var imageSize: Int
    public var ch: Int
    public var blocks: Int
    public var light: Bool
    public var globalLayers: Int
    public var localLayers: Int
    /// Group classifier heads (Face2Webtoon, spec C.2): number of groups, or nil for plain U-GAT-IT.
    public var groups: Int?
    /// Whether the A-side discriminators get group heads too (default: B side only, as Face2Webtoon uses them).
    public var groupHeadsOnBothSides: Bool
    /// See `DiscriminatorConfig.camUsesRawWeight`.
    public var camUsesRawWeight: Bool

    /// Defaults: the official U-GAT-IT at 256 (global D 7 layers, local D 5); other sizes use
    /// `DiscriminatorConfig.defaultLayers`.
    public init(
        imageSize: Int = 256, ch: Int = 64, blocks: Int = 4, light: Bool = true,
        globalLayers: Int? = nil, localLayers: Int? = nil, groups: Int? = nil,
        groupHeadsOnBothSides: Bool = false, camUsesRawWeight: Bool = false
    ) {
        self.imageSize = imageSize
        self.ch = ch
        self.blocks = blocks
        self.light = light
        self.globalLayers = globalLayers ?? DiscriminatorConfig.defaultLayers(imageSize: imageSize, minSide: 8)
        self.localLayers = localLayers ?? DiscriminatorConfig.defaultLayers(imageSize: imageSize, minSide: 32)
        self.groups = groups
        self.groupHeadsOnBothSides = groupHeadsOnBothSides
        self.camUsesRawWeight = camUsesRawWeight
    }

    public var generator: GeneratorConfig {
        GeneratorConfig(ngf: ch, blocks: blocks, imageSize: imageSize, light: light)
    }

    public func discriminator(global: Bool, domainB: Bool) -> DiscriminatorConfig {
        DiscriminatorConfig(
            ndf: ch, layers: global ? globalLayers : localLayers,
            groups: (domainB || groupHeadsOnBothSides) ? groups : nil, camUsesRawWeight: camUsesRawWeight)
    }

    /// Problems that make this configuration impossible, as messages for the user (empty when valid).
    public func problems() -> [String] {
        var out: [String] = []
        if imageSize < 8 || imageSize % 4 != 0 {
            out.append("img size \(imageSize) must be a multiple of 4 and at least 8")
        }
        if ch < 1 { out.append("ch must be at least 1") }
        if blocks < 0 { out.append("n-res must be ≥ 0") }
        for (name, l) in [("global", globalLayers), ("local", localLayers)] {
            if l < 3 {
                out.append("\(name) discriminator needs at least 3 layers, got \(l)")
            } else if DiscriminatorConfig(ndf: ch, layers: l).logitSide(imageSize: imageSize) == nil {
                let rule = DiscriminatorConfig.defaultLayers(imageSize: imageSize, minSide: name == "global" ? 8 : 32)
                out.append(
                    "a \(name) discriminator with \(l) layers cannot judge \(imageSize)x\(imageSize) images "
                        + "(each of its \(l - 2) stride-2 convs halves the side; the last map must keep ≥ 3 pixels); "
                        + "use at most \(maxLayers(imageSize)) layers, e.g. the default \(rule)")
            }
        }
        if let g = groups, g < 2 { out.append("groups must be at least 2, got \(g)") }
        return out
    }

    private func maxLayers(_ s: Int) -> Int {
        var l = 3
        while DiscriminatorConfig(ndf: 1, layers: l + 1).logitSide(imageSize: s) != nil { l += 1 }
        return l
    }
}

/// The six networks with their parameters in two stores: generators (`genA2B`, `genB2A`) and
/// discriminators (`disGA`, `disGB`, `disLA`, `disLB`), so each phase's gradients are one contiguous arena.
public final class UGATITModel {
    public let config: ModelConfig
    public let generators = ParameterStore()
    public let discriminators = ParameterStore()
    public let genA2B: ResnetGenerator, genB2A: ResnetGenerator
    public let disGA: Discriminator, disGB: Discriminator, disLA: Discriminator, disLB: Discriminator

    /// Builds and initialises all networks (PyTorch default initialisation) from `seed`.
    public init(config: ModelConfig, seed: UInt64) {
        let problems = config.problems()
        precondition(problems.isEmpty, problems.joined(separator: "; "))
        self.config = config
        var rng = RandomGenerator(seed: seed, stream: [0x6D6F_6465_6C])  // "model"
        genA2B = ResnetGenerator(generators, prefix: "genA2B", config: config.generator, rng: &rng)
        genB2A = ResnetGenerator(generators, prefix: "genB2A", config: config.generator, rng: &rng)
        disGA = Discriminator(
            discriminators, prefix: "disGA", config: config.discriminator(global: true, domainB: false), rng: &rng)
        disGB = Discriminator(
            discriminators, prefix: "disGB", config: config.discriminator(global: true, domainB: true), rng: &rng)
        disLA = Discriminator(
            discriminators, prefix: "disLA", config: config.discriminator(global: false, domainB: false), rng: &rng)
        disLB = Discriminator(
            discriminators, prefix: "disLB", config: config.discriminator(global: false, domainB: true), rng: &rng)
        generators.finalize()
        discriminators.finalize()
    }

    /// Every parameter and buffer of both generators, then of the four discriminators, by state_dict name, in arena
    /// order: the one list that checkpoints, imports, rank agreement and initialisation walk.
    public var namedTensors: [(name: String, value: Tensor)] {
        [generators, discriminators].flatMap { s in
            s.parameters.map { ($0.name, $0.value) } + s.buffers.map { ($0.name, $0.value) }
        }
    }

    /// Every rho (ILN and adaILN) of both generators: clamped to [0, 1] after each generator step (RhoClipper).
    public var rhoParameters: [Parameter] { generators.parameters.filter { $0.name.hasSuffix(".rho") } }

    public func clipRho() { clipRho(generators.parameters) }

    /// Clamps the rho among `parameters` to [0, 1].
    public func clipRho(_ parameters: [Parameter]) {
        for p in parameters where p.name.hasSuffix(".rho") {
            for i in 0..<p.value.count { p.value[i] = min(max(p.value[i], 0), 1) }
        }
    }
}

extension ModelConfig {
    /// "field: a → b" for each field that differs between two configurations (for mismatch messages).
    public static func differences(_ a: ModelConfig, _ b: ModelConfig) -> [String] {
        func text<T>(_ v: T?) -> String { v.map { "\($0)" } ?? "none" }
        let fields: [(String, String, String)] = [
            ("img size", "\(a.imageSize)", "\(b.imageSize)"), ("ch", "\(a.ch)", "\(b.ch)"),
            ("n-res", "\(a.blocks)", "\(b.blocks)"),
            ("generator", a.light ? "light" : "full", b.light ? "light" : "full"),
            ("global discriminator layers", "\(a.globalLayers)", "\(b.globalLayers)"),
            ("local discriminator layers", "\(a.localLayers)", "\(b.localLayers)"),
            ("group heads", text(a.groups), text(b.groups)),
            ("group heads on both sides", "\(a.groupHeadsOnBothSides)", "\(b.groupHeadsOnBothSides)"),
            ("D CAM raw weight", "\(a.camUsesRawWeight)", "\(b.camUsesRawWeight)"),
        ]
        return fields.filter { $0.1 != $0.2 }.map { "\($0.0): \($0.1) in the checkpoint, \($0.2) now" }
    }
}
