import Distributed
import Engine
import Foundation
import UGATIT

/// Data-parallel synchronisation for the training loop: every rank runs the same step on its share of the global
/// batch; gradients are averaged with all-reduce (sum, then ·1/N) in fixed-size buckets, in the same order on every
/// rank (Horovod/DDP style, docs/reference.md §R.1). Buckets never cross a network, and the phase's loss values and
/// a non-finite flag go in one small all-reduce of their own, so a phase costs the sum over its networks of
/// ⌈network gradient bytes / bucket⌉, + 1 collectives.
public final class DataParallel {
    public let comm: Communicator
    /// Elements per all-reduce bucket.
    public let bucketElements: Int
    public let watchdog: Watchdog

    /// - Parameters: `bucketBytes` default 25 MB (DDP's default); `collectiveTimeout` and `stallWarning` in seconds
    ///   (0 turns either off): see `Watchdog`.
    public init(
        comm: Communicator, bucketBytes: Int = 25 << 20, collectiveTimeout: Double = 600, stallWarning: Double = 60
    ) {
        self.comm = comm
        bucketElements = max(1024, bucketBytes / MemoryLayout<Float>.stride)
        watchdog = Watchdog(comm: comm, timeout: collectiveTimeout, stallWarning: stallWarning)
    }

    /// All-reduce collectives for `elements` gradient values (the loss values take one more).
    /// The gradient buckets of `store`: at most `bucketElements` floats, none across a network boundary
    /// (`ParameterStore.networkStarts`), the `lowRank` parameters left out. PhaseAverage and the sharded optimizer
    /// both use it.
    public func layout(_ store: ParameterStore, lowRank: [(Parameter, LowRankGradient)] = []) -> ShardLayout {
        ShardLayout(
            arenaCount: store.grads.count, excluding: lowRank.map { ($0.0.offset, $0.0.value.count) },
            splitAt: store.networkStarts, bucketElements: bucketElements, worldSize: worldSize)
    }

    public func bucketCount(_ store: ParameterStore, lowRank: [(Parameter, LowRankGradient)] = []) -> Int {
        layout(store, lowRank: lowRank).buckets.count
    }

    public var rank: Int { comm.rank }
    public var worldSize: Int { comm.worldSize }

    /// Collectives a communication thread is running (`PhaseAverage.reduceAll`), and threads waiting for a phase's
    /// buckets (`PhaseAverage.waitExposed`): the collectives poll lazily while some are in flight and nobody waits
    /// (`Communicator.setRelaxedPolling`). Counts, not flags, so that no phase's change undoes another's.
    private var communicating = 0
    private var waiting = 0
    private let pollingLock = NSLock()

    func changePolling(communicating dc: Int = 0, waiting dw: Int = 0) {
        pollingLock.lock()
        communicating += dc
        waiting += dw
        comm.setRelaxedPolling(communicating > 0 && waiting == 0)
        pollingLock.unlock()
    }

    /// Checks that every rank runs the same configuration, parameter layout, world size, program version, bucket
    /// size and watchdog times (ranks that differ in the last two would call collectives of other sizes, or give up
    /// at other times).
    /// - Throws: `TrainingError.rankMismatch` naming the ranks whose fingerprint differs from rank 0's.
    public func checkAgreement(config: TrainConfig, model: UGATITModel) throws {
        var text = "\(Version.string)|world=\(worldSize)|\(config.json())"
        for t in model.namedTensors { text += "|\(t.name)\(t.value.shape)" }
        try watchdog.learnHosts()
        do {
            try checkAgreement(
                text + "|" + settings,
                what: "configuration, parameter layout, world size, program version or run settings (this rank: "
                    + "version \(Version.string), \(settings))")
        } catch TrainingError.rankMismatch(let message) {
            // every rank is here (the hashes are everyone's): rank 0's configuration to all, each names its keys
            let rank0 = try watchdog.guarded("broadcast(configuration)", bytes: 0) {
                try comm.broadcastBytes(Array(config.json().utf8), root: 0)
            }
            let keys = DataParallel.differingKeys(rank0: rank0, mine: Array(config.json().utf8))
            throw TrainingError.rankMismatch(
                message + (keys.isEmpty ? "" : "; this rank's configuration differs in " + keys.joined(separator: ", ")))
        }
    }

