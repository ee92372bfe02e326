import Checkpoint
import Dataset
import Distributed
import Engine
import Foundation
import KID
import UGATIT

/// What a training run is asked to do besides the model and optimisation settings (`TrainConfig`): where its data,
/// results and checkpoint are, the groups, KID, TensorBoard, saving, and the debug hooks of the tests.
public struct SessionOptions {
    public var resultDir: String
    /// The data root (trainA, trainB, testA, testB); nil with `demo`: RESULT_DIR/demo-data.
    public var data: String?
    /// Draw the built-in demo data set when the data root has none: images per domain for training and test.
    public var demo: (train: Int, test: Int)?
    /// A checkpoint to resume (root, step directory or merged file); nil: the newest under RESULT_DIR/checkpoints.
    public var resume: String?
    /// When the checkpoint to resume is invalid, resume from the newest valid older one instead of stopping.
    public var resumeFallback = false
    /// Start a fresh run from these weights (safetensors or checkpoint); tensors it lacks keep their initial values.
    public var initFrom: String?
    /// The group labels to train (nil: every group folder) and how they are fed.
    public var groups: [Int]?
    public var groupSampling = GroupSampling.roundRobin
    /// CSV files of `file,label` relabelling trainA / trainB.
    public var labelsA: String?
    public var labelsB: String?
    /// KID of genA2B(testA) against testB every `every` steps.
    public var kid: (every: Int, weights: String, subsets: Int, subsetSize: Int)?
    /// TensorBoard event directory (nil: none).
    public var tensorBoard: String?
    public var save = SaveOptions()
    /// All-reduce each gradient bucket while backward still runs (off: after the backward pass).
    public var overlap = true
    public var ignoreMemoryLimit = false
    /// Stop (with a checkpoint) after this step, as a SIGTERM would.
    public var stopAt: Int?
    /// Test hooks: dump gradients at a step, stall a rank at a step, NaN gradients on a rank at steps, ADA sign per
    /// rank.
    public var debugDumpGradientsAt: Int?
    public var debugStall: (rank: Int, step: Int)?
    public var debugNaNGradients: (rank: Int, steps: Set<Int>)?
    public var debugADAForcedSigns: [Double]?

    public init(resultDir: String) { self.resultDir = resultDir }
}

