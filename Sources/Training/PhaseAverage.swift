import Engine
import Foundation

/// One phase's gradient averaging (`DataParallel.begin`): buckets all-reduced in a fixed order, either on a
/// communication thread as backward finishes them (overlap) or all at `finish`.
///
/// Threads: with overlap, the communication thread is the only one that calls MPI between `begin` and the end of
/// `finish` (MPI runs at MPI_THREAD_SERIALIZED: calls from several threads are allowed, never at the same time);
/// the training thread only computes and reports gradients. The hand-offs go through one condition variable.
public final class PhaseAverage: @unchecked Sendable {
    /// When a bucket's gradients were all final, when its all-reduce started and ended (seconds since `begin`).
    public struct BucketTiming: Sendable {
        public var elements: Int
        public var ready = Double.nan, start = Double.nan, end = Double.nan
    }

    let parallel: DataParallel
    let store: ParameterStore
    let operation: String
    let lowRank: [(Parameter, LowRankGradient)]
    public let overlap: Bool
    /// The ZeRO-1 layout when the store's optimizer is sharded: buckets are reduce-scattered, not all-reduced.
    let shard: ShardLayout?
    let segments: [(Int, Int)]
    let pieces: [(offset: Int, count: Int)]
    var pending: [Int]
    let piecesOf: [ObjectIdentifier: [Int]]
    var ready: [Bool]
    var extras: [Float]?
    var reducedExtras: [Float]?
    var localFinite = true
    /// Per bucket: all-reduced (and summed over the ranks) by now.
    var reduced: [Bool]
    /// Offsets of the parameters whose gradients `finishEarly` scaled by 1/N already, which `finish` leaves alone.
    var scaledEarly: Set<Int> = []
    /// The bucket before which the loss values and the flag are all-reduced where `canFinishEarly`: the first one (in
    /// the order they go) of the store's first network, so the flag is known while that network's buckets are on the
    /// wire; nil otherwise (after every bucket, where the extra collective's latency delays nothing).
    let extrasBefore: Int?
    var done = false
    public private(set) var timeline: [BucketTiming]
    /// When the loss values were handed over (`submit`, or `finish` without it: the end of backward), seconds since
    /// `begin`.
    public private(set) var finishCalled = Double.nan
    let cond = NSCondition()
    let t0 = OpBenchmarks.now()
    var thread: Thread?

    init(
        _ parallel: DataParallel, store: ParameterStore, operation: String, lowRank: [(Parameter, LowRankGradient)],
        overlap: Bool, shard: ShardLayout?
    ) {
        self.parallel = parallel
        self.store = store
        self.operation = operation
        self.lowRank = lowRank
        self.overlap = overlap
        self.shard = shard
        let n = store.grads.count
        let excluded = lowRank.map { ($0.0.offset, $0.0.value.count) }
        segments = ShardLayout.segments(count: n, excluding: excluded)
        let pieces = (shard ?? parallel.layout(store, lowRank: lowRank)).buckets
        self.pieces = pieces
        // which buckets each parameter's gradient lies in
        var of: [ObjectIdentifier: [Int]] = [:]
        var pending = [Int](repeating: 0, count: pieces.count)
        let lowRankSet = Set(lowRank.map { ObjectIdentifier($0.0) })
        for p in store.parameters where !lowRankSet.contains(ObjectIdentifier(p)) {
            let (lo, hi) = (p.offset, p.offset + p.value.count)
            let list = pieces.indices.filter { pieces[$0].offset < hi && lo < pieces[$0].offset + pieces[$0].count }
            of[ObjectIdentifier(p)] = list
            for b in list { pending[b] += 1 }
        }
        piecesOf = of
        self.pending = pending
        ready = pending.map { $0 == 0 }
        reduced = pending.map { _ in false }
        let secondNetwork = store.networkStarts.first ?? n
        let early = overlap && shard == nil && lowRank.isEmpty
        extrasBefore = early ? pieces.indices.last { pieces[$0].offset < secondNetwork } : nil
        timeline = pieces.map { BucketTiming(elements: $0.count) }
        if overlap {
            let t = Thread { [unowned self] in self.reduceAll() }
            t.name = "f2w-allreduce"
            thread = t
            t.start()
        }
    }