    /// "key: rank 0 a, here b" for each leaf (nested keys joined by ".") where two JSON configurations differ.
    static func differingKeys(rank0: [UInt8], mine: [UInt8]) -> [String] {
        func leaves(_ bytes: [UInt8]) -> [String: String] {
            var out: [String: String] = [:]
            func walk(_ v: Any, _ path: String) {
                if let d = v as? [String: Any] {
                    for (k, x) in d { walk(x, path.isEmpty ? k : "\(path).\(k)") }
                } else {
                    out[path] = "\(v)"
                }
            }
            if let o = try? JSONSerialization.jsonObject(with: Data(bytes)) { walk(o, "") }
            return out
        }
        let (a, b) = (leaves(rank0), leaves(mine))
        return Set(a.keys).union(b.keys).sorted().compactMap { k in
            a[k] == b[k] ? nil : "\(k): rank 0 \(a[k] ?? "absent"), here \(b[k] ?? "absent")"
        }
    }

    /// Checks that every rank runs with the same `settings` (e.g. `overlap=true`: what decides the order of the
    /// collectives but is not in the configuration).
    /// - Throws: `TrainingError.rankMismatch` naming the ranks whose settings differ from rank 0's.
    public func checkAgreement(settings extra: String) throws {
        try checkAgreement(extra, what: "run settings (this rank: \(extra))")
    }

    /// This rank's settings that every rank must share: the bucket size and the watchdog's times.
    var settings: String {
        "bucket_elements=\(bucketElements)|collective_timeout=\(watchdog.timeout)|stall_warning=\(watchdog.stallWarning)"
    }

    private func checkAgreement(_ text: String, what: String) throws {
        var h = fnv1a(text)
        var all = [UInt64](repeating: 0, count: worldSize)
        try watchdog.guarded("allGather(config hash)", bytes: 8 * worldSize) {
            try withUnsafeBytes(of: &h) { mine in
                try all.withUnsafeMutableBytes { try comm.allGather(mine, into: $0) }
            }
        }
        let differing = all.indices.filter { all[$0] != all[0] }
        if !differing.isEmpty {
            let who =
                differing.count == 1
                ? "rank \(differing[0]) differs" : "ranks \(differing.map(String.init).joined(separator: ", ")) differ"
            throw TrainingError.rankMismatch("\(who) from rank 0 in \(what)")
        }
    }

    /// Copies rank 0's parameters and buffers (spectral-norm u, v included) to every rank.
    public func broadcastState(_ model: UGATITModel) throws {
        for s in [model.generators, model.discriminators] {
            for t in [s.values, s.bufferValues] where t.count > 0 {
                try watchdog.guarded("broadcast(parameters)", bytes: 4 * t.count) {
                    try comm.broadcast(UnsafeMutableRawBufferPointer(start: t.data, count: 4 * t.count), root: 0)
                }
            }
        }
    }

    /// Gradient floats this rank contributed to all-reduces, and low-rank factor floats it contributed to
    /// all-gathers, since the start (for `bench scaling`'s byte counts).
    public private(set) var reducedElements = 0
    /// Bytes this rank handed to gradient all-reduces (4 per float, 2 with the bfloat16 wire format).
    public private(set) var reducedBytes = 0
    /// The gradients' wire format in the all-reduce (`train --grad-wire`).
    public var gradWire = GradWire.fp32
    private var staging16: [UInt16] = []
    public private(set) var gatheredElements = 0

    /// Averages `store`'s gradients over the ranks and `values` (loss values) with them, after the backward pass
    /// (`begin(..., overlap: false)` then `finish`).
    ///
    /// `lowRank`: parameters whose gradient this rank holds as factors (`LowRankGradient`, e.g. FC.0): they are left
    /// out of the all-reduce; every rank all-gathers every rank's factors and forms the same average
    /// (1/N)·Σ_r dY_rᵀ·X_r, in rank order. The same numbers as the dense path up to summation order.
    /// - Returns: false if any rank had a non-finite gradient (then every rank must skip this update).
    public func average(
        _ store: ParameterStore, values: inout [Float], operation: String,
        lowRank: [(Parameter, LowRankGradient)] = []
    ) -> Bool {
        begin(store, operation: operation, lowRank: lowRank, overlap: false).finish(values: &values)
    }

