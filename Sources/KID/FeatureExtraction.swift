import Dataset
import Engine
import Foundation

/// Feature extraction entry points: images in memory, generator outputs, image folders. Each runs the network on
/// batches of `batchSize` images (default 8: the im2col patches and activations of a batch stay within ~250 MB).
extension FIDInceptionV3 {
    public static let defaultBatchSize = 8

    /// Features of RGB8 images of any size (each resized to 299×299 as `FIDPreprocess` says): [N, featureCount].
    public func features(images: [RGBImage], batchSize: Int = defaultBatchSize) -> Tensor {
        features(count: images.count, batchSize: batchSize) { images[$0] }
    }

    /// Features of generator outputs `t` [N, 3, H, W] in [−1, 1] (quantised to RGB8 first, as if written to PNG).
    public func features(generatorOutputs t: Tensor, batchSize: Int = defaultBatchSize) -> Tensor {
        precondition(t.rank == 4 && t.shape[1] == 3, "generator outputs must be [N, 3, H, W], got \(t.shape)")
        let plane = 3 * t.shape[2] * t.shape[3]
        return features(count: t.shape[0], batchSize: batchSize) { i in
            let one = Tensor(view: t.data + i * plane, shape: [3, t.shape[2], t.shape[3]], owner: t)
            return FIDPreprocess.image(fromGeneratorOutput: one)
        }
    }

    /// Features of every image under `folder` (recursive, `FolderScan` order and extensions).
    /// Files that cannot be decoded are reported through `warn` and skipped; `progress(done, total)` after each batch.
    /// - Returns: the features [N, featureCount] and the paths they belong to.
    /// - Throws: `DatasetError` if the folder is missing or holds no image file, `KIDError.noImages` if none decodes.
    public func features(folder: String, batchSize: Int = defaultBatchSize, warn: (String) -> Void = { _ in },
                         progress: ((Int, Int) -> Void)? = nil) throws -> (features: Tensor, paths: [String]) {
        let files = try FolderScan(folder: folder).files.map { (folder as NSString).appendingPathComponent($0) }
        var parts: [Tensor] = [], used: [String] = []
        for b0 in stride(from: 0, to: files.count, by: batchSize) {
            var images: [RGBImage] = []
            for path in files[b0..<min(files.count, b0 + batchSize)] {
                do { images.append(try ImageDecoder.decode(file: path)); used.append(path) } catch { warn("skipping \(error)") }
            }
            if !images.isEmpty { parts.append(features(nhwc: FIDPreprocess.batch(images))) }
            progress?(min(files.count, b0 + batchSize), files.count)
        }
        guard !used.isEmpty else { throw KIDError.noImages(folder: folder) }
        return (FIDInceptionV3.stack(parts, featureCount: featureCount), used)
    }

    private func features(count: Int, batchSize: Int, image: (Int) -> RGBImage) -> Tensor {
        precondition(batchSize >= 1, "batchSize \(batchSize)")
        var parts: [Tensor] = []
        for b0 in stride(from: 0, to: count, by: batchSize) {
            parts.append(features(nhwc: FIDPreprocess.batch((b0..<min(count, b0 + batchSize)).map(image))))
        }
        return FIDInceptionV3.stack(parts, featureCount: featureCount)
    }

    /// Rows of [n_i, F] tensors stacked into [Σ n_i, F].
    static func stack(_ parts: [Tensor], featureCount f: Int) -> Tensor {
        let t = Tensor(uninitialized: [parts.reduce(0) { $0 + $1.shape[0] }, f])
        var row = 0
        for p in parts {
            (t.data + row * f).update(from: p.data, count: p.count)
            row += p.shape[0]
        }
        return t
    }
}
