import Engine
import Foundation

/// One domain folder (e.g. `DATA/trainA`) as a data set of preprocessed images with group labels.
///
/// Scanning happens once, in `init` (so an empty or missing folder fails before training starts).
/// Images are decoded on demand, from any thread. A file that fails to decode is reported once to
/// `warnings` and from then on skipped: a request for it returns the next readable image of the
/// same group, in index order (cyclically), so the substitution is deterministic and the label stays
/// right. All randomness of a sample comes from `RandomGenerator(seed:, stream: [epoch, index,
/// domainTag])`, never from shared state, so results do not depend on ranks, threads or timing.
public final class ImageFolderDataset: @unchecked Sendable {
    public let scan: FolderScan
    /// Mixed into every sample's random stream; give each domain its own (e.g. A = 0, B = 1).
    public let domainTag: UInt64
    public let warnings: DataWarnings
    /// For each group 0..<groupCount, its indices in ascending order (possibly empty).
    public let indicesByGroup: [[Int]]
    private let positionInGroup: [Int]
    private let lock = NSLock()
    private var unreadable: Set<Int> = []

    /// Scans `folder` (see `FolderScan` for the layouts).
    /// - Throws: `DatasetError` (missing, not a folder, no images, mixed layout).
    public convenience init(folder: String, domainTag: UInt64, warnings: DataWarnings = DataWarnings()) throws {
        self.init(scan: try FolderScan(folder: folder), domainTag: domainTag, warnings: warnings)
    }

    /// A data set over an existing scan (e.g. one relabelled from a CSV).
    public init(scan: FolderScan, domainTag: UInt64, warnings: DataWarnings = DataWarnings()) {
        self.scan = scan
        self.domainTag = domainTag
        self.warnings = warnings
        var byGroup = [[Int]](repeating: [], count: scan.groupCount)
        var pos = [Int](repeating: 0, count: scan.files.count)
        for (i, g) in scan.groups.enumerated() {
            pos[i] = byGroup[g].count
            byGroup[g].append(i)
        }
        indicesByGroup = byGroup
        positionInGroup = pos
    }

    public var count: Int { scan.files.count }
    public var groupCount: Int { scan.groupCount }
    public func group(of index: Int) -> Int { scan.groups[index] }
    /// The full path of image `index`.
    public func path(of index: Int) -> String { scan.folder + "/" + scan.files[index] }

    /// The random generator of one sample.
    public static func generator(seed: UInt64, epoch: Int, index: Int, domainTag: UInt64) -> RandomGenerator {
        RandomGenerator(seed: seed, stream: [UInt64(bitPattern: Int64(epoch)), UInt64(index), domainTag])
    }

    /// Decodes image `index`, or, when it is unreadable, the next readable image of its group.
    /// - Returns: the pixels and the index actually decoded.
    /// - Throws: `DatasetError.noReadableImages` when no image of the group decodes.
    public func image(index: Int) throws -> (image: RGBImage, index: Int) {
        precondition(index >= 0 && index < count, "image index \(index) out of 0..<\(count)")
        let g = scan.groups[index]
        let list = indicesByGroup[g]
        for step in 0..<list.count {
            let i = list[(positionInGroup[index] + step) % list.count]
            if isKnownUnreadable(i) { continue }
            do {
                return (try ImageDecoder.decode(file: path(of: i)), i)
            } catch let e as ImageDecodeError {
                lock.lock()
                unreadable.insert(i)
                lock.unlock()
                warnings.report(e)
            }
        }
        throw DatasetError.noReadableImages(folder: scan.folder, group: scan.isGrouped ? g : 0)
    }

    private func isKnownUnreadable(_ i: Int) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return unreadable.contains(i)
    }

    /// One preprocessed sample: the train transform (flip, resize to S+30, random crop) when `train`,
    /// else the test transform (resize to S).
    /// - Returns: a [3, size, size] tensor in [-1, 1] and the group label.
    /// - Throws: `DatasetError.noReadableImages`.
    public func sample(index: Int, epoch: Int, seed: UInt64, train: Bool, size: Int) throws -> (Tensor, group: Int) {
        let (img, _) = try image(index: index)
        if train {
            var rng = Self.generator(seed: seed, epoch: epoch, index: index, domainTag: domainTag)
            return (ImageTransforms.train(img, size: size, rng: &rng), scan.groups[index])
        }
        return (ImageTransforms.test(img, size: size), scan.groups[index])
    }

    /// Samples stacked into one batch, in the order given.
    /// - Parameter items: (index, epoch) pairs.
    /// - Returns: images [B, 3, size, size], labels, and the requested indices.
    public func batch(_ items: [(index: Int, epoch: Int)], seed: UInt64, train: Bool, size: Int) throws -> Batch {
        let out = Tensor(uninitialized: [items.count, 3, size, size])
        var groups: [Int] = []
        for (b, item) in items.enumerated() {
            let (t, g) = try sample(index: item.index, epoch: item.epoch, seed: seed, train: train, size: size)
            (out.data + b * t.count).update(from: t.data, count: t.count)
            groups.append(g)
        }
        return Batch(images: out, groups: groups, indices: items.map(\.index))
    }
}

/// A minibatch: images [B, 3, S, S] in [-1, 1], their group labels and data set indices.
public struct Batch {
    public let images: Tensor
    public let groups: [Int]
    public let indices: [Int]

    public init(images: Tensor, groups: [Int], indices: [Int]) {
        self.images = images
        self.groups = groups
        self.indices = indices
    }
}