    /// Starts averaging one phase's gradients. With `overlap`, a communication thread all-reduces each bucket as soon
    /// as backward has made all its gradients final (report them with `PhaseAverage.gradientFinal`, e.g. through
    /// `Tape.onGradientFinal`); without, `finish` does every all-reduce. Both run the same buckets in the same order
    /// with the same contents, so they give bit-identical results.
    ///
    /// Buckets: at most `bucketElements` floats within the arena (less the low-rank exclusions), reduced from the
    /// last to the first (the order in which backward finishes them, as DDP does), each as soon as it is ready; the
    /// loss values and the non-finite flag in a small all-reduce once `submit` (or `finish`) has them: before the
    /// buckets of the store's first network where `PhaseAverage.canFinishEarly`, after every bucket otherwise.
    public func begin(
        _ store: ParameterStore, operation: String, lowRank: [(Parameter, LowRankGradient)] = [], overlap: Bool
    ) -> PhaseAverage {
        PhaseAverage(
            self, store: store, operation: operation, lowRank: lowRank, overlap: overlap,
            shard: shards[ObjectIdentifier(store)])
    }

    /// The ZeRO-1 layouts of the sharded stores (`shardOptimizer`), by store.
    private var shards: [ObjectIdentifier: ShardLayout] = [:]

    /// Shards `optimizer`'s Adam moments over the ranks (ZeRO stage 1, `train --shard-optimizer`): from now on each
    /// phase of `store` reduce-scatters its gradient buckets instead of all-reducing them, `optimizer` updates this
    /// rank's blocks only, and `allGatherParameters(store)` hands every rank the updated values. `lowRank` parameters
    /// keep whole moments on every rank (their gradient is formed on every rank; sharding their state would need an
    /// all-gather of their updated values, the bytes the low-rank exchange saves). Call before the first step and
    /// before loading a checkpoint; a no-op on one rank.
    public func shardOptimizer(_ optimizer: Adam, store: ParameterStore, lowRank: [(Parameter, LowRankGradient)] = []) {
        guard worldSize > 1 else { return }
        let layout = layout(store, lowRank: lowRank)
        shards[ObjectIdentifier(store)] = layout
        optimizer.shard(layout, rank: rank)
    }

    /// Whether `store`'s optimizer state is sharded.
    public func isSharded(_ store: ParameterStore) -> Bool { shards[ObjectIdentifier(store)] != nil }

    /// After a sharded update: every rank's updated blocks to every rank, bucket by bucket (the second half of what
    /// an all-reduce moves). A no-op for a store that is not sharded.
    public func allGatherParameters(_ store: ParameterStore, operation: String) {
        guard let layout = shards[ObjectIdentifier(store)] else { return }
        let t0 = OpBenchmarks.now()
        defer {  // not overlapped with anything: all of it is exposed
            exposedSeconds += OpBenchmarks.now() - t0
            collectiveSeconds += OpBenchmarks.now() - t0
        }
        let values = store.values
        for b in layout.buckets.indices where layout.buckets[b].count > 0 {
            let (off, len) = layout.buckets[b]
            let buf = UnsafeMutableBufferPointer(start: values.data + off, count: len)
            reducedBytes += 2 * len  // half of an fp32 all-reduce's count: see countReduced
            reducedElements += len
            Breakdown.span(.communication) {
                comm.abortOnFailure("all-gather of \(operation) parameters", code: ExitStatus.peerFailure.rawValue) {
                    try watchdog.guarded("allGather(\(operation) parameters)", bytes: 4 * len) {
                        try comm.allGather(inPlace: buf, counts: layout.counts(b))
                    }
                }
            }
        }
    }

