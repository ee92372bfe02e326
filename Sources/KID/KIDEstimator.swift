import Engine

/// A set of feature vectors in Float64: `count` rows of `dimension` values, row-major.
public struct FeatureMatrix: Equatable, Sendable {
    public let count: Int
    public let dimension: Int
    public let values: [Double]

    /// Rows of equal length (at least one row).
    public init(rows: [[Double]]) {
        precondition(
            !rows.isEmpty && rows.allSatisfy { $0.count == rows[0].count }, "FeatureMatrix needs equal, non-empty rows")
        count = rows.count
        dimension = rows[0].count
        values = rows.flatMap { $0 }
    }

    /// From a [N, d] float32 tensor (e.g. `FIDInceptionV3` features).
    public init(_ t: Tensor) {
        precondition(t.rank == 2, "FeatureMatrix expects [N, d], got \(t.shape)")
        count = t.shape[0]
        dimension = t.shape[1]
        values = t.array.map(Double.init)
    }

    /// The rows of `self` followed by the rows of `other` (same dimension).
    public func appending(_ other: FeatureMatrix) -> FeatureMatrix {
        precondition(other.dimension == dimension, "appending \(other.dimension)-d rows to \(dimension)-d rows")
        return FeatureMatrix(count: count + other.count, dimension: dimension, values: values + other.values)
    }

    init(count: Int, dimension: Int, values: [Double]) {
        self.count = count
        self.dimension = dimension
        self.values = values
    }
}

/// KID: mean and population standard deviation of the unbiased MMD² over subsets.
public struct KIDResult: Equatable, Sendable {
    /// Mean over subsets (plain KID, not ×1000; it can be negative).
    public let kid: Double
    /// Population standard deviation over the subsets (numpy's std, ddof 0), 0 for one subset.
    public let std: Double
    public let subsets: Int
    /// Images per set in each subset.
    public let subsetSize: Int
}

/// The Kernel Inception Distance (Bińkowski et al. 2018; spec E.1), in Float64.
///
/// Kernel k(a, b) = (aᵀb/d + 1)³. Per subset of m features from each set:
/// MMD²_u = [Σ_{i≠j} k(x_i, x_j) + Σ_{i≠j} k(y_i, y_j)] / (m(m − 1)) − 2 Σ_{i,j} k(x_i, y_j) / m²
/// (the cross term keeps its diagonal). Subset rule (StyleGAN2-ADA's `kid50k`): m = min(N_x, N_y, subsetSize);
/// every subset draws m indices of each set without replacement (partial Fisher–Yates on `RandomGenerator(seed:)`,
/// first the x indices, then the y indices); KID = mean over `subsets` subsets. When m equals both set sizes every
/// subset is the whole sets, so one is computed and std = 0.
public enum KIDEstimator {
    /// Default subset count and size (Bińkowski et al., torch-fidelity).
    public static let defaultSubsets = 100
    public static let defaultSubsetSize = 1000

    /// Dot products are precomputed for all pairs when (N_x + N_y)² stays under this (128 MiB of Float64);
    /// above it each subset computes its own. Both give the same numbers.
    public static let gramLimit = 1 << 24

    /// The unbiased MMD² of two equal-size sets (m ≥ 2 rows each).
    /// - Throws: `KIDError.badFeatures` for fewer than 2 rows, unequal sizes or dimensions.
    public static func mmd2(_ x: FeatureMatrix, _ y: FeatureMatrix) throws -> Double {
        guard x.count == y.count, x.count >= 2 else {
            throw KIDError.badFeatures("MMD² needs two sets of equal size ≥ 2, got \(x.count) and \(y.count)")
        }
        guard x.dimension == y.dimension else {
            throw KIDError.badFeatures("feature dimensions differ: \(x.dimension) and \(y.dimension)")
        }
        let all = x.appending(y)
        let m = x.count
        return mmd2(dot: Gram(all).dot, m: m, xs: Array(0..<m), ys: Array(m..<(2 * m)), d: x.dimension)
    }

