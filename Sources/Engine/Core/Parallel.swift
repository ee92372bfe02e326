import COpenBLAS
import Dispatch
import Foundation

/// The number of compute threads used by `parallelFor` and by OpenBLAS (see `Runtime.configure`), and `pair`, which
/// runs two independent halves of a step side by side.
public enum Parallel {
    /// The threads set by `Runtime.configure`.
    nonisolated(unsafe) static var configured = 1
    /// Per-thread override of `threads` inside a `pair` half (0: none). A pthread key, not a Swift global, because
    /// the two halves run at the same time and each must see its own share.
    nonisolated(unsafe) static let widthKey: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()

    /// The threads this thread may use: `Runtime.configure`'s count, or its share inside one half of a `pair`.
    public static var threads: Int {
        let w = Int(bitPattern: pthread_getspecific(widthKey))
        return w > 0 ? w : configured
    }

    /// Runs `body(i)` for every `i` in `range`, split into at most `threads` contiguous chunks.
    /// Small ranges (fewer than `grain` items per extra thread) run inline: dispatch costs ~5 µs.
    @inlinable
    public static func forEach(_ range: Range<Int>, grain: Int = 1, _ body: (Int) -> Void) {
        let n = range.count
        let chunks = min(threads, max(1, n / max(grain, 1)))
        if chunks <= 1 {
            for i in range { body(i) }
            return
        }
        let width = threads
        withoutActuallyEscaping(body) { body in
            DispatchQueue.concurrentPerform(iterations: chunks) { k in
                // a worker inherits its caller's share, so that a loop inside a `pair` half stays inside it
                withWidth(max(1, width / chunks)) {
                    let lo = range.lowerBound + n * k / chunks
                    let hi = range.lowerBound + n * (k + 1) / chunks
                    for i in lo..<hi { body(i) }
                }
            }
        }
    }

    /// Runs `body` with `threads` reading `width` on this thread, and restores the previous value.
    @usableFromInline
    static func withWidth<T>(_ width: Int, _ body: () -> T) -> T {
        let old = pthread_getspecific(widthKey)
        pthread_setspecific(widthKey, UnsafeRawPointer(bitPattern: width))
        defer { pthread_setspecific(widthKey, old) }
        return body()
    }

    /// Runs `first` and `second`, two computations that share no mutable state, and returns both results.
    ///
    /// With `threads` T > 1 they run at the same time: `first` on this thread with ⌈T/2⌉ threads, `second` on a
    /// worker with ⌊T/2⌋, and OpenBLAS on one thread per call meanwhile (two callers each on one OpenBLAS thread
    /// measured faster than OpenBLAS's own threading of these small GEMMs, and is safe: OpenBLAS's single-threaded
    /// path keeps no shared state). With T = 1 they run one after the other, `first` first. Either way each half
    /// computes the same floats, so a result does not depend on T.
    ///
    /// Why: a U-GAT-IT step is two mirror-image chains (A→B→A and B→A→B) of the same cost; splitting them gives
    /// each core a whole chain of large ops, where splitting every op across cores (OpenBLAS threading, `forEach`)
    /// stalls on many small GEMMs and reductions (docs/training.md, "Threads").
    public static func pair<A, B>(_ first: () -> A, _ second: () -> B) -> (A, B) {
        let t = threads
        guard t > 1 else {
            let a = first()
            return (a, second())
        }
        var a: A?
        var b: B?
        let caller = pthread_self()
        let claim = NSLock()
        var firstTaken = false
        var secondTaken = false
        var finished: Double?
        Runtime.withBLASThreads(1) {
            withoutActuallyEscaping(first) { first in
                withoutActuallyEscaping(second) { second in
                    DispatchQueue.concurrentPerform(iterations: 2) { _ in
                        // the first half on the calling thread (the one `Breakdown` measures) where it takes part
                        claim.lock()
                        let runFirst = !firstTaken && (secondTaken || pthread_equal(pthread_self(), caller) != 0)
                        if runFirst { firstTaken = true } else { secondTaken = true }
                        claim.unlock()
                        if runFirst { a = withWidth((t + 1) / 2, first) } else { b = withWidth(t / 2, second) }
                        // bench: how long each half waited for the other (the pair's imbalance)
                        if Profile.enabled {
                            claim.lock()
                            // the half that ended first waited from then until now
                            if let ended = finished {
                                Profile.add(runFirst ? "pair.second_waits" : "pair.first_waits", since: ended)
                            } else {
                                finished = OpBenchmarks.now()
                            }
                            claim.unlock()
                        }
                    }
                }
            }
        }
        return (a!, b!)
    }
}
