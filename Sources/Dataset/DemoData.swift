import Engine
import Foundation

/// Writes a small two-domain data set of procedural faces (`DemoFaces`) for `--demo` runs and tests:
///
///     <root>/trainA/{0,1,2,3}/NNNNN.png   photo-style faces
///     <root>/trainB/{0,1,2,3}/NNNNN.png   webtoon-style faces
///     <root>/testA/…, <root>/testB/…      the same, for testing
///
/// Group folders hold 60 / 25 / 8 / 7 % of each split (`groupCounts`), so groups 2 and 3 are the
/// few-shot groups, as in Face2Webtoon. Image i of a split and domain depends only on
/// (seed, split, domain, i): the output is identical for any thread count.
public enum DemoData {
    /// Share of each group 0…3 in every split.
    public static let groupShares: [Double] = [0.60, 0.25, 0.08, 0.07]

    /// Images per group for `total` images: largest-remainder rounding of `groupShares`, and at
    /// least one image per group when total ≥ 4 (taken from the largest group).
    public static func groupCounts(total: Int) -> [Int] {
        let exact = groupShares.map { $0 * Double(total) }
        var counts = exact.map { Int($0.rounded(.down)) }
        let byRemainder = exact.indices.sorted {
            (exact[$0] - Double(counts[$0]), -$0) > (exact[$1] - Double(counts[$1]), -$1)
        }
        for g in byRemainder.prefix(total - counts.reduce(0, +)) { counts[g] += 1 }
        if total >= 4 {
            for g in counts.indices where counts[g] == 0 {
                counts[counts.indices.max { counts[$0] < counts[$1] }!] -= 1
                counts[g] = 1
            }
        }
        return counts
    }

    /// Generates the data set under `root` (created if needed). Each split folder is drawn into a hidden
    /// `.partial-<split>` folder and renamed when complete, trainA last, so an interrupted run never
    /// leaves a half-written trainA; an existing split folder of the same name is replaced.
    /// - Parameters:
    ///   - size: image side in pixels.
    ///   - trainPerDomain, testPerDomain: images per domain in each split.
    /// - Throws: `ImageEncodeError` or a file-system error when a folder or file cannot be written.
    public static func generate(
        to root: URL, size: Int = 128, trainPerDomain: Int = 400, testPerDomain: Int = 40,
        seed: UInt64 = 0
    ) throws {
        precondition(size >= 16, "demo images need at least 16 pixels, got \(size)")
        let fm = FileManager.default
        let jobs: [(folder: String, split: UInt64, domain: UInt64, n: Int)] = [
            ("trainB", 0, 1, trainPerDomain), ("testA", 1, 0, testPerDomain),
            ("testB", 1, 1, testPerDomain), ("trainA", 0, 0, trainPerDomain),
        ]
        for job in jobs {
            let partial = root.appendingPathComponent(".partial-" + job.folder)
            try? fm.removeItem(at: partial)
            let counts = groupCounts(total: job.n)
            let groupOf = counts.enumerated().flatMap { Array(repeating: $0.offset, count: $0.element) }
            for g in counts.indices {
                try fm.createDirectory(at: partial.appendingPathComponent(String(g)), withIntermediateDirectories: true)
            }
            let firstError = ErrorBox()
            DispatchQueue.concurrentPerform(iterations: job.n) { i in
                let img = face(
                    seed: seed, split: job.split, domain: job.domain, index: i, group: groupOf[i], size: size)
                let path = partial.appendingPathComponent(String(groupOf[i]))
                    .appendingPathComponent(String(format: "%05d.png", i)).path
                do { try PNGCodec.write(img, to: path) } catch { firstError.set(error) }
            }
            if let e = firstError.error { throw e }
            let final = root.appendingPathComponent(job.folder)
            if fm.fileExists(atPath: final.path) { try fm.removeItem(at: final) }
            try fm.moveItem(at: partial, to: final)
        }
    }

    /// Face `index` of `group` in a split and domain (0 photo "A", 1 webtoon "B"), as `generate` draws it: split 0 is
    /// train, 1 test; other split numbers give faces that appear in no generated data set (the group experiment's
    /// judge and evaluation faces). Depends only on its arguments.
    public static func face(seed: UInt64, split: UInt64, domain: UInt64, index: Int, group: Int, size: Int) -> RGBImage
    {
        var rng = RandomGenerator(seed: seed, stream: [0x4445_4D4F, split, domain, UInt64(index)])  // "DEMO"
        return DemoFaces.render(style: domain == 0 ? .photo : .webtoon, group: group, size: size, rng: &rng)
    }

    private final class ErrorBox: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var error: Error?
        func set(_ e: Error) {
            lock.lock()
            if error == nil { error = e }
            lock.unlock()
        }
    }
}
