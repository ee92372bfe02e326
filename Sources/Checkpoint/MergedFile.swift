import Foundation

/// The single-file form of a checkpoint (docs/checkpoint-format.md, "Merged file"):
/// a 64-byte header, the data region (every shard's frames, in rank order), then the manifest JSON.
/// The header is written last, so its checksums cover everything after it.
struct MergedFile: Equatable {
    static let magic = Array("F2WMERGE".utf8)
    static let version: UInt32 = 1
    static let headerBytes = 64
    var dataBytes: Int, dataXXH64: UInt64, manifestBytes: Int, manifestXXH64: UInt64

    func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.raw(MergedFile.magic)
        w.u32(MergedFile.version)
        w.u32(UInt32(MergedFile.headerBytes))
        w.int(dataBytes)
        w.u64(dataXXH64)
        w.int(manifestBytes)
        w.u64(manifestXXH64)
        w.u64(0)
        w.u64(XXH64.hash(w.bytes))
        return w.bytes
    }

    static func hasMagic(_ src: ByteSource) -> Bool {
        src.size >= 8 && (try? src.bytes(0, 8)) == magic
    }

    /// Parses and checks the header of `src` (checksum, version, sizes adding up to the file size).
    static func header(_ src: ByteSource, path: String, checksums: Bool = true) throws -> MergedFile {
        func bad(_ r: String) -> CheckpointError { .mergedFileInvalid(path: path, reason: r) }
        guard src.size >= headerBytes else { throw bad("\(src.size) bytes, shorter than the 64-byte header") }
        let head = try src.bytes(0, headerBytes)
        var r = ByteReader(head)
        guard r.take(8).map(Array.init) == magic else { throw bad("magic is not F2WMERGE") }
        var tail = ByteReader(Array(head[56...]))
        guard !checksums || XXH64.hash(Array(head[0..<56])) == tail.u64() else { throw bad("header checksum mismatch") }
        guard let v = r.u32(), v == version, r.u32() == UInt32(headerBytes) else {
            throw bad("unknown merged format version")
        }
        guard let d = r.int(), let dh = r.u64(), let m = r.int(), let mh = r.u64() else {
            throw bad("truncated header")
        }
        guard (0...Manifest.maxFileBytes).contains(d), (1...Manifest.maxBytes).contains(m),
            headerBytes + d + m == src.size
        else {
            throw bad("data \(d) + manifest \(m) bytes do not fill the \(src.size)-byte file")
        }
        return MergedFile(dataBytes: d, dataXXH64: dh, manifestBytes: m, manifestXXH64: mh)
    }
}

extension CheckpointReader {
    /// Opens a merged checkpoint file. - Throws: `.mergedFileInvalid`, `.manifestCorrupt`, `.unsupportedSchema`, `.io`.
    public convenience init(mergedFile path: String) throws {
        guard let src = try FileSource(path) else { throw CheckpointError.noCheckpoint(path: path) }
        try self.init(merged: src, path: path, checksums: true)
    }

    convenience init(merged src: ByteSource, path: String, checksums: Bool) throws {
        let h = try MergedFile.header(src, path: path, checksums: checksums)
        let bytes = try src.bytes(MergedFile.headerBytes + h.dataBytes, h.manifestBytes)
        if checksums && XXH64.hash(bytes) != h.manifestXXH64 {
            throw CheckpointError.manifestCorrupt(path: path, reason: "manifest checksum mismatch")
        }
        let m = try Manifest.decode(bytes, path: path)
        guard m.layout == .merged, m.shards[0].compressedBytes == h.dataBytes,
            !checksums || Hex.parse(m.shards[0].xxh64) == h.dataXXH64
        else {
            throw CheckpointError.mergedFileInvalid(
                path: path, reason: "manifest does not describe this file's data region")
        }
        self.init(path: path, manifest: m, directory: nil, sources: [0: src])
        self.checksums = checksums
    }
}

