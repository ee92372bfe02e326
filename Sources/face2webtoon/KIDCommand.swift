import ArgumentParser
import Dataset
import Engine
import Foundation
import Monitoring
import KID
import Training
import UGATIT

/// `face2webtoon kid`: Kernel Inception Distance with the FID Inception-v3 (docs/kid.md); prints key=value lines.
struct KIDCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kid",
        abstract: "Kernel Inception Distance between two image folders, or of a checkpoint's A2B translations.",
        discussion: """
            Modes:
              --real DIR --fake DIR         KID of the --fake images against --real
              --checkpoint CKPT --data DIR  DIR/testA through genA2B against DIR/testB
                                            (resized to the model's size)
              --bench-images N              time the forward on N synthetic images

            Prints key=value lines: kid (plain KID, not x1000), kid_std, kid_x1000, image counts, timings.

            Weights: --weights, else $F2W_INCEPTION_WEIGHTS, else ~/.cache/face2webtoon/fid_inception_v3.safetensors \
            (made once by Scripts/convert_inception.py).

            Subsets: m = min(N_real, N_fake, --subset-size) images of each set per subset, drawn without replacement \
            from --seed; a single subset when m equals both set sizes. See docs/kid.md.
            """)

    @Option(help: "Folder of real images (searched recursively).") var real: String?
    @Option(help: "Folder of generated images (searched recursively).") var fake: String?
    @Option(
        help:
            "Checkpoint whose genA2B translates DATA/testA, with --data (as for translate: a checkpoints folder, a step folder or a merged file)."
    )
    var checkpoint: String?
    @Option(help: "Data folder with testA and testB (with --checkpoint).") var data: String?
    @Option(help: "FID Inception-v3 weights (safetensors from Scripts/convert_inception.py).") var weights: String?
    @Option(help: "Number of subsets.") var subsets = KIDEstimator.defaultSubsets
    @Option(name: .customLong("subset-size"), help: "Largest subset size m.") var subsetSize = KIDEstimator
        .defaultSubsetSize
    @Option(help: "Seed of the subset draws.") var seed: UInt64 = 0
    @Option(
        name: .customLong("image-size"),
        help:
            "Resize every image to S×S first, so both sets have the generator's resolution: with --real/--fake both folders, with --checkpoint testB (default there: the model's size, as train --kid-every does)."
    )
    var imageSize: Int?
    @Option(name: .customLong("batch-size"), help: "Images per Inception forward.") var batchSize = FIDInceptionV3
        .defaultBatchSize
    @Option(
        name: .customLong("bench-images"),
        help: "Only time the Inception forward on this many synthetic 256x256 images.")
    var benchImages: Int?
    @OptionGroup var process: RunOptions

    func validate() throws {
        let folders = real != nil || fake != nil
        let ckpt = checkpoint != nil || data != nil
        if benchImages == nil {
            if folders == ckpt { throw ValidationError("give --real DIR --fake DIR, or --checkpoint CKPT --data DIR") }
            if folders && (real == nil || fake == nil) { throw ValidationError("--real and --fake go together") }
            if ckpt && (checkpoint == nil || data == nil) {
                throw ValidationError("--checkpoint and --data go together")
            }
        } else if benchImages! < 1 || folders || ckpt {
            throw ValidationError("--bench-images N (N ≥ 1) takes no folders or checkpoint")
        }
        if let s = imageSize, s < 2 || s > 4096 { throw ValidationError("--image-size must be in 2...4096") }
        if subsets < 1 { throw ValidationError("--subsets must be at least 1") }
        if subsetSize < 2 { throw ValidationError("--subset-size must be at least 2") }
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1") }
        if let t = process.threads, t < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        process.apply()
        let path = weights ?? FIDInceptionV3.defaultWeightsPath
        var t0 = OpBenchmarks.now()
        let net = try FIDInceptionV3(weightsPath: path)
        print("weights=\(path)")
        print("threads=\(Parallel.threads)")
        print("load_seconds=\(seconds(OpBenchmarks.now() - t0))")
        if let n = benchImages { return bench(net, images: n) }
        let warn: (String) -> Void = { print("[face2webtoon] warning: \($0)") }
        t0 = OpBenchmarks.now()
        let realFeatures: Tensor
        let fakeFeatures: Tensor
        if let real, let fake {
            realFeatures = try net.features(
                folder: real, imageSize: imageSize, batchSize: batchSize, warn: warn, progress: progress("real"))
                .features
            fakeFeatures = try net.features(
                folder: fake, imageSize: imageSize, batchSize: batchSize, warn: warn, progress: progress("fake"))
                .features
        } else {
            let dir = data!
            let size = try imageSize ?? TrainingCheckpoint.peek(path: checkpoint!).0.model.imageSize
            realFeatures = try net.features(
                folder: "\(dir)/testB", imageSize: size, batchSize: batchSize, warn: warn, progress: progress("testB"))
                .features
            fakeFeatures = try translatedFeatures(net, checkpoint: checkpoint!, folder: "\(dir)/testA", warn: warn)
        }
        let extract = OpBenchmarks.now() - t0
        let images = realFeatures.shape[0] + fakeFeatures.shape[0]
        print("real_images=\(realFeatures.shape[0])")
        print("fake_images=\(fakeFeatures.shape[0])")
        print("extract_seconds=\(seconds(extract))")
        print("seconds_per_image=\(String(format: "%.4f", extract / Double(images)))")
        t0 = OpBenchmarks.now()
        let r = try KIDEstimator.kid(
            real: FeatureMatrix(realFeatures), fake: FeatureMatrix(fakeFeatures),
            subsets: subsets, subsetSize: subsetSize, seed: seed)
        print("kid_seconds=\(seconds(OpBenchmarks.now() - t0))")
        print("subsets=\(r.subsets)")
        print("subset_size=\(r.subsetSize)")
        print("kid=\(String(format: "%.8f", r.kid))")
        print("kid_std=\(String(format: "%.8f", r.std))")
        print("kid_x1000=\(String(format: "%.4f", 1000 * r.kid))")
    }

    /// Feature extraction progress on stderr (stdout carries the key=value results that scripts parse).
    func progress(_ what: String) -> (Int, Int) -> Void {
        var line: ProgressLine?
        let start = Date()  // the line is made at the first batch's report, when the total is known
        return { done, total in
            let p =
                line
                ?? ProgressLine(
                    label: "KID features of \(what)", total: total, terminal: isatty(2) != 0,
                    write: { FileHandle.standardError.write(Data($0.utf8)) }, start: start)
            line = p
            p.update(done)
            if done == total { p.finish() }
        }
    }

    /// Features of DATA/testA translated by the checkpoint's genA2B (test transform, eval mode, one image at a time).
    func translatedFeatures(
        _ net: FIDInceptionV3, checkpoint: String, folder: String,
        warn: (String) -> Void
    ) throws -> Tensor {
        let (config, _) = try TrainingCheckpoint.peek(path: checkpoint)
        let model = UGATITModel(config: config.model, seed: 0)
        _ = try TrainingCheckpoint.load(path: checkpoint, into: model, step: nil)
        let s = config.model.imageSize
        let scan = try FolderScan(folder: folder)
        for skip in scan.skipped { warn("\(folder)/\(skip)") }
        let files = scan.files.map { (folder as NSString).appendingPathComponent($0) }
        let f = net.features(count: files.count, batchSize: batchSize, progress: progress("genA2B(testA)")) {
            i -> RGBImage? in
            let image: RGBImage
            do { image = try ImageDecoder.decode(file: files[i]) } catch {
                warn("skipping \(error)")
                return nil
            }
            let x = ImageTransforms.test(image, size: s).reshaped([1, 3, s, s])
            let t = Tape(training: false)
            let y = model.genA2B(t, t.constant(x)).image.value
            return FIDPreprocess.image(fromGeneratorOutput: y.reshaped([3, s, s]))
        }
        guard f.shape[0] > 0 else { throw KIDError.noImages(folder: folder) }
        return f
    }

    /// Times `features(images:)` (resize, scaling and forward) on synthetic 256×256 images after one warm-up batch.
    func bench(_ net: FIDInceptionV3, images n: Int) {
        let images = (0..<n).map { SyntheticImage.make($0, width: 256, height: 256) }
        _ = net.features(images: Array(images.prefix(batchSize)), batchSize: batchSize)
        let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").first ?? "?"
        Profile.enabled = ProcessInfo.processInfo.environment["F2W_PROFILE"] != nil
        Profile.reset()
        let t0 = OpBenchmarks.now()
        let f = net.features(images: images, batchSize: batchSize)
        let dt = OpBenchmarks.now() - t0
        for (k, v) in Profile.seconds.sorted(by: { $0.value > $1.value }) {
            print("  \(k) \(seconds(v * 1000 / Double(n))) ms/image")
        }
        print("blas_core=\(Runtime.blasCore)")
        print("batch=\(batchSize)")
        print("images=\(n)")
        print("feature_dim=\(f.shape[1])")
        print("load_average=\(load)")
        print("forward_seconds=\(seconds(dt))")
        print("seconds_per_image=\(String(format: "%.4f", dt / Double(n)))")
    }

    /// Three decimals, for the timing lines.
    func seconds(_ x: Double) -> String { String(format: "%.3f", x) }
}
