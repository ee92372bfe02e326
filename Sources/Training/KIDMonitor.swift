import Dataset
import Distributed
import Engine
import Foundation
import KID
import UGATIT

/// `train --kid-every N`: KID between genA2B(testA) and testB with the FID Inception-v3 (docs/kid.md). The
/// translation and feature extraction of testA is spread over the ranks (rank r takes images i with i mod N == r)
/// and the features are gathered at rank 0, which also holds testB's features (computed once, from testB resized
/// to the training size so that both sets have the generator's resolution). The estimate averages `subsets`
/// subsets of `subsetSize` images per set, so that `kid_std` is a spread (one subset of everything has none).
public final class KIDMonitor {
    let network: FIDInceptionV3
    let testA: Tensor
    let comm: Communicator
    private var real: FeatureMatrix?
    let realFolder: String
    let imageSize: Int
    public let subsets: Int
    public let subsetSize: Int

    public static let defaultSubsets = 10
    public static let defaultSubsetSize = 50

    /// - Throws: `KIDError.missingWeights` naming the weights file and the command that creates it;
    ///   `DatasetError` if testA or testB is missing; `KIDError.badFeatures` if testA or testB has fewer than 2 images.
    public init(
        data: String, imageSize: Int, comm: Communicator, weights: String = FIDInceptionV3.defaultWeightsPath,
        subsets: Int = defaultSubsets, subsetSize: Int = defaultSubsetSize
    ) throws {
        network = try FIDInceptionV3(weightsPath: weights)
        self.comm = comm
        self.imageSize = imageSize
        self.subsets = subsets
        self.subsetSize = subsetSize
        let a = try ImageFolderDataset(folder: "\(data)/testA", domainTag: 0)
        realFolder = "\(data)/testB"
        let b = try FolderScan(folder: realFolder)
        guard a.count >= 2, b.files.count >= 2 else {
            throw KIDError.badFeatures(
                "KID needs at least 2 images in \(data)/testA (has \(a.count)) and in \(realFolder) "
                    + "(has \(b.files.count))")
        }
        let mine = Array(stride(from: comm.rank, to: a.count, by: comm.worldSize))
        testA = try a.batch(mine.map { ($0, 0) }, seed: 0, train: false, size: imageSize).images
    }

    /// KID of the current genA2B on rank 0 (nil on other ranks). Collective: its two collectives run under
    /// `watchdog` when given (a rank that never arrives is named, as in a training step).
    public func measure(_ model: UGATITModel, watchdog: Watchdog? = nil) throws -> KIDResult? {
        func guarded<T>(_ operation: String, bytes: Int, _ body: () throws -> T) throws -> T {
            guard let watchdog else { return try body() }
            return try watchdog.guarded(operation, bytes: bytes, body)
        }
        let n = testA.shape[0]
        let s = testA.shape[2]
        let per = 3 * s * s
        var fakes: [Float] = []
        for i in 0..<n {
            let x = Tensor(uninitialized: [1, 3, s, s])
            x.data.update(from: testA.data + i * per, count: per)
            let t = Tape(training: false)
            fakes += model.genA2B(t, t.constant(x)).image.value.array
        }
        let local = n > 0 ? network.features(generatorOutputs: Tensor(shape: [n, 3, s, s], fakes)).array : []
        // gather fixed-size blocks (the largest share); the row counts travel first
        let d = network.featureCount
        var counts = [Int64](repeating: 0, count: comm.worldSize)
        var mineCount = Int64(n)
        try guarded("allGather(KID row counts)", bytes: 8 * comm.worldSize) {
            try withUnsafeBytes(of: &mineCount) { m in
                try counts.withUnsafeMutableBytes { try comm.allGather(m, into: $0) }
            }
        }
        let rows = Int(counts.max() ?? 0)
        var block = [Float](repeating: 0, count: rows * d)
        for i in 0..<local.count { block[i] = local[i] }
        let gathered = try guarded("gather(KID features)", bytes: 4 * block.count) {
            try comm.gather(block.withUnsafeBytes { Array($0) }, root: 0)
        }
        guard comm.rank == 0 else { return nil }
        var all: [[Double]] = []
        for (r, bytes) in gathered.enumerated() {
            let f = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            for i in 0..<Int(counts[r]) { all.append(f[(i * d)..<((i + 1) * d)].map(Double.init)) }
        }
        if real == nil { real = FeatureMatrix(try network.features(folder: realFolder, imageSize: imageSize).features) }
        return try KIDEstimator.kid(
            real: real!, fake: FeatureMatrix(rows: all), subsets: subsets, subsetSize: subsetSize)
    }
}
