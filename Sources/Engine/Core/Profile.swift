import Foundation

/// Optional wall-clock accounting per named section (enabled by `Profile.enabled`); used by `bench`.
public enum Profile {
    nonisolated(unsafe) public static var enabled = false
    nonisolated(unsafe) public static var seconds: [String: Double] = [:]
    nonisolated(unsafe) public static var calls: [String: Int] = [:]

    /// Times `body` under `name` (when enabled) and, with a `kind`, charges it to that kind in `Breakdown`.
    @inline(__always)
    public static func time<T>(_ name: String, kind: TimeKind? = nil, _ body: () -> T) -> T {
        if let kind, Breakdown.enabled { return Breakdown.span(kind) { time(name, body) } }
        guard enabled else { return body() }
        let t0 = OpBenchmarks.now()
        let r = body()
        add(name, since: t0)
        return r
    }

    // the two halves of `Parallel.pair` record at the same time
    static let lock = NSLock()

    public static func reset() {
        lock.lock()
        seconds = [:]
        calls = [:]
        lock.unlock()
    }

    /// Adds one call of `name` that took the seconds since `start` (for spans that cannot be a closure).
    public static func add(_ name: String, since start: Double) {
        let t = OpBenchmarks.now() - start
        lock.lock()
        defer { lock.unlock() }
        seconds[name, default: 0] += t
        calls[name, default: 0] += 1
    }
}

/// The kinds of work a training step's wall-clock is split into (bench train's `time_<kind>_s` lines).
public enum TimeKind: Int, CaseIterable, Sendable {
    /// OpenBLAS sgemm calls.
    case gemm
    /// Convolution data movement: im2col, col2im, reflection padding, kn2row shifts and folds.
    case im2col
    /// Instance, layer, ILN and adaILN normalisation, forward and backward.
    case norm
    /// Elementwise, broadcast, shape, pooling, loss and grid-sampling ops, forward and backward.
    case elementwise
    /// The Adam updates (and the rho clipping after them).
    case adam
    /// Tensor allocation and release (posix_memalign, free).
    case alloc
    /// Gradient all-reduce and the other collectives.
    case communication
    /// The rest: conv and linear bookkeeping outside their GEMMs, spectral norm, the tape, data, logging.
    case other

    public var name: String { "\(self)" }
}

/// Where a step's time goes, by `TimeKind`, with one clock read per event and no nesting cost.
///
/// The clock is read at every op boundary: an op's forward time runs from the previous boundary to its `record`
/// and its backward time is its closure's; both are charged to the op's kind. Inside an op, `span` charges GEMMs,
/// im2col and allocations to their own kinds and leaves the remainder pending for the op. Only the thread that
/// called `start` is measured (work that OpenBLAS or `Parallel` runs on other threads is inside the caller's span).
/// The kinds therefore add up to the wall-clock between `start` and `stop`.
public enum Breakdown {
    nonisolated(unsafe) public private(set) static var enabled = false
    nonisolated(unsafe) static var seconds = [Double](repeating: 0, count: TimeKind.allCases.count)
    nonisolated(unsafe) static var mark = 0.0
    nonisolated(unsafe) static var pending = 0.0
    nonisolated(unsafe) static var depth = 0
    nonisolated(unsafe) static var owner = pthread_self()

    @inline(__always) static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    @inline(__always) static var measuring: Bool { enabled && pthread_equal(pthread_self(), owner) != 0 }

    /// Starts measuring on this thread, from zero.
    public static func start() {
        seconds = [Double](repeating: 0, count: TimeKind.allCases.count)
        owner = pthread_self()
        pending = 0
        depth = 0
        mark = now()
        enabled = true
    }

    /// Stops measuring (what ran since the last boundary is `other`) and returns the seconds per kind.
    public static func stop() -> [TimeKind: Double] {
        end(.other)
        enabled = false
        return Dictionary(uniqueKeysWithValues: TimeKind.allCases.map { ($0, seconds[$0.rawValue]) })
    }

    /// Ends the op in progress: everything since its start that no span took is `kind`'s.
    @inline(__always) public static func end(_ kind: TimeKind) {
        guard measuring, depth == 0 else { return }
        let t = now()
        seconds[kind.rawValue] += pending + (t - mark)
        pending = 0
        mark = t
    }

    /// Runs `body` and charges its time to `kind`; the time before it stays pending for the op in progress.
    /// Nested spans belong to the outer one.
    @inline(__always) public static func span<T>(_ kind: TimeKind, _ body: () throws -> T) rethrows -> T {
        guard measuring, depth == 0 else { return try body() }
        let t0 = now()
        pending += t0 - mark
        depth = 1
        defer {
            depth = 0
            let t1 = now()
            seconds[kind.rawValue] += t1 - t0
            mark = t1
        }
        return try body()
    }
}