    /// Per bucket of the last finished phase: when it was ready, started and done (seconds since `begin`).
    public internal(set) var lastTimeline: [PhaseAverage.BucketTiming] = []
    /// Seconds `finish` waited for the communication thread, summed over phases (the exposed communication).
    public internal(set) var exposedSeconds: Double = 0
    /// `exposedSeconds` of the bucketed phases, by the `operation` their `begin` named.
    public internal(set) var exposedSecondsByOperation: [String: Double] = [:]
    /// Seconds spent in gradient collectives, summed over phases.
    public internal(set) var collectiveSeconds: Double = 0
    /// CPU seconds the bucket collectives used (the thread that ran them: `CLOCK_THREAD_CPUTIME_ID`), summed over
    /// phases: what the communication takes from the compute on a machine without a spare core. The all-gathers after
    /// the update (sharded optimizer, low-rank FC.0) run on the main thread and are not counted.
    public internal(set) var collectiveCPUSeconds: Double = 0

    /// Counts `n` gradient floats handed to an all-reduce, or (`scatter`) to a reduce-scatter, which moves half of
    /// what an all-reduce does (a ring all-reduce is a reduce-scatter then an all-gather): `reducedBytes` counts it
    /// as half, so that 2(N − 1)/N · `reducedBytes` is what a rank sends either way.
    func countReduced(_ n: Int, scatter: Bool = false) {
        reducedElements += n
        reducedBytes += n * (gradWire == .bf16 ? 2 : 4) / (scatter ? 2 : 1)
    }

    /// All-reduces one bucket of gradients in place; with `scatter` (the per-rank block counts of a sharded
    /// optimizer's bucket) it reduce-scatters it instead, and only this rank's block holds the sum afterwards.
    func reduceBucket(_ buf: UnsafeMutableBufferPointer<Float>, operation: String, scatter: [Int]? = nil) {
        countReduced(buf.count, scatter: scatter != nil)
        let (kind, name) = scatter == nil ? ("all-reduce", "allReduce") : ("reduce-scatter", "reduceScatter")
        if gradWire == .bf16 {
            // the gradients as bfloat16 (half the bytes); loss values, flags and ADA counts stay exact in float32
            if staging16.count < buf.count { staging16 = [UInt16](repeating: 0, count: buf.count) }  // reused
            staging16.withUnsafeMutableBufferPointer { whole in
                let h = UnsafeMutableBufferPointer(rebasing: whole[0..<buf.count])
                BFloat16.encode(UnsafeBufferPointer(buf), into: h)
                Breakdown.span(.communication) {
                    comm.abortOnFailure("\(kind) of \(operation) gradients", code: ExitStatus.peerFailure.rawValue) {
                        try watchdog.guarded("\(name)(\(operation), bfloat16)", bytes: 2 * h.count) {
                            if let scatter { try comm.reduceScatterSumBF16(h, counts: scatter) } else {
                                try comm.allReduceSumBF16(h)
                            }
                        }
                    }
                }
                BFloat16.decode(UnsafeBufferPointer(h), into: buf)
            }
            return
        }
        Breakdown.span(.communication) {
            comm.abortOnFailure("\(kind) of \(operation) gradients", code: ExitStatus.peerFailure.rawValue) {
                try watchdog.guarded("\(name)(\(operation))", bytes: 4 * buf.count) {
                    if let scatter { try comm.reduceScatterSum(buf, counts: scatter) } else { try comm.allReduceSum(buf) }
                }
            }
        }
    }

    /// All-reduces a phase's loss values and flags (float32, exact for the counts and flags they carry).
    func reduceExtras(_ extras: [Float], operation: String) -> [Float] {
        var e = extras
        collective(operation, &e)
        return e
    }

    /// All-gathers every rank's factors of one low-rank gradient and sets p.grad = (1/N)·Σ_r dY_rᵀ·X_r.
    func exchange(_ f: LowRankGradient, into p: Parameter, operation: String) {
        let (fin, fout, rows) = (f.inFeatures, f.outFeatures, f.rows)
        let per = rows * (fin + fout)
        var mine = f.x + f.dy
        var all = [Float](repeating: 0, count: per * worldSize)
        gatheredElements += per
        Breakdown.span(.communication) {
            comm.abortOnFailure("all-gather of \(operation) low-rank factors", code: ExitStatus.peerFailure.rawValue) {
                try watchdog.guarded("allGather(\(p.name) factors)", bytes: 4 * per * worldSize) {
                    try mine.withUnsafeMutableBytes { m in
                        try all.withUnsafeMutableBytes { try comm.allGather(UnsafeRawBufferPointer(m), into: $0) }
                    }
                }
            }
        }
        p.grad.fill(0)
        all.withUnsafeBufferPointer { b in
            for r in 0..<worldSize {
                let base = b.baseAddress! + r * per
                LowRankGradient.accumulate(
                    dy: base + rows * fin, x: base, rows: rows, scale: 1 / Float(worldSize), into: p.grad)
            }
        }
        f.reset()
    }