    /// KID of `real` against `fake` with the subset rule above.
    /// - Parameters: subsets ≥ 1; subsetSize ≥ 2; seed: the subset draws (same seed, same subsets).
    /// - Throws: `KIDError.badFeatures` if a set has fewer than 2 rows or the dimensions differ.
    public static func kid(
        real: FeatureMatrix, fake: FeatureMatrix, subsets: Int = defaultSubsets,
        subsetSize: Int = defaultSubsetSize, seed: UInt64 = 0,
        precomputeLimit: Int = gramLimit
    ) throws -> KIDResult {
        guard real.dimension == fake.dimension else {
            throw KIDError.badFeatures("feature dimensions differ: real \(real.dimension), fake \(fake.dimension)")
        }
        let m = min(real.count, fake.count, subsetSize)
        guard m >= 2, subsets >= 1 else {
            throw KIDError.badFeatures(
                "needs at least 2 images per set and 1 subset (real \(real.count), fake \(fake.count), subset size \(subsetSize), subsets \(subsets))"
            )
        }
        let nx = fake.count
        let ny = real.count
        let d = fake.dimension
        let whole = m == nx && m == ny
        let runs = whole ? 1 : subsets
        var rng = RandomGenerator(seed: seed)
        let all = fake.appending(real)  // rows 0..<nx are x (generated), nx..<nx+ny are y (real)
        let gram: Gram? = (nx + ny) * (nx + ny) <= precomputeLimit ? Gram(all) : nil
        var values: [Double] = []
        for _ in 0..<runs {
            let xs = whole ? Array(0..<nx) : sample(nx, m, &rng)
            let ys = (whole ? Array(0..<ny) : sample(ny, m, &rng)).map { $0 + nx }
            if let gram {
                values.append(mmd2(dot: gram.dot, m: m, xs: xs, ys: ys, d: d))
            } else {
                let sub = Gram(all, rows: xs + ys)
                values.append(mmd2(dot: sub.dot, m: m, xs: Array(0..<m), ys: Array(m..<(2 * m)), d: d))
            }
        }
        let mean = values.reduce(0, +) / Double(values.count)
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
        return KIDResult(kid: mean, std: variance.squareRoot(), subsets: runs, subsetSize: m)
    }

    /// m distinct indices of 0..<n, in draw order (partial Fisher–Yates).
    static func sample(_ n: Int, _ m: Int, _ rng: inout RandomGenerator) -> [Int] {
        var idx = Array(0..<n)
        for i in 0..<m { idx.swapAt(i, i + rng.int(n - i)) }
        return Array(idx.prefix(m))
    }

    /// MMD²_u from dot products `dot(i, j)` of rows `xs` and `ys` (m each).
    static func mmd2(dot: (Int, Int) -> Double, m: Int, xs: [Int], ys: [Int], d: Int) -> Double {
        let invD = 1 / Double(d)
        @inline(__always) func k(_ a: Int, _ b: Int) -> Double {
            let t = dot(a, b) * invD + 1
            return t * t * t
        }
        var kxx = 0.0
        var kyy = 0.0
        var kxy = 0.0
        for i in 0..<m {
            for j in 0..<m {
                if i != j {
                    kxx += k(xs[i], xs[j])
                    kyy += k(ys[i], ys[j])
                }
                kxy += k(xs[i], ys[j])
            }
        }
        let mm = Double(m)
        return (kxx + kyy) / (mm * (mm - 1)) - 2 * kxy / (mm * mm)
    }
}

/// Dot products of a set of rows, all pairs, in Float64 (symmetric; computed in parallel).
///
/// Tiled: pairs are taken in 16×16 blocks of rows, so the 32 rows of a block pair (512 KiB at d = 2048) stay in L2;
/// row by row, every row streamed the whole matrix from memory: 2.8× slower at 2000 rows of 2048. Each dot product is
/// the same 8-lane sum whichever path or thread computes it.
struct Gram {
    let n: Int
    let g: [Double]

    /// The Gram matrix of `rows` of `f` (default: all rows).
    init(_ f: FeatureMatrix, rows: [Int]? = nil) {
        let r = rows ?? Array(0..<f.count)
        n = r.count
        let d = f.dimension
        let n = self.n
        let bs = 16
        let blocks = (n + bs - 1) / bs
        var g = [Double](repeating: 0, count: n * n)
        f.values.withUnsafeBufferPointer { v in
            g.withUnsafeMutableBufferPointer { out in
                let o = out.baseAddress!
                let base = v.baseAddress!
                // Block row bi pairs with blocks 0...bi: interleave short and long block rows across the threads.
                Parallel.forEach(0..<blocks) { t in
                    let bi = t % 2 == 0 ? t / 2 : blocks - 1 - t / 2
                    for bj in 0...bi {
                        for i in (bi * bs)..<min(n, bi * bs + bs) {
                            let a = base + r[i] * d
                            for j in (bj * bs)..<min(i + 1, bj * bs + bs) {
                                let s = Gram.dot(a, base + r[j] * d, d)
                                o[i * n + j] = s
                                o[j * n + i] = s
                            }
                        }
                    }
                }
            }
        }
        self.g = g
    }

    func dot(_ i: Int, _ j: Int) -> Double { g[i * n + j] }

    /// Σ a_k b_k over d values, with 8 vector lanes of partial sums (a fixed order, independent of threads).
    @inline(__always)
    static func dot(_ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, _ d: Int) -> Double {
        var acc = SIMD8<Double>(repeating: 0)
        var k = 0
        let ra = UnsafeRawPointer(a)
        let rb = UnsafeRawPointer(b)
        while k + 8 <= d {
            acc +=
                ra.loadUnaligned(fromByteOffset: k * 8, as: SIMD8<Double>.self)
                * rb.loadUnaligned(fromByteOffset: k * 8, as: SIMD8<Double>.self)
            k += 8
        }
        var s = acc.sum()
        while k < d {
            s += a[k] * b[k]
            k += 1
        }
        return s
    }
}
