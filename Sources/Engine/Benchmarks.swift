import Foundation

/// Micro-benchmarks used by `face2webtoon bench ops` (figures, not tests).
public enum OpBenchmarks {
    public struct ConvShape {
        public let name: String
        public let cin: Int, cout: Int, k: Int, side: Int
    }

    /// The U-GAT-IT shapes named in the foundation issue: 3×3 64→64 at 128², 3×3 128→128 at 64², 7×7 3→64 at 128².
    public static let ugatitConvShapes = [
        ConvShape(name: "3x3_64to64_128", cin: 64, cout: 64, k: 3, side: 128),
        ConvShape(name: "3x3_128to128_64", cin: 128, cout: 128, k: 3, side: 64),
        ConvShape(name: "7x7_3to64_128", cin: 3, cout: 64, k: 7, side: 128),
    ]

    /// The shapes that dominate a 256×256, ch 64 step: the bottleneck's 3×3 256→256 at 64², the output 7×7 64→3 at
    /// 256², the first 7×7 3→64 at 256².
    public static let largeConvShapes = [
        ConvShape(name: "3x3_256to256_64", cin: 256, cout: 256, k: 3, side: 64),
        ConvShape(name: "7x7_64to3_256", cin: 64, cout: 3, k: 7, side: 256),
        ConvShape(name: "7x7_3to64_256", cin: 3, cout: 64, k: 7, side: 256),
    ]

    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// CPU seconds (user + system, every thread) this process has used so far (getrusage).
    public static func processCPUSeconds() -> Double {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
    }

    /// Best-of-`repeats` GFLOP/s of a square row-major sgemm of side `size`.
    public static func sgemmGFLOPS(size n: Int, repeats: Int) -> Double {
        var rng = RandomGenerator(seed: 1)
        let a = rng.normalTensor([n, n])
        let b = rng.normalTensor([n, n])
        let c = Tensor(zeros: [n, n])
        sgemm(m: n, n: n, k: n, a.data, b.data, c.data)  // warm-up
        var best = Double.infinity
        for _ in 0..<repeats {
            let t0 = now()
            sgemm(m: n, n: n, k: n, a.data, b.data, c.data)
            best = min(best, now() - t0)
        }
        return 2 * Double(n * n * n) / best / 1e9
    }

    /// Best-of-`repeats` time of one conv2d forward + backward (dx, dW) with reflection padding k/2 and batch 1,
    /// and its GFLOP/s counting the three GEMMs (2·Cout·K·P each).
    /// The shapes of 64-128 px steps: the generator bottleneck at ch 16 / 96² (64 channels at 24²) and at ch 32 / 128²
    /// (128 channels at 32²), and an up-sampling conv of 128/32 (128→64 at 64²).
    public static let smallConvShapes = [
        ConvShape(name: "3x3_64to64_24", cin: 64, cout: 64, k: 3, side: 24),
        ConvShape(name: "3x3_128to128_32", cin: 128, cout: 128, k: 3, side: 32),
        ConvShape(name: "3x3_128to64_64", cin: 128, cout: 64, k: 3, side: 64),
    ]

    public static func conv(_ s: ConvShape, repeats: Int) -> (seconds: Double, gflops: Double) {
        var rng = RandomGenerator(seed: 2)
        let x = rng.normalTensor([1, s.cin, s.side, s.side])
        let w = Parameter(name: "w", value: Init.kaimingUniform([s.cout, s.cin, s.k, s.k], &rng))
        let dy = rng.normalTensor([1, s.cout, s.side, s.side])
        func once() {
            let tape = Tape()
            let y = tape.conv2d(tape.input(x), tape.param(w), padding: s.k / 2, mode: .reflect)
            tape.backward(y, seed: dy)
        }
        once()
        var best = Double.infinity
        for _ in 0..<repeats {
            let t0 = now()
            once()
            best = min(best, now() - t0)
        }
        let flops = 3 * 2 * Double(s.cout * s.cin * s.k * s.k * s.side * s.side)
        return (best, flops / best / 1e9)
    }
}
