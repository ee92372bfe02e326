import ArgumentParser
import Foundation
import Training
import UGATIT

struct ImportTorch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-torch",
        abstract: "Build a checkpoint from UGATIT-pytorch weights (safetensors with official keys).",
        discussion: "Make the safetensors file from an official .pt with Scripts/torch_to_safetensors.py.")

    @Argument(help: "safetensors file with keys like genA2B.DownBlock.1.weight") var file: String
    @Option(
        name: .shortAndLong, help: "Checkpoint root to write (a directory; translate and train --resume accept it).")
    var output: String
    @Option(
        name: .customLong("img-size"), help: "Image size of a light model (not inferable from its shapes). Default 256."
    )
    var imgSize: Int?
    @Flag(
        name: .customLong("d-cam-normalized-weight"),
        help: "Discriminator CAM uses W/σ (ours) instead of weight_orig (as the model was trained).")
    var dCamNormalizedWeight = false

    func validate() throws {
        if let s = imgSize, !(8...4096).contains(s) || s % 4 != 0 {  // train's range
            throw ValidationError("--img-size \(s): expected a multiple of 4 in 8...4096")
        }
    }

    func run() throws {
        let (model, report) = try TorchImport.load(
            path: file, imageSize: imgSize, camUsesRawWeight: !dCamNormalizedWeight)
        let c = report.config
        print(
            "[face2webtoon] \(file): img \(c.imageSize) ch \(c.ch) n_res \(c.blocks) \(c.light ? "light" : "full"), "
                + "D layers global \(c.globalLayers) local \(c.localLayers)\(c.groups.map { ", \($0) groups" } ?? "")")
        if !report.missing.isEmpty {
            print(
                "[face2webtoon] warning: \(report.missing.count) tensors not in the file keep their initial values: "
                    + report.missing.prefix(5).joined(separator: ", ") + (report.missing.count > 5 ? ", …" : ""))
        }
        if !report.unused.isEmpty {
            print(
                "[face2webtoon] warning: \(report.unused.count) tensors of the file are not used: "
                    + report.unused.prefix(5).joined(separator: ", "))
        }
        let config = TrainConfig(model: c, iterations: 1)
        try TrainingCheckpoint.save(
            root: output, config: config, model: model, step: nil, state: .init(step: 0, imagesSeen: 0))
        print("[face2webtoon] wrote \(output)")
    }
}
