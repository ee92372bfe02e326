import Distributed
import Foundation

extension Checkpoints {
    /// Saves `tensors` as step `step` under `root`. Collective: every rank calls it with the same tensor list
    /// (names, dtypes, shapes), step and options; the plan (`ShardPlan`) decides which rank writes which
    /// tensors, each rank writes one shard, and rank 0 then writes the manifest and replaces `LATEST`.
    /// Only rank 0's `fields` are recorded.
    ///
    /// Protocol (four collectives): all-gather a 1018-byte "hello" (tensor-list fingerprint, save id, request
    /// problems); write the shard (tmp, fsync, rename); gather a fixed-size result record at rank 0; rank 0
    /// commits if every rank succeeded and broadcasts the outcome. Retention runs after `LATEST` is replaced.
    /// - Throws: `CheckpointError.saveFailed([rank: message])`, identical on every rank, if any rank failed
    ///   (disk full, permission, I/O error, different tensor lists, invalid arguments); then no manifest
    ///   exists for this save and `LATEST` still names the previous checkpoint. Communication failures
    ///   rethrow the communicator's error (fatal for the job).
    @discardableResult
    public static func save(
        root: String, step: Int, tensors: [CheckpointTensor], manifestFields fields: ManifestFields,
        comm: Communicator, options: SaveOptions = SaveOptions()
    ) throws -> SaveResult {
        let rank = comm.rank
        let world = comm.worldSize
        // 1. Agree on the request before anything touches the disk.
        var hello = ByteWriter()
        hello.u64(fingerprint(step: step, tensors: tensors, options: options))
        hello.u64(UInt64.random(in: 1...UInt64.max))
        hello.text(requestProblem(step: step, tensors: tensors, fields: fields, options: options) ?? "", capacity: 1000)
        let hellos = try comm.allGather(hello.bytes).map { b -> (UInt64, UInt64, String) in
            var r = ByteReader(b)
            return (r.u64() ?? 0, r.u64() ?? 0, r.text(capacity: 1000) ?? "unreadable record")
        }
        var refused: [Int: String] = [:]
        for (r, h) in hellos.enumerated() {
            if !h.2.isEmpty {
                refused[r] = h.2
            } else if h.0 != hellos[0].0 {
                refused[r] = "tensor list, step or options differ from rank 0's"
            }
        }
        if !refused.isEmpty { throw CheckpointError.saveFailed(refused) }
        let saveID = hellos[0].1

        // 2. Write this rank's shard.
        let plan = ShardPlan(names: tensors.map(\.name), byteCounts: tensors.map(\.byteCount), worldSize: world)
        let dir = stepDirectory(root: root, step: step)
        let file = Names.shard(rank: rank, worldSize: world, saveID: saveID)
        let local: Result<ShardWriteResult, Error> = Result {
            try FileSystem.makeDirectory(root)
            try FileSystem.makeDirectory(dir)
            return try ShardWriter.write(
                path: FileSystem.join(dir, file), header: ShardHeader(rank: rank, worldSize: world, saveID: saveID),
                tensors: plan.tensors(of: rank).map { tensors[$0] }, options: options)
        }

        // 3. Gather every rank's result at rank 0, then 4. rank 0 decides and everyone learns the outcome.
        let frames = tensors.map { ($0.byteCount + options.chunkBytes - 1) / options.chunkBytes }
        let size = ResultRecord.size(plan: plan, frames: frames)
        let blocks = try comm.gather(ResultRecord.encode(local, host: comm.processorName, size: size), root: 0)
        var outcome = Outcome()
        if rank == 0 {
            let context = CommitContext(
                root: root, dir: dir, step: step, saveID: saveID, world: world, plan: plan,
                tensors: tensors, fields: fields, options: options)
            outcome = commit(
                context,
                records: blocks.enumerated().map { ResultRecord.decode($1, rank: $0, plan: plan, frames: frames) })
        }
        let encoded = try comm.broadcastBytes(rank == 0 ? Array(try JSONEncoder().encode(outcome)) : [], root: 0)
        guard let agreed = try? JSONDecoder().decode(Outcome.self, from: Data(encoded)) else {
            throw CheckpointError.saveFailed([0: "unreadable outcome from rank 0"])
        }
        if let errors = agreed.errors {
            if case .success = local { unlink(FileSystem.join(dir, file)) }  // now garbage; others' go the same way
            try comm.barrier()
            if rank == 0 { rmdir(dir) }  // succeeds only if this save created it and nothing else is left
            throw CheckpointError.saveFailed(
                Dictionary(uniqueKeysWithValues: errors.map { (Int($0.key) ?? -1, $0.value) }))
        }
        let mine = try? local.get()
        return SaveResult(
            directory: dir, step: step, rawBytes: agreed.rawBytes, storedBytes: agreed.storedBytes,
            localRawBytes: mine?.rawBytes ?? 0, localStoredBytes: mine?.fileBytes ?? 0,
            localSeconds: mine?.seconds ?? 0, deleted: agreed.deleted)
    }

    /// What rank 0 broadcasts at the end of a save.
    struct Outcome: Codable {
        var errors: [String: String]? = nil
        var rawBytes = 0, storedBytes = 0
        var deleted: [String] = []
    }

    struct CommitContext {
        let root: String, dir: String, step: Int, saveID: UInt64, world: Int
        let plan: ShardPlan, tensors: [CheckpointTensor], fields: ManifestFields, options: SaveOptions
    }