    private func collective(_ operation: String, _ buf: inout [Float]) {
        let bytes = 4 * buf.count
        Breakdown.span(.communication) {
            buf.withUnsafeMutableBufferPointer { p in
                comm.abortOnFailure("all-reduce of \(operation) gradients", code: ExitStatus.peerFailure.rawValue) {
                    try watchdog.guarded("allReduce(\(operation))", bytes: bytes) {
                        try comm.allReduceSum(p)
                    }
                }
            }
        }
    }
}

/// Watches the collectives of one rank: names the ranks that do not arrive, and aborts a job that stays stuck.
///
/// As Horovod's stall inspector does, before a watched collective every rank sends a small arrival notice (to
/// rank 0, and rank 0 to everyone), and the training thread polls the notices without blocking
/// (`Communicator.testArrival`, MPI_Test) until it has what it waits for. MPI runs at MPI_THREAD_SERIALIZED, so
/// polling on the thread that makes the collectives is the way to learn who is missing without a second thread
/// inside MPI. After `stallWarning` seconds rank 0 warns, naming the ranks that have not arrived and their hosts,
/// and repeats with the elapsed time; a rank other than 0 warns only when rank 0 itself is missing. At `timeout`
/// the job is aborted (exit status 68) with the same names. Once everyone has arrived, the collective runs; a
/// thread checks once a second that it completes within `timeout` (a network failure), and aborts if not.
public final class Watchdog: @unchecked Sendable {
    let comm: Communicator
    public let timeout: Double
    public let stallWarning: Double
    private let lock = NSLock()
    private var current: (operation: String, bytes: Int, started: Double, cause: String, extra: Double)?
    /// Training step, for the messages.
    public var step: Int {
        get {
            lock.lock()
            defer { lock.unlock() }
            return _step
        }
        set {
            lock.lock()
            _step = newValue
            lock.unlock()
        }
    }
    private var _step = 0
    private var thread: Thread?
    private var sequence = 0
    /// The host of each rank (learned in the first collective), for the messages.
    public private(set) var hosts: [String] = []
    /// Where warnings go (rank-tagged standard error by default).
    public var warn: (String) -> Void

    init(comm: Communicator, timeout: Double, stallWarning: Double) {
        self.comm = comm
        self.timeout = timeout
        self.stallWarning = stallWarning
        warn = { [comm] in FileHandle.standardError.write(Data("\(comm.rankTag) warning: \($0)\n".utf8)) }
        guard comm.worldSize > 1, timeout > 0 else { return }
        let t = Thread { [weak self] in
            while let me = self {
                me.check()
                Thread.sleep(forTimeInterval: min(1, max(0.05, timeout / 10)))
            }
        }
        t.name = "collective-watchdog"
        t.start()
        thread = t
    }