/// Everything `face2webtoon train` does before the first step, in one call that tests can drive without the CLI:
/// choose and check the checkpoint to resume (every rank must resume the same step), build the configuration,
/// draw the demo data, scan the data and resolve the groups, check memory, and build the `Trainer` with its data,
/// KID monitor, hooks and resumed or initial state.
public enum TrainingSession {
    /// - Parameters:
    ///   - makeConfig: the run's configuration, given the model of the checkpoint to resume (nil for a fresh run),
    ///     so that sizes left out come from it; it throws for options that conflict with that checkpoint.
    ///   - scanProgress: progress of the data scan of each domain: (domain "A" or "B", image files found so far,
    ///     whether that domain's scan is finished).
    ///   - say: rank 0's log lines.
    /// - Returns: the trainer, ready for `printBanner()` and `run()`.
    /// - Throws: `TrainingError` (.checkpoint, .invalidConfig, .insufficientMemory), `CheckpointError`,
    ///   `DatasetError`, `KIDError`, and what `makeConfig` throws.
    public static func prepare(
        _ o: SessionOptions, parallel: DataParallel, makeConfig: (ModelConfig?) throws -> TrainConfig,
        scanProgress: ((String, Int, Bool) -> Void)? = nil, say: @escaping (String) -> Void
    ) throws -> Trainer {
        let comm = parallel.comm
        let isRoot = comm.rank == 0
        let root = "\(o.resultDir)/checkpoints"
        // before anything in the folder is touched (the sweep below removes an interrupted save's files, which may
        // be another live run's save in progress)
        let lock = try lockResultFolder(o.resultDir, comm: comm)
        var lockHandedOver = false
        defer { if !lockHandedOver && lock >= 0 { close(lock) } }
        if isRoot && o.resume == nil, let swept = try? Checkpoints.sweep(root: root), !swept.isEmpty {
            say("[face2webtoon] removed \(swept.count) leftovers of an interrupted save: \(swept.joined(separator: ", "))")
        }
        try comm.barrier()
        try checkSharedResultFolder(o.resultDir, comm: comm)
        let reader = try openCheckpoint(o, root: root, say: say)
        let resumed = try reader.map { try TrainingCheckpoint.peek(path: $0.path) }
        var config = try makeConfig(resumed?.0.model)
        let problems = config.problems()
        if !problems.isEmpty { throw TrainingError.invalidConfig(problems) }
        let start = (resumed?.1.step ?? 0) + 1
        try checkSameStart(start, comm: comm, path: o.resume ?? root)

        var dataDir = o.data ?? "\(o.resultDir)/demo-data"
        if let demo = o.demo, isRoot {
            try drawDemoData(into: dataDir, ours: o.data == nil, size: config.model.imageSize + 30, demo, say: say)
        }
        try comm.barrier()  // the demo data exists before any rank reads it
        dataDir = (dataDir as NSString).standardizingPath
        try resolveGroups(&config, o, data: dataDir, progress: isRoot ? scanProgress : nil)
        try checkGroups(config, resumed: resumed, path: reader?.path ?? root)
        let memory = try checkMemory(config, worldSize: comm.worldSize, ignoreLimit: o.ignoreMemoryLimit, say: say)
        let warnings = DataWarnings { print("[face2webtoon] warning: skipping \($0)") }
        let source = try FolderBatches(
            data: dataDir, imageSize: config.model.imageSize, batchSize: config.batchSize,
            seed: config.seed, rank: comm.rank, worldSize: comm.worldSize, firstStep: start,
            iterations: config.iterations, groups: config.groups, labelsA: o.labelsA, labelsB: o.labelsB,
            startCursors: resumed.flatMap { $0.1.dataCursors.isEmpty ? nil : $0.1.dataCursors }, warnings: warnings)
        say("[face2webtoon] data \(dataDir): trainA \(source.a.count) images, trainB \(source.b.count) images")
        for skip in source.skippedPaths { say("[face2webtoon] warning: \(skip)") }
        let global = config.batchSize * comm.worldSize
        if global > min(source.a.count, source.b.count) {
            throw TrainingError.invalidConfig([
                "the global batch (--batch-size \(config.batchSize) × \(comm.worldSize) ranks = \(global)) is larger "
                    + "than the data set (trainA \(source.a.count), trainB \(source.b.count) images): "
                    + "lower --batch-size or use fewer ranks"
            ])
        }
        if let g = config.groups {
            for c in source.groupCounts {
                let note = g.selected.contains(c.label) ? "" : " (not selected)"
                say("[face2webtoon]   group \(c.label): trainA \(c.a), trainB \(c.b)\(note)")
            }
            say(
                "[face2webtoon] groups \(g.selected) fed \(g.sampling.rawValue); group loss "
                    + "\(config.weights.useGroupLoss ? "on" : "off (logged only)"); "
                    + "bottleneck update \(config.bottleneck.rawValue)")
        }

        let trainer = try Trainer(config: config, resultDir: o.resultDir, source: source, parallel: parallel) {
            print($0)
        }
        trainer.memoryEstimate = memory
        trainer.debugDumpGradientsAt = o.debugDumpGradientsAt
        trainer.stopAt = o.stopAt
        trainer.debugStall = o.debugStall
        trainer.debugNaNGradients = o.debugNaNGradients
        if let signs = o.debugADAForcedSigns {
            guard signs.count == comm.worldSize else {
                throw TrainingError.invalidConfig(["--debug-ada-force-sign needs one sign per rank"])
            }
            trainer.ada.forcedSign = signs[comm.rank]
        }
        if let k = o.kid, k.every > 0 {
            trainer.kid = (
                k.every,
                try KIDMonitor(
                    data: dataDir, imageSize: config.model.imageSize, comm: comm, weights: k.weights,
                    subsets: k.subsets, subsetSize: k.subsetSize)
            )
        }
        trainer.checkpointOptions = o.save
        trainer.overlap = o.overlap
        if let reader {
            try trainer.resume(from: reader)
            let was = trainer.state.worldSizeAtSave
            say(
                "[face2webtoon] checkpoint loaded: \(reader.path), step \(trainer.state.step), saved by \(was) "
                    + "rank\(was == 1 ? "" : "s"), now \(comm.worldSize)")
            if let initFrom = o.initFrom {
                say(
                    "[face2webtoon] warning: --init-from \(initFrom) is not used: this run resumes its own checkpoint "
                        + "(--init-from starts a new run: give it another --result-dir)")
            }
        } else {
            say("[face2webtoon] no checkpoint in \(root): fresh start")
            if let initFrom = o.initFrom {
                let (fresh, unused) = try trainer.initialize(from: initFrom)
                let new = fresh.filter { !$0.hasSuffix("_u") && !$0.hasSuffix("_v") }  // spectral-norm vectors
                say(
                    "[face2webtoon] initialised from \(initFrom); "
                        + (new.isEmpty ? "every tensor taken from it" : "\(new.count) tensors new: \(new.joined(separator: ", "))")
                        + (unused.isEmpty ? "" : "; \(unused.count) of its tensors not used: \(unused.joined(separator: ", "))"))
            }
        }
        if isRoot {
            trainer.sampleImages = try FolderBatches.sampleImages(
                data: dataDir, imageSize: config.model.imageSize, n: 6, warnings: warnings)
            trainer.encodePNG = { grid in
                try PNGCodec.encode(RGBImage(width: grid.width, height: grid.height, pixels: grid.pixels))
            }
            trainer.tensorBoardDirectory = o.tensorBoard
        }
        trainer.resultFolderLock = lock
        lockHandedOver = true
        return trainer
    }

