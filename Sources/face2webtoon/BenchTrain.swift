import ADA
import ArgumentParser
import Dataset
import Distributed
import Engine
import Foundation
import Training
import UGATIT

/// `face2webtoon bench train`: warm-up steps, then timed training steps on generated data. Under mpirun every rank
/// runs its share and gradients are averaged as in `train`; rank 0 prints.
struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Time full training steps (D + G update) on generated data; prints key=value lines.")

    /// The same model options and defaults as `train` (light generator, 96 px, ch 16).
    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .customLong("batch-size"), help: "Images per domain per rank.") var batchSize = 1
    @Option(help: "Compute threads per rank; above 1, further steps alternate between 1 and N threads and threads_speedup is printed.")
    var threads = 1
    @Option(name: .customLong("warmup-steps"), help: "Untimed warm-up steps.") var warmupSteps = 2
    @Option(help: "Timed steps.") var steps = 5
    @Flag(help: "Skip the sgemm peak measurement (used by bench scaling).") var noPeak = false
    @Option(
        name: .customLong("ada-p"),
        help: "Also time the steps with augmentation at this fixed strength and print augment_fraction.")
    var adaP: Double?

    @OptionGroup var exchange: ExchangeOptions
    @Flag(name: .customLong("no-breakdown"), help: "Skip the extra steps that split the time by kind (time_*_s).")
    var noBreakdown = false
    @OptionGroup var conv: ConvOptions

    func run() throws {
        Runtime.configure(threads: threads)
        let convLine = conv.apply()
        let comm = try makeCommunicator()
        let parallel = DataParallel(comm: comm, bucketBytes: Int(exchange.bucketMB * 1_048_576))
        let peak = noPeak ? 0 : OpBenchmarks.sgemmGFLOPS(size: 2048, repeats: 3)
        let model = try modelOptions.config(defaultSize: ModelOptions.defaultImageSize)
        let imgSize = model.imageSize
        if !model.problems().isEmpty { throw ValidationError(model.problems().joined(separator: "\n")) }
        let m = UGATITModel(config: model, seed: 0)
        let step = UGATITStep(model: m)
        parallel.gradWire = exchange.gradWire
        let lowRank = exchange.fcExchange.attach(to: m, worldSize: comm.worldSize, batchPerRank: batchSize)
        if exchange.shardOptimizer {
            parallel.shardOptimizer(step.dOptimizer, store: m.discriminators)
            parallel.shardOptimizer(step.gOptimizer, store: m.generators, lowRank: lowRank)
        }
        var cfg = ADAConfig()
        cfg.mode = .fixed
        cfg.p = adaP ?? 0
        let ada = AdaptiveAugment(config: cfg, seed: 0)
        try parallel.broadcastState(m)
        // the real input pipeline (decode, PIL-style resize, crop, prefetch) on drawn demo images, so that
        // data_wait_fraction measures what training would wait for
        let dataDir = NSTemporaryDirectory() + "face2webtoon-bench-data-\(imgSize)"
        if comm.rank == 0 && !FileManager.default.fileExists(atPath: "\(dataDir)/trainB") {
            try DemoData.generate(
                to: URL(fileURLWithPath: dataDir), size: imgSize + 30, trainPerDomain: 64, testPerDomain: 0, seed: 0)
        }
        try comm.barrier()
        let source = try FolderBatches(
            data: dataDir, imageSize: imgSize, batchSize: batchSize, seed: 1, rank: comm.rank,
            worldSize: comm.worldSize, firstStep: 1, iterations: warmupSteps + 5 * steps + 1,
            warnings: DataWarnings())
        // when each phase's gradients become final, as seconds before the phase's gradient computation ends (how long
        // an all-reduce started at that moment could run hidden behind the rest of the backward pass)
        var readiness: [String: ReadinessLog] = [:]
        var timelines: [String: [PhaseAverage.BucketTiming]] = [:]
        // one phase as train runs it: gradients (with the all-reduce overlapped unless --no-overlap), then `complete`
        // waits for it and applies the update; with overlap the D phase completes inside the G phase, after the
        // generators' forward passes and the backward of the G loss's own terms (UGATITStep.beforeJudging), as in train
        let pipelined = !exchange.noOverlap && comm.worldSize > 1
        func start(
            _ name: String, _ store: ParameterStore, lowRank: [(Parameter, LowRankGradient)],
            _ compute: () -> Float, apply: @escaping () -> Void
        ) -> (averaging: PhaseAverage, complete: () -> Void) {
            let avg = parallel.begin(store, operation: name, lowRank: lowRank, overlap: pipelined)
            let log = readiness[name]
            let mine = Set(store.parameters.map(ObjectIdentifier.init))
            var finals: [(Double, Int)] = []
            let lock = NSLock()  // reports come from both chains' threads (UGATITStep)
            step.onGradientFinal = { p in
                avg.gradientFinal(p)
                guard log != nil && mine.contains(ObjectIdentifier(p)) else { return }
                lock.lock()
                finals.append((OpBenchmarks.now(), p.value.count))
                lock.unlock()
            }
            let t0 = OpBenchmarks.now()
            var v = [compute()]
            log?.add(start: t0, end: OpBenchmarks.now(), finals: finals)
            step.onGradientFinal = nil
            avg.submit(values: v)
            return (avg, {
                if avg.finish(values: &v) {
                    apply()
                    parallel.allGatherParameters(store, operation: name)
                }
                timelines[name] = avg.timeline
            })
        }
        // with overlap, step s+1's batch and the real half of its D phase, taken behind step s's G all-reduce (as
        // `Trainer.judgeAhead`; ADA is fixed here, so every step can)
        var ahead: (step: Int, a: Batch, b: Batch, real: UGATITStep.RealJudgement, calls: Int, augmented: Bool)?
        let globalIndices = (0..<batchSize).map { $0 * comm.worldSize + comm.rank }
        func once(_ s: Int) throws {
            let drawn = ahead?.step == s ? ahead : nil
            ahead = nil
            let (a, b) = try drawn.map { ($0.a, $0.b) } ?? source.batch(step: s)
            // a real half judged in another section (with augmentation on or off) is judged again
            let early = drawn?.augmented == (step.augment != nil) ? drawn : nil
            ada.beginStep(s, globalIndices: globalIndices, callsMade: early?.calls ?? 0)
            let (_, completeD) = start("d", m.discriminators, lowRank: []) {
                step.discriminatorGradients(realA: a.images, realB: b.images, judged: early?.real)[LossKey.dLoss] ?? 0
            } apply: { step.applyDiscriminator() }
            if pipelined {
                // how long the D all-reduce may run behind the generators' forward passes and the backward of the G
                // loss's own terms (scaling-model.py)
                let computed = OpBenchmarks.now()
                let log = readiness["d"]
                step.beforeJudging = {
                    log?.completionWindows.append(OpBenchmarks.now() - computed)
                    completeD()
                }
            } else {
                completeD()
            }
            let (averagingG, completeG) = start("g", m.generators, lowRank: lowRank) {
                step.generatorGradients(realA: a.images, realB: b.images)[LossKey.gLoss] ?? 0
            } apply: { step.applyGenerator() }
            if step.beforeJudging != nil {
                step.beforeJudging = nil
                completeD()
            }
            if pipelined {
                // how long the G all-reduce may run behind the next step's real half (scaling-model.py)
                let t0 = OpBenchmarks.now()
                let (na, nb) = try source.batch(step: s + 1)
                ada.beginStep(s + 1, globalIndices: globalIndices)
                let real = step.judgeReal(realA: na.images, realB: nb.images)
                ahead = (s + 1, na, nb, real, ada.callsThisStep, step.augment != nil)
                readiness["g"]?.completionWindows.append(OpBenchmarks.now() - t0)
                // then genB2A's update and step s+1's genB2A(realB) behind genA2B's bucket (`Trainer.translateAhead`)
                if averagingG.canFinishEarly && averagingG.finishEarly(step.genB2AParameters) {
                    let t1 = OpBenchmarks.now()
                    step.applyGenB2AAhead()
                    step.translateAhead(realB: nb.images)
                    readiness["g"]?.aheadWindows.append(OpBenchmarks.now() - t1)
                }
            }
            completeG()
        }
        for s in 0..<warmupSteps { try once(s + 1) }
        try comm.barrier()
        FlopCounter.reset()
        Profile.enabled = ProcessInfo.processInfo.environment["F2W_PROFILE"] != nil
        Profile.reset()
        let wait0 = source.waitSeconds
        let (reduced0, gathered0) = (parallel.reducedBytes, parallel.gatheredElements)
        let (exposed0, collective0) = (parallel.exposedSeconds, parallel.collectiveSeconds)
        let exposedByPhase0 = parallel.exposedSecondsByOperation
        let collectiveCPU0 = parallel.collectiveCPUSeconds
        let t0 = OpBenchmarks.now()
        for s in 0..<steps { try once(warmupSteps + s + 1) }
        try comm.barrier()
        let seconds = (OpBenchmarks.now() - t0) / Double(steps)
        if Profile.enabled && comm.rank == 0 {
            for (k, v) in Profile.seconds.sorted(by: { $0.value > $1.value }) {
                print("profile \(k): \(fmt(v / Double(steps))) s, \(Profile.calls[k, default: 0] / steps) calls")
            }
            Profile.enabled = false
        }
        let gflop = Double(FlopCounter.total) / Double(steps) / 1e9
        let executedGflop = Double(FlopCounter.executed) / Double(steps) / 1e9
        let commTotal = (parallel.collectiveSeconds - collective0) / Double(steps)
        let commCPU = (parallel.collectiveCPUSeconds - collectiveCPU0) / Double(steps)
        let commExposed = exchange.noOverlap ? commTotal : (parallel.exposedSeconds - exposed0) / Double(steps)
        // the same per phase (with overlap; the all-gathers after a sharded update are in neither)
        let exposedByPhase = ["d", "g"].map { name in
            ((parallel.exposedSecondsByOperation[name] ?? 0) - (exposedByPhase0[name] ?? 0)) / Double(steps)
        }
        // bytes one rank sends per step: a ring all-reduce sends 2(N − 1)/N of its buffer, an all-gather (N − 1)
        // times this rank's block; "dense" is what the all-reduce of every gradient would send
        let nn = Double(comm.worldSize)
        let reducedBytesPerStep = Double(parallel.reducedBytes - reduced0) / Double(steps)
        let gatheredPerStep = Double(parallel.gatheredElements - gathered0) / Double(steps)
        let bytesPerRank = 2 * (nn - 1) / nn * reducedBytesPerStep + 4 * (nn - 1) * gatheredPerStep
        let denseBytesPerRank = 4 * 2 * (nn - 1) / nn * Double(m.generators.grads.count + m.discriminators.grads.count)
        var augmented: Double?
        if adaP != nil {
            step.augment = ada
            let t1 = OpBenchmarks.now()
            for s in 0..<steps { try once(warmupSteps + steps + s + 1) }
            augmented = (OpBenchmarks.now() - t1) / Double(steps)
            step.augment = nil
        }
        // with --threads N > 1, pairs of steps on 1 and on N threads, interleaved (1, N, N, 1, 1, N, ...) so that a
        // change in the shared machine's speed during the run falls on both alike (batch and network unchanged)
        var pairs: [(one: Double, many: Double)] = []
        if threads > 1 {
            // batches come in step order: continue after the steps already drawn
            var s = warmupSteps + (adaP != nil ? 2 : 1) * steps + 1
            func timed(_ t: Int) throws -> Double {
                Runtime.configure(threads: t)
                try comm.barrier()
                let t2 = OpBenchmarks.now()
                try once(s)
                try comm.barrier()
                s += 1
                return OpBenchmarks.now() - t2
            }
            for i in 0..<steps {
                if i % 2 == 0 {
                    let one = try timed(1)
                    pairs.append((one, try timed(threads)))
                } else {
                    let many = try timed(threads)
                    pairs.append((try timed(1), many))
                }
            }
            Runtime.configure(threads: threads)
        }
        // where the time goes, by kind, on the same number of further steps (Breakdown reads the clock at every op,
        // so these steps are timed apart from the ones above)
        var breakdown: (kinds: [TimeKind: Double], seconds: Double)?
        if !noBreakdown {
            let first = warmupSteps + (adaP != nil ? 2 : 1) * steps + 2 * pairs.count + 1
            try comm.barrier()
            readiness = ["d": ReadinessLog(), "g": ReadinessLog()]
            let t3 = OpBenchmarks.now()
            Breakdown.start()
            for s in 0..<steps { try once(first + s) }
            let kinds = Breakdown.stop()
            breakdown = (kinds, OpBenchmarks.now() - t3)
        }
        let n = comm.worldSize
        if comm.rank == 0 {
            print("blas_core=\(Runtime.blasCore)")
            print("threads=\(threads)")
            print("world_size=\(n)")
            print(
                "img_size=\(imgSize) ch=\(model.ch) n_res=\(model.blocks) generator=\(model.light ? "light" : "full") batch_size=\(batchSize) "
                    + "global_layers=\(model.globalLayers) local_layers=\(model.localLayers) warmup_steps=\(warmupSteps) steps=\(steps)"
            )
            if !noPeak { print("sgemm_gflops=\(fmt(peak))") }
            print(convLine)
            print("gflop_per_iter=\(fmt(gflop))")
            print("gemm_gflop_executed_per_iter=\(fmt(executedGflop))")
            print("achieved_gflops=\(fmt(gflop / seconds))")
            if !noPeak { print("fraction_of_sgemm_peak=\(fmt(gflop / seconds / peak))") }
            print("images_per_s=\(fmt(Double(batchSize * n) / seconds))")
            // the share of the step the training thread waited for gradient averaging (comm_exposed_s over the step)
            print("allreduce_fraction=\(fmt(commExposed / seconds))")
            if let augmented {
                print("seconds_per_iter_with_ada=\(fmt(augmented)) ada_p=\(adaP ?? 0)")
                print("augment_fraction=\(fmt(max(0, augmented - seconds) / augmented))")
            }
            print("data_wait_fraction=\(fmt((source.waitSeconds - wait0) / Double(steps) / seconds))")
            print("peak_rss_mib=\(fmt(peakRSSMiB()))")
            print("peak_tensor_mib=\(fmt(Double(TensorMemory.peakBytes) / 1_048_576))")
            if !pairs.isEmpty {
                // threads_speedup: the interleaved steps' total time on 1 thread over theirs on N threads
                let one = pairs.map(\.one).reduce(0, +)
                let many = pairs.map(\.many).reduce(0, +)
                let ratios = pairs.map { $0.one / $0.many }
                let sorted = ratios.sorted()
                let median = (sorted[(sorted.count - 1) / 2] + sorted[sorted.count / 2]) / 2
                print("seconds_per_iter_1_thread=\(fmt(one / Double(pairs.count)))")
                print("seconds_per_iter_\(threads)_threads_interleaved=\(fmt(many / Double(pairs.count)))")
                // each pair's 1-thread step over its N-thread step, in the order they ran
                print("threads_speedup_pairs=\(ratios.map(fmt).joined(separator: ","))")
                print("threads_speedup_median_pair=\(fmt(median))")
                print("threads_speedup=\(fmt(one / many))")
            }
            print("fc_exchange=\(lowRank.isEmpty ? "dense" : "lowrank")")
            print("shard_optimizer=\(parallel.isSharded(m.generators))")
            print("params_g=\(m.generators.parameterCount) params_d=\(m.discriminators.parameterCount)")
            print("buckets_g=\(parallel.bucketCount(m.generators, lowRank: lowRank)) buckets_d=\(parallel.bucketCount(m.discriminators))")
            print("bytes_per_rank_per_step=\(Int(bytesPerRank))")
            print("dense_bytes_per_rank_per_step=\(Int(denseBytesPerRank))")
            print("overlap=\(!exchange.noOverlap && n > 1 ? 1 : 0)")  // 1: buckets all-reduced during backward
            print("comm_total_s=\(fmt(commTotal))")
            print("comm_exposed_s=\(fmt(commExposed))")
            if !exchange.noOverlap {
                print("comm_exposed_d_s=\(fmt(exposedByPhase[0])) comm_exposed_g_s=\(fmt(exposedByPhase[1]))")
            }
            print("comm_cpu_s=\(fmt(commCPU))")  // CPU time of the bucket collectives' thread per step
            for name in ["d", "g"] {
                // the last step's buckets in the order they ran: ready/start/end in ms since the phase's averaging began
                let t = (timelines[name] ?? []).reversed().map {
                    String(format: "%.0f/%.0f/%.0f", 1000 * $0.ready, 1000 * $0.start, 1000 * $0.end)
                }
                print("bucket_timeline_\(name)_ms=\(t.joined(separator: ","))")
            }
            if let breakdown {
                // per step; the kinds add up to time_step_s, the steps of this pass
                for k in TimeKind.allCases { print("time_\(k.name)_s=\(fmt(breakdown.kinds[k]! / Double(steps)))") }
                let perStep = breakdown.seconds / Double(steps)
                print("time_step_s=\(fmt(perStep))")
                print("time_named_fraction=\(fmt(1 - breakdown.kinds[.other]! / breakdown.seconds))")
                print("breakdown_overhead=\(fmt(perStep / seconds - 1))")
                for name in ["d", "g"] { if let r = readiness[name] { print(r.summary(name)) } }
            }
            print("seconds_per_iter=\(fmt(seconds))")
        }
        try comm.finalize()
    }
}

