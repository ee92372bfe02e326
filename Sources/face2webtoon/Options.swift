import ArgumentParser
import Engine
import Foundation
import UGATIT

/// Architecture options shared by `train` (and the benchmarks).
struct ModelOptions: ParsableArguments {
    @Option(name: .customLong("img-size"), help: "Image side S in pixels (multiple of 4).") var imgSize: Int?
    @Option(help: "Base channels (ngf = ndf).") var ch: Int?
    @Option(name: .customLong("n-res"), help: "Residual blocks in the encoder and in the decoder.") var nRes = 4
    @Flag(help: "Full generator: the gamma/beta MLP reads the whole bottleneck map (the official default; ~270M parameters at 256/64). Default: light.")
    var full = false
    @Option(name: .customLong("global-layers"), help: "Global discriminator depth L (default: 7 at 256, see docs/training.md).")
    var globalLayers: Int?
    @Option(name: .customLong("local-layers"), help: "Local discriminator depth L (default: 5 at 256).") var localLayers: Int?
    @Flag(name: .customLong("d-cam-raw-weight"), help: "Discriminator CAM re-weights with weight_orig as UGATIT-pytorch does, not W/σ.")
    var dCamRawWeight = false

    func config(defaultSize: Int, defaultCh: Int) -> ModelConfig {
        ModelConfig(imageSize: imgSize ?? defaultSize, ch: ch ?? defaultCh, blocks: nRes, light: !full,
                    globalLayers: globalLayers, localLayers: localLayers, camUsesRawWeight: dCamRawWeight)
    }
}

/// Process options shared by the commands that compute.
struct RunOptions: ParsableArguments {
    @Option(help: "Compute threads per process (OpenBLAS and the engine's loops). Default: the cores divided by the ranks on this host.")
    var threads: Int?

    func apply() {
        // under mpirun, share the host's cores among its ranks (OMPI_COMM_WORLD_LOCAL_SIZE ranks here)
        let local = ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init) ?? 1
        Runtime.configure(threads: threads ?? max(1, ProcessInfo.processInfo.activeProcessorCount / max(local, 1)))
    }
}
