import Foundation

/// What `Checkpoints.inspect` reports about a checkpoint (for `face2webtoon inspect`, and as JSON via `json()`).
public struct CheckpointSummary: Codable, Sendable {
    public struct TensorInfo: Codable, Sendable {
        public var name: String, dtype: String, shape: [Int], bytes: Int, shard: Int
    }
    public struct ShardInfo: Codable, Sendable {
        public var rank: Int, file: String, compressedBytes: Int, uncompressedBytes: Int, host: String
    }

    public var location: String
    public var layout: String
    public var schemaVersion: Int
    public var programVersion: String
    public var config: String
    public var step: Int
    public var imagesSeen: Int
    public var worldSize: Int
    public var created: String
    public var state: JSONValue
    public var codec: String
    public var tensors: [TensorInfo]
    public var shards: [ShardInfo]
    /// Raw tensor bytes, and bytes stored in shard files (headers included).
    public var rawBytes: Int
    public var storedBytes: Int
    /// "ok" (every checksum verified), "not verified", or the first problem found.
    public var integrity: String

    /// Pretty-printed JSON with sorted keys.
    public func json() throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try e.encode(self), as: UTF8.self)
    }
}

extension Checkpoints {
    /// Summarises the checkpoint at `path` (any form `open` accepts); with `verify`, reads every shard and
    /// records the first problem in `integrity` instead of throwing.
    /// - Throws: what `open` throws (no manifest to summarise).
    public static func inspect(_ path: String, verify: Bool = true) throws -> CheckpointSummary {
        let r = try open(path)
        let m = r.manifest
        var integrity = "not verified"
        if verify {
            do {
                try r.verify()
                integrity = "ok"
            } catch { integrity = "\(error)" }
        }
        let c = m.codec
        return CheckpointSummary(
            location: r.path, layout: m.layout.rawValue, schemaVersion: m.schemaVersion,
            programVersion: m.programVersion,
            config: m.config, step: m.step, imagesSeen: m.imagesSeen, worldSize: m.worldSize, created: m.created,
            state: m.state,
            codec: "\(c.name)/\(c.version) level \(c.level)\(c.shuffle ? " shuffle" : "") chunk \(c.chunkBytes)",
            tensors: m.tensors.map {
                .init(name: $0.name, dtype: $0.dtype.rawValue, shape: $0.shape, bytes: $0.length, shard: $0.shard)
            },
            shards: m.shards.map {
                .init(
                    rank: $0.rank, file: $0.file, compressedBytes: $0.compressedBytes,
                    uncompressedBytes: $0.uncompressedBytes, host: $0.host)
            },
            rawBytes: m.shards.reduce(0) { $0 + $1.uncompressedBytes },
            storedBytes: m.shards.reduce(0) { $0 + $1.compressedBytes },
            integrity: integrity)
    }
}
