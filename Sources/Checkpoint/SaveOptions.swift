/// The sharded, zstd-compressed checkpoint store. Entry points: `save`, `open`, `sweep`, `newestValid`,
/// `merge`, `exportSafetensors`, `inspect`, `benchmark`. Format: docs/checkpoint-format.md.
public enum Checkpoints {}

/// How `Checkpoints.save` compresses and what it keeps. Every rank must pass the same options.
public struct SaveOptions: Sendable {
    /// zstd level (1 = fastest; see docs/checkpoint-format.md for the measurements behind the default).
    public var level: Int
    /// zstd worker threads per rank (`ZSTD_c_nbWorkers`); 0 or 1 compresses on the calling thread (the file
    /// writes always run on a second thread). Default 0: with one rank per core (the mpirun default) extra
    /// threads only compete; use 2 for a single process on an otherwise idle 2-core machine.
    public var workers: Int
    /// Byte-plane shuffle each chunk before compressing (~10% smaller for float weights).
    public var shuffle: Bool
    /// Raw bytes per zstd frame (multiple of 8, 4 KiB ... 64 MiB): the unit of checksumming and reading.
    public var chunkBytes: Int
    /// Keep the newest `keepLast` complete checkpoints (nil: keep all) ...
    public var keepLast: Int?
    /// ... plus every step that is a multiple of `keepEvery`.
    public var keepEvery: Int?

    public init(
        level: Int = 1, workers: Int = 0, shuffle: Bool = true, chunkBytes: Int = 4 << 20,
        keepLast: Int? = nil, keepEvery: Int? = nil
    ) {
        self.level = level
        self.workers = workers
        self.shuffle = shuffle
        self.chunkBytes = chunkBytes
        self.keepLast = keepLast
        self.keepEvery = keepEvery
    }

    /// nil if usable, else why not.
    var problem: String? {
        if !(1...22).contains(level) { return "zstd level \(level) outside 1...22" }
        if !(0...64).contains(workers) { return "workers \(workers) outside 0...64" }
        if chunkBytes < 4096 || chunkBytes > Manifest.maxChunkBytes || chunkBytes % 8 != 0 {
            return "chunkBytes \(chunkBytes) outside 4096...\(Manifest.maxChunkBytes) or not a multiple of 8"
        }
        if let k = keepLast, k < 1 { return "keepLast \(k) < 1" }
        if let m = keepEvery, m < 1 { return "keepEvery \(m) < 1" }
        return nil
    }
}

/// Manifest fields the trainer supplies; only rank 0's copy is written.
public struct ManifestFields {
    public var programVersion: String
    /// The configuration JSON (opaque here).
    public var config: String
    public var imagesSeen: Int
    /// Free-form state; must be a JSON object (`.object`).
    public var state: JSONValue

    public init(programVersion: String, config: String, imagesSeen: Int, state: JSONValue = .object([:])) {
        self.programVersion = programVersion
        self.config = config
        self.imagesSeen = imagesSeen
        self.state = state
    }
}

/// What a successful save did; identical on every rank except the `local*` fields.
public struct SaveResult: Sendable {
    /// The new step directory.
    public let directory: String
    public let step: Int
    /// Raw (uncompressed) and stored bytes over all shards.
    public let rawBytes: Int
    public let storedBytes: Int
    /// This rank's shard: raw bytes, file bytes, and seconds to write it (compress + write + fsync).
    public let localRawBytes: Int
    public let localStoredBytes: Int
    public let localSeconds: Double
    /// Older step directories deleted by the retention policy.
    public let deleted: [String]
}