/// Peak resident set size of this process in MiB (getrusage; Linux reports KiB).
func peakRSSMiB() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_maxrss) / 1024
}

/// When a phase's gradient elements became final, relative to the end of the phase's gradient computation.
final class ReadinessLog {
    var phaseSeconds = 0.0
    var lead: [(seconds: Double, elements: Int)] = []  // seconds before the phase's end, per parameter
    var phases = 0
    /// With overlap, how long a phase's all-reduce can run behind later work before its update is needed. D: seconds
    /// from the end of the D phase's gradient computation to the point inside the G phase where it completes (after
    /// the generators' forward passes and the backward of the G loss's own terms, `UGATITStep.beforeJudging`). G: the
    /// next step's real half of the D phase
    /// (`UGATITStep.judgeReal`), computed before the G update waits.
    var completionWindows: [Double] = []
    /// G with overlap: genB2A's update and the next step's genB2A(realB), run while genA2B's bucket is on the wire
    /// (`UGATITStep.applyGenB2AAhead`, `translateAhead`).
    var aheadWindows: [Double] = []

    func add(start: Double, end: Double, finals: [(Double, Int)]) {
        phaseSeconds += end - start
        phases += 1
        lead += finals.map { (end - $0.0, $0.1) }
    }

    /// `ready_<phase>_window_s`: the element-weighted mean of how long before the phase's end a gradient was final;
    /// `ready_<phase>_final_half_s`: by how long before the end half of the elements were final.
    func summary(_ name: String) -> String {
        let total = lead.reduce(0) { $0 + $1.elements }
        guard total > 0, phases > 0 else { return "ready_\(name)_window_s=nan" }
        let mean = lead.reduce(0.0) { $0 + $1.seconds * Double($1.elements) } / Double(total)
        var acc = 0
        var half = 0.0
        for l in lead.sorted(by: { $0.seconds > $1.seconds }) {
            acc += l.elements
            if 2 * acc >= total {
                half = l.seconds
                break
            }
        }
        func window(_ key: String, _ seconds: [Double]) -> String {  // the mean, where measured
            seconds.isEmpty ? "" : " \(name)_\(key)_window_s=\(fmt(seconds.reduce(0, +) / Double(seconds.count)))"
        }
        return "ready_\(name)_phase_s=\(fmt(phaseSeconds / Double(phases))) ready_\(name)_window_s=\(fmt(mean)) "
            + "ready_\(name)_final_half_s=\(fmt(half))" + window("completion", completionWindows)
            + window("ahead", aheadWindows)
    }
}
