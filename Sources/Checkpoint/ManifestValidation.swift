/// Semantic checks of a decoded manifest. Readers trust nothing else: every size, shape, offset and count
/// is checked here before any buffer is sized from it, so a corrupt or hostile manifest gives an error,
/// never a crash or an unbounded allocation.
extension Manifest {
    /// Bytes of a shard file before its data region (docs/checkpoint-format.md, "Shard file").
    static let shardHeaderBytes = 32
    static let maxChunkBytes = 64 << 20
    static let maxFileBytes = 1 << 50
    static let maxTensors = 1 << 20
    static let maxRanks = 1 << 16

    /// Offset of the data region in the file holding `shard`.
    var dataBase: Int { layout == .sharded ? Manifest.shardHeaderBytes : MergedFile.headerBytes }

    func validate(path: String) throws {
        func bad(_ r: String) -> CheckpointError { .manifestCorrupt(path: path, reason: r) }
        guard codec.name == "zstd", codec.version == 1 else {
            throw bad(
                "codec \(codec.name) version \(codec.version) is not supported (this program reads zstd version 1)")
        }
        guard checksum == "xxh64" else { throw bad("checksum algorithm \(checksum) is not supported") }
        guard codec.chunkBytes >= 4096, codec.chunkBytes <= Manifest.maxChunkBytes, codec.chunkBytes % 8 == 0 else {
            throw bad("chunk_bytes \(codec.chunkBytes) outside 4096...\(Manifest.maxChunkBytes) or not a multiple of 8")
        }
        guard (1...Manifest.maxRanks).contains(worldSize) else { throw bad("world_size \(worldSize)") }
        guard step >= 0, imagesSeen >= 0 else { throw bad("negative step or images_seen") }
        guard case .object = state else { throw bad("state is not a JSON object") }
        guard Hex.parse(saveID) != nil else { throw bad("save_id \(saveID) is not 16 hex digits") }
        switch layout {
        case .sharded where shards.count != worldSize:
            throw CheckpointError.shardCountMismatch(path: path, worldSize: worldSize, shards: shards.count)
        case .merged where shards.count != 1:
            throw bad("a merged file has one data region, the manifest lists \(shards.count)")
        default: break
        }
        // Sharded: compressed_bytes is the whole file, header included; merged: only the data region.
        let headerInRegion = layout == .sharded ? Manifest.shardHeaderBytes : 0
        var files = Set<String>()
        for (i, s) in shards.enumerated() {
            guard s.rank == i else {
                throw bad("shards[\(i)] has rank \(s.rank); shards must be listed by rank 0..<\(shards.count)")
            }
            guard Manifest.isPlainFileName(s.file), files.insert(s.file).inserted else {
                throw bad("shard \(i): bad or repeated file name \(s.file)")
            }
            guard (headerInRegion...Manifest.maxFileBytes).contains(s.compressedBytes),
                (0...Manifest.maxFileBytes).contains(s.uncompressedBytes)
            else {
                throw bad("shard \(i): sizes \(s.compressedBytes)/\(s.uncompressedBytes) out of range")
            }
            guard Hex.parse(s.xxh64) != nil else { throw bad("shard \(i): checksum \(s.xxh64) is not 16 hex digits") }
        }
        guard tensors.count <= Manifest.maxTensors else { throw bad("\(tensors.count) tensors") }
        var names = Set<String>()
        var raw = [[Range<Int>]](repeating: [], count: shards.count)
        var stored = raw
        for t in tensors {
            guard !t.name.isEmpty, t.name.utf8.count <= 4096, names.insert(t.name).inserted else {
                throw bad("empty, overlong or repeated tensor name \(t.name.prefix(80))")
            }
            func badT(_ r: String) -> CheckpointError { bad("tensor \(t.name): \(r)") }
            guard let bytes = Manifest.byteCount(shape: t.shape, dtype: t.dtype), bytes == t.length else {
                throw badT("shape \(t.shape.prefix(40)) of \(t.dtype.rawValue) does not give length \(t.length)")
            }
            guard shards.indices.contains(t.shard) else { throw badT("shard \(t.shard) does not exist") }
            let s = shards[t.shard]
            guard t.offset >= 0, t.offset <= s.uncompressedBytes - t.length else {
                throw badT("offset \(t.offset) outside its shard")
            }
            guard Hex.parse(t.xxh64) != nil else { throw badT("checksum \(t.xxh64) is not 16 hex digits") }
            let frames = (t.length + codec.chunkBytes - 1) / codec.chunkBytes
            guard t.frameBytes.count == frames, t.frameXXH64.count == frames else {
                throw badT("\(t.frameBytes.count) frame sizes and \(t.frameXXH64.count) checksums, expected \(frames)")
            }
            let bound = ZstdCompressor.bound(codec.chunkBytes)
            // A zstd block yields at most 128 KiB from at least 4 bytes, so a frame of n raw bytes has at least
            // 4·ceil(n/128Ki) bytes: the raw size a manifest may claim is tied to bytes that really exist.
            for (i, (n, x)) in zip(t.frameBytes, t.frameXXH64).enumerated() {
                let rawSize = min(codec.chunkBytes, t.length - i * codec.chunkBytes)
                guard (4 * ((rawSize + 131_071) / 131_072)...bound).contains(n), Hex.parse(x) != nil else {
                    throw badT("frame \(i): size \(n) impossible for \(rawSize) raw bytes, or bad checksum")
                }
            }
            let region = s.compressedBytes - headerInRegion
            guard t.storedOffset >= 0, t.storedOffset <= region - t.storedLength else {
                throw badT("stored bytes \(t.storedOffset)+\(t.storedLength) outside the \(region)-byte data region")
            }
            raw[t.shard].append(t.offset..<t.offset + t.length)
            stored[t.shard].append(t.storedOffset..<t.storedOffset + t.storedLength)
        }
        for (i, (r, st)) in zip(raw, stored).enumerated() {
            guard r.reduce(0, { $0 + $1.count }) == shards[i].uncompressedBytes else {
                throw bad(
                    "shard \(i): tensor lengths do not add up to uncompressed_bytes \(shards[i].uncompressedBytes)")
            }
            guard !Manifest.overlaps(r), !Manifest.overlaps(st) else { throw bad("shard \(i): tensors overlap") }
        }
    }

    /// Bytes of a tensor of `shape` and `dtype`; nil on a negative dimension or overflow.
    static func byteCount(shape: [Int], dtype: DType) -> Int? {
        guard shape.count <= 32 else { return nil }
        var n = dtype.size
        for d in shape {
            guard d >= 0 else { return nil }
            let (m, o) = n.multipliedReportingOverflow(by: d)
            guard !o, m <= maxFileBytes else { return nil }
            n = m
        }
        return n
    }

    static func isPlainFileName(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 255 && s != "." && s != ".." && !s.utf8.contains(0x2F) && !s.utf8.contains(0)
    }

    private static func overlaps(_ ranges: [Range<Int>]) -> Bool {
        let sorted = ranges.filter { !$0.isEmpty }.sorted { $0.lowerBound < $1.lowerBound }
        return zip(sorted, sorted.dropFirst()).contains { $0.upperBound > $1.lowerBound }
    }
}
