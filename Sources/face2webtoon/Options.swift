import ArgumentParser
import Engine
import Foundation
import Training
import UGATIT

/// The generator's gamma/beta MLP input (spec A.3): the pooled bottleneck (light) or the whole map (full).
enum GeneratorKind: String, EnumerableFlag {
    case light, full

    static func help(for value: GeneratorKind) -> ArgumentHelp? {
        switch value {
        case .light:
            return "Light generator: the gamma/beta MLP reads the global-average-pooled bottleneck (the default)."
        case .full:
            return
                "Full generator: the MLP reads the whole bottleneck map (the official default; ~270M parameters at 256/64)."
        }
    }
}

/// Architecture options shared by `train`, `bench train` and `bench scaling`, with one set of defaults. An option
/// left out takes the value of the checkpoint being resumed (when there is one), else the default.
struct ModelOptions: ParsableArguments {
    static let defaultImageSize = 96, defaultDemoImageSize = 64, defaultCh = 16, defaultBlocks = 4

    @Option(
        name: .customLong("img-size"),
        help:
            "Image side S in pixels (multiple of 4). Default \(defaultImageSize) (\(defaultDemoImageSize) for train --demo)."
    )
    var imgSize: Int?
    @Option(help: "Base channels (ngf = ndf). Default \(defaultCh).") var ch: Int?
    @Option(
        name: .customLong("n-res"), help: "Residual blocks in the encoder and in the decoder. Default \(defaultBlocks)."
    ) var nRes: Int?
    @Flag var generator: GeneratorKind?
    @Option(
        name: .customLong("global-layers"),
        help: "Global discriminator depth L (default: 7 at 256, see docs/training.md).")
    var globalLayers: Int?
    @Option(name: .customLong("local-layers"), help: "Local discriminator depth L (default: 5 at 256).")
    var localLayers: Int?
    @Flag(
        name: .customLong("d-cam-raw-weight"), inversion: .prefixedNo,
        help: "Discriminator CAM re-weights with weight_orig as UGATIT-pytorch does (default: W/σ).")
    var dCamRawWeight: Bool?

    /// The configuration: given options, else `saved`'s values, else the defaults.
    /// - Throws: `ValidationError` naming each option whose value conflicts with `saved` (a resumed checkpoint).
    func config(defaultSize: Int, saved: ModelConfig? = nil) throws -> ModelConfig {
        let size = imgSize ?? saved?.imageSize ?? defaultSize
        // the depth rule depends on the size: a saved depth stands only where the size is the saved one
        let keepDepths = saved != nil && size == saved!.imageSize
        var c = ModelConfig(
            imageSize: size, ch: ch ?? saved?.ch ?? Self.defaultCh, blocks: nRes ?? saved?.blocks ?? Self.defaultBlocks,
            light: generator.map { $0 == .light } ?? saved?.light ?? true,
            globalLayers: globalLayers ?? (keepDepths ? saved?.globalLayers : nil),
            localLayers: localLayers ?? (keepDepths ? saved?.localLayers : nil),
            camUsesRawWeight: dCamRawWeight ?? saved?.camUsesRawWeight ?? false)
        if let saved {
            c.groups = saved.groups
            c.groupHeadsOnBothSides = saved.groupHeadsOnBothSides
            let differences = ModelConfig.differences(saved, c)
            if !differences.isEmpty {
                throw ValidationError(
                    "the options differ from the checkpoint's model (leave them out to take the checkpoint's):\n  "
                        + differences.joined(separator: "\n  "))
            }
        }
        return c
    }

    /// Ranges of the size options (the model's own rules, e.g. multiples of 4, are checked by `ModelConfig.problems`).
    func check(_ c: inout OptionChecks) {
        c.int("--img-size", imgSize, 8...4096)
        c.int("--ch", ch, 1...1024)
        c.int("--n-res", nRes, 0...64)
        c.int("--global-layers", globalLayers, 3...16)
        c.int("--local-layers", localLayers, 3...16)
    }
}

/// Range checks of numeric options before anything is read, drawn or allocated: each value must be finite and in
/// its range, and every problem is reported at once.
struct OptionChecks {
    private(set) var problems: [String] = []

    mutating func int(_ name: String, _ v: Int?, _ range: ClosedRange<Int>) {
        if let v, !range.contains(v) {
            problems.append("\(name) \(v): must be in \(range.lowerBound)...\(range.upperBound)")
        }
    }

    mutating func real<T: BinaryFloatingPoint>(
        _ name: String, _ v: T?, _ range: ClosedRange<T>, open lower: Bool = false
    ) {
        guard let v else { return }
        let bounds = "\(lower ? "(" : "[")\(range.lowerBound), \(range.upperBound)]"
        if !v.isFinite {
            problems.append("\(name) \(v): must be a finite number in \(bounds)")
        } else if !range.contains(v) || (lower && v == range.lowerBound) {
            problems.append("\(name) \(v): must be in \(bounds)")
        }
    }

    /// - Throws: `ValidationError` listing every problem.
    func throwIfAny() throws {
        if !problems.isEmpty { throw ValidationError(problems.joined(separator: "\n")) }
    }
}

/// Process options shared by the commands that compute.
struct RunOptions: ParsableArguments {
    @Option(
        help:
            "Compute threads per process (OpenBLAS and the engine's loops). Default: the cores divided by the ranks on this host."
    )
    var threads: Int?

    func validate() throws {
        if let t = threads, !(1...1024).contains(t) { throw ValidationError("--threads \(t): expected 1...1024") }
    }

    func apply() {
        // under mpirun, share the host's cores among its ranks (OMPI_COMM_WORLD_LOCAL_SIZE ranks here)
        let local = ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init) ?? 1
        Runtime.configure(threads: threads ?? max(1, ProcessInfo.processInfo.activeProcessorCount / max(local, 1)))
    }
}

/// The convolution algorithm switches shared by `bench train` and `bench ops`.
struct ConvOptions: ParsableArguments {
    @Flag(
        name: .customLong("no-winograd"),
        help: "Run 3x3 stride-1 convs by im2col instead of Winograd, for comparison.")
    var noWinograd = false