extension Checkpoints {
    /// Writes the checkpoint at `source` (a root or step directory) as one self-contained merged file at
    /// `output`, atomically. Shards are streamed in manifest rank order: each shard's whole-file checksum is
    /// checked before anything in it is decompressed, then every tensor is decoded and verified while its
    /// frames are copied (not recompressed). Memory: one chunk and one frame, whatever the checkpoint size.
    /// - Returns: the merged file's manifest.
    /// - Throws: `.shardCountMismatch`, `.unsupportedSchema`, `.shardMissing`, checksum errors, `.io`, and
    ///   `.invalidArgument` if `source` is already a merged file.
    @discardableResult
    /// `progress(done, total)` in raw (decompressed) bytes, after each chunk.
    public static func merge(
        from source: String, to output: String, progress: ((Int, Int) -> Void)? = nil
    ) throws -> Manifest {
        let r = try open(source)
        guard r.manifest.layout == .sharded else {
            throw CheckpointError.invalidArgument("\(source) is already a merged file")
        }
        var m = r.manifest
        var entries = m.tensors
        var dataHash = XXH64()
        let total = entries.reduce(0) { $0 + $1.length }
        var done = 0
        try FileSystem.writeAtomically(output) { w in
            try w.write([UInt8](repeating: 0, count: MergedFile.headerBytes))
            var rawBase = 0
            for s in m.shards.indices {
                try r.verifyStoredChecksum(s)
                for i in entries.indices.filter({ entries[$0].shard == s }).sorted(by: {
                    entries[$0].storedOffset < entries[$1].storedOffset
                }) {
                    let e = entries[i]
                    entries[i].shard = 0
                    entries[i].offset = rawBase + e.offset
                    entries[i].storedOffset = w.written - MergedFile.headerBytes
                    try r.stream(e) { raw, frame in
                        try w.write(frame)
                        dataHash.update(frame)
                        done += raw.count
                        progress?(done, total)
                    }
                }
                rawBase += m.shards[s].uncompressedBytes
            }
            let dataBytes = w.written - MergedFile.headerBytes
            m.layout = .merged
            m.shards = [
                Manifest.Shard(
                    rank: 0, file: (output as NSString).lastPathComponent, compressedBytes: dataBytes,
                    uncompressedBytes: rawBase, xxh64: Hex.string(dataHash.digest()), host: "")
            ]
            m.tensors = entries
            let json = try m.encoded()
            try w.write(json)
            try w.overwrite(
                MergedFile(
                    dataBytes: dataBytes, dataXXH64: dataHash.digest(), manifestBytes: json.count,
                    manifestXXH64: XXH64.hash(json)
                ).encoded(), at: 0)
        }
        return m
    }

    /// Opens a checkpoint: a root (follows `LATEST`), a step directory, its `manifest.json`, or a merged file.
    /// - Throws: `.noCheckpoint` when nothing was saved there yet (missing path, or a directory with neither
    ///   `LATEST` nor step directories): start fresh. Otherwise `.latestInvalid`, `.manifestMissing`,
    ///   `.manifestCorrupt`, `.unsupportedSchema`, `.shardCountMismatch`, `.mergedFileInvalid`, `.notACheckpoint`.
    public static func open(_ path: String) throws -> CheckpointReader {
        switch FileSystem.kind(path) {
        case .missing: throw CheckpointError.noCheckpoint(path: path)
        case .other: throw CheckpointError.notACheckpoint(path: path, reason: "not a file or directory")
        case .file:
            if (path as NSString).lastPathComponent == Names.manifest {
                return try CheckpointReader(stepDirectory: FileSystem.parent(path))
            }
            guard let src = try FileSource(path) else { throw CheckpointError.noCheckpoint(path: path) }
            guard MergedFile.hasMagic(src) else {
                // the file most often given by mistake: weights exported to (or from) PyTorch
                let hint =
                    path.lowercased().hasSuffix(".safetensors")
                    ? "; a .safetensors file holds weights only: `face2webtoon import-torch FILE -o DIR` makes a "
                        + "checkpoint of it" : ""
                throw CheckpointError.notACheckpoint(
                    path: path,
                    reason: "no F2WMERGE magic (a checkpoint is a root with LATEST, a step folder or a merged file "
                        + "from `merge`)\(hint)")
            }
            return try CheckpointReader(merged: src, path: path, checksums: true)
        case .directory:
            if FileSystem.kind(FileSystem.join(path, Names.manifest)) != .missing {
                return try CheckpointReader(stepDirectory: path)
            }
            if FileSystem.kind(FileSystem.join(path, Names.latest)) != .missing {
                // a live run may commit a newer step and remove this one (--keep-last) while it is being opened:
                // when LATEST has moved on meanwhile, open the step it names now
                for attempt in 0..<3 {
                    let step = try readLatest(path)
                    let dir = FileSystem.join(path, step)
                    do {
                        guard FileSystem.kind(dir) == .directory else {
                            throw CheckpointError.latestInvalid(
                                root: path, reason: "LATEST names \(step), which does not exist")
                        }
                        return try CheckpointReader(stepDirectory: dir)
                    } catch {
                        if attempt == 2 || (try? readLatest(path)) == step { throw error }
                    }
                }
            }
            if Names.step(of: (path as NSString).lastPathComponent) != nil {
                throw CheckpointError.manifestMissing(directory: path)
            }
            if !stepDirectories(path, complete: false).isEmpty {
                throw CheckpointError.latestInvalid(root: path, reason: "LATEST is missing")
            }
            throw CheckpointError.noCheckpoint(path: path)
        }
    }
}
