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
            DATA holds trainA, trainB (and optionally testA, testB for sample grids), with images directly inside or in \
            group folders 0..K-1. Writes metrics.jsonl, samples/*.png, tensorboard/ and checkpoints/ to --result-dir. \
            A run resumes from the newest checkpoint there (--resume PATH: another one), and says which: "fresh start", \
            "checkpoint loaded", or, for a damaged one, why it cannot be used.
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
        help: ArgumentHelp(
            "How the lr grows with the global batch B (all ranks): none (×1), sqrt (×√B) or linear (×B), up to "
                + "--lr-scaling-max-batch. The default, linear, is what the convergence study measured best at B = 4 "
                + "and 8 (docs/convergence.md)."))
    var lrScaling: LRScaling = Defaults.optimizer.lrScaling
    @Option(
        name: .customLong("lr-scaling-max-batch"),
        help: ArgumentHelp(
            "The global batch above which --lr-scaling stops raising the lr (0: no cap). The default is the largest "
                + "global batch the convergence study measured."))
    var lrScalingMaxBatch = Defaults.optimizer.lrScalingMaxBatch
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
    @Option(name: .customLong("sample-every"), help: "Sample grids every N steps (0: at the end only). Default 1000 (200 with --demo).")
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
    @OptionGroup var exchange: ExchangeOptions
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
    @Option(name: .customLong("checkpoint-threads"), help: "zstd worker threads per rank when saving (0...64; 0 or 1: on the saving thread).")
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
        c.int("--demo-images", demoImages, 1...1_000_000)
        c.int("--demo-test-images", demoTestImages, 0...1_000_000)
        c.int("--iterations", iterations, 1...1_000_000_000)
        c.int("--batch-size", batchSize, 1...4096)
        c.real("--lr", lr, 0...1, open: true)
        c.int("--warmup-images", warmupImages, 0...1_000_000_000_000)
        c.int("--lr-scaling-max-batch", lrScalingMaxBatch, 0...1_000_000_000)
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
        c.int("--checkpoint-threads", checkpointThreads, 0...64)  // SaveOptions' range
        c.int("--base-group", baseGroup, 0...1023)
        c.real("--ada-p", adaP, 0...1)
        c.real("--ada-target", adaTarget, 0...1, open: true)
        c.int("--ada-interval", adaInterval, 1...1_000_000)
        c.real("--ada-kimg", adaKimg, 0...1e9, open: true)
        c.real("--bucket-mb", exchange.bucketMB, 0...65536, open: true)
        c.real("--collective-timeout", collectiveTimeout, 0...1e7, open: true)
        c.real("--stall-warning", stallWarning, 0...1e7)
        if exchange.shardOptimizer && debugDumpGradients != nil {
            throw ValidationError(
                "--debug-dump-gradients needs every averaged gradient on rank 0; with --shard-optimizer each rank "
                    + "holds only its share: leave one of them out")
        }
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
        o.lrScalingMaxBatch = lrScalingMaxBatch
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
        config.fcExchange = exchange.fcExchange
        config.gradWire = exchange.gradWire == .fp32 ? nil : exchange.gradWire
        config.shardOptimizer = exchange.shardOptimizer ? true : nil
        return config
    }

    /// The session options (data, resume, groups, KID, hooks) from the command line.
    /// - Throws: `ValidationError` for malformed --groups and debug hooks.
    func sessionOptions() throws -> SessionOptions {
        var o = SessionOptions(resultDir: resultDir)
        o.data = data
        o.demo = demo ? (demoImages, demoTestImages) : nil
        o.resume = resume
        o.resumeFallback = resumeFallback
        o.initFrom = initFrom
        o.groups = try groups.map { list -> [Int] in
            let v = list.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !v.isEmpty, v.allSatisfy({ (0...FolderScan.maxLabel).contains($0) }), Set(v).count == v.count else {
                throw ValidationError(
                    "--groups \(list): expected distinct labels in 0...\(FolderScan.maxLabel) like 0,1,3")
            }
            return v.sorted()
        }
        o.groupSampling = groupSampling
        o.labelsA = labelsA
        o.labelsB = labelsB
        if let every = kidEvery, every > 0 {
            o.kid = (every, kidWeights ?? FIDInceptionV3.defaultWeightsPath, kidSubsets, kidSubsetSize)
        }
        o.tensorBoard = noTensorBoard ? nil : (tensorBoard ?? "\(resultDir)/tensorboard")
        o.save = SaveOptions(
            level: checkpointLevel, workers: checkpointThreads, keepLast: keepLast, keepEvery: keepEvery)
        o.ignoreMemoryLimit = ignoreMemoryLimit
        o.overlap = !exchange.noOverlap
        o.stopAt = stopAt
        o.debugDumpGradientsAt = debugDumpGradients
        if let f = debugADAForceSign { o.debugADAForcedSigns = f.split(separator: ",").compactMap { Double($0) } }
        if let d = debugStall {
            let parts = d.split(separator: ":").compactMap { Int($0) }
            guard parts.count == 2 else { throw ValidationError("--debug-stall RANK:STEP") }
            o.debugStall = (parts[0], parts[1])
        }
        if let d = debugNaNGradients {
            let parts = d.split(separator: ":")
            guard parts.count == 2, let r = Int(parts[0]) else {
                throw ValidationError("--debug-nan-gradients RANK:S1,S2,...")
            }
            o.debugNaNGradients = (r, Set(parts[1].split(separator: ",").compactMap { Int($0) }))
        }
        return o
    }

    func run() throws {
        process.apply()
        let options = try sessionOptions()
        let comm = try makeCommunicator()
        let parallel = DataParallel(
            comm: comm, bucketBytes: Int(exchange.bucketMB * 1_048_576), collectiveTimeout: collectiveTimeout,
            stallWarning: stallWarning)
        func say(_ s: String) { if comm.rank == 0 { print(s) } }
        var scan: ProgressLine?
        let trainer = try TrainingSession.prepare(
            options, parallel: parallel, makeConfig: { try trainConfig(saved: $0) },
            scanProgress: { domain, files, finished in
                let line = scan ?? ProgressLine(label: "scanning train\(domain)", total: nil, unit: "files")
                line.update(files)
                if finished { line.finish() }
                scan = finished ? nil : line
            }, say: say)
        trainer.printBanner()
        try trainer.run()
        say(
            "[face2webtoon] done: \(trainer.checkpointRoot), samples in \(resultDir)/samples, metrics in \(resultDir)/metrics.jsonl"
        )
        try comm.finalize()
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
