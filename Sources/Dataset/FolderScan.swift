import Engine
import Foundation

/// The image files of one domain folder (e.g. `DATA/trainA`) and their group labels.
///
/// Layouts:
/// - flat: images anywhere under the folder (sub-folders walked recursively); every label is 0;
/// - grouped: sub-folders named `0`, `1`, … `K-1` (canonical decimal names); the label is the folder
///   number, K is the largest number + 1 (a missing number is an empty group). Images outside the
///   group folders are an error, so a half-sorted folder is not silently mislabelled.
///
/// Files are taken when their lower-cased extension is one of `imageExtensions`; hidden files and
/// folders (name starting with ".") are skipped. Order: byte order of the UTF-8 relative path.
public struct FolderScan: Equatable, Sendable {
    public static let imageExtensions: Set<String> = ["jpg", "jpeg", "png", "ppm", "bmp", "pgm", "tif"]

    /// The folder as given.
    public let folder: String
    /// Paths relative to `folder`, sorted.
    public let files: [String]
    /// The group label of each file.
    public let groups: [Int]
    /// Number of groups: 1 for a flat folder, K for group folders 0…K-1.
    public let groupCount: Int
    /// Whether the folder uses group folders.
    public let isGrouped: Bool

    /// Symbolic links and folders left out by the walk (see `init`), in walk order.
    public let skipped: [Skip]

    /// A path the walk did not take, and why.
    public struct Skip: Equatable, Sendable, CustomStringConvertible {
        public enum Reason: Equatable, Sendable {
            /// A link whose target does not exist.
            case dangling
            /// A link to a folder that contains it (real path): following it would walk the same files again, forever.
            case cycle(target: String)
            /// A link to a folder or file that the walk already took under another path.
            case duplicate(of: String)
            /// A link into a folder the caller excluded (another domain of the data set).
            case excluded(target: String)
            /// A folder that cannot be listed (permissions): its images are missing from the data set.
            case unreadable(reason: String)
        }
        /// Relative to the scanned folder.
        public let path: String
        public let reason: Reason
        public var description: String {
            switch reason {
            case .dangling: return "\(path): dangling symbolic link, skipped"
            case .cycle(let t):
                return "\(path): symbolic link to \(t), a folder that contains it (a cycle), not followed"
            case .duplicate(let o):
                return "\(path): same \(o.hasSuffix("/") ? "folder" : "file") as \(o), not counted twice"
            case .excluded(let t): return "\(path): symbolic link into \(t), which belongs to another domain, skipped"
            case .unreadable(let r): return "\(path.isEmpty ? "." : path)/: cannot list this folder (\(r)), its images are left out"
            }
        }
    }