    /// The checkpoint to resume: `resume`, else the newest under `root`; nil for a fresh start.
    /// - Throws: `CheckpointError.noCheckpoint` when `resume` names none; `TrainingError.checkpoint` when the
    ///   checkpoint is invalid and `resumeFallback` is off (or finds no valid older one).
    static func openCheckpoint(_ o: SessionOptions, root: String, say: (String) -> Void) throws -> CheckpointReader? {
        do {
            let r = try Checkpoints.open(o.resume ?? root)
            try r.verify()
            return r
        } catch CheckpointError.noCheckpoint(let path) {
            if o.resume != nil { throw CheckpointError.noCheckpoint(path: path) }
            return nil
        } catch {
            guard o.resumeFallback, let valid = Checkpoints.newestValid(root: o.resume ?? root) else {
                throw TrainingError.checkpoint(
                    path: o.resume ?? root,
                    reason: "present but invalid: \(error)\n"
                        + "(--resume-fallback resumes from the newest valid older one)")
            }
            for (dir, why) in valid.skipped { say("[face2webtoon] skipping invalid checkpoint \(dir): \(why)") }
            return valid.reader
        }
    }

    /// Draws the demo data set into `dir` unless it is there already as asked; `demo.json` records how it was drawn,
    /// and a folder drawn otherwise (or, when `ours`, the default folder without demo.json, drawn by an older version)
    /// is drawn again.
    static func drawDemoData(
        into dir: String, ours: Bool, size: Int, _ demo: (train: Int, test: Int), say: (String) -> Void
    ) throws {
        let drawn = "\(dir)/demo.json"
        let wanted = "{\"size\": \(size), \"train\": \(demo.train), \"test\": \(demo.test)}\n"
        let have = try? String(contentsOfFile: drawn, encoding: .utf8)
        if FileManager.default.fileExists(atPath: "\(dir)/trainA") && (have.map { $0 != wanted } ?? ours) {
            say(
                "[face2webtoon] the demo data in \(dir) was drawn "
                    + (have.map { "as \($0.trimmingCharacters(in: .newlines))" } ?? "by an older version")
                    + "; drawing it again as \(wanted.trimmingCharacters(in: .newlines))")
            try FileManager.default.removeItem(atPath: dir)
        }
        guard !FileManager.default.fileExists(atPath: "\(dir)/trainA") else { return }
        say("[face2webtoon] drawing the demo data set into \(dir)")
        try DemoData.generate(
            to: URL(fileURLWithPath: dir), size: size, trainPerDomain: demo.train, testPerDomain: demo.test, seed: 0)
        try AtomicFile.write(Data(wanted.utf8), to: drawn)
    }

