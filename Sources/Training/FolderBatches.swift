import Dataset
import Engine
import Foundation

/// How steps choose their group (Face2Webtoon, spec C.1).
public enum GroupSampling: String, Codable, Sendable {
    /// Step s uses the ((s − 1) mod k)-th selected group: every group gets the same number of steps.
    case roundRobin = "round-robin"
    /// Each step draws a group with probability proportional to its images (both domains), from (seed, step).
    case proportional
}

/// Group feeding settings; nil groups = every image, no group structure (plain U-GAT-IT).
public struct GroupConfig: Codable, Equatable, Sendable {
    /// The selected group labels (labels keep their numbers).
    public var selected: [Int]
    public var sampling: GroupSampling = .roundRobin
    public init(selected: [Int], sampling: GroupSampling = .roundRobin) {
        self.selected = selected
        self.sampling = sampling
    }
}

/// Training batches from `DATA/trainA` and `DATA/trainB`, decoded and transformed ahead of the step on background
/// threads. Every step draws real_A and real_B from the same group (all images when there are no groups). Within a
/// group, samples follow that group's epoch order; this rank takes its share of the global batch
/// (`EpochOrder.batchItems`), so the images of a step do not depend on the number of ranks. The group of step s is a
/// function of (seed, s) only, identical on every rank and after a resume.
public final class FolderBatches: BatchSource {
    public let a: ImageFolderDataset, b: ImageFolderDataset
    /// Group and per-group occurrence of each step (index s − 1).
    public let schedule: [(group: Int, occurrence: Int)]
    public let groups: GroupConfig?
    let prefetchA: Prefetcher<Batch>, prefetchB: Prefetcher<Batch>
    private var nextStep: Int

    /// - Parameters: `labelsA`/`labelsB`: optional CSV files of file,label; `firstStep`: first step requested (resume);
    ///   `iterations`: the last step.
    /// - Throws: `DatasetError` if a folder is missing, empty or mislabelled; `TrainingError.invalidConfig` if a
    ///   selected group has no image in either domain.
    ///   `startCursors`: samples already consumed from each group slot's stream when resuming (the checkpoint's
    ///   data position; default: what this global batch would have consumed), so that a resume with another world
    ///   size continues the order without repeating or skipping samples.
    public init(
        data: String, imageSize: Int, batchSize: Int, seed: UInt64, rank: Int = 0, worldSize: Int = 1,
        firstStep: Int = 1, iterations: Int, groups: GroupConfig? = nil, labelsA: String? = nil, labelsB: String? = nil,
        startCursors: [Int]? = nil, warnings: DataWarnings
    ) throws {
        try DataLayout.check(root: data)
        func load(_ domain: String, _ csv: String?, _ tag: UInt64) throws -> ImageFolderDataset {
            var scan = try FolderScan.domain(data: data, domain)
            if let csv { scan = try scan.relabeled(csv: csv) }
            return ImageFolderDataset(scan: scan, domainTag: tag, warnings: warnings)
        }
        let da = try load("A", labelsA, 0)
        let db = try load("B", labelsB, 1)
        a = da
        b = db
        self.groups = groups
        // the image lists feeding each selected group (a single "group" of everything without groups)
        let lists: [([Int], [Int])]
        if let g = groups {
            var problems: [String] = []
            lists = g.selected.map { label in
                let la = label < da.groupCount ? da.indicesByGroup[label] : []
                let lb = label < db.groupCount ? db.indicesByGroup[label] : []
                if la.isEmpty || lb.isEmpty {
                    problems.append(
                        "group \(label) is empty in \(la.isEmpty ? "trainA" : "trainB") (trainA: \(la.count), trainB: \(lb.count) images)"
                    )
                }
                return (la, lb)
            }
            if !problems.isEmpty {
                // a folder the scan could not list may be why (its images are left out)
                for scan in [da.scan, db.scan] {
                    problems += scan.skipped.filter {
                        if case .unreadable = $0.reason { return true } else { return false }
                    }.map { "\(scan.folder)/\($0)" }
                }
                throw TrainingError.invalidConfig(problems)
            }
        } else {
            lists = [(Array(0..<da.count), Array(0..<db.count))]
        }
        // a group none of whose images decodes would stop the run when its turn comes, maybe hours in: find out now
        // (one decode per group and domain when the data is sound; broken files are reported and skipped as later)
        for (la, lb) in lists {
            if let i = la.first { _ = try da.image(index: i) }
            if let i = lb.first { _ = try db.image(index: i) }
        }
        let sched = FolderBatches.schedule(
            iterations: iterations, sizes: lists.map { $0.0.count + $0.1.count },
            sampling: groups?.sampling ?? .roundRobin, seed: seed)
        schedule = sched
        // stream position of this step's first sample in its group: start cursor + global batch × later occurrences
        let global = batchSize * worldSize
        var before = [Int](repeating: 0, count: lists.count)
        for e in sched.prefix(max(0, firstStep - 1)) { before[e.group] += 1 }
        let cursors = startCursors ?? before.map { $0 * global }
        precondition(
            cursors.count == lists.count, "FolderBatches: \(cursors.count) data cursors for \(lists.count) group slots")
        let occurrenceBefore = before
        func prefetch(
            _ d: ImageFolderDataset, _ pick: @escaping ([([Int], [Int])], Int) -> [Int], tag: UInt64
        ) -> Prefetcher<Batch> {
            let orders = lists.indices.map {
                EpochOrder(count: max(1, pick(lists, $0).count), seed: seed, tag: tag * 1024 + UInt64($0))
            }
            return Prefetcher(count: max(0, iterations - firstStep + 1), depth: 3, workers: 2) { k in
                let (g, u) = sched[firstStep - 1 + k]
                let list = pick(lists, g)
                let base = cursors[g] + (u - occurrenceBefore[g]) * global
                let items = (0..<batchSize).map { orders[g].item(at: base + $0 * worldSize + rank) }
                return try d.batch(
                    items.map { (index: list[$0.index], epoch: $0.epoch) }, seed: seed, train: true, size: imageSize)
            }
        }
        prefetchA = prefetch(da, { $0[$1].0 }, tag: 0)
        prefetchB = prefetch(db, { $0[$1].1 }, tag: 1)
        nextStep = firstStep
    }

