import ADA
import Checkpoint
import Dataset
import Engine
import Foundation
import UGATIT

/// The training loop of one rank (data-parallel under mpirun, `DataParallel`): learning-rate schedule, steps, metrics.jsonl, sample grids, checkpoints.
public final class Trainer {
    public let config: TrainConfig
    public let model: UGATITModel
    public let step: UGATITStep
    /// Whether each phase's all-reduce overlaps its backward pass (`train --no-overlap` turns it off).
    public var overlap = true
    /// The generators' FC.0 weights whose gradients go by the exact low-rank exchange (`FCExchange`), if any.
    public private(set) var lowRank: [(Parameter, LowRankGradient)] = []
    /// Adaptive discriminator augmentation (strengths p_A, p_B and their statistics).
    public let ada: AdaptiveAugment
    public let resultDir: String
    let source: BatchSource
    let log: (String) -> Void
    /// Fixed images shown in the sample grids: (A images, B images), each [N, 3, S, S].
    public var sampleImages: (a: Tensor, b: Tensor)?
    /// Encodes an RGB8 image as PNG (injected so that this target does not depend on an image codec).
    public var encodePNG: ((SampleGrid.RGB8) throws -> [UInt8])?
    /// TensorBoard event files go here (rank 0); nil: none.
    public var tensorBoardDirectory: String?
    /// metrics.jsonl and TensorBoard (rank 0, while `run` runs).
    private var runLog: RunLog?
    public private(set) var state = TrainingCheckpoint.State(step: 0, imagesSeen: 0)
    /// zstd level, threads and retention of the checkpoints.
    public var checkpointOptions = SaveOptions(keepLast: 3)
    /// Rank 0's lock on the result folder (`TrainingSession.lockResultFolder`), released when `run` returns or with
    /// the trainer.
    var resultFolderLock: Int32 = -1

    deinit { releaseResultFolder() }

    func releaseResultFolder() {
        if resultFolderLock >= 0 { close(resultFolderLock) }
        resultFolderLock = -1
    }
    private var adaLog: [String: Double] = [:]
    private var lastSaved = -1
    private var lastSampled = -1
    /// KID every N steps (see `KIDMonitor`); nil: off.
    public var kid: (every: Int, monitor: KIDMonitor)?
    /// Global batch of the run that wrote the checkpoint resumed from (nil: fresh start, or unknown).
    public private(set) var resumedGlobalBatch: Int?
    /// The optimizer settings the checkpoint was trained with (the banner says when the lr rule changed).
    public private(set) var resumedOptimizer: OptimizerConfig?
    /// The `--iterations` of the run that wrote the checkpoint (the banner says when the decay's length changed).
    public private(set) var resumedIterations: Int?
    /// The resumed checkpoint's save ID (every rank must resume the same save, not only the same step).
    public private(set) var resumedSaveID: String?
    /// Images per domain per step, over all ranks.
    public var globalBatch: Int { config.batchSize * parallel.worldSize }
    /// Stop after this step with a checkpoint (a time-boxed run; the same command continues it).
    public var stopAt: Int?
    /// Some rank received SIGTERM or SIGINT: every rank saves after this step and stops.
    public private(set) var stopRequested = false
    /// Gradient averaging over the ranks (a world of one without mpirun).
    public let parallel: DataParallel
    public var isRoot: Bool { parallel.rank == 0 }
    /// Stop after this many consecutive updates skipped for non-finite gradients.
    public var maxNonFiniteSteps = 3
    /// Debug: write the averaged gradients of this step to RESULT_DIR/grads_step<N>.safetensors (rank 0).
    public var debugDumpGradientsAt: Int?
    /// Debug: this (rank, step) stops before its first collective of the step, to test the watchdog.
    public var debugStall: (rank: Int, step: Int)?
    /// The start-up memory estimate, compared with the peak resident memory when the run ends.
    public var memoryEstimate: MemoryEstimate?
    /// Test hook: this rank's gradients are made NaN at these steps (before the all-reduce).
    public var debugNaNGradients: (rank: Int, steps: Set<Int>)?
    /// The next step's batch and the real half of its D phase, taken while this step's G all-reduce was on the wire
    /// (`judgeAhead`); the batch's error, if drawing it failed, is thrown at that step.
    private var ahead: JudgedAhead?
    /// Whether the last step's D phase used a real half judged ahead (metrics.jsonl `d_real_ahead`).
    private var lastJudgedAhead = false