    /// Takes the result folder's lock on rank 0, so that two runs never write into one folder (the second would
    /// rewrite the first's metrics and checkpoints, and sweep its save in progress). The lock file names its holder.
    /// Released when the trainer goes away, or by the kernel when the process ends, however it ends.
    /// - Returns: the lock file's descriptor on rank 0 (-1 on the others).
    /// - Throws: `TrainingError.resultFolderInUse` (75) naming the holder on every rank, `.io` if rank 0 cannot
    ///   create the folder or the lock file.
    static func lockResultFolder(_ dir: String, comm: Communicator) throws -> Int32 {
        let (locked, mine): (Int32, String) = comm.rank == 0 ? lockOnThisHost(dir) : (-1, "")
        var problem = mine
        if comm.worldSize > 1 {
            do { problem = String(decoding: try comm.broadcastBytes(Array(problem.utf8), root: 0), as: UTF8.self) } catch {
                if locked >= 0 { close(locked) }
                throw error
            }
        }
        if problem.hasPrefix("busy:") {
            throw TrainingError.resultFolderInUse(path: dir, holder: String(problem.dropFirst(5)))
        }
        if problem.hasPrefix("io:") { throw TrainingError.io(path: dir, reason: String(problem.dropFirst(3))) }
        return locked
    }

    /// Rank 0's part of `lockResultFolder`: the lock's descriptor (-1 if not taken) and the problem to tell every
    /// rank, "" for none, "busy:HOLDER" or "io:REASON".
    static func lockOnThisHost(_ dir: String) -> (fd: Int32, problem: String) {
        let path = "\(dir)/.lock"
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            return (-1, "io:cannot create the folder: \(FileErrorText.reason(error))")
        }
        // O_NOFOLLOW: a .lock that is a link would have its target rewritten; read-only when another user's
        // .lock is not writable (flock needs no write access; the holder line is then not written)
        var fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
        var readOnly = false
        if fd < 0 && errno == EACCES && FileManager.default.fileExists(atPath: path) {
            fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            readOnly = true
        }
        guard fd >= 0 else { return (-1, "io:cannot open \(path): \(String(cString: strerror(errno)))") }
        if flock(fd, LOCK_EX | LOCK_NB) == 0 {
            let me =
                "pid \(getpid()) on \(ProcessInfo.processInfo.hostName), since "
                + "\(ISO8601DateFormatter().string(from: Date()))\n"
            _ = ftruncate(fd, 0)
            _ = me.withCString { pwrite(fd, $0, strlen($0), 0) }
            return (fd, "")
        }
        let error = errno
        defer { close(fd) }
        if error == EWOULDBLOCK {
            var buf = [UInt8](repeating: 0, count: 512)
            let n = pread(fd, &buf, buf.count, 0)
            let holder = String(decoding: buf.prefix(max(0, n)), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            return (-1, "busy:" + (holder.isEmpty ? "holder unknown" : holder))
        }
        if readOnly {
            // NFS takes flock as a whole-file lock, which needs a writable descriptor (EBADF): this is another
            // user's lock file there, and going on unlocked could sweep their save in progress
            return (
                -1, "io:cannot lock \(path), another user's file (\(String(cString: strerror(error)))): ask them, "
                    + "or give this run another --result-dir"
            )
        }
        // a file system without locks (Lustre mounted without -o flock: ENOSYS; some NFS: ENOLCK): go on unlocked,
        // as before the lock existed, rather than refuse every run
        print(
            "[face2webtoon] warning: \(path): cannot lock (\(String(cString: strerror(error)))); a second run in this "
                + "folder would not be stopped")
        return (-1, "")
    }