    /// The (group slot, occurrence) of steps 1...iterations.
    static func schedule(
        iterations: Int, sizes: [Int], sampling: GroupSampling, seed: UInt64
    ) -> [(group: Int, occurrence: Int)] {
        let k = sizes.count
        var seen = [Int](repeating: 0, count: k)
        let total = Double(sizes.reduce(0, +))
        return (1...max(iterations, 1)).map { s in
            var g = (s - 1) % k
            if sampling == .proportional && k > 1 {
                var rng = RandomGenerator(seed: seed, stream: [0x4752_5053, UInt64(s)])  // "GRPS"
                var u = rng.uniformDouble() * total
                g = 0
                while g < k - 1 && u >= Double(sizes[g]) {
                    u -= Double(sizes[g])
                    g += 1
                }
            }
            defer { seen[g] += 1 }
            return (g, seen[g])
        }
    }

    /// Number of group slots (1 without groups).
    public var groupSlots: Int { groups?.selected.count ?? 1 }
    public func groupSlot(step s: Int) -> Int { schedule[s - 1].group }

    /// The group label used at step s.
    public func groupLabel(step s: Int) -> Int? { groups.map { $0.selected[schedule[s - 1].group] } }

    public func batch(step: Int) throws -> (a: Batch, b: Batch) {
        precondition(
            step == nextStep, "FolderBatches: step \(step) requested, expected \(nextStep) (batches come in order)")
        nextStep += 1
        guard let x = try prefetchA.next(), let y = try prefetchB.next() else {
            throw TrainingError.io(path: "data", reason: "batch stream ended")
        }
        return (x, y)
    }

    public var waitSeconds: Double { prefetchA.waitSeconds + prefetchB.waitSeconds }

    /// What the folder walks left out (links that loop, duplicate or point into the other domain), for the start-up report.
    public var skippedPaths: [String] {
        a.scan.skipped.map { "\(a.scan.folder)/\($0)" } + b.scan.skipped.map { "\(b.scan.folder)/\($0)" }
    }

    /// Image counts per group label and domain, for the start-up report.
    public var agreement: String {
        "trainA \(a.count), trainB \(b.count)" + (groups == nil ? "" : ", groups \(groupCounts.map { [$0.label, $0.a, $0.b] })")
    }

    public var groupCounts: [(label: Int, a: Int, b: Int)] {
        (0..<max(a.groupCount, b.groupCount)).map { g in
            (g, g < a.groupCount ? a.indicesByGroup[g].count : 0, g < b.groupCount ? b.indicesByGroup[g].count : 0)
        }
    }

    /// Up to `n` test images per domain (spread over testA/testB, test transform) for sample grids,
    /// falling back to the training folders when no test folder exists.
    public static func sampleImages(
        data: String, imageSize: Int, n: Int, warnings: DataWarnings
    ) throws -> (a: Tensor, b: Tensor) {
        func load(_ domain: String, _ tag: UInt64) throws -> Tensor {
            let scan =
                try (try? FolderScan.domain(data: data, domain, split: "test")) ?? FolderScan.domain(data: data, domain)
            let d = ImageFolderDataset(scan: scan, domainTag: tag, warnings: warnings)
            // spread the picks over the folder (group folders are sorted, so the first n would all be group 0)
            let count = min(n, d.count)
            let items = (0..<count).map { (index: $0 * d.count / count, epoch: 0) }
            return try d.batch(items, seed: 0, train: false, size: imageSize).images
        }
        return (try load("A", 0), try load("B", 1))
    }
}
