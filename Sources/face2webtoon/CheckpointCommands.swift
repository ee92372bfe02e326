import ArgumentParser
import Checkpoint
import Distributed
import Foundation
import Training

/// `face2webtoon merge CKPT -o FILE`: one self-contained, checksummed file from a sharded checkpoint.
struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Merge a sharded checkpoint (root or step directory) into one checksummed file.",
        discussion: "Refuses a wrong shard count, a bad checksum or an unknown schema; memory stays bounded. "
            + "train --resume, translate and inspect accept the merged file.")
    @Argument(help: "Checkpoint root (follows LATEST) or step directory.") var checkpoint: String
    @Option(name: .shortAndLong, help: "Merged file to write.") var output: String

    func run() throws {
        let m = try Checkpoints.merge(from: checkpoint, to: output)
        print(
            "[face2webtoon] merged step \(m.step) (\(m.worldSize) shard\(m.worldSize == 1 ? "" : "s"), \(m.tensors.count) tensors) into \(output)"
        )
    }
}

/// `face2webtoon export CKPT --format safetensors -o FILE`: generator weights with the official keys.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Export weights with the official UGATIT-pytorch keys (genA2B.DownBlock.1.weight, ...) as safetensors.",
        discussion: "Load them in PyTorch with Scripts/load_exported.py.")
    enum Format: String, ExpressibleByArgument { case safetensors }
    @Argument(help: "Checkpoint: root, step directory or merged file.") var checkpoint: String
    @Option(help: "Output format.") var format: Format = .safetensors
    @Option(name: .shortAndLong, help: "File to write.") var output: String
    @Flag(name: .customLong("with-discriminators"), help: "Also export the discriminators (and spectral-norm buffers).")
    var withDiscriminators = false

    func run() throws {
        let names = try Checkpoints.exportSafetensors(
            from: checkpoint, to: output,
            include: { name in
                !name.hasPrefix("optim.") && (name.hasPrefix("gen") || withDiscriminators)
            }, metadata: ["source": checkpoint, "format": "pt"])
        print("[face2webtoon] exported \(names.count) tensors to \(output)")
    }
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
        if json {
            print(try s.json())
            return
        }
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
        if s.integrity != "ok" && s.integrity != "not verified" { throw ExitCode(2) }
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