    /// Every rank must see the result folder rank 0 sees (checkpoint shards, the demo data): rank 0 writes a probe
    /// file there and every rank looks for it. Hosts with a result folder each on a local disk would otherwise train
    /// to the end and save checkpoints with shards in other hosts' folders.
    /// - Throws: `TrainingError.io` if rank 0 cannot write there, `.invalidConfig` naming the ranks that do not see it.
    static func checkSharedResultFolder(_ dir: String, comm: Communicator) throws {
        guard comm.worldSize > 1 else { return }
        var name: [UInt8] = []
        if comm.rank == 0 {
            let n = ".f2w-shared-check-\(String(UInt64.random(in: 1...UInt64.max), radix: 16))"
            let made = (try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)) != nil
            if made && FileManager.default.createFile(atPath: "\(dir)/\(n)", contents: Data("face2webtoon\n".utf8)) {
                name = Array(n.utf8)
            }
        }
        name = try comm.broadcastBytes(name, root: 0)
        guard !name.isEmpty else {
            throw TrainingError.io(path: dir, reason: "rank 0 cannot create the result folder or a file in it")
        }
        let probe = "\(dir)/\(String(decoding: name, as: UTF8.self))"
        var seen = false
        for attempt in 0..<10 {  // a network file system may show a new file a moment late
            seen = FileManager.default.fileExists(atPath: probe)
            if seen { break }
            usleep(UInt32(50_000 * (attempt + 1)))
        }
        let all = try comm.allGather([seen ? 1 : 0])
        if comm.rank == 0 { try? FileManager.default.removeItem(atPath: probe) }
        let blind = all.indices.filter { all[$0] != [1] }
        guard blind.isEmpty else {
            throw TrainingError.invalidConfig([
                "rank\(blind.count == 1 ? "" : "s") \(blind.map(String.init).joined(separator: ", ")) do\(blind.count == 1 ? "es" : "") "
                    + "not see the result folder \(dir) as rank 0 does (a file rank 0 wrote there is missing): every "
                    + "rank writes its checkpoint shard there and reads the checkpoint from it, so it must be one shared "
                    + "folder (NFS, Lustre, ...; docs/distributed.md §5)"
            ])
        }
    }

    /// Every rank must resume from the same step (a rank that cannot see the checkpoint would start fresh).
    /// - Throws: `TrainingError.checkpoint` naming the first rank that differs from rank 0.
    static func checkSameStart(_ start: Int, comm: Communicator, path: String) throws {
        var mine = Int64(start)
        var starts = [Int64](repeating: 0, count: comm.worldSize)
        try withUnsafeBytes(of: &mine) { m in try starts.withUnsafeMutableBytes { try comm.allGather(m, into: $0) } }
        if let r = starts.indices.first(where: { starts[$0] != starts[0] }) {
            throw TrainingError.checkpoint(
                path: path,
                reason: "rank \(r) would start at step \(starts[r]) but rank 0 at step \(starts[0]): every rank must "
                    + "see the same checkpoint; use a shared result dir or copy the checkpoint to every host")
        }
    }

    /// Groups: the selected labels (default every group folder) and the head size K = the largest label + 1 (at
    /// least 2), when the data has group folders or labels, or groups were asked for.
    static func resolveGroups(
        _ config: inout TrainConfig, _ o: SessionOptions, data: String, progress: ((String, Int, Bool) -> Void)?
    ) throws {
        try DataLayout.check(root: data)
        func scan(_ domain: String) throws -> FolderScan {
            var s = try FolderScan.domain(data: data, domain, progress: progress.map { p in { p(domain, $0, false) } })
            // the groups a label CSV gives, not the flat folder's single one
            if let csv = domain == "A" ? o.labelsA : o.labelsB { s = try s.relabeled(csv: csv) }
            progress?(domain, s.files.count, true)
            return s
        }
        let probeA = try scan("A")
        let probeB = try scan("B")
        let grouped = probeA.isGrouped || probeB.isGrouped || o.labelsA != nil || o.labelsB != nil
        guard grouped || o.groups != nil else { return }
        let all = Array(0..<max(probeA.groupCount, probeB.groupCount))
        let selected = o.groups ?? all
        config.groups = GroupConfig(selected: selected, sampling: o.groupSampling)
        config.model.groups = max(all.count, (selected.max() ?? 0) + 1, 2)
    }

    /// Refuses a group selection that cannot work: a base group the selection leaves out (the bottleneck would never
    /// be updated), or another selection than the checkpoint's (its data position is per selected group; a resume
    /// continues the same run), and a checkpoint whose data position does not fit its own selection.
    /// - Throws: `TrainingError.invalidConfig` (64) for the options, `.checkpoint` (66) for a damaged data position.
    static func checkGroups(_ config: TrainConfig, resumed: (TrainConfig, TrainingCheckpoint.State)?, path: String)
        throws
    {
        if let g = config.groups, config.bottleneck == .group0, !g.selected.contains(config.baseGroup) {
            throw TrainingError.invalidConfig([
                "--base-group \(config.baseGroup) is not among the groups fed (\(g.selected)): with --bottleneck-update "
                    + "group0 the bottleneck would never be updated; pick a selected base group, or say "
                    + "--bottleneck-update frozen if that is meant"
            ])
        }
        guard let (saved, state) = resumed else { return }
        func describe(_ g: GroupConfig?) -> String { g.map { "groups \($0.selected)" } ?? "no groups" }
        if saved.groups?.selected != config.groups?.selected {
            throw TrainingError.invalidConfig([
                "the checkpoint was trained on \(describe(saved.groups)), this run feeds \(describe(config.groups)) "
                    + "(--groups, the data's group folders or --labels-a/-b): a resume continues the same data order; "
                    + "to train on other groups from these weights, start a new run in another --result-dir with --init-from \(path) "
                    + "(docs/groups.md, two-stage workflow)"
            ])
        }
        let slots = config.groups?.selected.count ?? 1
        if !state.dataCursors.isEmpty && (state.dataCursors.count != slots || state.dataCursors.contains { $0 < 0 }) {
            throw TrainingError.checkpoint(
                path: path,
                reason: "its data position (data_cursors \(state.dataCursors)) does not fit its \(slots) group slot(s)")
        }
    }

    /// ", or --shard-optimizer (...)" when sharding the optimizer state would save memory in this run.
    static func shardingHint(_ config: TrainConfig, _ worldSize: Int, need: MemoryEstimate) -> String {
        guard config.shardOptimizer != true, worldSize > 1 else { return "" }
        var c = config
        c.shardOptimizer = true
        let saved = need.total - MemoryEstimate(config: c, worldSize: worldSize, runtimeBytes: need.runtimeBytes).total
        return saved > 0
            ? ", or --shard-optimizer (ZeRO-1: \(String(format: "%.0f MB", Double(saved) / 1_048_576)) less per rank)" : ""
    }

    /// Prints the memory estimate per rank and refuses a run whose ranks on this host would not fit.
    /// - Throws: `TrainingError.insufficientMemory` (exit 69) unless `ignoreLimit`.
    static func checkMemory(_ config: TrainConfig, worldSize: Int, ignoreLimit: Bool, say: (String) -> Void) throws
        -> MemoryEstimate
    {
        let estimate = MemoryEstimate(config: config, worldSize: worldSize)
        let ranks = HostMemory.localRanks()
        say("[face2webtoon] memory (estimate): \(estimate.summary)")
        guard let (allowed, source) = HostMemory.allowance(localRanks: ranks, residentPerRank: estimate.runtimeBytes)
        else { return estimate }
        let need = estimate.total * ranks
        func mb(_ b: Int) -> String { String(format: "%.0f MB", Double(b) / 1_048_576) }
        if need > allowed {
            let message =
                "not enough memory: \(ranks) rank\(ranks == 1 ? "" : "s") on this host × \(mb(estimate.total)) = "
                + "\(mb(need)), but \(source) allows \(mb(allowed)) (\(estimate.summary)). Lower --img-size, --ch or "
                + "--batch-size, use --light, or start fewer ranks per host\(shardingHint(config, worldSize, need: estimate))"
                + "; --ignore-memory-limit starts anyway"
            if !ignoreLimit { throw TrainingError.insufficientMemory(message) }
            say("[face2webtoon] warning: \(message); starting anyway (--ignore-memory-limit)")
        }
        return estimate
    }
}