    /// Reports that `p`'s gradient will not change any more in this phase (from the thread of either chain of the
    /// step: `Tape.backward(_:_:)`, `UGATITStep`).
    public func gradientFinal(_ p: Parameter) {
        guard overlap, let list = piecesOf[ObjectIdentifier(p)] else { return }
        cond.lock()
        let now = OpBenchmarks.now() - t0
        for b in list {
            pending[b] -= 1
            if pending[b] == 0 {
                ready[b] = true
                timeline[b].ready = now
            }
        }
        cond.broadcast()
        cond.unlock()
    }

    /// Hands over the phase's loss values once backward is done (every gradient not reported final is final now), for
    /// their all-reduce with the non-finite flag (`reduceAll`).
    public func submit(values: [Float]) {
        precondition(extras == nil, "PhaseAverage.submit: values handed over twice")
        let factorsFinite = lowRank.allSatisfy { $0.1.x.allSatisfy(\.isFinite) && $0.1.dy.allSatisfy(\.isFinite) }
        let tw = OpBenchmarks.now()
        cond.lock()
        finishCalled = tw - t0
        for b in ready.indices where !ready[b] {  // parameters that backward never reached: final all the same
            ready[b] = true
            timeline[b].ready = tw - t0
        }
        extras = values + [factorsFinite ? 0 : 1]
        cond.broadcast()
        cond.unlock()
    }

    /// Whether `finishEarly` can hand out a part of the phase: with overlap, neither sharded nor low-rank.
    public var canFinishEarly: Bool { extrasBefore != nil }

    /// Waits until every bucket holding a gradient of `parameters` is all-reduced and the phase's non-finite flag is
    /// known (after `submit`: it is all-reduced before the first network's buckets), then scales those gradients by
    /// 1/N (`finish` scales the rest). Lets the caller update those parameters while the last buckets are still on
    /// the wire.
    /// - Returns: false if any rank had a non-finite gradient (nothing may be updated; `finish` says the same).
    public func finishEarly(_ parameters: [Parameter]) -> Bool {
        precondition(canFinishEarly && extras != nil, "PhaseAverage.finishEarly: needs overlap, no shard or low rank, submit")
        precondition(
            parameters.allSatisfy { p in
                piecesOf[ObjectIdentifier(p)] != nil && !scaledEarly.contains(p.offset)
            }, "PhaseAverage.finishEarly: a parameter not in this phase's buckets, or handed out already")
        let buckets = Set(parameters.flatMap { piecesOf[ObjectIdentifier($0)]! })
        waitExposed { reducedExtras != nil && buckets.allSatisfy { reduced[$0] } }
        guard flagIsClear else { return false }
        let scale = 1 / Float(parallel.worldSize)
        let g = store.grads
        for p in parameters {
            for i in p.offset..<(p.offset + p.value.count) { g[i] *= scale }
            scaledEarly.insert(p.offset)
        }
        return true
    }

    /// No rank had a non-finite gradient or factor (the summed flag, once all-reduced).
    private var flagIsClear: Bool { reducedExtras!.last! == 0 }

    /// Waits under `cond` until `condition` holds; the wait counts as exposed communication of this phase, and the
    /// collectives in flight meanwhile poll at full speed.
    private func waitExposed(until condition: () -> Bool) {
        let tw = OpBenchmarks.now()
        Breakdown.span(.communication) {
            cond.lock()
            if !condition() {
                parallel.changePolling(waiting: 1)
                while !condition() { cond.wait() }
                parallel.changePolling(waiting: -1)
            }
            cond.unlock()
        }
        let waited = OpBenchmarks.now() - tw
        parallel.exposedSeconds += waited
        parallel.exposedSecondsByOperation[operation, default: 0] += waited
    }