    @Option(
        name: .customLong("winograd-tile"),
        help: "Winograd output tile: 2 for F(2x2,3x3), 4 for F(4x4,3x3), auto for 4 on outputs of 32x32 or more.")
    var winogradTile = "auto"

    func validate() throws {
        guard ["auto", "2", "4"].contains(winogradTile) else {
            throw ValidationError("--winograd-tile must be auto, 2 or 4, not '\(winogradTile)'")
        }
    }

    /// Sets `ConvAlgorithms` and returns the conv3x3= line the benches print.
    func apply() -> String {
        ConvAlgorithms.winograd = !noWinograd
        ConvAlgorithms.winogradTile = Int(winogradTile)
        return noWinograd ? "conv3x3=im2col" : "conv3x3=winograd winograd_tile=\(winogradTile)"
    }
}

/// How gradients travel between ranks: the options shared by `train`, `bench train` and `bench scaling`.
struct ExchangeOptions: ParsableArguments {
    @Option(
        name: .customLong("fc-exchange"),
        help: ArgumentHelp(
            "How the generators' FC.0 weight gradients travel between ranks: dense (in the all-reduce), lowrank "
                + "(all-gather of FC.0's inputs and output gradients: the same sum, far fewer bytes for --full), or "
                + "auto (lowrank for --full when it moves fewer bytes).",
            valueName: "auto|dense|lowrank"))
    var fcExchange: FCExchange = .auto
    @Flag(
        name: .customLong("no-overlap"),
        help: ArgumentHelp(
            "All-reduce the gradients after each backward pass instead of bucket by bucket while it runs (and behind "
                + "the next step's D loss on real images); the results are the same floats."))
    var noOverlap = false
    @Option(
        name: .customLong("grad-wire"),
        help: ArgumentHelp(
            "The gradients' format in the all-reduce: fp32, or bf16 (half the bytes; sums in float32 rounded to "
                + "bfloat16; docs/distributed.md §7.3 has its effect on the losses).",
            valueName: "fp32|bf16"))
    var gradWire: GradWire = .fp32
    @Flag(
        name: .customLong("shard-optimizer"),
        help: ArgumentHelp(
            "ZeRO stage 1: each rank keeps the Adam moments of 1/N of the parameters (gradients reduce-scattered, "
                + "parameters all-gathered: the bytes of an all-reduce). FC.0's moments stay whole under the "
                + "low-rank exchange (docs/distributed.md §10)."))
    var shardOptimizer = false
    @Option(name: .customLong("bucket-mb"), help: "Gradient all-reduce bucket size in MB (under mpirun).")
    var bucketMB = 25.0

    /// The same options as command-line arguments (for the runs `bench scaling` launches).
    var arguments: [String] {
        ["--fc-exchange", fcExchange.rawValue, "--grad-wire", gradWire.rawValue] + (noOverlap ? ["--no-overlap"] : [])
            + (shardOptimizer ? ["--shard-optimizer"] : []) + ["--bucket-mb", "\(bucketMB)"]
    }
}

extension FCExchange: ExpressibleByArgument {}
extension GradWire: ExpressibleByArgument {}

/// The path the kernel would reach, for comparing paths that may not exist yet: its longest existing prefix resolved
/// by realpath(3) (links first, then "..", as the kernel does: `link/..` is the link target's parent), the rest
/// appended with "." and ".." taken as text.
func resolvedPath(_ path: String) -> String {
    let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    var parts = absolute.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
    var rest: [String] = []
    while true {
        if let real = realpath("/" + parts.joined(separator: "/"), nil) {
            defer { free(real) }
            var out = String(cString: real).split(separator: "/").map(String.init)
            for p in rest where p != "." {
                if p == ".." { _ = out.popLast() } else { out.append(p) }
            }
            return "/" + out.joined(separator: "/")
        }
        guard let last = parts.popLast() else { return absolute }  // nothing exists, not even "/"
        rest.insert(last, at: 0)
    }
}

/// Refuses an output path that is the input it is made from, or lies inside it (a checkpoint root or step folder):
/// writing it would destroy what is being read.
/// - Throws: `ValidationError` (64) naming both.
func refuseOverwriting(output: String, input: String, what: String) throws {
    let (o, i) = (resolvedPath(output), resolvedPath(input))
    // output.tmp too: the atomic writers truncate it first (an input named x.tmp, written to x)
    if o == i || o.hasPrefix(i + "/") || resolvedPath(output + ".tmp") == i {
        throw ValidationError("-o \(output): would overwrite the \(what) it is made from (\(input))")
    }
}
