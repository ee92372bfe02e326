import Foundation

/// File names under a checkpoint root (docs/checkpoint-format.md, "Directory layout"):
/// `ROOT/LATEST`, `ROOT/step_00001000/manifest.json`, `ROOT/step_00001000/shard-00000-of-00002-<save id>.shard`.
enum Names {
    static let manifest = "manifest.json"
    static let latest = "LATEST"

    static func stepDirectory(_ step: Int) -> String {
        let digits = String(step)
        return "step_" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    /// The step of a `step_<digits>` name; nil for anything else.
    static func step(of name: String) -> Int? {
        guard name.hasPrefix("step_") else { return nil }
        let digits = name.dropFirst(5)
        guard (1...18).contains(digits.count), digits.utf8.allSatisfy({ (48...57).contains($0) }) else { return nil }
        return Int(digits)
    }

    static func shard(rank: Int, worldSize: Int, saveID: UInt64) -> String {
        func pad(_ v: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, 5 - s.count)) + s
        }
        return "shard-\(pad(rank))-of-\(pad(worldSize))-\(Hex.string(saveID)).shard"
    }

    static func isShard(_ name: String) -> Bool { name.hasPrefix("shard-") && name.hasSuffix(".shard") }
}

extension Checkpoints {
    /// `root/step_XXXXXXXX` (at least 8 digits) for `step`.
    public static func stepDirectory(root: String, step: Int) -> String {
        FileSystem.join(root, Names.stepDirectory(step))
    }

    /// Step directories under `root` as (step, path), newest first; `complete` keeps only those with a manifest.
    static func stepDirectories(_ root: String, complete: Bool) -> [(step: Int, path: String)] {
        FileSystem.list(root).compactMap { name -> (Int, String)? in
            guard let s = Names.step(of: name) else { return nil }
            let p = FileSystem.join(root, name)
            guard FileSystem.kind(p) == .directory else { return nil }
            return !complete || FileSystem.kind(FileSystem.join(p, Names.manifest)) != .missing ? (s, p) : nil
        }.sorted { $0.0 > $1.0 }
    }

    /// The step directory name `LATEST` holds (one line, `step_<digits>`).
    static func readLatest(_ root: String) throws -> String {
        let path = FileSystem.join(root, Names.latest)
        guard let src = try FileSource(path) else {
            throw CheckpointError.latestInvalid(root: root, reason: "LATEST is missing")
        }
        guard src.size <= 64 else {
            throw CheckpointError.latestInvalid(root: root, reason: "LATEST has \(src.size) bytes")
        }
        let text = String(decoding: try src.bytes(0, src.size), as: UTF8.self).trimmingCharacters(
            in: .whitespacesAndNewlines)
        guard Names.step(of: text) != nil else {
            throw CheckpointError.latestInvalid(root: root, reason: "LATEST holds \"\(text.prefix(64))\"")
        }
        return text
    }

    static func writeLatest(_ root: String, _ name: String) throws {
        try FileSystem.writeAtomically(FileSystem.join(root, Names.latest)) { try $0.write(Array((name + "\n").utf8)) }
    }

    /// Removes the leftovers of interrupted saves under `root`: `*.tmp` files, step directories without a
    /// manifest, and shard files a complete step's manifest does not name (from an interrupted re-save of
    /// that step). Complete checkpoints' own files, `LATEST` and unrelated files are never touched.
    /// Call it on one process (rank 0) at start, while no save is running.
    /// - Returns: the removed paths. - Throws: `CheckpointError.io` if something cannot be removed.
    @discardableResult
    public static func sweep(root: String) throws -> [String] {
        guard FileSystem.kind(root) == .directory else { return [] }
        var removed: [String] = []
        func drop(_ p: String) throws {
            try FileSystem.remove(p)
            removed.append(p)
        }
        for name in FileSystem.list(root).sorted() {
            let path = FileSystem.join(root, name)
            if name.hasSuffix(".tmp"), FileSystem.kind(path) == .file {
                try drop(path)
                continue
            }
            guard Names.step(of: name) != nil, FileSystem.kind(path) == .directory else { continue }
            let manifestPath = FileSystem.join(path, Names.manifest)
            if FileSystem.kind(manifestPath) == .missing {
                try drop(path)
                continue
            }
            let named = (try? CheckpointReader(stepDirectory: path))?.manifest.shards.map(\.file)
            for f in FileSystem.list(path).sorted() {
                let fp = FileSystem.join(path, f)
                // An unreadable manifest may be a newer schema: then only temporaries go.
                if f.hasSuffix(".tmp") || (Names.isShard(f) && named.map { !$0.contains(f) } ?? false) { try drop(fp) }
            }
        }
        return removed
    }

    /// Deletes complete checkpoints older than `newStep` that the retention policy does not keep: the newest
    /// `keepLast - 1` older ones (the new one makes K) and every step that is a multiple of `keepEvery`.
    /// Newer step directories (an abandoned timeline after a fallback resume) are never deleted.
    static func applyRetention(root: String, newStep: Int, keepLast: Int?, keepEvery: Int?) -> [String] {
        guard let keepLast else { return [] }
        let older = stepDirectories(root, complete: true).filter { $0.step < newStep }
        var deleted: [String] = []
        for (i, d) in older.enumerated() where i >= keepLast - 1 && !(keepEvery.map { d.step % $0 == 0 } ?? false) {
            // Manifest first: a crash part-way leaves an incomplete directory that sweep removes,
            // never one that still claims to be complete.
            guard unlink(FileSystem.join(d.path, Names.manifest)) == 0 else { continue }
            try? FileSystem.syncDirectory(d.path)
            try? FileSystem.remove(d.path)
            deleted.append(d.path)
        }
        return deleted
    }

    /// A checkpoint that verified, and the newer ones skipped on the way (with why).
    public struct ValidCheckpoint {
        public let reader: CheckpointReader
        public let skipped: [(directory: String, error: CheckpointError)]
    }

    /// The newest step directory under `root` whose manifest parses and whose every checksum verifies (for
    /// `--resume-fallback`); nil if there is none. Reads every shard of each candidate.
    public static func newestValid(root: String) -> ValidCheckpoint? {
        var skipped: [(String, CheckpointError)] = []
        for d in stepDirectories(root, complete: false) {
            do {
                let r = try CheckpointReader(stepDirectory: d.path)
                try r.verify()
                return ValidCheckpoint(reader: r, skipped: skipped)
            } catch {
                skipped.append((d.path, error as? CheckpointError ?? .io(path: d.path, reason: "\(error)")))
            }
        }
        return nil
    }
}
