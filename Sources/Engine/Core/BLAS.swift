import CMalloc
import COpenBLAS
import Foundation
import Synchronization

/// Row-major single-precision GEMM: C = alpha·op(A)·op(B) + beta·C, with op(A) [m, k] and op(B) [k, n].
/// `lda`, `ldb`, `ldc` default to the packed row lengths.
@inline(__always)
func sgemm(
    transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
    alpha: Float = 1, _ a: UnsafePointer<Float>, lda: Int? = nil,
    _ b: UnsafePointer<Float>, ldb: Int? = nil,
    beta: Float = 0, _ c: UnsafeMutablePointer<Float>, ldc: Int? = nil, counted: Bool = true
) {
    if m == 0 || n == 0 { return }
    if counted { FlopCounter.add(2 * m * n * k) }
    let (lda, ldb, ldc) = (lda ?? (transA ? m : k), ldb ?? (transB ? k : n), ldc ?? n)
    func gemm(_ m: Int, _ n: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>) {
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
    Breakdown.span(.gemm) {
        // Inside a `Parallel.pair` half with more than one thread OpenBLAS is on one thread per call: split a large
        // GEMM over the half's threads by blocks of C's columns (or rows), one OpenBLAS call each. Each element of C
        // is still one call's dot product over the same k, which keeps the floats with the kernels that sum in an
        // order fixed by k alone (`Runtime.gemmSplitKeepsFloats`); with the others the GEMM stays whole.
        let parts = Parallel.threads
        guard parts > 1, Runtime.blasThreads == 1, m * n * k >= 1 << 21, Runtime.gemmSplitKeepsFloats else {
            return gemm(m, n, a, b, c)
        }
        if n >= 16 * parts {
            Parallel.forEach(0..<parts) { i in
                let (lo, hi) = (n * i / parts / 16 * 16, i == parts - 1 ? n : n * (i + 1) / parts / 16 * 16)
                gemm(m, hi - lo, a, b + (transB ? lo * ldb : lo), c + lo)
            }
        } else {
            Parallel.forEach(0..<parts) { i in
                let (lo, hi) = (m * i / parts, m * (i + 1) / parts)
                if hi > lo { gemm(hi - lo, n, a + (transA ? lo : lo * lda), b, c + lo * ldc) }
            }
        }
    }
}

/// Forward-only dense layer for code outside the tape (KID's Inception convolutions): y = x·Wᵀ + b.
/// x: [m, k] (any row-major view), weight: [n, k], bias: [n] or nil. Returns y [m, n]. Counted by `FlopCounter`.
public func denseForward(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
    precondition(x.rank == 2 && weight.rank == 2 && weight.shape[1] == x.shape[1], "denseForward: \(x.shape) · \(weight.shape)ᵀ")
    let (m, k, n) = (x.shape[0], x.shape[1], weight.shape[0])
    let y = Tensor(uninitialized: [m, n])
    if let b = bias {
        precondition(b.count == n, "denseForward: bias \(b.shape) for \(n) outputs")
        for i in 0..<m { (y.data + i * n).update(from: b.data, count: n) }
    }
    sgemm(transB: true, m: m, n: n, k: k, x.data, weight.data, beta: bias == nil ? 0 : 1, y.data)
    return y
}

/// Process-wide compute settings: OpenBLAS kernel selection and thread count.
public enum Runtime {
    /// OpenBLAS's thread count as last set here (`configure`, `withBLASThreads`).
    nonisolated(unsafe) static var blasThreads = 1

    /// Runs `body` with OpenBLAS on `n` threads, then restores the previous count. Not to be nested inside another
    /// thread's call (the count is process-wide): `Parallel.pair` calls it once around both halves.
    static func withBLASThreads<T>(_ n: Int, _ body: () -> T) -> T {
        let old = blasThreads
        guard n != old else { return body() }
        openblas_set_num_threads(Int32(n))
        blasThreads = n
        defer {
            openblas_set_num_threads(Int32(old))
            blasThreads = old
        }
        return body()
    }

    /// Runs `body` with OpenBLAS on one thread, for callers that spread independent GEMMs over `Parallel`'s
    /// threads themselves (such GEMMs pass counted: false and the caller counts them once). Inside a `Parallel.pair` half OpenBLAS is on one thread already and is left alone.
    static func withSingleThreadedBLAS<T>(_ body: () -> T) -> T {
        guard Parallel.threads > 1, blasThreads > 1 else { return body() }
        return withBLASThreads(1, body)
    }

    /// Whether one GEMM split into calls on blocks of C's columns or rows gives the same floats as the whole call
    /// with the OpenBLAS kernel in use, probed once on shapes of the training step's products (one thread).
    ///
    /// Why a probe: the SkylakeX and Sandybridge kernels sum each element of C in an order fixed by k, so a split
    /// changes nothing; the Haswell kernel (also OpenBLAS's choice on AMD Zen) does not: splitting a
    /// [4096 × 24] · [24 × 64] product at column 32 changed 24,000 of its 262,144 floats (OpenBLAS 0.3.21, EPYC).
    /// Results that must not depend on the thread count then keep their GEMMs whole (`sgemm`).
    static let gemmSplitKeepsFloats: Bool = {
        // (m, n, k, transA, transB, split columns): the three whose split changed floats with the Haswell kernel, and
        // a forward one (x·Wᵀ). A probe can only find a change, not prove there is none for every shape.
        let shapes = [
            (4096, 64, 24, false, false, true), (512, 256, 64, true, false, true), (4096, 24, 64, false, true, false),
            (64, 512, 256, false, true, true),
        ]
        return shapes.allSatisfy { (m, n, k, transA, transB, byColumns) in
            var state: UInt32 = 1
            func values(_ count: Int) -> [Float] {  // uniform in [-1, 1), from a linear congruential generator
                (0..<count).map { _ in
                    state = state &* 1_103_515_245 &+ 12_345
                    return Float((state >> 8) & 0xffff) / 32768 - 1
                }
            }
            let (a, b) = (values(m * k), values(k * n))
            let (lda, ldb) = (transA ? m : k, transB ? k : n)
            var whole = [Float](repeating: 0, count: m * n)
            var split = whole
            func gemm(_ rows: Range<Int>, _ cols: Range<Int>, _ c: inout [Float]) {
                a.withUnsafeBufferPointer { a in
                    b.withUnsafeBufferPointer { b in
                        c.withUnsafeMutableBufferPointer { c in
                            cblas_sgemm(
                                CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                                Int32(rows.count), Int32(cols.count), Int32(k), 1,
                                a.baseAddress! + (transA ? rows.lowerBound : rows.lowerBound * lda), Int32(lda),
                                b.baseAddress! + (transB ? cols.lowerBound * ldb : cols.lowerBound), Int32(ldb), 0,
                                c.baseAddress! + rows.lowerBound * n + cols.lowerBound, Int32(n))
                        }
                    }
                }
            }
            gemm(0..<m, 0..<n, &whole)
            if byColumns {
                gemm(0..<m, 0..<(n / 2), &split)
                gemm(0..<m, (n / 2)..<n, &split)
            } else {
                gemm(0..<(m / 2), 0..<n, &split)
                gemm((m / 2)..<m, 0..<n, &split)
            }
            return whole.elementsEqual(split) { $0.bitPattern == $1.bitPattern }
        }
    }()

    /// The OpenBLAS kernel in use (e.g. "SkylakeX", "Haswell", "Prescott").
    public static var blasCore: String {
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p)
    }

    /// Sets the compute threads used by OpenBLAS and `Parallel.forEach` (default: all cores).
    public static func configure(threads: Int? = nil) {
        let n = max(1, threads ?? ProcessInfo.processInfo.activeProcessorCount)
        Parallel.configured = n
        openblas_set_num_threads(Int32(n))
        blasThreads = n
        keepFreedMemory()
    }

    /// Keeps freed activation buffers in the heap for reuse instead of returning them to the kernel.
    ///
    /// Why: glibc serves blocks above 128 KiB with mmap and unmaps them on free, so every op output of every step
    /// was a fresh mapping whose pages the kernel had to zero: 12% of a training step at img 96 went to
    /// clear_page. With these settings blocks up to 32 MiB (glibc's maximum) come from the heap and stay there.
    /// One arena for all threads: with a second one, the worker half of `Parallel.pair` kept its own freed blocks
    /// apart, and peak RSS at 128/32 on 2 threads was 1,456 MiB instead of 1,210 (same speed).
    public static func keepFreedMemory() {
        _ = mallopt(M_MMAP_THRESHOLD, 32 << 20)
        _ = mallopt(M_TRIM_THRESHOLD, 1 << 30)
        _ = mallopt(M_ARENA_MAX, 1)
    }

    /// The best OpenBLAS kernel for this CPU, from /proc/cpuinfo flags (nil if no better choice is known).
    ///
    /// Why: Debian's OpenBLAS 0.3.21 does not recognise newer Xeons (family 6 model 0xCF) and falls back to its
    /// SSE3 "Prescott" kernel, about 4x slower than the AVX-512 one (docs/reference.md §R.3).
    public static func preferredBLASCore() -> String? {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
            let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
        else { return nil }
        let flags = Set(line.split(separator: " ").map(String.init))
        if flags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq"]) { return "SkylakeX" }
        if flags.isSuperset(of: ["avx2", "fma"]) { return "Haswell" }
        return nil
    }

    /// Vector width class of an OpenBLAS core name: 0 SSE, 1 AVX, 2 AVX2, 3 AVX-512.
    static func level(ofCore name: String) -> Int {
        switch name.lowercased() {
        case "skylakex", "cooperlake", "sapphirerapids": return 3
        case "haswell", "zen", "skylake": return 2
        case "sandybridge": return 1
        default: return 0
        }
    }

    /// Sets what must be in the environment before `main` and re-executes the program once if anything was missing
    /// (same PID, arguments and environment otherwise, so it also works under mpirun and Slurm):
    /// - `OPENBLAS_CORETYPE`, when the kernel OpenBLAS chose is weaker than the CPU allows (`preferredBLASCore`).
    ///   OpenBLAS reads it in a library constructor, before `main`. An explicit value is respected.
    /// - `GLIBC_TUNABLES=glibc.malloc.hugetlb=1`, when the kernel gives transparent huge pages only on request
    ///   (`madvise` mode, Debian's default): malloc then asks for them for its heap and large blocks. glibc reads
    ///   tunables at start-up only. Why: at 256/64 the step faulted 1.95M 4 KiB pages in two steps; with huge
    ///   pages 34K, and the step took about 5% less (docs/training.md "Huge pages"). A `glibc.malloc.hugetlb` the
    ///   user set is respected; `F2W_HUGE_PAGES=0` turns this off.
    /// Returns only if no re-exec was needed or it failed (then the program runs on as it is).
    public static func ensureStartupEnvironment() {
        let env = ProcessInfo.processInfo.environment
        guard env["F2W_REEXEC"] == nil else { return }  // guards against a loop
        var changed = false
        if env["OPENBLAS_CORETYPE"] == nil, let best = preferredBLASCore(), level(ofCore: best) > level(ofCore: blasCore) {
            setenv("OPENBLAS_CORETYPE", best, 1)
            changed = true
        }
        if let tunables = hugePageTunables(current: env["GLIBC_TUNABLES"], optOut: env["F2W_HUGE_PAGES"] == "0",
            transparentHugePages: try? String(contentsOfFile: "/sys/kernel/mm/transparent_hugepage/enabled", encoding: .utf8))
        {
            setenv("GLIBC_TUNABLES", tunables, 1)
            changed = true
        }
        guard changed else { return }
        setenv("F2W_REEXEC", "1", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // execv returned: keep running as we are rather than fail.
    }

    /// The `GLIBC_TUNABLES` value that turns on malloc's huge pages, or nil when nothing needs to change: the
    /// kernel's mode (the contents of /sys/kernel/mm/transparent_hugepage/enabled, e.g. "always [madvise] never")
    /// is not `madvise`, the user set `glibc.malloc.hugetlb` already, or opted out.
    static func hugePageTunables(current: String?, optOut: Bool, transparentHugePages mode: String?) -> String? {
        guard !optOut, let mode, mode.contains("[madvise]") else { return nil }
        let current = current ?? ""
        if current.contains("glibc.malloc.hugetlb") { return nil }
        return current.isEmpty ? "glibc.malloc.hugetlb=1" : current + ":glibc.malloc.hugetlb=1"
    }
}

/// y = op(A)·x for a row-major A [rows, cols]; op(A) = Aᵀ when `trans` (then x has `rows` and y `cols` entries).
@inline(__always)
func cblas_sgemv_wrapper(
    trans: Bool, rows: Int, cols: Int, _ a: UnsafePointer<Float>,
    _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>
) {
    Breakdown.span(.gemm) {
        cblas_sgemv(
            CblasRowMajor, trans ? CblasTrans : CblasNoTrans, Int32(rows), Int32(cols), 1, a, Int32(cols),
            x, 1, 0, y, 1)
    }
}

/// Counts the floating-point operations of the matrix products (2·m·n·k per GEMM), for benchmarks.
///
/// `total` is the network's: a conv run by Winograd counts what the direct convolution would do (2·Cout·Cin·9·P
/// per pass), so that gflop_per_iter means the same whatever algorithm ran. `executed` is what sgemm really did.
public enum FlopCounter {
    // atomics: the two halves of `Parallel.pair` count at the same time
    static let totalCount = Atomic<Int>(0)
    static let executedCount = Atomic<Int>(0)
    public static var total: Int { totalCount.load(ordering: .relaxed) }
    public static var executed: Int { executedCount.load(ordering: .relaxed) }
    @inline(__always) static func add(_ n: Int, network: Bool = true, executed: Bool = true) {
        if network { totalCount.wrappingAdd(n, ordering: .relaxed) }
        if executed { executedCount.wrappingAdd(n, ordering: .relaxed) }
    }
    public static func reset() {
        totalCount.store(0, ordering: .relaxed)
        executedCount.store(0, ordering: .relaxed)
    }
}
