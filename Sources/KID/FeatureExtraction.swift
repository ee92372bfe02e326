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
    /// `imageSize`: each image is first resized (bilinear) to imageSize² as the training test transform does, so that
    /// real images are compared with generator outputs at the generator's resolution, not at their own.
    /// Files that cannot be decoded are reported through `warn` and skipped; `progress(done, total)` after each batch.
    /// - Returns: the features [N, featureCount] and the paths they belong to.
    /// - Throws: `DatasetError` if the folder is missing or holds no image file, `KIDError.noImages` if none decodes.
    public func features(
        folder: String, imageSize: Int? = nil, batchSize: Int = defaultBatchSize,
        warn: (String) -> Void = { _ in },
        progress: ((Int, Int) -> Void)? = nil
    ) throws -> (features: Tensor, paths: [String]) {
        let scan = try FolderScan(folder: folder)
        for skip in scan.skipped { warn("\(folder)/\(skip)") }   // links that loop or repeat a file
        let files = scan.files.map { (folder as NSString).appendingPathComponent($0) }
        var used: [String] = []
        let f = features(count: files.count, batchSize: batchSize, progress: progress) { i -> RGBImage? in
            do {
                let image = try ImageDecoder.decode(file: files[i])
                used.append(files[i])
                return imageSize.map { image.resizedBilinear(width: $0, height: $0) } ?? image
            } catch {
                warn("skipping \(error)")
                return nil
            }
        }
        guard !used.isEmpty else { throw KIDError.noImages(folder: folder) }
        return (f, used)
    }

    /// Features of `count` images made on demand: `image(i)` is called once per index, in order, and may return
    /// nil to leave index i out. Only one batch of images is held at a time, so this suits translating a test set
    /// (`image` runs the generator) or decoding a large folder. `progress(done, total)` after each batch.
    /// - Returns: [number of non-nil images, featureCount].
    public func features(
        count: Int, batchSize: Int = defaultBatchSize, progress: ((Int, Int) -> Void)? = nil,
        image: (Int) throws -> RGBImage?
    ) rethrows -> Tensor {
        precondition(batchSize >= 1, "batchSize \(batchSize)")
        var parts: [Tensor] = []
        var pending: [RGBImage] = []
        for i in 0..<count {
            if let im = try image(i) { pending.append(im) }
            if pending.count == batchSize || (i == count - 1 && !pending.isEmpty) {
                parts.append(features(nhwc: FIDPreprocess.batch(pending)))
                pending = []
            }
            if (i + 1) % batchSize == 0 || i == count - 1 { progress?(i + 1, count) }
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