    /// Hands over the phase's loss values (unless `submit` did), waits for the last bucket, scales every gradient
    /// by 1/N (but those `finishEarly` scaled) and forms the low-rank gradients. `values` come back averaged over
    /// the ranks.
    /// - Returns: false if any rank had a non-finite gradient (every rank skips the update).
    public func finish(values: inout [Float]) -> Bool {
        if extras == nil { submit(values: values) }
        if overlap {
            waitExposed { done }  // the exposed part of the communication
        } else {
            reduceAll()
        }
        let n = parallel.worldSize
        let scale = 1 / Float(n)
        let g = store.grads
        if let shard {  // only this rank's blocks hold sums (and only they are read, by the sharded update)
            for b in pieces.indices { for i in shard.block(b, rank: parallel.rank) { g[i] *= scale } }
        } else if n > 1 && scaledEarly.isEmpty {
            for (o, l) in segments { for i in o..<(o + l) { g[i] *= scale } }
        } else if n > 1 {  // after `finishEarly` (so nothing is low-rank): the parameters it did not hand out
            for p in store.parameters where !scaledEarly.contains(p.offset) {
                for i in p.offset..<(p.offset + p.value.count) { g[i] *= scale }
            }
        }
        for (p, f) in lowRank { parallel.exchange(f, into: p, operation: operation) }
        let e = reducedExtras!
        for j in 0..<values.count { values[j] = e[j] * scale }
        parallel.lastTimeline = timeline
        parallel.collectiveSeconds += timeline.reduce(0) { $0 + ($1.end - $1.start) }
        return flagIsClear  // the summed flag already counts this rank's gradients
    }

    /// The buckets from the last to the first, each once it is ready, so that no bucket waits for the end of the
    /// phase (with the D phase completed behind the G phase's forward passes, all of D's buckets can be on the wire
    /// before the D update is needed). The loss values and the non-finite flag go in a small all-reduce of their own,
    /// once `submit` has handed them over: where `canFinishEarly` before the buckets of the store's first network
    /// (genA2B, disGA), so that the flag is known while those are on the wire (`finishEarly`); otherwise after every
    /// bucket. Every rank calls the collectives in this order.
    func reduceAll() {
        let cpu0 = threadCPUSeconds()
        // with overlap (on the communication thread) a collective counts as in flight beside the training thread's
        // compute only while it runs: a training-thread collective between two (the sharded optimizer's parameter
        // all-gather) must not nap lazily
        func inFlight<T>(_ body: () -> T) -> T {
            if overlap { parallel.changePolling(communicating: 1) }
            defer { if overlap { parallel.changePolling(communicating: -1) } }
            return body()
        }
        let g = store.grads
        func check(_ b: Int) {
            let (off, len) = pieces[b]
            if localFinite, !Tensor.allFinite(g.data + off, count: len) { localFinite = false }
        }
        var extrasSent = false
        // once `submit` has handed the values over (every bucket is ready by then): checks the buckets not yet
        // checked, then all-reduces the values with the flag, which thus counts every bucket of this rank
        func reduceExtras(checked: Range<Int>) {
            cond.lock()
            while extras == nil { cond.wait() }
            var e = extras!
            cond.unlock()
            for b in pieces.indices where !checked.contains(b) { check(b) }
            e[e.count - 1] = (e[e.count - 1] != 0 || !localFinite) ? 1 : 0
            extrasSent = true
            let out = inFlight { parallel.reduceExtras(e, operation: operation) }
            cond.lock()
            reducedExtras = out
            cond.broadcast()
            cond.unlock()
        }
        for b in pieces.indices.reversed() {
            cond.lock()
            while !ready[b] { cond.wait() }
            cond.unlock()
            if !extrasSent { check(b) }
            if b == extrasBefore { reduceExtras(checked: b..<pieces.count) }
            let (off, len) = pieces[b]
            let buf = UnsafeMutableBufferPointer(start: g.data + off, count: len)
            let start = OpBenchmarks.now() - t0
            inFlight {
                parallel.reduceBucket(buf, operation: operation, scatter: shard?.counts(b))
            }
            let end = OpBenchmarks.now() - t0
            cond.lock()
            timeline[b].start = start
            timeline[b].end = end
            reduced[b] = true
            cond.broadcast()
            cond.unlock()
        }
        if !extrasSent { reduceExtras(checked: 0..<pieces.count) }
        cond.lock()
        parallel.collectiveCPUSeconds += threadCPUSeconds() - cpu0
        done = true
        cond.broadcast()
        cond.unlock()
    }
}

/// CPU seconds used by the calling thread so far.
func threadCPUSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}