    /// Scans `folder`.
    ///
    /// Symbolic links are followed, except a link to a folder that contains it (a cycle), a link to a file or folder
    /// already taken under another path (a file is counted once), a dangling link, and a link whose target lies in one
    /// of `excluding` (the other domains' folders, so that a domain takes only its own images). Each is listed in
    /// `skipped`. Links to places outside the data set are followed.
    /// - Throws: `DatasetError.missingFolder` (with what the nearest existing parent holds), `.notAFolder`,
    ///   `.emptyFolder` (no image file at all), `.mixedLayout`.
    /// `progress(files)`: the image files found so far, after each folder of the walk (a large data set on a slow
    /// file system takes minutes to list).
    public init(folder: String, excluding: [String] = [], progress: ((Int) -> Void)? = nil) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDir) else {
            throw DatasetError.missing(folder)
        }
        guard isDir.boolValue else { throw DatasetError.notAFolder(folder) }
        var walk = Walk(excluded: excluding.compactMap { FolderScan.realPath($0) })
        walk.progress = progress
        if let root = FolderScan.realPath(folder) {
            walk.visitedFolders[root] = ""
            walk.visit(folder: folder, prefix: "", ancestors: [root])
        }
        var found = walk.files
        guard !found.isEmpty else {
            if case .unreadable(let reason) = walk.skipped.first(where: { $0.path.isEmpty })?.reason {
                throw DatasetError.unreadableFolder(folder, reason: reason)
            }
            throw DatasetError.emptyFolder(folder)
        }
        found.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }

        let groupOf = found.map { FolderScan.groupNumber($0) }
        let grouped = groupOf.contains { $0 != nil }
        if grouped, let stray = zip(found, groupOf).first(where: { $0.1 == nil }) {
            throw DatasetError.mixedLayout(folder: folder, file: stray.0)
        }
        self.folder = folder
        self.files = found
        self.isGrouped = grouped
        self.groups = groupOf.map { $0 ?? 0 }
        self.groupCount = grouped ? (groups.max() ?? 0) + 1 : 1
        self.skipped = walk.skipped
    }

    /// The same files with labels from a CSV of `file,label` lines (file relative to the folder; an optional
    /// header line `file,label`; blank lines and lines starting with # ignored).
    /// - Throws: `DatasetError.badLabels` naming the CSV and the line or file that is wrong (every image needs one).
    /// The largest group label a CSV may give (as `--base-group`): each label makes a classification head's row.
    public static let maxLabel = 1023

    public func relabeled(csv path: String) throws -> FolderScan {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw DatasetError.badLabels(csv: path, reason: "cannot read the file")
        }
        var labels: [String: Int] = [:]
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") || (n == 0 && line.lowercased().hasPrefix("file,")) { continue }
            guard let comma = line.lastIndex(of: ","),
                let label = Int(line[line.index(after: comma)...].trimmingCharacters(in: .whitespaces)),
                (0...FolderScan.maxLabel).contains(label)
            else {
                throw DatasetError.badLabels(
                    csv: path,
                    reason: "line \(n + 1) is not `file,label` with a label in 0...\(FolderScan.maxLabel): \(line)")
            }
            labels[String(line[..<comma]).trimmingCharacters(in: .whitespaces)] = label
        }
        let groups = try files.map { f -> Int in
            guard let g = labels[f] else {
                throw DatasetError.badLabels(csv: path, reason: "no label for \(folder)/\(f)")
            }
            return g
        }
        return FolderScan(
            folder: folder, files: files, groups: groups, groupCount: (groups.max() ?? 0) + 1, isGrouped: true,
            skipped: skipped)
    }

    private init(folder: String, files: [String], groups: [Int], groupCount: Int, isGrouped: Bool, skipped: [Skip]) {
        self.folder = folder
        self.files = files
        self.groups = groups
        self.groupCount = groupCount
        self.isGrouped = isGrouped
        self.skipped = skipped
    }

    /// The group number of a relative path `N/…` whose first component is a canonical decimal, else nil.
    static func groupNumber(_ path: String) -> Int? {
        guard let slash = path.firstIndex(of: "/") else { return nil }
        let name = String(path[..<slash])
        guard let n = Int(name), n >= 0, String(n) == name else { return nil }
        return n
    }

    /// The folder `DATA/<split><domain>` (domain "A" or "B"), whose links may not reach into the other domain's
    /// `train` and `test` folders.
    public static func domain(
        data: String, _ domain: String, split: String = "train", progress: ((Int) -> Void)? = nil
    ) throws -> FolderScan {
        let other = domain == "A" ? "B" : "A"
        return try FolderScan(
            folder: "\(data)/\(split)\(domain)", excluding: ["\(data)/train\(other)", "\(data)/test\(other)"],
            progress: progress)
    }

    /// The canonical path (symbolic links resolved), nil if it does not exist.
    static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    /// The recursive walk: real paths already taken, so that links neither loop nor count a file twice.
    private struct Walk {
        let excluded: [String]
        var visitedFolders: [String: String] = [:]  // real path -> relative path it was taken under ("" = root)
        var takenFiles: [String: String] = [:]
        var files: [String] = []
        var skipped: [Skip] = []
        var progress: ((Int) -> Void)?

        static func isInside(_ path: String, _ folder: String) -> Bool {
            path == folder || path.hasPrefix(folder.hasSuffix("/") ? folder : folder + "/")
        }

        mutating func visit(folder: String, prefix: String, ancestors: [String]) {
            let items: [String]
            do { items = try FileManager.default.contentsOfDirectory(atPath: folder) } catch {
                // a folder the walk cannot list loses its images: say so (the root itself: the caller's
                // empty-folder error then names the cause too)
                skipped.append(Skip(path: String(prefix.dropLast()), reason: .unreadable(reason: FileErrorText.reason(error))))
                return
            }
            // name order, so that of two paths to one file the first in FolderScan order is the one taken
            for name in items.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) where !name.hasPrefix(".") {
                let path = folder + "/" + name
                let rel = prefix + name
                let isLink = (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) != nil
                guard let target = FolderScan.realPath(path) else {
                    if isLink { skipped.append(Skip(path: rel, reason: .dangling)) }
                    continue
                }
                var isDir: ObjCBool = false
                guard FileManager.default.fileExists(atPath: target, isDirectory: &isDir) else { continue }
                if isDir.boolValue {
                    // a link to a folder that holds one of the folders being walked would walk them again
                    if isLink, ancestors.contains(where: { Walk.isInside($0, target) }) {
                        skipped.append(Skip(path: rel, reason: .cycle(target: target)))
                        continue
                    }
                    if isLink, let e = excluded.first(where: { Walk.isInside(target, $0) }) {
                        skipped.append(Skip(path: rel, reason: .excluded(target: e)))
                        continue
                    }
                    if let earlier = visitedFolders[target] {
                        skipped.append(Skip(path: rel, reason: .duplicate(of: (earlier.isEmpty ? "." : earlier) + "/")))
                        continue
                    }
                    visitedFolders[target] = rel
                    visit(folder: path, prefix: rel + "/", ancestors: ancestors + [target])
                } else if FolderScan.imageExtensions.contains((name as NSString).pathExtension.lowercased()) {
                    if isLink, let e = excluded.first(where: { Walk.isInside(target, $0) }) {
                        skipped.append(Skip(path: rel, reason: .excluded(target: e)))
                        continue
                    }
                    if let earlier = takenFiles[target] {
                        skipped.append(Skip(path: rel, reason: .duplicate(of: earlier)))
                        continue
                    }
                    takenFiles[target] = rel
                    files.append(rel)
                    if files.count % 1000 == 0 { progress?(files.count) }
                }
            }
            progress?(files.count)
        }
    }
}