    /// - Throws: `TrainingError.invalidConfig` listing every problem; `TrainingError.io` if `resultDir` cannot be made.
    /// On ranks other than 0 nothing is logged or written; `run` starts from rank 0's parameters on every rank.
    public init(
        config: TrainConfig, resultDir: String, source: BatchSource, parallel: DataParallel,
        log: @escaping (String) -> Void
    ) throws {
        let problems = config.problems()
        guard problems.isEmpty else { throw TrainingError.invalidConfig(problems) }
        self.config = config
        self.resultDir = resultDir
        self.source = source
        self.parallel = parallel
        self.log = parallel.rank == 0 ? log : { _ in }
        model = UGATITModel(config: config.model, seed: config.seed)
        step = UGATITStep(model: model, weights: config.weights, optimizer: config.optimizer)
        ada = AdaptiveAugment(config: config.ada, seed: config.seed)
        step.augment = ada
        parallel.gradWire = config.gradWire ?? .fp32
        lowRank = (config.fcExchange ?? .auto).attach(
            to: model, worldSize: parallel.worldSize, batchPerRank: config.batchSize)
        if config.shardOptimizer == true {
            parallel.shardOptimizer(step.dOptimizer, store: model.discriminators)
            parallel.shardOptimizer(step.gOptimizer, store: model.generators, lowRank: lowRank)
        }
        try parallel.checkAgreement(config: config, model: model)
        guard parallel.rank == 0 else { return }
        for d in [resultDir, "\(resultDir)/samples"] {
            do { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) } catch {
                throw TrainingError.io(path: d, reason: "cannot create directory: \(FileErrorText.reason(error))")
            }
        }
    }

    /// Where checkpoints go: one directory per saved step and a LATEST pointer (docs/checkpoint-format.md).
    public var checkpointRoot: String { "\(resultDir)/checkpoints" }

    /// Continues from a checkpoint: parameters, buffers, Adam state, step, ADA state, data position.
    /// The world size may differ from the one that saved it.
    public func resume(from r: CheckpointReader) throws {
        let saved = try TrainingCheckpoint.config(r)
        guard saved.model == config.model else {
            throw TrainingError.checkpoint(
                path: r.path,
                reason: "was trained with another model configuration:\n  "
                    + ModelConfig.differences(saved.model, config.model).joined(separator: "\n  "))
        }
        state = try TrainingCheckpoint.load(r, into: model, step: step)
        if let a = state.ada { ada.state = a }
        resumedGlobalBatch = state.globalBatchAtSave ?? saved.batchSize * state.worldSizeAtSave
        resumedOptimizer = saved.optimizer
        resumedIterations = saved.iterations
        resumedSaveID = r.manifest.saveID
    }

    /// What every rank must share beyond the configuration (`DataParallel.checkAgreement(settings:)`): overlap decides
    /// the order of a phase's collectives and whether the next step's real half runs behind the G all-reduce; the
    /// others when the ranks stop, measure KID or save, the data they read and the save they resumed.
    var runSettings: String {
        let c = checkpointOptions
        return "overlap \(overlap), --stop-at \(stopAt.map(String.init) ?? "none"), KID "
            + (kid.map { "every \($0.every), \($0.monitor.subsets)×\($0.monitor.subsetSize)" } ?? "off")
            + ", checkpoints level \(c.level) keep-last \(c.keepLast.map(String.init) ?? "all") keep-every "
            + "\(c.keepEvery.map(String.init) ?? "none") chunk \(c.chunkBytes) shuffle \(c.shuffle), data "
            + "\(source.agreement), resumed save \(resumedSaveID ?? "none")"
    }

    /// Prints the run's configuration, parameter counts, images to be seen and an ETA basis.
    public func printBanner() {
        let m = config.model
        log(
            "[face2webtoon] img \(m.imageSize) ch \(m.ch) n_res \(m.blocks) \(m.light ? "light" : "full") "
                + "D layers global \(m.globalLayers) local \(m.localLayers) batch \(config.batchSize) iterations \(config.iterations) seed \(config.seed)"
        )
        log(
            "[face2webtoon] parameters: generators \(model.generators.parameterCount) (each \(model.generators.parameterCount / 2)), "
                + "discriminators \(model.discriminators.parameterCount)")
        let remaining = config.iterations - state.step
        let n = parallel.worldSize
        log("[face2webtoon] world size \(n), batch per rank \(config.batchSize), global batch \(n * config.batchSize)")
        if n > 1 {
            let buckets = [parallel.bucketCount(model.discriminators), parallel.bucketCount(model.generators, lowRank: lowRank)]
            log(
                "[face2webtoon] gradient all-reduce in buckets of up to \(parallel.bucketElements) floats: D \(buckets[0]), G \(buckets[1]) per step"
            )
            log(
                "[face2webtoon] FC.0 gradients: "
                    + (lowRank.isEmpty
                        ? "dense (in the all-reduce)"
                        : "exact low-rank exchange (all-gather of \(FCExchange.callsPerImage * config.batchSize) rows of "
                            + "inputs and output gradients per rank and generator)"))
            if parallel.isSharded(model.generators) {
                let (g, d) = (step.gOptimizer, step.dOptimizer)
                let kept = [g, d].reduce(0) { $0 + $1.m.reduce(0) { $0 + $1.count } }
                let whole = model.generators.parameterCount + model.discriminators.parameterCount
                log(
                    "[face2webtoon] optimizer state sharded (ZeRO-1): this rank keeps Adam moments for \(kept) of "
                        + "\(whole) parameters; gradients reduce-scattered, parameters all-gathered"
                        + (lowRank.isEmpty ? "" : " (FC.0's moments whole on every rank: low-rank exchange)"))
            }
        }
        if n == 1 && config.shardOptimizer == true {
            log("[face2webtoon] --shard-optimizer: nothing to shard on one rank; the Adam state stays whole")
        }
        guard remaining > 0 else {
            log(
                "[face2webtoon] the checkpoint is at step \(state.step) of --iterations \(config.iterations): nothing to "
                    + "train (a larger --iterations continues it, with the lr decay stretched to the new length)")
            return
        }
        log(
            "[face2webtoon] steps \(state.step + 1)...\(config.iterations): \(remaining * config.batchSize * n) images per domain to be seen"
        )
        if let stopAt, stopAt <= state.step {
            log(
                "[face2webtoon] --stop-at \(stopAt) is at or before the checkpoint's step \(state.step): it does not "
                    + "apply, and training continues to step \(config.iterations)")
        }
        for line in learningRateBanner() { log("[face2webtoon] \(line)") }
    }

    /// The lr rule, the effective lr of the next step, and what a change of global batch at resume does to it.
    func learningRateBanner() -> [String] {
        let o = config.optimizer
        let b = globalBatch
        let kb = o.scalingBatch(b)
        let capped = kb < b ? ", capped at --lr-scaling-max-batch \(o.lrScalingMaxBatch)" : ""
        let factor = o.lrScaling == .sqrt ? "√\(kb)" : "\(kb)"
        let rule =
            o.lrScaling == .none
            ? "lr \(o.lr) (--lr-scaling none)"
            : "lr \(o.lr) × \(factor) = \(o.scaledLearningRate(globalBatch: b)) (--lr-scaling \(o.lrScaling), global batch \(b)\(capped))"
        let next = min(state.step + 1, config.iterations)
        let lr = o.learningRate(
            step: next, iterations: config.iterations, globalBatch: b, imagesSeen: state.imagesSeen + b)
        var out = [
            "\(rule); warm-up \(o.warmupImages > 0 ? "over \(o.warmupImages) images" : "off"); "
                + (o.decay
                    ? "linear decay to 0 over steps \(config.iterations / 2 + 1)...\(config.iterations)" : "no decay")
                + "; effective lr at step \(next): \(String(format: "%.4g", lr))"
        ]
        // only where the two rules give another lr at this global batch (a cap above it, or none's cap, changes nothing)
        if let saved = resumedOptimizer, saved.scaledLearningRate(globalBatch: b) != o.scaledLearningRate(globalBatch: b) {
            let cap = { (c: OptimizerConfig) in c.lrScalingMaxBatch > 0 ? "max batch \(c.lrScalingMaxBatch)" : "no cap" }
            out.append(
                "the checkpoint was trained with --lr-scaling \(saved.lrScaling) (\(cap(saved))), this run uses "
                    + "\(o.lrScaling) (\(cap(o))): pass --lr-scaling \(saved.lrScaling) --lr-scaling-max-batch "
                    + "\(saved.lrScalingMaxBatch) to keep the checkpoint's rule")
        }
        if let before = resumedIterations, before != config.iterations, o.decay {
            let then = (resumedOptimizer ?? o).learningRate(
                step: next, iterations: before, globalBatch: b, imagesSeen: state.imagesSeen + b)
            out.append(
                "--iterations \(config.iterations), the checkpoint's run had \(before): the linear decay follows the new "
                    + "length (lr at step \(next): \(String(format: "%.4g", lr)), \(String(format: "%.4g", then)) with "
                    + "\(before))")
        }
        if let before = resumedGlobalBatch, before != b {
            out.append(
                "global batch \(before) at the checkpoint, \(b) now: the base lr follows the new global batch "
                    + "(\((resumedOptimizer ?? o).scaledLearningRate(globalBatch: before)) → "
                    + "\(o.scaledLearningRate(globalBatch: b))); the warm-up "
                    + "continues from \(state.imagesSeen) images seen and the decay from global step \(state.step)")
        }
        return out
    }

    /// Runs the remaining steps. Returns the loss values of the last step.
    @discardableResult
    public func run() throws -> LossValues {
        runLog =
            isRoot
            ? try RunLog(
                resultDir: resultDir, tensorBoardDirectory: tensorBoardDirectory, firstStep: state.step + 1,
                warn: { [log] in log("[face2webtoon] \($0)") })
            : nil
        defer {
            runLog = nil
            releaseResultFolder()
        }
        runLog?.text(tag: "config", configurationMarkdown(), step: state.step + 1)
        if isRoot { try AtomicFile.write(Data(config.json().utf8), to: "\(resultDir)/config.json") }
        var skippedInARow = 0
        StopSignal.install()
        try parallel.checkAgreement(settings: runSettings)
        // every rank starts from rank 0's parameters and buffers (after any resume)
        try parallel.broadcastState(model)
        var last: LossValues = [:]
        let start = Date()
        let elapsedBefore = state.elapsedSeconds
        var kidSeconds = 0.0  // monitoring, not training: left out of elapsed_seconds
        let first = state.step + 1
        guard first <= config.iterations else { return last }
        for s in first...config.iterations {
            let lr = config.optimizer.learningRate(
                step: s, iterations: config.iterations, globalBatch: globalBatch,
                imagesSeen: state.imagesSeen + globalBatch)
            step.setLearningRate(lr)
            let wait0 = source.waitSeconds
            let t0 = Date()
            let (a, b) = try batch(step: s)
            parallel.watchdog.step = s
            let (values, skipped) = try synchronizedStep(s, a, b)
            last = values
            skippedInARow = skipped ? skippedInARow + 1 : 0
            if skippedInARow >= maxNonFiniteSteps {
                throw TrainingError.nonFinite(
                    "stopping at step \(s): \(skippedInARow) consecutive steps had non-finite gradients "
                        + "(lower --lr, or check the data); the last checkpoint was left as it was")
            }
            let dt = Date().timeIntervalSince(t0)
            state.step = s
            state.imagesSeen += globalBatch
            state.elapsedSeconds = elapsedBefore + Date().timeIntervalSince(start) - kidSeconds
            if state.dataCursors.count != source.groupSlots {
                state.dataCursors = [Int](repeating: 0, count: source.groupSlots)
            }
            state.dataCursors[source.groupSlot(step: s)] += config.batchSize * parallel.worldSize
            var record: [String: Any] = [
                "step": s, "lr": lr, "seconds_per_step": dt,
                "images_per_second": Double(config.batchSize * parallel.worldSize) / dt,
                "data_wait_seconds": source.waitSeconds - wait0, "d_real_ahead": lastJudgedAhead ? 1 : 0,
                "g_b2a_ahead": step.usedTranslationAhead ? 1 : 0,
                "images_seen": state.imagesSeen, "elapsed_seconds": state.elapsedSeconds,
            ]
            for (k, v) in last { record[k] = Double(v) }
            record["ada.p_A"] = ada.state.p[0]
            record["ada.p_B"] = ada.state.p[1]
            for (k, v) in adaLog { record[k] = v }
            adaLog = [:]
            if let kid, s % kid.every == 0 || s == config.iterations {
                let k0 = Date()
                if let r = try kid.monitor.measure(model, watchdog: parallel.watchdog) {
                    record["kid"] = r.kid
                    record["kid_std"] = r.std
                    record["kid_subsets"] = r.subsets
                    record["kid_subset_size"] = r.subsetSize
                    log(
                        String(
                            format: "step %d: KID %.5f ± %.5f (KID×1000 %.2f, %d subsets of %d)", s, r.kid, r.std,
                            r.kid * 1000, r.subsets, r.subsetSize))
                }
                kidSeconds += Date().timeIntervalSince(k0)
            }
            runLog?.write(record, step: s)
            if s == first || s % config.printEvery == 0 || s == config.iterations {
                let elapsed = Date().timeIntervalSince(start)
                let done = Double(s - first + 1)
                let eta = elapsed / done * Double(config.iterations - s)
                log(
                    String(
                        format:
                            "step %d/%d | d_loss %.4f | g_loss %.4f | rec %.4f | idt %.4f | %.3f s/it | %.2f img/s | ETA %@",
                        s, config.iterations, last[LossKey.dLoss] ?? .nan, last[LossKey.gLoss] ?? .nan,
                        ((last[LossKey.recA] ?? 0) + (last[LossKey.recB] ?? 0)) / 2,
                        ((last[LossKey.idtA] ?? 0) + (last[LossKey.idtB] ?? 0)) / 2,
                        elapsed / done, done * Double(config.batchSize * parallel.worldSize) / elapsed,
                        formatDuration(eta)))
            }
            if config.sampleEvery > 0 && s % config.sampleEvery == 0 { writeSamplesOrWarn() }
            if stopRequested || s == stopAt {
                log(
                    stopRequested
                        ? "[face2webtoon] stop requested (SIGTERM/SIGINT/SIGHUP): saving the checkpoint at step \(s) and stopping"
                        : "[face2webtoon] --stop-at \(s): saving the checkpoint and stopping")
                try verifyAgreement()
                try save()
                writeSamplesOrWarn()  // after the save (a stop may have little time): a stopped run has grids too
                return last
            }
            if config.saveEvery > 0 && s % config.saveEvery == 0 {
                // a step whose update was skipped is not a good point to resume from: the previous checkpoint stays
                // current until an update succeeds again (or the run stops on non-finite values)
                if skippedInARow > 0 {
                    log(
                        "[face2webtoon] not saving step \(s): its update was skipped (non-finite gradients); the previous checkpoint stays current"
                    )
                } else {
                    try verifyAgreement()
                    try save()
                }
            }
        }
        if skippedInARow > 0 {
            throw TrainingError.nonFinite(
                "the run ended with \(skippedInARow) skipped update(s) in a row (non-finite gradients); "
                    + "the final checkpoint was not written, the last one stays current")
        }
        writeSamplesOrWarn()
        if lastSaved != state.step {
            try verifyAgreement()
            try save()
        }
        if let e = memoryEstimate, let peak = HostMemory.peakResidentBytes() {
            log(
                String(
                    format:
                        "[face2webtoon] peak resident memory %.0f MB (tensors at most %.0f MB at once); the estimate was %.0f MB (%.2f of the peak)",
                    Double(peak) / 1_048_576, Double(TensorMemory.peakBytes) / 1_048_576, Double(e.total) / 1_048_576,
                    Double(e.total) / Double(peak)))
        }
        return last
    }

    /// One step with gradients averaged over the ranks; an update is skipped on every rank together when any
    /// rank's gradient is not finite. Returns the (rank-averaged) loss values and whether an update was skipped.
    func synchronizedStep(_ s: Int, _ a: Batch, _ b: Batch) throws -> (LossValues, skipped: Bool) {
        if let st = debugStall, st.rank == parallel.rank, st.step == s {
            log("debug: rank \(st.rank) stalls at step \(s)")
            while true { Thread.sleep(forTimeInterval: 3600) }
        }
        var dump: [(String, Tensor)] = []
        var nonFiniteParameter: String?
        var skipped = false
        let n = parallel.worldSize
        let early = ahead.flatMap { $0.step == s ? $0.real : nil }
        ahead = nil
        lastJudgedAhead = early != nil
        ada.beginStep(s, globalIndices: globalIndices, callsMade: early?.augmentCalls ?? 0)
        let grouped = config.groups != nil
        let (la, lb) = grouped ? (a.groups, b.groups) : (nil, nil)
        step.frozenGenerator = frozenBottleneck(group: la?.first)
        // A phase: gradients (each bucket's all-reduce starting while backward still runs, DataParallel.begin), then
        // `complete` waits for the collectives and applies the update. The D phase is completed inside the G phase,
        // once the generators' forward passes and the backward of the G loss's own terms are done
        // (UGATITStep.beforeJudging): its all-reduce runs behind them.
        func start(_ p: Phase, _ store: ParameterStore, _ compute: () -> LossValues, apply: @escaping () -> Void)
            -> (averaging: PhaseAverage, complete: () -> LossValues)
        {
            let averaging = parallel.begin(
                store, operation: p.tag, lowRank: p == .generator ? lowRank : [], overlap: overlap && n > 1)
            // debug: a NaN in this rank's first gradient, put there before its bucket can be on the wire
            let injectNaN = debugNaNGradients.map { $0.rank == parallel.rank && $0.steps.contains(s) } ?? false
            if averaging.overlap {
                step.onGradientFinal = { [store] q in
                    if injectNaN && q.offset == 0 && store.grads.count > 0 { store.grads[0] = .nan }
                    averaging.gradientFinal(q)
                }
            }
            let values = compute()
            step.onGradientFinal = nil
            let keys = values.keys.sorted()
            let rider = SideChannel.outgoing(p, ada: ada)
            var v = keys.map { values[$0]! } + rider
            if injectNaN && !averaging.overlap && store.grads.count > 0 { store.grads[0] = .nan }
            averaging.submit(values: v)
            return (averaging, { [self] in
                let ok = averaging.finish(values: &v)
                switch SideChannel.incoming(p, averaged: Array(v.suffix(rider.count)), worldSize: n) {
                case .adaStatistics(let sums): ada.addGlobalStats(sums)
                case .stopRequest(let any): stopRequested = stopRequested || any
                }
                v.removeLast(rider.count)
                if debugDumpGradientsAt == s {
                    dump += store.parameters.map { ("\(p.tag)grad.\($0.name)", $0.grad.copy()) }
                }
                if ok {
                    apply()
                    parallel.allGatherParameters(store, operation: p.tag)  // sharded optimizer: the updated blocks
                    // an update can overflow even from finite gradients: the parameters are checked too
                    if let bad = store.parameters.first(where: { !$0.value.isFinite }) {
                        nonFiniteParameter = "\(bad.name) (after the \(p.name) update)"
                    }
                } else {
                    skipped = true
                    log("step \(s): non-finite \(p.name) gradients on some rank: update skipped on all ranks")
                }
                return Dictionary(uniqueKeysWithValues: zip(keys, v))
            })
        }
        let (_, completeD) = start(
            .discriminator, model.discriminators,
            {
                step.discriminatorGradients(
                    realA: a.images, realB: b.images, labelsA: la, labelsB: lb, judged: early?.judgement)
            }
        ) { [step] in step.applyDiscriminator() }
        var out: LossValues = [:]
        // without overlap (--no-overlap, or one rank) the D phase completes first, the original order
        if overlap && n > 1 { step.beforeJudging = { out = completeD() } } else { out = completeD() }
        let (averagingG, completeG) = start(
            .generator, model.generators,
            { step.generatorGradients(realA: a.images, realB: b.images, labelsA: la, labelsB: lb) }
        ) { [step] in step.applyGenerator() }
        if step.beforeJudging != nil {  // not reached (cannot happen today): complete D before G's update anyway
            step.beforeJudging = nil
            out = completeD()
        }
        if overlap && n > 1 {
            judgeAhead(after: s)
            translateAhead(averagingG)
        }
        out.merge(completeG()) { $1 }
        if let bad = nonFiniteParameter {
            throw TrainingError.nonFinite(
                "stopping at step \(s): parameter \(bad) is not finite; no checkpoint was written, "
                    + "the last one stays current (lower --lr, or check the data)")
        }
        if let g = la?.first { out["group"] = Float(g) }
        if config.ada.mode == .adaptive && s % config.ada.interval == 0 { try adjustAugmentation() }
        if isRoot && !dump.isEmpty {
            try AtomicFile.write(try SafeTensorsFile.encode(dump), to: "\(resultDir)/grads_step\(s).safetensors")
        }
        return (out, skipped)
    }

    /// This rank's images' positions in the global batch (ADA draws a sample's transforms by its global index).
    var globalIndices: [Int] { (0..<config.batchSize).map { $0 * parallel.worldSize + parallel.rank } }

    /// The batch of step s: drawn ahead by the previous step (`judgeAhead`), or now.
    func batch(step s: Int) throws -> (a: Batch, b: Batch) {
        if let x = ahead, x.step == s { return try x.batch.get() }
        return try source.batch(step: s)
    }

    /// With overlap, the real half of step s+1's D phase (`UGATITStep.judgeReal`) runs while step s's G all-reduce is
    /// on the wire: it needs only the next batch and the discriminators, already updated at step s. Results are the
    /// same floats as computing it at step s+1 (the D phase always computes its two halves apart, and ADA's draws are
    /// keyed by step and call). Not after the last step or a `--stop-at` step, and not after a step that adjusts
    /// ADA's p: step s+1 augments its real images with the new p.
    func judgeAhead(after s: Int) {
        guard s < config.iterations, s != stopAt,
            !(config.ada.mode == .adaptive && s % config.ada.interval == 0)
        else { return }
        let next = Result { try source.batch(step: s + 1) }
        var real: JudgedAhead.Real?
        if case .success(let (a, b)) = next {
            let buffers = model.discriminators.buffers.map { $0.value.copy() }
            ada.beginStep(s + 1, globalIndices: globalIndices)
            let grouped = config.groups != nil
            let judgement = step.judgeReal(
                realA: a.images, realB: b.images, labelsA: grouped ? a.groups : nil, labelsB: grouped ? b.groups : nil)
            real = JudgedAhead.Real(
                judgement: judgement, augmentCalls: ada.callsThisStep, discriminatorBuffersBefore: buffers)
        }
        ahead = JudgedAhead(step: s + 1, batch: next, real: real)
    }

    /// With step s+1's real half judged ahead: once genB2A's gradients and the non-finite flag are in (genB2A's
    /// bucket goes first, the flag before genA2B's), genB2A's update and step s+1's genB2A(realB) run while genA2B's
    /// bucket is still on the wire (`UGATITStep.applyGenB2AAhead`, `translateAhead`). The same floats as updating
    /// both generators at once and translating at step s+1. Not with the sharded optimizer or the low-rank FC.0
    /// exchange (`PhaseAverage.canFinishEarly`), and not when a rank's gradients were not finite (`finish` then skips
    /// the whole update, as before).
    func translateAhead(_ averaging: PhaseAverage) {
        guard averaging.canFinishEarly, let next = ahead, next.real != nil, case .success(let (a, b)) = next.batch,
            averaging.finishEarly(step.genB2AParameters)
        else { return }
        step.applyGenB2AAhead()
        step.frozenGenerator = frozenBottleneck(group: config.groups != nil ? a.groups.first : nil)
        step.translateAhead(realB: b.images)
    }

    /// Runs `body` with the discriminators' buffers as step `state.step` left them. A real half judged ahead has
    /// moved the spectral-norm vectors on by one call; a run resumed from this step judges that half itself and moves
    /// them then, so the checkpoint must hold them from before (or the resumed run would move them twice).
    func withDiscriminatorBuffersOfThisStep<T>(_ body: () throws -> T) rethrows -> T {
        guard let before = ahead?.real?.discriminatorBuffersBefore else { return try body() }
        let buffers = model.discriminators.buffers
        let moved = buffers.map { $0.value.copy() }
        func put(_ values: [Tensor]) {
            for (b, v) in zip(buffers, values) { b.value.data.update(from: v.data, count: v.count) }
        }
        put(before)
        defer { put(moved) }
        return try body()
    }

    /// The encoder residual blocks that must not move on a step of `group` (selective backprop, spec C.3).
    func frozenBottleneck(group: Int?) -> [Parameter] {
        let blocks = model.genA2B.encoderBlockParameters + model.genB2A.encoderBlockParameters
        switch config.bottleneck {
        case .always: return []
        case .frozen: return blocks
        case .group0: return (group ?? config.baseGroup) == config.baseGroup ? [] : blocks
        }
    }

    /// Loads every tensor of `path` whose name and shape match this model (the two-stage workflow: a basic model
    /// trained on the base group, then the few-shot stage with group heads). Optimizer state starts fresh.
    /// - Returns: the names of this model's tensors the checkpoint did not provide (initialised anew).
    public func initialize(from path: String) throws -> (fresh: [String], unused: [String]) {
        let r = try Checkpoints.open(path)
        var fresh: [String] = []
        var taken: Set<String> = []
        for (name, t) in model.namedTensors {
            if let e = r.entry(name), e.shape == t.shape {
                try r.read(name, into: t)
                taken.insert(name)
            } else {
                fresh.append(name)
            }
        }
        // the source's model tensors this model has no place for (or another shape), e.g. group heads
        let unused = r.names.filter { !$0.hasPrefix("optim.") && !taken.contains($0) }
        return (fresh, unused)
    }

    /// Checks that every rank holds the same ADA strengths before a checkpoint is written.
    func verifyAgreement() throws {
        guard parallel.worldSize > 1 else { return }
        // every rank must hold the same ADA strengths and parameters: a rank that applied an update the others
        // skipped, or lost a broadcast, would otherwise be saved as one shard of a checkpoint that no rank ever held.
        // One all-gather carries both: p_A, p_B (bit patterns) and XXH64 of the generator and discriminator arenas.
        let hashes = [model.generators.values, model.discriminators.values].map { t in
            xxh64(UnsafeRawBufferPointer(start: t.data, count: 4 * t.count))
        }
        let mine = ada.state.p.map(\.bitPattern) + hashes
        let all = try parallel.watchdog.guarded("allGather(ADA p, parameter hashes)", bytes: 32 * parallel.worldSize) {
            try parallel.comm.allGather(mine.withUnsafeBytes { Array($0) })
        }.map { bytes in
            bytes.withUnsafeBytes { raw in (0..<4).map { raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self) } }
        }
        for r in 0..<parallel.worldSize where all[r][0..<2] != all[0][0..<2] {
            let p = { (i: Int) in all[i][0..<2].map { Double(bitPattern: $0) } }
            throw TrainingError.rankMismatch("rank \(r) holds ADA strengths \(p(r)); rank 0 holds \(p(0))")
        }
        let differing = (0..<parallel.worldSize).filter { all[$0][2..<4] != all[0][2..<4] }
        if !differing.isEmpty {
            throw TrainingError.rankMismatch(
                "ranks \(differing.map(String.init).joined(separator: ", ")) hold other parameters than rank 0 "
                    + "at step \(state.step) (generator or discriminator hash differs); not saving"
                    + (lowRank.isEmpty
                        ? ""
                        : ". Every rank forms FC.0's low-rank gradient with its own OpenBLAS: on hosts of different CPU "
                            + "types set OPENBLAS_CORETYPE alike on every host, or use --fc-exchange dense "
                            + "(docs/distributed.md §7.1)"))
        }
    }

    /// Rank 0 turns the reduced statistics into new strengths and broadcasts them, so every rank holds the same p.
    func adjustAugmentation() throws {
        var p = ada.state.p
        if isRoot {
            let rt = ada.adjust(globalBatch: config.batchSize * parallel.worldSize)
            p = ada.state.p
            adaLog = ["ada.p_A": p[0], "ada.p_B": p[1]]
            if let r = rt[0] { adaLog["ada.rt_A"] = r }
            if let r = rt[1] { adaLog["ada.rt_B"] = r }
        } else {
            _ = ada.adjust(globalBatch: config.batchSize * parallel.worldSize)  // keeps the accumulators in step
        }
        try parallel.watchdog.guarded("broadcast(ada p)", bytes: 16) {
            try p.withUnsafeMutableBytes { try parallel.comm.broadcast($0, root: 0) }
        }
        ada.state.p = p
    }

    /// Saves the current step (collective: every rank writes its shard, rank 0 the manifest).
    public func save() throws {
        // a checkpoint never holds non-finite parameters
        for store in [model.generators, model.discriminators] {
            if let bad = store.parameters.first(where: { !$0.value.isFinite }) {
                throw TrainingError.nonFinite(
                    "not saving step \(state.step): parameter \(bad.name) is not finite; the last checkpoint stays current"
                )
            }
        }
        defer { lastSaved = state.step }
        state.ada = ada.state
        state.worldSizeAtSave = parallel.worldSize
        state.globalBatchAtSave = globalBatch
        // the save's collectives wait for every rank's shard: a rank stuck writing (a hung file system) would hold
        // the others forever, so the save as a whole is watched like a collective, with 1 s more per MB of the
        // checkpoint (a slow disk or a high zstd level is not a hang)
        let megabytes = Double(4 * 3 * (model.generators.values.count + model.discriminators.values.count)) / 1e6
        let r = try parallel.watchdog.guarded(
            "checkpoint save", bytes: 0, cause: "a rank's file system (stuck writing its shard) or the network failed",
            extraSeconds: megabytes
        ) {
            try withDiscriminatorBuffersOfThisStep {
                try TrainingCheckpoint.save(
                    root: checkpointRoot, config: config, model: model, step: step, state: state,
                    comm: parallel.comm, options: checkpointOptions)
            }
        }
        log(
            String(
                format: "[face2webtoon] checkpoint step %d: %@ (%.1f MB, %.2f s on rank 0)%@", state.step, r.directory,
                Double(r.storedBytes) / 1e6, r.localSeconds, r.deleted.isEmpty ? "" : "; removed \(r.deleted.count) old"
            ))
    }

    /// Reporting never ends a run: a sample grid that cannot be written is a warning. A step's grids are
    /// written once (the end of a run can fall on a --sample-every step).
    func writeSamplesOrWarn() {
        guard lastSampled != state.step else { return }
        lastSampled = state.step
        do { try writeSamples() } catch {
            log("[face2webtoon] warning: sample grids of step \(state.step) not written: \(error)")
        }
    }

    /// Writes `samples/A2B_<step>.png`, `samples/B2A_<step>.png` (and `augmented_<step>.png` with ADA on), and the
    /// same grids to TensorBoard as images `samples/A2B`, ... at the step.
    public func writeSamples() throws {
        guard isRoot, let images = sampleImages, let encodePNG else { return }
        let tag = String(format: "%07d", state.step)
        func emit(_ name: String, _ grid: () -> SampleGrid.RGB8) throws {
            let g = grid()
            let png = try encodePNG(g)
            try AtomicFile.write(Data(png), to: "\(resultDir)/samples/\(name)_\(tag).png")
            runLog?.image(tag: "samples/\(name)", png: png, width: g.width, height: g.height, step: state.step)
        }
        try emit("A2B") { SampleGrid.render(images: images.a, forward: model.genA2B, backward: model.genB2A) }
        try emit("B2A") { SampleGrid.render(images: images.b, forward: model.genB2A, backward: model.genA2B) }
        if config.ada.mode != .off { try emit("augmented") { augmentedGrid(images) } }
    }

    /// The run's configuration for TensorBoard's text tab: the banner lines and the configuration JSON.
    func configurationMarkdown() -> String {
        var lines: [String] = []
        lines.append(
            "world size \(parallel.worldSize), batch per rank \(config.batchSize), global batch \(globalBatch)")
        lines += learningRateBanner()
        return lines.map { "- " + $0 }.joined(separator: "\n") + "\n\n```\n" + config.json() + "\n```"
    }

    /// The sample images as the discriminators see them at the current strengths: row 1 real A, row 2 augmented
    /// (p_A), row 3 real B, row 4 augmented (p_B). Drawn from a stream of its own, so training is unaffected.
    func augmentedGrid(_ images: (a: Tensor, b: Tensor)) -> SampleGrid.RGB8 {
        let viewer = AdaptiveAugment(config: config.ada, seed: config.seed ^ 0x5649_4557)  // "VIEW"
        viewer.state = ada.state
        // the domains may have different numbers of sample images: the grid is as wide as the larger set
        let n = max(images.a.shape[0], images.b.shape[0])
        let s = images.a.shape[2]
        var grid = SampleGrid.RGB8(width: n * s, height: 4 * s)
        for (row, (x, d)) in [(images.a, Domain.a), (images.b, Domain.b)].enumerated() {
            viewer.beginStep(state.step, globalIndices: Array(0..<x.shape[0]))
            let t = Tape(training: false)
            let y = viewer.augment(t, t.constant(x), domain: d).value
            for i in 0..<x.shape[0] {
                SampleGrid.blit(SampleGrid.image(x, index: i), into: &grid, x: i * s, y: 2 * row * s)
                SampleGrid.blit(SampleGrid.image(y, index: i), into: &grid, x: i * s, y: (2 * row + 1) * s)
            }
        }
        return grid
    }
}

