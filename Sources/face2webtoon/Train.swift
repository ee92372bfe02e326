import ADA
import ArgumentParser
import Checkpoint
import Dataset
import Distributed
import Engine
import Foundation
import KID
import Monitoring
import Training
import UGATIT

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train U-GAT-IT on DATA/trainA (faces) and DATA/trainB (webtoon).",
        discussion: """
            DATA holds trainA, trainB (and optionally testA, testB for sample grids), with images directly inside or in
            group folders 0..K-1. Writes metrics.jsonl, samples/*.png and checkpoints/ to --result-dir, and resumes
            from the newest checkpoint there (three messages: fresh start, loaded, invalid).
            """)

    @Option(help: "Data folder with trainA and trainB.") var data: String?
    @Flag(help: "Train on the built-in procedurally drawn face/webtoon data set (generated into RESULT_DIR/demo-data).")
    var demo = false
    @Option(name: .customLong("result-dir"), help: "Output folder.") var resultDir = "results/run"
    @Option(name: .customLong("demo-images"), help: "With --demo: training images per domain.") var demoImages = 400
    @Option(name: .customLong("demo-test-images"), help: "With --demo: test images per domain.") var demoTestImages = 40
    @OptionGroup var model: ModelOptions
    @OptionGroup var process: RunOptions
    @Option(help: "Training steps (each: one D and one G update). Default 20000, or 1000 with --demo.") var iterations:
        Int?
    @Option(name: .customLong("batch-size"), help: "Images per domain per step.") var batchSize = 1
    @Option(help: "Seed of initialisation, data order and augmentation.") var seed: UInt64 = 0
    @Option(help: "Adam learning rate at global batch 1 (see --lr-scaling). Default \(Defaults.optimizer.lr).") var lr:
        Double?
    @Option(
        name: .customLong("lr-scaling"),
        help:
            "How the lr grows with the global batch B (all ranks): none (×1), sqrt (×√B) or linear (×B). See docs/convergence.md."
    )
    var lrScaling: LRScaling = .none
    @Option(
        name: .customLong("warmup-images"),
        help: "Linear lr warm-up from 0 over the first N images per domain (0: none).")
    var warmupImages = 0
    @Option(
        name: .customLong("weight-decay"),
        help: "Adam coupled L2 weight decay. Default \(Defaults.optimizer.weightDecay).")
    var weightDecay: Double?
    @Flag(
        name: .customLong("no-decay"),
        help: "Keep the learning rate constant (default: linear decay to 0 over the second half).")
    var noDecay = false
    @Option(name: .customLong("adv-weight"), help: "Adversarial loss weight. Default \(Defaults.weights.adv).")
    var advWeight: Float?
    @Option(name: .customLong("cycle-weight"), help: "Cycle loss weight. Default \(Defaults.weights.cycle).")
    var cycleWeight: Float?
    @Option(name: .customLong("identity-weight"), help: "Identity loss weight. Default \(Defaults.weights.identity).")
    var identityWeight: Float?
    @Option(name: .customLong("cam-weight"), help: "CAM loss weight. Default \(Defaults.weights.cam).") var camWeight:
        Float?
    @Option(name: .customLong("print-every"), help: "Progress line every N steps.") var printEvery = 10
    @Option(name: .customLong("sample-every"), help: "Sample grids every N steps (0: at the end only).")
    var sampleEvery: Int?
    @Option(name: .customLong("save-every"), help: "Checkpoint every N steps (0: at the end only).") var saveEvery =
        1000
    @Option(
        help:
            "Resume from this checkpoint (a checkpoint root, a step directory or a merged file) instead of RESULT_DIR/checkpoints."
    )
    var resume: String?
    @Option(
        name: .customLong("kid-every"),
        help: "Log KID (genA2B(testA) vs testB, FID Inception-v3) every N steps; needs the weights, see docs/kid.md.")
    var kidEvery: Int?
    @Option(
        name: .customLong("kid-weights"),
        help:
            "FID Inception-v3 weights (default: $F2W_INCEPTION_WEIGHTS or ~/.cache/face2webtoon/fid_inception_v3.safetensors)."
    )
    var kidWeights: String?
    @Option(
        name: .customLong("kid-subsets"),
        help: "KID during training: the number of subsets averaged (their spread is kid_std).")
    var kidSubsets = KIDMonitor.defaultSubsets
    @Option(name: .customLong("kid-subset-size"), help: "KID during training: images per set in each subset.")
    var kidSubsetSize = KIDMonitor.defaultSubsetSize
    @Option(
        name: .customLong("tensorboard"),
        help:
            "TensorBoard event files (scalars, sample grids, configuration) go here (default: RESULT_DIR/tensorboard).")
    var tensorBoard: String?
    @Flag(name: .customLong("no-tensorboard"), help: "Write no TensorBoard event files.") var noTensorBoard = false
    @Option(
        name: .customLong("stop-at"),
        help: "Stop after this step with a checkpoint, as SIGTERM would; run the same command again to continue.")
    var stopAt: Int?
    @Flag(
        name: .customLong("resume-fallback"),
        help: "If the newest checkpoint is invalid, resume from the newest valid older one.")
    var resumeFallback = false
    @Option(name: .customLong("keep-last"), help: "Keep the newest K checkpoints.") var keepLast = 3
    @Option(name: .customLong("keep-every"), help: "Also keep every checkpoint whose step is a multiple of M.")
    var keepEvery: Int?
    @Option(name: .customLong("checkpoint-level"), help: "zstd level of checkpoint shards (1 is fastest).")
    var checkpointLevel = 1
    @Option(name: .customLong("checkpoint-threads"), help: "zstd worker threads per rank when saving.")
    var checkpointThreads = 0
    @Option(
        help:
            "Groups to train, e.g. 0,1,3 (labels keep their numbers). Default: every group folder; none for flat folders."
    )
    var groups: String?
    @Option(
        name: .customLong("group-sampling"),
        help: "round-robin (every group the same number of steps) or proportional (to its images).")
    var groupSampling: GroupSampling = .roundRobin
    @Option(name: .customLong("labels-a"), help: "CSV of file,label for trainA (instead of group folders).")
    var labelsA: String?
    @Option(name: .customLong("labels-b"), help: "CSV of file,label for trainB.") var labelsB: String?
    @Flag(
        name: .customLong("no-group-loss"),
        help: "Compute and log the group classification terms but leave them out of the losses.")
    var noGroupLoss = false
    @Option(
        name: .customLong("group-weight-d"),
        help:
            "Weight of the discriminators' group classification loss on real images. Default \(Defaults.weights.groupD)."
    )
    var groupWeightD: Float?
    @Option(
        name: .customLong("group-weight-g"),
        help:
            "Weight of the generators' group classification loss on translated images. Default \(Defaults.weights.groupG)."
    )
    var groupWeightG: Float?
    @Flag(
        name: .customLong("group-heads-both-sides"),
        help: "Group heads on all four discriminators (default: B side only).")
    var groupHeadsBothSides = false
    @Option(
        name: .customLong("bottleneck-update"),
        help: "Encoder residual blocks: group0 (update on base-group steps only), frozen, or always.")
    var bottleneckUpdate: BottleneckUpdate = .group0
    @Option(name: .customLong("base-group"), help: "The base group of --bottleneck-update group0.") var baseGroup = 0
    @Option(
        name: .customLong("init-from"),
        help: "Start from the matching tensors of this checkpoint (e.g. a basic model), new ones initialised.")
    var initFrom: String?
    @Option(help: "Adaptive discriminator augmentation: adaptive (p follows r_t) or fixed (p stays --ada-p).")
    var ada: ADAConfig.Mode = .adaptive
    @Flag(name: .customLong("no-ada"), help: "No augmentation.") var noADA = false
    @Option(
        name: .customLong("ada-p"),
        help: "Initial (adaptive) or constant (fixed) augmentation strength p. Default \(Defaults.ada.p).")
    var adaP: Double?
    @Option(
        name: .customLong("ada-target"),
        help: "Target r_t: the mean sign(D(real) − 0.5) that ADA steers towards. Default \(Defaults.ada.target).")
    var adaTarget: Double?
    @Option(
        name: .customLong("ada-interval"), help: "Steps between strength adjustments. Default \(Defaults.ada.interval)."
    )
    var adaInterval: Int?
    @Option(
        name: .customLong("ada-kimg"), help: "Thousands of images for p to move by 1. Default \(Defaults.ada.kimg).")
    var adaKimg: Double?
    @Option(name: .customLong("ada-stats"), help: "Discriminator outputs feeding r_t: global, local or both.")
    var adaStats: ADAStats = .global
    @Option(name: .customLong("bucket-mb"), help: "Gradient all-reduce bucket size in MB (under mpirun).")
    var bucketMB = 25.0
    @Option(
        name: .customLong("collective-timeout"),
        help: "Abort the job when a collective takes longer than this many seconds.")
    var collectiveTimeout = 600.0
    @Option(
        name: .customLong("stall-warning"),
        help:
            "Under mpirun: warn after this many seconds waiting for ranks that have not reached a collective, naming them and their hosts, and again at each multiple (0: off)."
    )
    var stallWarning = 60.0
    @Flag(
        name: .customLong("ignore-memory-limit"),
        help: "Start even when the memory estimate exceeds what the ranks on this host may use.")
    var ignoreMemoryLimit = false
    @Option(
        name: .customLong("debug-dump-gradients"),
        help: ArgumentHelp(
            "Write the averaged gradients of step N to RESULT_DIR/grads_stepN.safetensors.", visibility: .hidden))
    var debugDumpGradients: Int?
    @Option(
        name: .customLong("debug-ada-force-sign"),
        help: ArgumentHelp(
            "S0,S1,... — rank r records sign S_r for every observed logit (test of the p heuristic).",
            visibility: .hidden))
    var debugADAForceSign: String?
    @Option(
        name: .customLong("debug-stall"),
        help: ArgumentHelp(
            "RANK:STEP — that rank hangs before the step's first collective (watchdog test).", visibility: .hidden))
    var debugStall: String?
    @Option(
        name: .customLong("debug-nan-gradients"),
        help: ArgumentHelp(
            "RANK:S1,S2,... — that rank's gradients are NaN at those steps (test of the skip-then-stop path).",
            visibility: .hidden))
    var debugNaNGradients: String?

    func validate() throws {
        if data == nil && !demo { throw ValidationError("give --data DIR (with trainA and trainB) or --demo") }
        if data != nil && demo { throw ValidationError("--data and --demo exclude each other") }
        var c = OptionChecks()
        model.check(&c)
        c.int("--threads", process.threads, 1...1024)
        c.int("--demo-images", demoImages, 1...1_000_000)
        c.int("--demo-test-images", demoTestImages, 0...1_000_000)
        c.int("--iterations", iterations, 1...1_000_000_000)
        c.int("--batch-size", batchSize, 1...4096)
        c.real("--lr", lr, 0...1, open: true)
        c.int("--warmup-images", warmupImages, 0...1_000_000_000_000)
        c.real("--weight-decay", weightDecay, 0...1)
        for (name, w) in [
            ("--adv-weight", advWeight), ("--cycle-weight", cycleWeight), ("--identity-weight", identityWeight),
            ("--cam-weight", camWeight), ("--group-weight-d", groupWeightD), ("--group-weight-g", groupWeightG),
        ] {
            c.real(name, w, 0...1e6)
        }
        c.int("--print-every", printEvery, 1...1_000_000_000)
        c.int("--sample-every", sampleEvery, 0...1_000_000_000)
        c.int("--save-every", saveEvery, 0...1_000_000_000)
        c.int("--kid-every", kidEvery, 0...1_000_000_000)
        c.int("--kid-subsets", kidSubsets, 1...100_000)
        c.int("--kid-subset-size", kidSubsetSize, 2...100_000)
        c.int("--stop-at", stopAt, 1...1_000_000_000)
        c.int("--keep-last", keepLast, 1...1_000_000)
        c.int("--keep-every", keepEvery, 1...1_000_000_000)
        c.int("--checkpoint-level", checkpointLevel, 1...19)
        c.int("--checkpoint-threads", checkpointThreads, 0...256)
        c.int("--base-group", baseGroup, 0...1023)
        c.real("--ada-p", adaP, 0...1)
        c.real("--ada-target", adaTarget, 0...1, open: true)
        c.int("--ada-interval", adaInterval, 1...1_000_000)
        c.real("--ada-kimg", adaKimg, 0...1e9, open: true)
        c.real("--bucket-mb", bucketMB, 0...65536, open: true)
        c.real("--collective-timeout", collectiveTimeout, 0...1e7, open: true)
        c.real("--stall-warning", stallWarning, 0...1e7)
        try c.throwIfAny()
    }

    /// The run's configuration from the options; model sizes left out come from `saved` (the checkpoint resumed).
    /// - Throws: `ValidationError` naming each size option that conflicts with `saved`.
    func trainConfig(saved: ModelConfig? = nil) throws -> TrainConfig {
        let m = try model.config(
            defaultSize: demo ? ModelOptions.defaultDemoImageSize : ModelOptions.defaultImageSize, saved: saved)
        var w = LossWeights()
        w.adv = advWeight ?? w.adv
        w.cycle = cycleWeight ?? w.cycle
        w.identity = identityWeight ?? w.identity
        w.cam = camWeight ?? w.cam
        var o = OptimizerConfig()
        o.lr = lr ?? o.lr
        o.weightDecay = weightDecay ?? o.weightDecay
        o.decay = !noDecay
        o.lrScaling = lrScaling
        o.warmupImages = warmupImages
        let its = iterations ?? (demo ? 1000 : 20000)
        var config = TrainConfig(
            model: m, weights: w, optimizer: o, iterations: its, batchSize: batchSize, seed: seed,
            printEvery: printEvery, sampleEvery: sampleEvery ?? (demo ? 200 : 1000), saveEvery: saveEvery)
        config.ada.mode = noADA ? .off : ada
        config.ada.p = adaP ?? config.ada.p
        config.ada.target = adaTarget ?? config.ada.target
        config.ada.interval = adaInterval ?? config.ada.interval
        config.ada.kimg = adaKimg ?? config.ada.kimg
        config.ada.useGlobal = adaStats != .local
        config.ada.useLocal = adaStats != .global
        config.weights.useGroupLoss = !noGroupLoss
        config.weights.groupD = groupWeightD ?? config.weights.groupD
        config.weights.groupG = groupWeightG ?? config.weights.groupG
        config.model.groupHeadsOnBothSides = groupHeadsBothSides
        config.bottleneck = bottleneckUpdate
        config.baseGroup = baseGroup
        return config
    }

    /// Prints the memory estimate per rank and refuses (exit 69) a run whose ranks on this host would not fit.
    func checkMemory(_ config: TrainConfig, isRoot: Bool, say: (String) -> Void) throws -> MemoryEstimate {
        let estimate = MemoryEstimate(config: config)
        let ranks = HostMemory.localRanks()
        say("[face2webtoon] memory (estimate): \(estimate.summary)")
        guard let (allowed, source) = HostMemory.allowance(localRanks: ranks, residentPerRank: estimate.runtimeBytes)
        else { return estimate }
        let need = estimate.total * ranks
        func mb(_ b: Int) -> String { String(format: "%.0f MB", Double(b) / 1_048_576) }
        if need > allowed {
            let message =
                "not enough memory: \(ranks) rank\(ranks == 1 ? "" : "s") on this host × \(mb(estimate.total)) = \(mb(need)), "
                + "but \(source) allows \(mb(allowed)) (\(estimate.summary)). Lower --img-size, --ch or --batch-size, use --light, "
                + "or start fewer ranks per host; --ignore-memory-limit starts anyway"
            if !ignoreMemoryLimit { throw TrainingError.insufficientMemory(message) }
            say("[face2webtoon] warning: \(message); starting anyway (--ignore-memory-limit)")
        }
        return estimate
    }

    func run() throws {
        process.apply()
        let comm = try makeCommunicator()
        let parallel = DataParallel(
            comm: comm, bucketBytes: Int(bucketMB * 1_048_576), collectiveTimeout: collectiveTimeout,
            stallWarning: stallWarning)
        let isRoot = comm.rank == 0
        func say(_ s: String) { if isRoot { print(s) } }
        // resume: a checkpoint given, or the newest under RESULT_DIR/checkpoints (leftovers of an interrupted save swept)
        let root = "\(resultDir)/checkpoints"
        if isRoot && resume == nil, let swept = try? Checkpoints.sweep(root: root), !swept.isEmpty {
            say(
                "[face2webtoon] removed \(swept.count) leftovers of an interrupted save: \(swept.joined(separator: ", "))"
            )
        }
        try comm.barrier()
        let reader = try openCheckpoint(root: root, say: say)
        let resumed = try reader.map { try TrainingCheckpoint.peek(path: $0.path) }
        var config = try trainConfig(saved: resumed?.0.model)
        let problems = config.problems()
        if !problems.isEmpty { throw ValidationError(problems.joined(separator: "\n")) }
        let start = (resumed?.1.step ?? 0) + 1
        // every rank must resume from the same step (a rank that cannot see the checkpoint would start fresh)
        var mine = Int64(start)
        var starts = [Int64](repeating: 0, count: comm.worldSize)
        try withUnsafeBytes(of: &mine) { m in try starts.withUnsafeMutableBytes { try comm.allGather(m, into: $0) } }
        if let r = starts.indices.first(where: { starts[$0] != starts[0] }) {
            throw TrainingError.checkpoint(
                path: resume ?? root,
                reason: "rank \(r) would start at step \(starts[r]) but rank 0 at step "
                    + "\(starts[0]): every rank must see the same checkpoint; use a shared result dir or copy the checkpoint to every host"
            )
        }
        var dataDir = data ?? "\(resultDir)/demo-data"
        if demo && isRoot && !FileManager.default.fileExists(atPath: "\(dataDir)/trainA") {
            say("[face2webtoon] drawing the demo data set into \(dataDir)")
            try DemoData.generate(
                to: URL(fileURLWithPath: dataDir), size: config.model.imageSize + 30, trainPerDomain: demoImages,
                testPerDomain: demoTestImages, seed: 0)
        }
        try comm.barrier()  // the demo data exists before any rank reads it
        dataDir = (dataDir as NSString).standardizingPath
        let warnings = DataWarnings { print("[face2webtoon] warning: skipping \($0)") }
        // groups: the selected labels (default every group folder), the head size K = the largest label + 1
        try DataLayout.check(root: dataDir)
        func scanned(_ domain: String) throws -> FolderScan {
            let line = isRoot ? ProgressLine(label: "scanning \(dataDir)/train\(domain)", total: nil, unit: "files") : nil
            defer { line?.finish() }
            return try FolderScan.domain(data: dataDir, domain, progress: line.map { l in { l.update($0) } })
        }
        let probeA = try scanned("A")
        let probeB = try scanned("B")
        let grouped = probeA.isGrouped || probeB.isGrouped || labelsA != nil || labelsB != nil
        if grouped || groups != nil {
            let all = Array(0..<max(probeA.groupCount, probeB.groupCount))
            let selected =
                try groups.map { list -> [Int] in
                    let v = list.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
                    guard !v.isEmpty, v.allSatisfy({ $0 >= 0 }), Set(v).count == v.count else {
                        throw ValidationError("--groups \(list): expected distinct labels like 0,1,3")
                    }
                    return v.sorted()
                } ?? all
            config.groups = GroupConfig(selected: selected, sampling: groupSampling)
            config.model.groups = max(all.count, (selected.max() ?? 0) + 1, 2)
        }
        let memory = try checkMemory(config, isRoot: isRoot, say: say)
        let source = try FolderBatches(
            data: dataDir, imageSize: config.model.imageSize, batchSize: config.batchSize,
            seed: config.seed, rank: comm.rank, worldSize: comm.worldSize, firstStep: start,
            iterations: config.iterations, groups: config.groups, labelsA: labelsA, labelsB: labelsB,
            startCursors: resumed.flatMap { $0.1.dataCursors.isEmpty ? nil : $0.1.dataCursors }, warnings: warnings)
        say("[face2webtoon] data \(dataDir): trainA \(source.a.count) images, trainB \(source.b.count) images")
        for skip in source.skippedPaths { say("[face2webtoon] warning: \(skip)") }
        let global = config.batchSize * comm.worldSize
        if global > min(source.a.count, source.b.count) {
            throw TrainingError.invalidConfig([
                "the global batch (--batch-size \(config.batchSize) × \(comm.worldSize) ranks = \(global)) is larger "
                    + "than the data set (trainA \(source.a.count), trainB \(source.b.count) images): lower --batch-size or use fewer ranks"
            ])
        }
        if let g = config.groups {
            for c in source.groupCounts {
                say(
                    "[face2webtoon]   group \(c.label): trainA \(c.a), trainB \(c.b)\(g.selected.contains(c.label) ? "" : " (not selected)")"
                )
            }
            say(
                "[face2webtoon] groups \(g.selected) fed \(g.sampling.rawValue); group loss \(config.weights.useGroupLoss ? "on" : "off (logged only)"); "
                    + "bottleneck update \(config.bottleneck.rawValue)")
        }
        let trainer = try Trainer(config: config, resultDir: resultDir, source: source, parallel: parallel) {
            print($0)
        }
        trainer.memoryEstimate = memory
        trainer.debugDumpGradientsAt = debugDumpGradients
        trainer.stopAt = stopAt
        if let every = kidEvery, every > 0 {
            trainer.kid = (
                every,
                try KIDMonitor(
                    data: dataDir, imageSize: config.model.imageSize, comm: comm,
                    weights: kidWeights ?? FIDInceptionV3.defaultWeightsPath,
                    subsets: kidSubsets, subsetSize: kidSubsetSize)
            )
        }
        if let f = debugADAForceSign {
            let signs = f.split(separator: ",").compactMap { Double($0) }
            guard signs.count == comm.worldSize else {
                throw ValidationError("--debug-ada-force-sign needs one sign per rank")
            }
            trainer.ada.forcedSign = signs[comm.rank]
        }
        if let d = debugStall {
            let parts = d.split(separator: ":").compactMap { Int($0) }
            guard parts.count == 2 else { throw ValidationError("--debug-stall RANK:STEP") }
            trainer.debugStall = (parts[0], parts[1])
        }
        if let d = debugNaNGradients {
            let parts = d.split(separator: ":")
            guard parts.count == 2, let r = Int(parts[0]) else {
                throw ValidationError("--debug-nan-gradients RANK:S1,S2,...")
            }
            trainer.debugNaNGradients = (r, Set(parts[1].split(separator: ",").compactMap { Int($0) }))
        }
        trainer.checkpointOptions = SaveOptions(
            level: checkpointLevel, workers: checkpointThreads, keepLast: keepLast, keepEvery: keepEvery)
        if let reader {
            try trainer.resume(from: reader)
            say(
                "[face2webtoon] checkpoint loaded: \(reader.path), step \(trainer.state.step), saved by \(trainer.state.worldSizeAtSave) "
                    + "rank\(trainer.state.worldSizeAtSave == 1 ? "" : "s"), now \(comm.worldSize)")
        } else {
            say("[face2webtoon] no checkpoint in \(root): fresh start")
            if let initFrom {
                let fresh = try trainer.initialize(from: initFrom)
                say(
                    "[face2webtoon] initialised from \(initFrom); \(fresh.count) tensors new: "
                        + fresh.filter { !$0.hasSuffix("_u") && !$0.hasSuffix("_v") }.joined(separator: ", "))
            }
        }
        if isRoot {
            trainer.sampleImages = try FolderBatches.sampleImages(
                data: dataDir, imageSize: config.model.imageSize, n: 6, warnings: warnings)
            trainer.encodePNG = { grid in
                try PNGCodec.encode(RGBImage(width: grid.width, height: grid.height, pixels: grid.pixels))
            }
            trainer.tensorBoardDirectory = noTensorBoard ? nil : (tensorBoard ?? "\(resultDir)/tensorboard")
        }
        trainer.printBanner()
        try trainer.run()
        say(
            "[face2webtoon] done: \(trainer.checkpointRoot), samples in \(resultDir)/samples, metrics in \(resultDir)/metrics.jsonl"
        )
        try comm.finalize()
    }

    /// The checkpoint to resume: --resume, else the newest under `root`; nil for a fresh start.
    /// - Throws: `CheckpointError` when --resume names no checkpoint, or when the checkpoint is invalid and
    ///   --resume-fallback is not given (or finds no valid older one).
    func openCheckpoint(root: String, say: (String) -> Void) throws -> CheckpointReader? {
        do {
            let r = try Checkpoints.open(resume ?? root)
            try r.verify()
            return r
        } catch CheckpointError.noCheckpoint(let path) {
            if resume != nil { throw CheckpointError.noCheckpoint(path: path) }
            return nil
        } catch {
            guard resumeFallback, let valid = Checkpoints.newestValid(root: resume ?? root) else {
                throw TrainingError.checkpoint(
                    path: resume ?? root,
                    reason: "present but invalid: \(error)\n"
                        + "(--resume-fallback resumes from the newest valid older one)")
            }
            for (dir, why) in valid.skipped { say("[face2webtoon] skipping invalid checkpoint \(dir): \(why)") }
            return valid.reader
        }
    }
}

enum ADAStats: String, ExpressibleByArgument { case global, local, both }
extension ADAConfig.Mode: ExpressibleByArgument {}
extension LRScaling: ExpressibleByArgument {}
extension GroupSampling: ExpressibleByArgument {}
extension BottleneckUpdate: ExpressibleByArgument {}

/// The defaults of the training options, read from the configuration types that own them (one place each), for
/// `--help`.
enum Defaults {
    static let optimizer = OptimizerConfig()
    static let weights = LossWeights()
    static let ada = ADAConfig()
}
