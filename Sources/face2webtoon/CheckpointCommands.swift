import ArgumentParser
import Checkpoint
import Distributed
import Foundation
import Monitoring
import ONNXExport
import Training
import UGATIT

/// `face2webtoon merge CKPT -o FILE`: one self-contained, checksummed file from a sharded checkpoint.
struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Merge a sharded checkpoint (root or step directory) into one checksummed file.",
        discussion: "Refuses a wrong shard count, a bad checksum or an unknown schema; memory stays bounded. "
            + "train --resume, translate and inspect accept the merged file.")
    @Argument(help: "Checkpoint root (follows LATEST) or step directory.") var checkpoint: String
    @Option(name: .shortAndLong, help: "Merged file to write.") var output: String

    func validate() throws { try refuseOverwriting(output: output, input: checkpoint, what: "checkpoint") }

    func run() throws {
        let line = ByteProgress(label: "merge")
        let m = try Checkpoints.merge(from: checkpoint, to: output, progress: line.update)
        line.finish()
        print(
            "[face2webtoon] merged step \(m.step) (\(m.worldSize) shard\(m.worldSize == 1 ? "" : "s"), \(m.tensors.count) tensors) into \(output)"
        )
    }
}

/// `face2webtoon export CKPT --format safetensors|onnx -o FILE`: generator weights with the official keys, or one
/// generator as an ONNX model.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Export weights with the official UGATIT-pytorch keys (genA2B.DownBlock.1.weight, ...) as safetensors, "
            + "or one generator as an ONNX model.",
        discussion: """
            safetensors: load them in PyTorch with Scripts/load_exported.py.
            onnx: opset \(GeneratorONNX.opset); input `image` [N, 3, S, S] (RGB after the EXIF orientation, pixel v as \
            v/127.5 - 1, the image resized to S x S with Pillow's bilinear filter), outputs `translation` [N, 3, S, S] in [-1, 1] and \
            `cam_heatmap` [N, 1, S/4, S/4]; the preprocessing is also in the model's metadata. Checked against \
            translate with onnxruntime by Scripts/checks/check_onnx.py.
            """)
    enum Format: String, ExpressibleByArgument, CaseIterable { case safetensors, onnx }
    @Argument(help: "Checkpoint: root, step directory or merged file.") var checkpoint: String
    @Option(help: "Output format (default: onnx for an output ending in .onnx, else safetensors).") var format: Format?
    @Option(name: .shortAndLong, help: "File to write.") var output: String
    @Flag(name: .customLong("with-discriminators"), help: "Also export the discriminators (and spectral-norm buffers).")
    var withDiscriminators = false
    @Option(help: "onnx: the generator to export, A2B (face to webtoon, the default) or B2A.")
    var direction: Translate.Direction?
    @Flag(name: .customLong("no-heatmap"), help: "onnx: leave out the cam_heatmap output.") var noHeatmap = false

    /// `--format`, or what the output's extension says.
    var resolvedFormat: Format { format ?? (output.lowercased().hasSuffix(".onnx") ? .onnx : .safetensors) }

    func validate() throws {
        try refuseOverwriting(output: output, input: checkpoint, what: "checkpoint")
        switch resolvedFormat {
        case .onnx where withDiscriminators:
            throw ValidationError("--with-discriminators: the ONNX export holds one generator only")
        case .safetensors where direction != nil || noHeatmap:
            throw ValidationError(
                "\(direction != nil ? "--direction" : "--no-heatmap") applies to --format onnx; the safetensors "
                    + "export holds both generators' weights")
        default: break
        }
    }

    func run() throws {
        switch resolvedFormat {
        case .safetensors:
            let line = ByteProgress(label: "export")
            let names = try Checkpoints.exportSafetensors(
                from: checkpoint, to: output,
                include: { name in
                    !name.hasPrefix("optim.") && (name.hasPrefix("gen") || withDiscriminators)
                }, metadata: ["source": checkpoint, "format": "pt"], progress: line.update)
            line.finish()
            print("[face2webtoon] exported \(names.count) tensors to \(output)")
        case .onnx:
            try exportONNX()
        }
    }

    func exportONNX() throws {
        let (config, _) = try TrainingCheckpoint.peek(path: checkpoint)
        let model = UGATITModel(config: config.model, seed: 0)
        let state = try TrainingCheckpoint.load(path: checkpoint, into: model, step: nil)
        let direction = direction ?? .a2b
        let g = direction == .a2b ? model.genA2B : model.genB2A
        let s = config.model.imageSize
        let graph = GeneratorONNX.graph(g, heatmap: !noHeatmap)
        let io = GeneratorONNX.signature(g, heatmap: !noHeatmap)
        let m = config.model
        let metadata: [(String, String)] = [
            ("face2webtoon.direction", direction.rawValue),
            ("face2webtoon.image_size", "\(s)"),
            ("face2webtoon.input_range", "[-1, 1]"),
            (
                "face2webtoon.preprocessing",
                "RGB after the EXIF orientation (PIL.ImageOps.exif_transpose), resized to \(s)x\(s) (bilinear, "
                    + "Pillow's filter), NCHW float32, pixel v in 0..255 as (v / 255 - 0.5) / 0.5"
            ),
            ("face2webtoon.postprocessing", "pixel = clamp(round((y + 1) * 127.5), 0, 255)"),
            ("face2webtoon.model", "img \(s) ch \(m.ch) n_res \(m.blocks) \(m.light ? "light" : "full")"),
            ("face2webtoon.step", "\(state.step)"),
            ("face2webtoon.source", checkpoint),
        ]
        try graph.write(
            to: output, inputs: io.inputs, outputs: io.outputs, metadata: metadata,
            graphName: "gen\(direction.rawValue)", opset: GeneratorONNX.opset,
            docString: "U-GAT-IT generator \(direction.rawValue) exported by face2webtoon")
        print(
            "[face2webtoon] exported gen\(direction.rawValue) (\(m.light ? "light" : "full"), img \(s), step "
                + "\(state.step)) as ONNX opset \(GeneratorONNX.opset) to \(output)")
    }
}

