import Engine
import Foundation

/// An open checkpoint: a step directory (one shard file per saving rank) or a merged file. Any number of
/// processes may read the same checkpoint; reading does not depend on the world size at save.
///
/// Opening parses and validates the manifest only; shard files are opened (and their size and header
/// checked) on first use. Every frame's checksum is verified before it is decompressed, and every tensor's
/// checksum after. Not thread-safe (scratch buffers are reused): use one reader per thread.
public final class CheckpointReader {
    /// The step directory or merged file.
    public let path: String
    public let manifest: Manifest
    private let directory: String?
    private var sources: [Int: ByteSource]
    private let index: [String: Int]
    private let zstd = ZstdDecompressor()
    private var frame: UnsafeMutableRawBufferPointer?, raw: UnsafeMutableRawBufferPointer?,
        plain: UnsafeMutableRawBufferPointer?
    /// Fuzzing only: skip checksum comparisons so mutated inputs reach the decoder.
    var checksums = true

    /// Opens the step directory `path` (it must hold `manifest.json`).
    /// - Throws: `.manifestMissing`, `.manifestCorrupt`, `.unsupportedSchema`, `.shardCountMismatch`, `.io`.
    public convenience init(stepDirectory path: String) throws {
        let mpath = FileSystem.join(path, Names.manifest)
        guard let src = try FileSource(mpath) else { throw CheckpointError.manifestMissing(directory: path) }
        guard src.size <= Manifest.maxBytes else {
            throw CheckpointError.manifestCorrupt(
                path: mpath, reason: "\(src.size) bytes, more than the \(Manifest.maxBytes) allowed")
        }
        let m = try Manifest.decode(try src.bytes(0, src.size), path: mpath)
        guard m.layout == .sharded else {
            throw CheckpointError.manifestCorrupt(
                path: mpath, reason: "layout \(m.layout.rawValue) in a step directory")
        }
        self.init(path: path, manifest: m, directory: path, sources: [:])
        // every shard opened now (a descriptor each): a live run's retention (--keep-last) may remove this step
        // while it is read, and an open file outlives its name; a shard that cannot be opened fails when read, as
        // before
        for s in m.shards.indices { _ = try? source(s) }
    }

    init(path: String, manifest: Manifest, directory: String?, sources: [Int: ByteSource]) {
        self.path = path
        self.manifest = manifest
        self.directory = directory
        self.sources = sources
        index = Dictionary(uniqueKeysWithValues: manifest.tensors.enumerated().map { ($1.name, $0) })
    }

    deinit { for b in [frame, raw, plain] { b?.deallocate() } }

    /// Tensor names in manifest order.
    public var names: [String] { manifest.tensors.map(\.name) }
    /// The manifest entry (dtype, shape, shard, sizes) of tensor `name`, or nil.
    public func entry(_ name: String) -> Manifest.Entry? { index[name].map { manifest.tensors[$0] } }

    /// The file holding shard `s` (for error messages).
    func shardPath(_ s: Int) -> String { directory.map { FileSystem.join($0, manifest.shards[s].file) } ?? path }

    private func source(_ s: Int) throws -> ByteSource {
        if let src = sources[s] { return src }
        guard let dir = directory else { throw CheckpointError.shardMissing(shard: s, path: path) }
        let sh = manifest.shards[s]
        let p = FileSystem.join(dir, sh.file)
        guard let src = try FileSource(p) else { throw CheckpointError.shardMissing(shard: s, path: p) }
        try checkShard(src, s)
        sources[s] = src
        return src
    }

    /// Size and header of a shard file against the manifest.
    func checkShard(_ src: ByteSource, _ s: Int) throws {
        let sh = manifest.shards[s]
        let p = shardPath(s)
        guard src.size == sh.compressedBytes else {
            throw CheckpointError.shardSizeMismatch(shard: s, path: p, expected: sh.compressedBytes, found: src.size)
        }
        let header = ShardHeader(rank: s, worldSize: manifest.worldSize, saveID: Hex.parse(manifest.saveID) ?? 0)
        if let why = header.mismatch(try src.bytes(0, Manifest.shardHeaderBytes)) {
            throw CheckpointError.shardHeaderInvalid(shard: s, path: p, reason: why)
        }
    }

    /// Checks everything, shard by shard in rank order: file present, size, whole-file checksum (before
    /// decompressing anything), then every tensor's frames and contents.
    /// - Throws: the first problem found, naming the shard and, where the bytes belong to one, the tensor.
    public func verify() throws {
        for s in manifest.shards.indices {
            try verifyStoredChecksum(s)
            for e in manifest.tensors where e.shard == s { try stream(e) { _, _ in } }
        }
    }

    /// Whole-shard (merged: data region) checksum; on a mismatch, locates the tensor by its frame checksums.
    func verifyStoredChecksum(_ s: Int) throws {
        let src = try source(s)
        let sh = manifest.shards[s]
        let start = manifest.layout == .sharded ? 0 : manifest.dataBase
        var h = XXH64()
        var pos = 0
        let block = 8 << 20
        let buf = UnsafeMutableRawBufferPointer.allocate(
            byteCount: min(block, max(sh.compressedBytes, 1)), alignment: 64)
        defer { buf.deallocate() }
        while pos < sh.compressedBytes {
            let n = min(buf.count, sh.compressedBytes - pos)
            try src.read(start + pos, n, into: buf.baseAddress!)
            h.update(UnsafeRawBufferPointer(rebasing: buf[0..<n]))
            pos += n
        }
        guard checksums, h.digest() != Hex.parse(sh.xxh64) else { return }
        for e in manifest.tensors where e.shard == s {
            var pos = manifest.dataBase + e.storedOffset
            for (n, x) in zip(e.frameBytes, e.frameXXH64) {
                if XXH64.hash(try src.bytes(pos, n)) != Hex.parse(x) {
                    throw CheckpointError.shardChecksumMismatch(shard: s, path: shardPath(s), tensor: e.name)
                }
                pos += n
            }
        }
        throw CheckpointError.shardChecksumMismatch(shard: s, path: shardPath(s), tensor: nil)
    }