    /// Rank 0: write the manifest (the commit point), then `LATEST`, then clean up. Never throws: every
    /// failure becomes the outcome all ranks report.
    static func commit(_ c: CommitContext, records: [ResultRecord]) -> Outcome {
        var errors: [String: String] = [:]
        for (r, rec) in records.enumerated() { if let e = rec.error { errors[String(r)] = e } }
        if !errors.isEmpty { return Outcome(errors: errors) }
        // every shard must be where rank 0 sees it: ranks on hosts that do not share the result folder each write
        // into their own, and a manifest over shards rank 0 cannot see would be a checkpoint nobody can load
        for (r, rec) in records.enumerated() {
            let file = Names.shard(rank: r, worldSize: c.world, saveID: c.saveID)
            var st = stat()
            if stat(FileSystem.join(c.dir, file), &st) != 0 || Int(st.st_size) != rec.fileBytes {
                errors[String(r)] =
                    "its shard \(file) (\(rec.fileBytes) bytes, written on \(rec.host)) is not in \(c.dir) as rank 0 "
                    + "sees it: every rank must write into one shared result folder (docs/distributed.md §5)"
            }
        }
        if !errors.isEmpty { return Outcome(errors: errors) }
        let manifest = buildManifest(c, records)
        let manifestPath = FileSystem.join(c.dir, Names.manifest)
        do {
            let bytes = try manifest.encoded()
            try FileSystem.writeAtomically(manifestPath) { try $0.write(bytes) }
        } catch { return Outcome(errors: ["0": "writing the manifest: \(error)"]) }
        do { try writeLatest(c.root, Names.stepDirectory(c.step)) } catch {
            unlink(manifestPath)  // keep the rule "failed save = no manifest"
            return Outcome(errors: ["0": "replacing LATEST: \(error)"])
        }
        // Committed. Shards of an earlier save of this same step are now unreferenced.
        let named = Set(manifest.shards.map(\.file))
        for f in FileSystem.list(c.dir) where Names.isShard(f) && !named.contains(f) {
            unlink(FileSystem.join(c.dir, f))
        }
        let deleted = applyRetention(
            root: c.root, newStep: c.step, keepLast: c.options.keepLast, keepEvery: c.options.keepEvery)
        return Outcome(
            rawBytes: manifest.shards.reduce(0) { $0 + $1.uncompressedBytes },
            storedBytes: manifest.shards.reduce(0) { $0 + $1.compressedBytes }, deleted: deleted)
    }

    static func buildManifest(_ c: CommitContext, _ records: [ResultRecord]) -> Manifest {
        var entries = [Manifest.Entry?](repeating: nil, count: c.tensors.count)
        var shards: [Manifest.Shard] = []
        for (r, rec) in records.enumerated() {
            var raw = 0
            var stored = 0
            for (k, i) in c.plan.tensors(of: r).enumerated() {
                let t = c.tensors[i]
                let tr = rec.tensors[k]
                entries[i] = Manifest.Entry(
                    name: t.name, dtype: t.dtype, shape: t.shape, shard: r, offset: raw, length: t.byteCount,
                    xxh64: Hex.string(tr.xxh64), storedOffset: stored, frameBytes: tr.frames.map(\.bytes),
                    frameXXH64: tr.frames.map { Hex.string($0.xxh64) })
                raw += t.byteCount
                stored += tr.frames.reduce(0) { $0 + $1.bytes }
            }
            shards.append(
                Manifest.Shard(
                    rank: r, file: Names.shard(rank: r, worldSize: c.world, saveID: c.saveID),
                    compressedBytes: rec.fileBytes, uncompressedBytes: raw, xxh64: Hex.string(rec.fileXXH64),
                    host: rec.host))
        }
        let codec = Manifest.Codec(
            name: "zstd", version: 1, level: c.options.level, shuffle: c.options.shuffle,
            chunkBytes: c.options.chunkBytes)
        return Manifest(
            format: Manifest.formatName, schemaVersion: Manifest.schemaVersion, layout: .sharded,
            programVersion: c.fields.programVersion, config: c.fields.config, step: c.step,
            imagesSeen: c.fields.imagesSeen,
            worldSize: c.world, state: c.fields.state, saveID: Hex.string(c.saveID),
            created: ISO8601DateFormatter().string(from: Date()), codec: codec, checksum: "xxh64",
            shards: shards, tensors: entries.compactMap { $0 })
    }

    /// Hash of everything that must be identical on all ranks (it also fixes the size of the result records).
    static func fingerprint(step: Int, tensors: [CheckpointTensor], options: SaveOptions) -> UInt64 {
        var w = ByteWriter()
        w.int(step)
        w.int(options.level)
        w.int(options.chunkBytes)
        w.u8(options.shuffle ? 1 : 0)
        w.int(options.keepLast ?? -1)
        w.int(options.keepEvery ?? -1)
        for t in tensors {
            w.raw(Array(t.name.utf8))
            w.u8(0)
            w.raw(Array(t.dtype.rawValue.utf8))
            w.int(t.shape.count)
            for d in t.shape { w.int(d) }
        }
        return XXH64.hash(w.bytes)
    }

    static func requestProblem(
        step: Int, tensors: [CheckpointTensor], fields: ManifestFields, options: SaveOptions
    ) -> String? {
        if let p = options.problem { return p }
        if step < 0 || fields.imagesSeen < 0 { return "negative step or imagesSeen" }
        guard case .object = fields.state else { return "state must be a JSON object" }
        if tensors.count > Manifest.maxTensors { return "\(tensors.count) tensors" }
        var seen = Set<String>()
        for t in tensors {
            if t.name.isEmpty || t.name.utf8.count > 4096 { return "empty or overlong tensor name" }
            if !seen.insert(t.name).inserted { return "tensor name \(t.name) appears twice" }
            if Manifest.byteCount(shape: t.shape, dtype: t.dtype) != t.byteCount {
                return "tensor \(t.name): shape \(t.shape) too large"
            }
        }
        return nil
    }
}
