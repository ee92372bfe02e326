/// Entry points for the fuzz harness (Sources/CheckpointFuzz). They run the real readers on untrusted bytes
/// held in memory, optionally with checksum comparisons off so mutated inputs reach the parsers and the
/// decompressor instead of stopping at the first checksum. Each returns normally or throws; anything
/// else (a trap, a sanitizer report, an unbounded allocation) is a bug.
@_spi(Fuzzing)
public enum CheckpointFuzzing {
    /// Tensors larger than this are not decoded (keeps one input's memory bounded under the fuzzer).
    public static let maxTensorBytes = 16 << 20

    /// Manifest parser + validator.
    public static func manifest(_ bytes: [UInt8]) throws {
        _ = try Manifest.decode(bytes, path: "<fuzz>")
    }

    /// Merged-file reader: header, manifest, then verify and decode every tensor.
    public static func merged(_ bytes: [UInt8], checksums: Bool) throws {
        let r = try CheckpointReader(merged: MemorySource(bytes), path: "<fuzz>", checksums: checksums)
        try decodeAll(r)
    }

    /// Shard reader: `shard` is the bytes of shard 0 of the step directory described by `manifest`.
    public static func shard(manifest: [UInt8], shard: [UInt8], checksums: Bool) throws {
        let m = try Manifest.decode(manifest, path: "<fuzz>")
        guard m.layout == .sharded else { return }
        let src = MemorySource(shard)
        let r = CheckpointReader(path: "<fuzz>", manifest: m, directory: nil, sources: [0: src])
        r.checksums = checksums
        try r.checkShard(src, 0)
        for e in m.tensors where e.shard == 0 && e.length <= maxTensorBytes { _ = try r.bytes(e.name) }
    }

    private static func decodeAll(_ r: CheckpointReader) throws {
        try r.verifyStoredChecksum(0)
        for e in r.manifest.tensors where e.length <= maxTensorBytes { _ = try r.bytes(e.name) }
    }
}