    /// Decodes tensor `e` chunk by chunk: `body(raw, frame)` gets each chunk's raw little-endian bytes and the
    /// stored frame they came from. Frame checksums are checked before decompressing, the tensor checksum at
    /// the end (after the last `body` call).
    func stream(_ e: Manifest.Entry, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void) throws {
        let src = try source(e.shard)
        let chunk = manifest.codec.chunkBytes
        let k = e.dtype.size
        let p = shardPath(e.shard)
        if frame == nil {
            frame = .allocate(byteCount: ZstdCompressor.bound(chunk), alignment: 64)
            raw = .allocate(byteCount: chunk, alignment: 64)
            plain = .allocate(byteCount: chunk, alignment: 64)
        }
        guard let frame, let raw, let plain else { return }
        var pos = manifest.dataBase + e.storedOffset
        var left = e.length
        var h = XXH64()
        for (n, x) in zip(e.frameBytes, e.frameXXH64) {
            let size = min(chunk, left)
            try src.read(pos, n, into: frame.baseAddress!)
            let stored = UnsafeRawBufferPointer(rebasing: frame[0..<n])
            if checksums && XXH64.hash(stored) != Hex.parse(x) {
                throw CheckpointError.shardChecksumMismatch(shard: e.shard, path: p, tensor: e.name)
            }
            if let why = zstd.decompress(stored, into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<size])) {
                throw CheckpointError.decompressionFailed(shard: e.shard, path: p, tensor: e.name, reason: why)
            }
            var out = UnsafeRawBufferPointer(rebasing: raw[0..<size])
            if manifest.codec.shuffle && k > 1 {
                ByteShuffle.unshuffle(out, into: plain, elementSize: k)
                out = UnsafeRawBufferPointer(rebasing: plain[0..<size])
            }
            h.update(out)
            try body(out, stored)
            pos += n
            left -= size
        }
        if checksums && h.digest() != Hex.parse(e.xxh64) {
            throw CheckpointError.tensorChecksumMismatch(shard: e.shard, path: p, tensor: e.name)
        }
    }

    private func find(_ name: String, _ dtype: DType) throws -> Manifest.Entry {
        guard let e = entry(name) else { throw CheckpointError.missingTensor(name: name) }
        guard e.dtype == dtype else {
            throw CheckpointError.tensorMismatch(name: name, expected: dtype.rawValue, found: e.dtype.rawValue)
        }
        _ = try source(e.shard)  // file size checked before sizing any buffer from the manifest
        return e
    }

    /// Copies the F32 tensor `name` into `tensor`, whose shape must match. On a thrown error the contents of
    /// `tensor` are unspecified. - Throws: `.missingTensor`, `.tensorMismatch` (shape or dtype), read errors.
    public func read(_ name: String, into tensor: Tensor) throws {
        let e = try find(name, .f32)
        guard e.shape == tensor.shape else {
            throw CheckpointError.tensorMismatch(name: name, expected: "\(tensor.shape)", found: "\(e.shape)")
        }
        let dst = UnsafeMutableRawPointer(tensor.data)
        var off = 0
        try stream(e) { chunk, _ in
            (dst + off).copyMemory(from: chunk.baseAddress!, byteCount: chunk.count)
            off += chunk.count
        }
    }

    /// The F32 tensor `name` as a new `Tensor` of its stored shape. - Throws: as `read(_:into:)`.
    public func tensor(_ name: String) throws -> Tensor {
        let e = try find(name, .f32)
        let t = Tensor(uninitialized: e.shape)
        try read(name, into: t)
        return t
    }

    /// The raw little-endian bytes of tensor `name`, any dtype. - Throws: `.missingTensor`, read errors.
    public func bytes(_ name: String) throws -> [UInt8] {
        guard let e = entry(name) else { throw CheckpointError.missingTensor(name: name) }
        return try values(e, as: UInt8.self)
    }

    /// The F64 / I64 / U64 tensor `name`, flattened (row-major). - Throws: `.missingTensor`, `.tensorMismatch`, read errors.
    public func float64s(_ name: String) throws -> [Double] {
        try values(try find(name, .f64), as: UInt64.self).map(Double.init(bitPattern:))
    }
    public func int64s(_ name: String) throws -> [Int64] { try values(try find(name, .i64), as: Int64.self) }
    public func uint64s(_ name: String) throws -> [UInt64] { try values(try find(name, .u64), as: UInt64.self) }

    private func values<T: FixedWidthInteger>(_ e: Manifest.Entry, as: T.Type) throws -> [T] {
        _ = try source(e.shard)
        var out = [T](repeating: 0, count: e.length / MemoryLayout<T>.size)
        try out.withUnsafeMutableBytes { dst in
            var off = 0
            try stream(e) { chunk, _ in
                (dst.baseAddress! + off).copyMemory(from: chunk.baseAddress!, byteCount: chunk.count)
                off += chunk.count
            }
        }
        return out
    }
}
