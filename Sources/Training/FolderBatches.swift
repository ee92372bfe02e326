import Dataset
import Engine
import Foundation

/// Training batches from `DATA/trainA` and `DATA/trainB`, decoded and transformed ahead of the step on
/// background threads. Step s (1-based) takes this rank's share of the global batch (`EpochOrder.batchItems`), so
/// the images of a step do not depend on the number of ranks.
public final class FolderBatches: BatchSource {
    public let a: ImageFolderDataset, b: ImageFolderDataset
    let orderA: EpochOrder, orderB: EpochOrder
    let prefetchA: Prefetcher<Batch>, prefetchB: Prefetcher<Batch>
    private var nextStep = 1

    /// - Parameters: see `Prefetcher.batches`. `firstStep` is the first step that will be requested (resume).
    /// - Throws: `DatasetError` if a folder is missing or empty.
    public init(data: String, imageSize: Int, batchSize: Int, seed: UInt64, rank: Int = 0, worldSize: Int = 1,
                firstStep: Int = 1, warnings: DataWarnings) throws {
        a = try ImageFolderDataset(folder: "\(data)/trainA", domainTag: 0, warnings: warnings)
        b = try ImageFolderDataset(folder: "\(data)/trainB", domainTag: 1, warnings: warnings)
        orderA = EpochOrder(count: a.count, seed: seed, tag: 0)
        orderB = EpochOrder(count: b.count, seed: seed, tag: 1)
        let k0 = firstStep - 1
        func prefetch(_ d: ImageFolderDataset, _ o: EpochOrder) -> Prefetcher<Batch> {
            Prefetcher(depth: 3, workers: 2) { k in
                try d.batch(o.batchItems(step: k0 + k, batchSize: batchSize, rank: rank, worldSize: worldSize),
                            seed: seed, train: true, size: imageSize)
            }
        }
        prefetchA = prefetch(a, orderA)
        prefetchB = prefetch(b, orderB)
        nextStep = firstStep
    }

    public func batch(step: Int) throws -> (a: Batch, b: Batch) {
        precondition(step == nextStep, "FolderBatches: step \(step) requested, expected \(nextStep) (batches come in order)")
        nextStep += 1
        guard let x = try prefetchA.next(), let y = try prefetchB.next() else {
            throw TrainingError.io(path: "data", reason: "batch stream ended")
        }
        return (x, y)
    }

    public var waitSeconds: Double { prefetchA.waitSeconds + prefetchB.waitSeconds }

    /// Up to `n` test images per domain (first files of testA/testB, test transform) for sample grids,
    /// falling back to the training folders when no test folder exists.
    public static func sampleImages(data: String, imageSize: Int, n: Int, warnings: DataWarnings) throws -> (a: Tensor, b: Tensor) {
        func load(_ split: String, _ domain: String, _ tag: UInt64) throws -> Tensor {
            let folder = FileManager.default.fileExists(atPath: "\(data)/\(split)\(domain)") ? "\(data)/\(split)\(domain)" : "\(data)/train\(domain)"
            let d = try ImageFolderDataset(folder: folder, domainTag: tag, warnings: warnings)
            // spread the picks over the folder (group folders are sorted, so the first n would all be group 0)
            let count = min(n, d.count)
            let items = (0..<count).map { (index: $0 * d.count / count, epoch: 0) }
            return try d.batch(items, seed: 0, train: false, size: imageSize).images
        }
        return (try load("test", "A", 0), try load("test", "B", 1))
    }
}
