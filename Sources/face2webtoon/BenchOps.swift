import ArgumentParser
import Engine
import Foundation

/// `face2webtoon bench ops`: sgemm peak and conv2d forward+backward at U-GAT-IT shapes, in one run.
struct BenchOps: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ops",
        abstract: "Measure sgemm peak and conv2d forward+backward against it; prints key=value lines.")

    @Option(help: "Compute threads (OpenBLAS and the engine's loops).")
    var threads: Int = 1

    @Option(help: "Timed repetitions per figure (the best is reported).")
    var repeats: Int = 5

    @Flag(help: "Also measure the shapes that dominate a 256×256 ch 64 step (not part of the fraction).")
    var large = false

    @Flag(help: "Also measure the shapes of 64-128 px steps (not part of the fraction).")
    var small = false

    @Option(help: "Side of the square sgemm used for the peak.")
    var sgemmSize: Int = 2048

    @OptionGroup var conv: ConvOptions

    func run() throws {
        Runtime.configure(threads: threads)
        let convLine = conv.apply()
        print("blas_core=\(Runtime.blasCore)")
        print("threads=\(threads)")
        // the GFLOP/s are the direct convolution's FLOPs over the time, so a Winograd conv can pass the peak
        print(convLine)
        let peak = OpBenchmarks.sgemmGFLOPS(size: sgemmSize, repeats: repeats)
        print("sgemm_gflops=\(fmt(peak))")
        var fractions: [Double] = []
        func measure(_ s: OpBenchmarks.ConvShape) -> Double {
            Profile.enabled = ProcessInfo.processInfo.environment["F2W_PROFILE"] != nil
            Profile.reset()
            let r = OpBenchmarks.conv(s, repeats: repeats)
            if Profile.enabled {
                for (k, v) in Profile.seconds.sorted(by: { $0.key < $1.key }) {
                    print("  \(k) \(fmt(v * 1000 / Double(repeats + 1))) ms")
                }
            }
            let f = r.gflops / peak
            print(
                "conv_\(s.name)_ms=\(fmt(r.seconds * 1000)) conv_\(s.name)_gflops=\(fmt(r.gflops)) conv_\(s.name)_fraction=\(fmt(f))"
            )
            return f
        }
        for s in OpBenchmarks.ugatitConvShapes { fractions.append(measure(s)) }
        let geo = exp(fractions.map { log($0) }.reduce(0, +) / Double(fractions.count))
        print("conv_fraction_of_sgemm_peak=\(fmt(geo))")
        if large { for s in OpBenchmarks.largeConvShapes { _ = measure(s) } }
        if small { for s in OpBenchmarks.smallConvShapes { _ = measure(s) } }
    }
}

func fmt(_ x: Double) -> String { String(format: "%.3f", x) }
