import Foundation

/// The JSON manifest of a checkpoint (`manifest.json` in a step directory, or embedded in a merged file).
/// docs/checkpoint-format.md specifies every field; the coding keys below are the on-disk names.
public struct Manifest: Codable, Equatable {
    public static let formatName = "face2webtoon-checkpoint"
    /// The schema this program writes and reads.
    public static let schemaVersion = 1
    /// Manifests larger than this are rejected before reading (a real one is ~300 bytes per tensor).
    static let maxBytes = 64 << 20

    public enum Layout: String, Codable, Sendable { case sharded, merged }

    public struct Codec: Codable, Equatable, Sendable {
        /// "zstd"; `version` 1 = one zstd frame per chunk of at most `chunkBytes` raw bytes of one tensor.
        public var name: String
        public var version: Int
        public var level: Int
        /// Whether each chunk is byte-plane shuffled (by its dtype's size) before compression.
        public var shuffle: Bool
        public var chunkBytes: Int
        enum CodingKeys: String, CodingKey {
            case name, version, level, shuffle
            case chunkBytes = "chunk_bytes"
        }
    }

    public struct Shard: Codable, Equatable, Sendable {
        public var rank: Int
        /// File name inside the step directory (merged layout: the merged file's name, informational).
        public var file: String
        /// Size of the shard file (merged layout: of the data region).
        public var compressedBytes: Int
        /// Sum of the raw sizes of its tensors.
        public var uncompressedBytes: Int
        /// XXH64 of the whole shard file (merged layout: of the data region), 16 hex digits.
        public var xxh64: String
        public var host: String
        enum CodingKeys: String, CodingKey {
            case rank, file, host, xxh64
            case compressedBytes = "compressed_bytes"
            case uncompressedBytes = "uncompressed_bytes"
        }
    }

    public struct Entry: Codable, Equatable, Sendable {
        public var name: String
        public var dtype: DType
        public var shape: [Int]
        /// Index into `shards`.
        public var shard: Int
        /// Byte range of the raw tensor within the shard's uncompressed stream.
        public var offset: Int
        public var length: Int
        /// XXH64 of the raw little-endian tensor bytes.
        public var xxh64: String
        /// Where its first frame starts, relative to the shard's data region.
        public var storedOffset: Int
        /// Compressed size and XXH64 of each frame, in order (`ceil(length / chunk_bytes)` frames).
        public var frameBytes: [Int]
        public var frameXXH64: [String]
        enum CodingKeys: String, CodingKey {
            case name, dtype, shape, shard, offset, length, xxh64
            case storedOffset = "stored_offset"
            case frameBytes = "frame_bytes"
            case frameXXH64 = "frame_xxh64"
        }

        public var storedLength: Int { frameBytes.reduce(0, +) }
    }

    public var format: String
    public var schemaVersion: Int
    public var layout: Layout
    public var programVersion: String
    /// The trainer's configuration JSON, opaque here.
    public var config: String
    public var step: Int
    public var imagesSeen: Int
    /// Number of ranks that saved it (= shard count for the sharded layout).
    public var worldSize: Int
    /// Free-form trainer state (RNG states, data position, ADA p, ...), opaque here.
    public var state: JSONValue
    /// Random id of the save, 16 hex digits; part of every shard file name and header.
    public var saveID: String
    /// Rank 0's wall clock at commit, ISO 8601 UTC.
    public var created: String
    public var codec: Codec
    /// Checksum algorithm of every `xxh64` field: "xxh64".
    public var checksum: String
    public var shards: [Shard]
    public var tensors: [Entry]

    enum CodingKeys: String, CodingKey {
        case format, layout, config, step, state, created, codec, checksum, shards, tensors
        case schemaVersion = "schema_version"
        case programVersion = "program_version"
        case imagesSeen = "images_seen"
        case worldSize = "world_size"
        case saveID = "save_id"
    }

    /// Serialised manifest: pretty-printed, sorted keys, UTF-8.
    func encoded() throws -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return Array(try e.encode(self))
    }

    /// Parses and validates manifest bytes; `path` only labels errors. Checks the schema version before
    /// anything else, so a newer checkpoint gives `unsupportedSchema`, not a parse error.
    static func decode(_ bytes: [UInt8], path: String) throws -> Manifest {
        struct Head: Decodable {
            var format: String?
            var schemaVersion: Int?
            enum CodingKeys: String, CodingKey {
                case format
                case schemaVersion = "schema_version"
            }
        }
        func corrupt(_ r: String) -> CheckpointError { .manifestCorrupt(path: path, reason: r) }
        guard bytes.count <= maxBytes else { throw corrupt("\(bytes.count) bytes, more than the \(maxBytes) allowed") }
        let data = Data(bytes)
        guard let head = try? JSONDecoder().decode(Head.self, from: data) else {
            throw corrupt(bytes.isEmpty ? "empty file" : "not a JSON object (truncated?)")
        }
        guard head.format == formatName else {
            throw corrupt("format is \(head.format ?? "missing"), expected \(formatName)")
        }
        guard let v = head.schemaVersion else { throw corrupt("schema_version missing") }
        guard v == schemaVersion else {
            throw CheckpointError.unsupportedSchema(path: path, found: v, supported: schemaVersion)
        }
        let m: Manifest
        do { m = try JSONDecoder().decode(Manifest.self, from: data) } catch { throw corrupt(describe(error)) }
        try m.validate(path: path)
        return m
    }

    private static func describe(_ error: Error) -> String {
        guard let e = error as? DecodingError else { return "\(error)" }
        func at(_ c: DecodingError.Context, _ key: CodingKey? = nil) -> String {
            let path = (c.codingPath + (key.map { [$0] } ?? [])).map { $0.intValue.map(String.init) ?? $0.stringValue }
            return path.isEmpty ? "top level" : "field " + path.joined(separator: ".")
        }
        switch e {
        case .keyNotFound(let k, let c): return "\(at(c, k)) missing"
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c):
            return "\(at(c)): \(c.debugDescription)"
        @unknown default: return "\(e)"
        }
    }
}
