import ArgumentParser
import Foundation
import Engine
import Foundation
import Training
import UGATIT

/// `face2webtoon bench train`: warm-up steps, then timed training steps on generated data.
struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Time full training steps (D + G update) on generated data; prints key=value lines.")

    @Option(name: .customLong("img-size"), help: "Image side S.") var imgSize = 96
    @Option(help: "Base channels (ngf = ndf).") var ch = 16
    @Option(name: .customLong("n-res"), help: "Residual blocks per generator half.") var nRes = 4
    @Flag(help: "Light generator (global-average-pooled MLP input).") var light = false
    @Option(name: .customLong("batch-size")) var batchSize = 1
    @Option(help: "Compute threads.") var threads = 1
    @Option(name: .customLong("global-layers"), help: "Global discriminator depth (default: the size rule).") var globalLayers: Int?
    @Option(name: .customLong("local-layers"), help: "Local discriminator depth (default: the size rule).") var localLayers: Int?
    @Option(help: "Untimed warm-up steps.") var warmup = 2
    @Option(help: "Timed steps.") var steps = 5

    func run() throws {
        Runtime.configure(threads: threads)
        let peak = OpBenchmarks.sgemmGFLOPS(size: 2048, repeats: 3)
        let model = ModelConfig(imageSize: imgSize, ch: ch, blocks: nRes, light: light,
                                globalLayers: globalLayers, localLayers: localLayers)
        if !model.problems().isEmpty { throw ValidationError(model.problems().joined(separator: "\n")) }
        let m = UGATITModel(config: model, seed: 0)
        let step = UGATITStep(model: m)
        let source = GeneratedBatches(imageSize: imgSize, batchSize: batchSize, seed: 1)
        for s in 0..<warmup {
            let (a, b) = try source.batch(step: s + 1)
            step.step(realA: a.images, realB: b.images)
        }
        FlopCounter.reset()
        let wait0 = source.waitSeconds
        let t0 = OpBenchmarks.now()
        for s in 0..<steps {
            let (a, b) = try source.batch(step: warmup + s + 1)
            step.step(realA: a.images, realB: b.images)
        }
        let seconds = (OpBenchmarks.now() - t0) / Double(steps)
        let gflop = Double(FlopCounter.total) / Double(steps) / 1e9
        print("blas_core=\(Runtime.blasCore)")
        print("threads=\(threads)")
        print("img_size=\(imgSize) ch=\(ch) n_res=\(nRes) light=\(light) batch_size=\(batchSize) "
              + "global_layers=\(model.globalLayers) local_layers=\(model.localLayers)")
        print("sgemm_gflops=\(fmt(peak))")
        print("gflop_per_iter=\(fmt(gflop))")
        print("achieved_gflops=\(fmt(gflop / seconds))")
        print("fraction_of_sgemm_peak=\(fmt(gflop / seconds / peak))")
        print("data_wait_fraction=\(fmt((source.waitSeconds - wait0) / Double(steps) / seconds))")
        print("peak_rss_mib=\(fmt(peakRSSMiB()))")
        print("seconds_per_iter=\(fmt(seconds))")
    }
}

/// Peak resident set size of this process in MiB (getrusage; Linux reports KiB).
func peakRSSMiB() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_maxrss) / 1024
}
