import ArgumentParser
import Dataset
import Distributed
import Engine
import Foundation
import Training
import UGATIT

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train U-GAT-IT on DATA/trainA (faces) and DATA/trainB (webtoon).",
        discussion: """
        DATA holds trainA, trainB (and optionally testA, testB for sample grids), with images directly inside or in
        group folders 0..K-1. Writes metrics.jsonl, samples/*.png and checkpoint.safetensors to --result-dir, and
        resumes from that checkpoint when it exists.
        """)

    @Option(help: "Data folder with trainA and trainB.") var data: String?
    @Flag(help: "Train on the built-in procedurally drawn face/webtoon data set (generated into RESULT_DIR/demo-data).")
    var demo = false
    @Option(name: .customLong("result-dir"), help: "Output folder.") var resultDir = "results/run"
    @OptionGroup var model: ModelOptions
    @OptionGroup var process: RunOptions
    @Option(help: "Training steps (each: one D and one G update). Default 20000, or 1000 with --demo.") var iterations: Int?
    @Option(name: .customLong("batch-size"), help: "Images per domain per step.") var batchSize = 1
    @Option(help: "Seed of initialisation, data order and augmentation.") var seed: UInt64 = 0
    @Option(help: "Adam learning rate.") var lr = 1e-4
    @Option(name: .customLong("weight-decay"), help: "Adam coupled L2 weight decay.") var weightDecay = 1e-4
    @Flag(name: .customLong("no-decay"), help: "Keep the learning rate constant (default: linear decay to 0 over the second half).")
    var noDecay = false
    @Option(name: .customLong("adv-weight")) var advWeight: Float = 1
    @Option(name: .customLong("cycle-weight")) var cycleWeight: Float = 10
    @Option(name: .customLong("identity-weight")) var identityWeight: Float = 10
    @Option(name: .customLong("cam-weight")) var camWeight: Float = 1000
    @Option(name: .customLong("print-every"), help: "Progress line every N steps.") var printEvery = 10
    @Option(name: .customLong("sample-every"), help: "Sample grids every N steps (0: at the end only).") var sampleEvery: Int?
    @Option(name: .customLong("save-every"), help: "Checkpoint every N steps (0: at the end only).") var saveEvery = 1000
    @Option(help: "Resume from this checkpoint instead of RESULT_DIR/checkpoint.safetensors.") var resume: String?
    @Option(name: .customLong("bucket-mb"), help: "Gradient all-reduce bucket size in MB (under mpirun).") var bucketMB = 25.0
    @Option(name: .customLong("collective-timeout"), help: "Abort the job when a collective takes longer than this many seconds.")
    var collectiveTimeout = 600.0
    @Option(name: .customLong("debug-dump-gradients"), help: ArgumentHelp("Write the averaged gradients of step N to RESULT_DIR/grads_stepN.safetensors.", visibility: .hidden))
    var debugDumpGradients: Int?
    @Option(name: .customLong("debug-stall"), help: ArgumentHelp("RANK:STEP — that rank hangs before the step's first collective (watchdog test).", visibility: .hidden))
    var debugStall: String?

    func validate() throws {
        if data == nil && !demo { throw ValidationError("give --data DIR (with trainA and trainB) or --demo") }
        if data != nil && demo { throw ValidationError("--data and --demo exclude each other") }
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1") }
        if let i = iterations, i < 1 { throw ValidationError("--iterations must be at least 1") }
        if let t = process.threads, t < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func trainConfig() -> TrainConfig {
        let m = model.config(defaultSize: demo ? 64 : 96, defaultCh: 16)
        var w = LossWeights()
        w.adv = advWeight; w.cycle = cycleWeight; w.identity = identityWeight; w.cam = camWeight
        var o = OptimizerConfig()
        o.lr = lr; o.weightDecay = weightDecay; o.decay = !noDecay
        let its = iterations ?? (demo ? 1000 : 20000)
        return TrainConfig(model: m, weights: w, optimizer: o, iterations: its, batchSize: batchSize, seed: seed,
                           printEvery: printEvery, sampleEvery: sampleEvery ?? (demo ? 200 : 1000), saveEvery: saveEvery)
    }

    func run() throws {
        process.apply()
        let config = trainConfig()
        let problems = config.problems()
        if !problems.isEmpty { throw ValidationError(problems.joined(separator: "\n")) }
        let comm = try makeCommunicator()
        let parallel = DataParallel(comm: comm, bucketBytes: Int(bucketMB * 1_048_576), collectiveTimeout: collectiveTimeout)
        let isRoot = comm.rank == 0
        func say(_ s: String) { if isRoot { print(s) } }
        var dataDir = data ?? "\(resultDir)/demo-data"
        if demo && isRoot && !FileManager.default.fileExists(atPath: "\(dataDir)/trainA") {
            say("[face2webtoon] drawing the demo data set into \(dataDir)")
            try DemoData.generate(to: URL(fileURLWithPath: dataDir), size: config.model.imageSize + 30, trainPerDomain: 400,
                                  testPerDomain: 40, seed: 0)
        }
        try comm.barrier()   // the demo data exists before any rank reads it
        dataDir = (dataDir as NSString).standardizingPath
        let warnings = DataWarnings { print("[face2webtoon] warning: skipping \($0)") }
        let resumePath = resume ?? "\(resultDir)/checkpoint.safetensors"
        let hasCheckpoint = FileManager.default.fileExists(atPath: resumePath)
        if !hasCheckpoint && resume != nil { throw ValidationError("--resume \(resumePath): no such file") }
        let start = hasCheckpoint ? try Checkpoint.peek(path: resumePath).1.step + 1 : 1
        let source = try FolderBatches(data: dataDir, imageSize: config.model.imageSize, batchSize: config.batchSize,
                                       seed: config.seed, rank: comm.rank, worldSize: comm.worldSize, firstStep: start,
                                       warnings: warnings)
        say("[face2webtoon] data \(dataDir): trainA \(source.a.count) images, trainB \(source.b.count) images")
        let trainer = try Trainer(config: config, resultDir: resultDir, source: source, parallel: parallel) { print($0) }
        trainer.debugDumpGradientsAt = debugDumpGradients
        if let d = debugStall {
            let parts = d.split(separator: ":").compactMap { Int($0) }
            guard parts.count == 2 else { throw ValidationError("--debug-stall RANK:STEP") }
            trainer.debugStall = (parts[0], parts[1])
        }
        if hasCheckpoint {
            try trainer.resume(from: resumePath)
            say("[face2webtoon] resumed from \(resumePath) at step \(trainer.state.step)")
        } else {
            say("[face2webtoon] no checkpoint in \(resultDir): fresh start")
        }
        if isRoot {
            trainer.sampleImages = try FolderBatches.sampleImages(data: dataDir, imageSize: config.model.imageSize, n: 6, warnings: warnings)
            trainer.writePNG = { path, grid in try PNGCodec.write(RGBImage(width: grid.width, height: grid.height, pixels: grid.pixels), to: path) }
        }
        trainer.printBanner()
        try trainer.run()
        say("[face2webtoon] done: \(trainer.checkpointPath), samples in \(resultDir)/samples, metrics in \(resultDir)/metrics.jsonl")
        try comm.finalize()
    }
}
