import Distributed
import Engine
import Foundation

/// Result of `Checkpoints.benchmark` on one rank. MB = 10^6 bytes of raw (uncompressed) tensor data.
public struct CheckpointBenchmark: Codable, Sendable {
    public var rank: Int, worldSize: Int
    public var level: Int, workers: Int, shuffle: Bool
    /// Raw bytes of the whole checkpoint, and of this rank's shard.
    public var rawBytes: Int, localRawBytes: Int
    public var storedBytes: Int
    /// Wall time of the collective save on this rank, and of writing its own shard (compress + write + fsync).
    public var saveSeconds: Double, localWriteSeconds: Double
    /// This rank's shard raw bytes / its shard write time.
    public var saveMBps: Double
    /// Time for this rank to open and read (decompress + verify) every tensor, and raw MB/s of that.
    public var loadSeconds: Double, loadMBps: Double
    /// CPU seconds (user + system, all threads of this process) spent in the save and in the load: with
    /// other jobs on the machine, raw MB per CPU second is steadier than MB/s of wall time.
    public var saveCPUSeconds: Double, loadCPUSeconds: Double
    /// Raw / stored bytes.
    public var compressionRatio: Double
}

extension Checkpoints {
    /// Saves and reloads `megabytes` MB of float32 weights (N(0, 0.02), split over `tensorCount` tensors, the
    /// same on every rank) under `directory/checkpoint-bench`, then deletes it. Collective.
    /// - Throws: save or read errors, or `.invalidArgument` if a reloaded tensor differs from what was saved.
    public static func benchmark(
        directory: String, megabytes: Int = 256, tensorCount: Int = 16, options: SaveOptions = SaveOptions(),
        comm: Communicator
    ) throws -> CheckpointBenchmark {
        precondition(megabytes > 0 && tensorCount > 0, "benchmark: \(megabytes) MB in \(tensorCount) tensors")
        let root = FileSystem.join(directory, "checkpoint-bench")
        let per = megabytes * 1_000_000 / 4 / tensorCount
        var rng = RandomGenerator(seed: 2024)
        let weights = (0..<tensorCount).map {
            CheckpointTensor("bench.\($0).weight", rng.normalTensor([per], std: 0.02))
        }
        if comm.rank == 0, FileSystem.kind(root) != .missing { try FileSystem.remove(root) }
        try comm.barrier()

        let t0 = Date()
        let c0 = OpBenchmarks.processCPUSeconds()
        let saved = try save(
            root: root, step: 1, tensors: weights,
            manifestFields: ManifestFields(programVersion: "bench", config: "{}", imagesSeen: 0),
            comm: comm, options: options)
        let saveSeconds = Date().timeIntervalSince(t0)
        let saveCPU = OpBenchmarks.processCPUSeconds() - c0
        try comm.barrier()

        let t1 = Date()
        let c1 = OpBenchmarks.processCPUSeconds()
        let reader = try open(root)
        for w in weights {
            let got = try reader.tensor(w.name)
            guard case .tensor(let orig) = w.storage, memcmp(got.data, orig.data, got.count * 4) == 0 else {
                throw CheckpointError.invalidArgument("benchmark: \(w.name) reloaded differently")
            }
        }
        let loadSeconds = Date().timeIntervalSince(t1)
        let loadCPU = OpBenchmarks.processCPUSeconds() - c1
        try comm.barrier()
        if comm.rank == 0 { try FileSystem.remove(root) }

        return CheckpointBenchmark(
            rank: comm.rank, worldSize: comm.worldSize, level: options.level, workers: options.workers,
            shuffle: options.shuffle,
            rawBytes: saved.rawBytes, localRawBytes: saved.localRawBytes, storedBytes: saved.storedBytes,
            saveSeconds: saveSeconds, localWriteSeconds: saved.localSeconds,
            saveMBps: Double(saved.localRawBytes) / 1e6 / max(saved.localSeconds, 1e-9),
            loadSeconds: loadSeconds, loadMBps: Double(saved.rawBytes) / 1e6 / max(loadSeconds, 1e-9),
            saveCPUSeconds: saveCPU, loadCPUSeconds: loadCPU,
            compressionRatio: Double(saved.rawBytes) / Double(max(saved.storedBytes, 1)))
    }
}
