import Dispatch

/// The number of compute threads used by `parallelFor` and by OpenBLAS (see `Runtime.configure`).
public enum Parallel {
    nonisolated(unsafe) public internal(set) static var threads = 1

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
        withoutActuallyEscaping(body) { body in
            DispatchQueue.concurrentPerform(iterations: chunks) { k in
                let lo = range.lowerBound + n * k / chunks
                let hi = range.lowerBound + n * (k + 1) / chunks
                for i in lo..<hi { body(i) }
            }
        }
    }
}