/// Progress of a checkpoint copy in MB, created at the first report (the total is known only then).
final class ByteProgress {
    let label: String
    var line: ProgressLine?
    let start = Date()  // the line itself is made at the first report
    init(label: String) { self.label = label }

    func update(_ done: Int, _ total: Int) {
        let l = line ?? ProgressLine(label: label, total: total >> 20, unit: "MB", start: start)
        line = l
        l.update(done >> 20)
    }

    func finish() { line?.finish() }
}

/// `face2webtoon inspect CKPT [--json]`.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a checkpoint's configuration, step, world size, ADA strengths, tensors and integrity.")
    @Argument(help: "Checkpoint: root, step directory or merged file.") var checkpoint: String
    @Flag(help: "Print the summary as JSON.") var json = false
    @Flag(name: .customLong("no-verify"), help: "Skip reading every shard to check its checksums.") var noVerify = false

    func run() throws {
        let s = try Checkpoints.inspect(checkpoint, verify: !noVerify)
        if json { print(try s.json()) } else { try printSummary(s) }
        // a damaged checkpoint is an unusable one (exit 66, docs/exit-status.md), after its summary is printed
        if s.integrity != "ok" && s.integrity != "not verified" {
            throw TrainingError.checkpoint(path: checkpoint, reason: "integrity: \(s.integrity)")
        }
    }

    private func printSummary(_ s: CheckpointSummary) throws {
        let (config, state) = try TrainingCheckpoint.peek(path: checkpoint)
        let m = config.model
        print("checkpoint: \(s.location) (\(s.layout), schema \(s.schemaVersion), program \(s.programVersion))")
        print(
            "step \(s.step), images seen \(s.imagesSeen), saved by \(s.worldSize) rank\(s.worldSize == 1 ? "" : "s"), created \(s.created)"
        )
        print(
            "model: img \(m.imageSize) ch \(m.ch) n_res \(m.blocks) \(m.light ? "light" : "full"), D layers global \(m.globalLayers) "
                + "local \(m.localLayers)\(m.groups.map { ", \($0) groups" } ?? "")")
        if let ada = state.ada {
            print(String(format: "ADA: p_A %.6f, p_B %.6f (mode %@)", ada.p[0], ada.p[1], config.ada.mode.rawValue))
        }
        print(
            "tensors: \(s.tensors.count), \(s.rawBytes) bytes raw, \(s.shards.map(\.compressedBytes).reduce(0, +)) stored in \(s.shards.count) shard(s)"
        )
        for t in s.tensors { print("  \(t.name) \(t.dtype) \(t.shape) \(t.bytes) B shard \(t.shard)") }
        print("integrity: \(s.integrity)")
    }
}

/// `face2webtoon bench checkpoint`: save and load MB/s per rank and the compression ratio.
struct BenchCheckpoint: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Save and load speed of the sharded checkpoint store; prints key=value lines.")
    @Option(help: "Megabytes of float32 weights (N(0, 0.02)).") var megabytes = 256
    @Option(help: "zstd level.") var level = 1
    @Option(help: "zstd worker threads per rank.") var threads = 0
    @Option(help: "Directory for the temporary checkpoint.") var directory = NSTemporaryDirectory()

    func run() throws {
        let comm = try makeCommunicator()
        let b = try Checkpoints.benchmark(
            directory: directory, megabytes: megabytes, options: SaveOptions(level: level, workers: threads), comm: comm
        )
        if comm.rank == 0 {
            print("world_size=\(b.worldSize) level=\(b.level) threads=\(b.workers) shuffle=\(b.shuffle)")
            print("raw_mb=\(fmt(Double(b.rawBytes) / 1e6)) stored_mb=\(fmt(Double(b.storedBytes) / 1e6))")
            print("compression_ratio=\(fmt(b.compressionRatio))")
            print("load_mb_per_s_per_rank=\(fmt(b.loadMBps))")
            print("save_mb_per_s_per_rank=\(fmt(b.saveMBps))")
        }
        try comm.finalize()
    }
}