    /// Gathers every rank's host name (a collective; called once, before training).
    func learnHosts() throws {
        guard comm.worldSize > 1, hosts.isEmpty else { return }
        var mine = [UInt8](repeating: 0, count: 64)
        for (i, b) in comm.processorName.utf8.prefix(63).enumerated() { mine[i] = b }
        let all = try guarded("allGather(host names)", bytes: 64 * comm.worldSize) { try comm.allGather(mine) }
        hosts = all.map { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    private func check() {
        lock.lock()
        let c = current
        let s = _step
        lock.unlock()
        guard let c, ProcessInfo.processInfo.systemUptime - c.started > timeout + c.extra else { return }
        comm.abort(
            code: ExitStatus.peerFailure.rawValue,
            message: "collective timeout: \(c.operation)\(c.bytes > 0 ? " of \(c.bytes) bytes" : "") at step \(s) has not "
                + "completed after \(Int(timeout + c.extra)) s (--collective-timeout"
                + (c.extra > 0 ? " + \(Int(c.extra)) s for its size" : "")
                + "), though every rank reached it; \(c.cause). Aborting the job."
        )
    }

    /// "ranks 1, 3 (hosts a, b)" for the ranks not heard from.
    private func missing(_ status: ArrivalStatus) -> String {
        let ranks =
            comm.rank == 0 ? status.arrived.indices.filter { !status.arrived[$0] } : (status.arrived[0] ? [] : [0])
        let names = ranks.map { r in r < hosts.count ? "\(r) (\(hosts[r]))" : "\(r)" }
        return (ranks.count == 1 ? "rank " : "ranks ") + names.joined(separator: ", ")
    }

    /// Waits until every rank has reached this collective (see the type's description); warns and aborts on a stall.
    func arrive(_ operation: String) {
        // on every rank whatever its --collective-timeout and --stall-warning (0 turns off their messages, not the
        // notices): the notices must pair up for the agreement check to tell ranks of other settings apart
        guard comm.worldSize > 1 else { return }
        sequence += 1
        comm.abortOnFailure("arrival notice before \(operation)", code: ExitStatus.peerFailure.rawValue) {
            try comm.postArrival(sequence: sequence)
        }
        let t0 = ProcessInfo.processInfo.systemUptime
        var nextWarning = stallWarning
        var polls = 0
        while true {
            let status = comm.abortOnFailure(
                "arrival notice before \(operation)", code: ExitStatus.peerFailure.rawValue
            ) {
                try comm.testArrival()
            }
            if status.done { return }
            let waited = ProcessInfo.processInfo.systemUptime - t0
            if timeout > 0 && waited > timeout {
                comm.abort(
                    code: ExitStatus.peerFailure.rawValue,
                    message: "collective timeout: \(operation) at step \(step): "
                        + "\(missing(status)) did not reach it within \(Int(timeout)) s (--collective-timeout); hung or unreachable. Aborting the job."
                )
            }
            // rank 0 names the missing ranks; another rank speaks only when rank 0 is the one missing
            if stallWarning > 0 && waited >= nextWarning {
                if comm.rank == 0 || !status.arrived[0] {
                    warn(
                        "stall: \(operation) at step \(step) has waited \(Int(waited)) s for \(missing(status)); "
                            + (timeout > 0 ? "aborting at \(Int(timeout)) s (--collective-timeout)" : "no timeout set"))
                }
                nextWarning += stallWarning
            }
            polls += 1
            if polls > 200 { usleep(polls > 2000 ? 1000 : 100) }  // spin briefly, then back off: a stall costs no CPU
        }
    }

    /// The cause a timeout names when every rank reached the collective.
    public static let networkCause = "the network or a peer failed"

    /// Runs `body` (one collective, or a group of them such as a checkpoint save) under the watchdog: after `arrive`
    /// when `watch` (every rank must pass the same `watch` values in the same order), then aborting the job if it
    /// has not returned within `timeout` + `extraSeconds` (work that scales with its size, such as a save), with
    /// `cause` in the message. A guarded call inside another one watches itself, then hands the outer one back.
    public func guarded<T>(
        _ operation: String, bytes: Int, watch: Bool = true, cause: String = networkCause, extraSeconds: Double = 0,
        _ body: () throws -> T
    ) rethrows -> T {
        if watch { arrive(operation) }
        lock.lock()
        let outer = current
        current = (operation, bytes, ProcessInfo.processInfo.systemUptime, cause, extraSeconds)
        lock.unlock()
        defer {
            lock.lock()
            current = outer
            lock.unlock()
        }
        return try body()
    }
}

/// The program version, part of the rank-agreement fingerprint and of every checkpoint.
public enum Version { public static let string = "0.1.0" }

func fnv1a(_ s: String) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
    return h
}

/// The gradients' format on the wire (`train --grad-wire`).
public enum GradWire: String, Codable, Sendable, CaseIterable {
    /// float32, exact sums (up to order).
    case fp32
    /// bfloat16: half the bytes; each pairwise sum in float32, rounded to bfloat16 (8 bits of mantissa).
    case bf16
}
