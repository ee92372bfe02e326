import ArgumentParser
import Dataset
import Engine
import Foundation
import Monitoring
import Training
import UGATIT

struct Translate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Translate images with a trained checkpoint (faces to webtoon with A2B, back with B2A).")

    @Option(help: "Checkpoint: a root (follows LATEST), a step folder or a merged file, as train, import-torch or merge write them.")
    var checkpoint: String
    @Option(help: "An image file or a folder of images.") var input: String
    @Option(help: "Output folder: PNG files named after the inputs, in the input folder's sub-folder tree.") var output:
        String
    @Option(help: "A2B (face to webtoon) or B2A.") var direction: Direction = .a2b
    @Flag(help: "Also write <name>_heatmap.png: input, translation and the CAM heatmap side by side.") var heatmap =
        false
    @OptionGroup var process: RunOptions

    enum Direction: String, ExpressibleByArgument {
        case a2b = "A2B"
        case b2a = "B2A"
    }

    func run() throws {
        process.apply()
        let (config, _) = try TrainingCheckpoint.peek(path: checkpoint)
        let model = UGATITModel(config: config.model, seed: 0)
        _ = try TrainingCheckpoint.load(path: checkpoint, into: model, step: nil)
        let g = direction == .a2b ? model.genA2B : model.genB2A
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: input, isDirectory: &isDir) else {
            throw DatasetError.missingInput(input)
        }
        // Relative paths mirror the input tree, so equal base names in different sub-folders stay apart.
        let relative: [String]
        let files: [String]
        if isDir.boolValue {
            let scan = try FolderScan(folder: input)
            for skip in scan.skipped { print("[face2webtoon] warning: \(skip)") }
            relative = scan.files
            files = relative.map { "\(input)/\($0)" }
        } else {
            relative = [(input as NSString).lastPathComponent]
            files = [input]
        }
        let names = TranslationNames.outputs(for: relative, heatmap: heatmap)
        let inputs = Set(files.map(resolvedPath))
        for name in names {
            for file in [name.image] + (name.heatmap.map { [$0] } ?? []) where inputs.contains(resolvedPath("\(output)/\(file)")) {
                throw ValidationError(
                    "--output \(output): \(file) would overwrite the input image of that name; choose another folder")
            }
        }
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        let s = config.model.imageSize
        var written = 0
        let progress = ProgressLine(label: "translate", total: files.count)
        defer { progress.finish() }
        for (i, (path, name)) in zip(files, names).enumerated() {
            defer { progress.update(i + 1) }
            let image: RGBImage
            do { image = try ImageDecoder.decode(file: path) } catch {
                print("[face2webtoon] warning: skipping \(error)")
                continue
            }
            let x = ImageTransforms.test(image, size: s).reshaped([1, 3, s, s])
            let t = Tape(training: false)
            let y = g(t, t.constant(x))
            let out = SampleGrid.image(y.image.value, index: 0)
            let target = "\(output)/\(name.image)"
            try FileManager.default.createDirectory(
                atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try PNGCodec.write(RGBImage(width: out.width, height: out.height, pixels: out.pixels), to: target)
            if let heatmapName = name.heatmap {
                var strip = SampleGrid.RGB8(width: 3 * s, height: s)
                SampleGrid.blit(SampleGrid.image(x, index: 0), into: &strip, x: 0, y: 0)
                SampleGrid.blit(out, into: &strip, x: s, y: 0)
                SampleGrid.blit(
                    SampleGrid.heatmap(y.heatmap.value, index: 0, height: s, width: s), into: &strip, x: 2 * s, y: 0)
                try PNGCodec.write(
                    RGBImage(width: strip.width, height: strip.height, pixels: strip.pixels),
                    to: "\(output)/\(heatmapName)")
            }
            written += 1
        }
        print("[face2webtoon] translated \(written) of \(files.count) images (\(direction.rawValue)) into \(output)")
        // every input broken is a data problem (65), as an empty input folder is
        if written == 0 && !files.isEmpty { throw DatasetError.noDecodableImage(input) }
    }
}