func formatDuration(_ s: Double) -> String {
    guard s.isFinite else { return "?" }
    let t = Int(s.rounded())
    return t >= 3600
        ? String(format: "%dh%02dm", t / 3600, (t % 3600) / 60) : String(format: "%dm%02ds", t / 60, t % 60)
}

/// The two updates of a step, for the all-reduce's operation tag and for messages.
enum Phase {
    case discriminator, generator
    var tag: String { self == .discriminator ? "d" : "g" }
    var name: String { self == .discriminator ? "discriminator" : "generator" }
}

/// The values that ride in a phase's small all-reduce next to its loss values and the non-finite flag: the D phase carries this
/// rank's ADA statistics (count and Σ sign per domain), the G phase whether a stop was requested on this rank.
enum SideChannel {
    case adaStatistics([Double])
    case stopRequest(Bool)

    /// What this rank sends with phase `p`.
    static func outgoing(_ p: Phase, ada: AdaptiveAugment) -> [Float] {
        switch p {
        case .discriminator: return ada.takeLocalStats().map(Float.init)
        case .generator: return [StopSignal.pending != 0 ? 1 : 0]
        }
    }

    /// What came back: the all-reduce averages, so the global sums are the values × world size (rounded: they are
    /// counts and sums of signs).
    static func incoming(_ p: Phase, averaged: [Float], worldSize n: Int) -> SideChannel {
        switch p {
        case .discriminator: return .adaStatistics(averaged.map { (Double($0) * Double(n)).rounded() })
        case .generator: return .stopRequest(averaged.contains { $0 > 0 })
        }
    }
}

/// Step s+1's batch, drawn during step s, and the real half of its D phase when it could be judged then.
struct JudgedAhead {
    struct Real {
        let judgement: UGATITStep.RealJudgement
        /// ADA calls of step s+1 drawn by the judgement (`AdaptiveAugment.beginStep(_:globalIndices:callsMade:)`).
        let augmentCalls: Int
        /// The discriminators' buffers (spectral-norm u, v) before the judgement moved them on by one call each: a
        /// checkpoint of step s holds these (`Trainer.save`).
        let discriminatorBuffersBefore: [Tensor]
    }
    let step: Int
    let batch: Result<(a: Batch, b: Batch), Error>
    let real: Real?
}
