import Foundation

/// Produces items 0, 1, 2, … (typically batches) on background threads ahead of the consumer, and
/// hands them out strictly in order.
///
/// Item k is `produce(k)`: as long as `produce` depends only on k (for batches: on the step, seed and
/// rank, see `EpochOrder.batchItems`), the sequence is the same for any number of workers and any
/// thread timing. At most `depth` items are in flight or waiting, which bounds memory. `waitSeconds`
/// is the time `next()` spent blocked, so a benchmark can report data_wait_fraction.
public final class Prefetcher<Item>: @unchecked Sendable {
    private let state: State

    /// Starts `workers` threads.
    /// - Parameters:
    ///   - count: number of items, or nil for an endless sequence.
    ///   - depth: how many items may be produced ahead of the consumer (≥ 1).
    ///   - produce: item k; an error is delivered by `next()` at position k.
    public init(count: Int? = nil, depth: Int = 3, workers: Int = 2, produce: @escaping (Int) throws -> Item) {
        precondition(depth >= 1 && workers >= 1, "Prefetcher depth \(depth), workers \(workers)")
        state = State(count: count, depth: depth, produce: produce)
        for w in 0..<workers {
            let t = Thread { [state] in state.work() }
            t.name = "prefetch-\(w)"
            t.stackSize = 8 << 20
            state.sync { state.running += 1 }
            t.start()
        }
    }

    deinit { state.stop() }

    /// The next item in order, waiting for it if needed; nil after `count` items.
    /// - Throws: whatever `produce` threw for this item.
    public func next() throws -> Item? { try state.next() }

    /// Seconds `next()` has spent waiting for items not yet produced.
    public var waitSeconds: Double { state.sync { state.waitNanos } / 1e9 }
    /// Items handed out so far.
    public var delivered: Int { state.sync { state.nextToDeliver } }

    /// Workers blocked because the queue is full or every item is claimed (tests wait for this instead of sleeping).
    var idleWorkers: Int { state.sync { state.idle } }
    /// Whether a `next()` call is blocked waiting for its item.
    var isConsumerWaiting: Bool { state.sync { state.consumerWaiting } }

    /// Stops the workers after their current item and waits for them to exit.
    public func stop() { state.stop() }

    private final class State: @unchecked Sendable {
        let cond = NSCondition()
        let count: Int?
        let depth: Int
        let produce: (Int) throws -> Item
        var nextToClaim = 0, nextToDeliver = 0, running = 0
        var results: [Int: Result<Item, Error>] = [:]
        var stopped = false
        var waitNanos: Double = 0
        var idle = 0, consumerWaiting = false

        init(count: Int?, depth: Int, produce: @escaping (Int) throws -> Item) {
            self.count = count
            self.depth = depth
            self.produce = produce
        }

        func sync<T>(_ body: () -> T) -> T {
            cond.lock()
            defer { cond.unlock() }
            return body()
        }

        func work() {
            cond.lock()
            while true {
                while !stopped && (nextToClaim >= nextToDeliver + depth || nextToClaim >= (count ?? .max)) {
                    idle += 1
                    cond.wait()
                    idle -= 1
                }
                if stopped { break }
                let k = nextToClaim
                nextToClaim += 1
                cond.unlock()
                let r = Result { try produce(k) }
                cond.lock()
                results[k] = r
                cond.broadcast()
            }
            running -= 1
            cond.broadcast()
            cond.unlock()
        }

        func next() throws -> Item? {
            cond.lock()
            defer { cond.unlock() }
            if nextToDeliver >= (count ?? .max) || stopped { return nil }
            if results[nextToDeliver] == nil {
                let t0 = DispatchTime.now().uptimeNanoseconds
                consumerWaiting = true
                while results[nextToDeliver] == nil && !stopped { cond.wait() }
                consumerWaiting = false
                waitNanos += Double(DispatchTime.now().uptimeNanoseconds - t0)
            }
            guard let r = results.removeValue(forKey: nextToDeliver) else { return nil }
            nextToDeliver += 1
            cond.broadcast()  // a slot is free
            return try r.get()
        }

        func stop() {
            cond.lock()
            stopped = true
            cond.broadcast()
            while running > 0 { cond.wait() }
            results.removeAll()
            cond.unlock()
        }
    }
}

extension Prefetcher where Item == Batch {
    /// Training batches of one domain in the official order: epoch-shuffled, sharded over ranks
    /// (`EpochOrder.batchItems`), train transform; batch k is step k of this rank. Endless.
    public static func batches(
        _ dataset: ImageFolderDataset, order: EpochOrder, batchSize: Int, size: Int, seed: UInt64,
        rank: Int = 0, worldSize: Int = 1, train: Bool = true, depth: Int = 3,
        workers: Int = 2
    ) -> Prefetcher<Batch> {
        Prefetcher(depth: depth, workers: workers) { k in
            try dataset.batch(
                order.batchItems(step: k, batchSize: batchSize, rank: rank, worldSize: worldSize),
                seed: seed, train: train, size: size)
        }
    }
}
