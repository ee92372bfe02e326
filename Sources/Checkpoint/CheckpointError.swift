/// Everything that can go wrong saving, opening, verifying, merging or exporting a checkpoint.
/// Each case names the file (and where it applies the shard and tensor) so the message alone
/// says what to look at. `shard` is always the shard's index in the manifest (= the rank that wrote it).
public enum CheckpointError: Error, Equatable, CustomStringConvertible {
    /// Nothing has been saved at `path` yet (missing or empty root): the trainer starts fresh.
    case noCheckpoint(path: String)
    /// `path` exists but is neither a checkpoint root, a step directory nor a merged file.
    case notACheckpoint(path: String, reason: String)
    /// The root has step directories but no usable `LATEST` pointer (missing, malformed, or naming
    /// a directory that does not exist).
    case latestInvalid(root: String, reason: String)
    /// A step directory without `manifest.json`: its save never completed.
    case manifestMissing(directory: String)
    /// The manifest is truncated, not JSON, misses fields, or contradicts itself.
    case manifestCorrupt(path: String, reason: String)
    /// The manifest's schema version is not the one this program reads.
    case unsupportedSchema(path: String, found: Int, supported: Int)
    /// The manifest lists a number of shards other than the world size at save.
    case shardCountMismatch(path: String, worldSize: Int, shards: Int)
    /// A shard file named in the manifest does not exist.
    case shardMissing(shard: Int, path: String)
    /// A shard file's size differs from the manifest's `compressed_bytes`.
    case shardSizeMismatch(shard: Int, path: String, expected: Int, found: Int)
    /// The stored (compressed) bytes do not match their checksum; found before decompressing.
    /// `tensor` is the tensor whose frames hold the bad bytes (nil: the shard header).
    case shardChecksumMismatch(shard: Int, path: String, tensor: String?)
    /// The shard's own header (magic, version, rank, save id) is wrong.
    case shardHeaderInvalid(shard: Int, path: String, reason: String)
    /// A tensor decompressed cleanly but its bytes do not match the tensor checksum.
    case tensorChecksumMismatch(shard: Int, path: String, tensor: String)
    /// zstd rejected a frame, or it decompressed to the wrong size.
    case decompressionFailed(shard: Int, path: String, tensor: String, reason: String)
    /// The merged file's fixed header is damaged or inconsistent with the file size.
    case mergedFileInvalid(path: String, reason: String)
    /// No tensor of that name in the checkpoint.
    case missingTensor(name: String)
    /// The stored tensor has another shape or dtype than the caller asked for.
    case tensorMismatch(name: String, expected: String, found: String)
    /// The arguments to a checkpoint call are invalid (duplicate tensor names, bad options, ...).
    case invalidArgument(String)
    /// Reading or writing a file failed (permission, disk full, I/O error).
    case io(path: String, reason: String)
    /// A collective save failed on some ranks; every rank throws the same rank-to-message map,
    /// no manifest was written and `LATEST` still names the previous checkpoint.
    case saveFailed([Int: String])

    public var description: String {
        switch self {
        case .noCheckpoint(let p): return "\(p): no checkpoint saved here yet"
        case .notACheckpoint(let p, let r): return "\(p): not a checkpoint: \(r)"
        case .latestInvalid(let root, let r):
            return "\(root): LATEST is unusable (\(r)); resume with the fallback to pick the newest valid checkpoint"
        case .manifestMissing(let d): return "\(d): no manifest.json, the save did not complete (sweep removes it)"
        case .manifestCorrupt(let p, let r): return "\(p): manifest is corrupt: \(r)"
        case .unsupportedSchema(let p, let f, let s):
            return "\(p): checkpoint schema version \(f), this program reads version \(s)"
        case .shardCountMismatch(let p, let w, let n): return "\(p): saved by \(w) ranks but lists \(n) shards"
        case .shardMissing(let s, let p): return "shard \(s): file \(p) is missing"
        case .shardSizeMismatch(let s, let p, let e, let f):
            return "shard \(s): \(p) has \(f) bytes, the manifest says \(e)"
        case .shardChecksumMismatch(let s, let p, let t):
            return "shard \(s): \(p): stored bytes fail their checksum "
                + (t.map { "in tensor \($0)" } ?? "in the shard header")
        case .shardHeaderInvalid(let s, let p, let r): return "shard \(s): \(p): bad shard header: \(r)"
        case .tensorChecksumMismatch(let s, let p, let t):
            return "shard \(s): \(p): tensor \(t) fails its checksum after decompression"
        case .decompressionFailed(let s, let p, let t, let r):
            return "shard \(s): \(p): tensor \(t) does not decompress: \(r)"
        case .mergedFileInvalid(let p, let r): return "\(p): bad merged checkpoint: \(r)"
        case .missingTensor(let n): return "checkpoint has no tensor \(n)"
        case .tensorMismatch(let n, let e, let f): return "tensor \(n) is \(f) in the checkpoint, expected \(e)"
        case .invalidArgument(let r): return "invalid checkpoint request: \(r)"
        case .io(let p, let r): return "\(p): \(r)"
        case .saveFailed(let map):
            let parts = map.keys.sorted().map { "rank \($0): \(map[$0] ?? "")" }
            return "checkpoint save failed (any earlier checkpoint is kept): " + parts.joined(separator: "; ")
        }
    }
}
