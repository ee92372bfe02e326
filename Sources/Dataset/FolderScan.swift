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

    /// Scans `folder`.
    /// - Throws: `DatasetError.missingFolder`, `.notAFolder`, `.emptyFolder` (no image file at all),
    ///   `.mixedLayout`.
    public init(folder: String) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDir) else {
            throw DatasetError.missingFolder(folder)
        }
        guard isDir.boolValue else { throw DatasetError.notAFolder(folder) }
        var found: [String] = []
        FolderScan.walk(URL(fileURLWithPath: folder, isDirectory: true), prefix: "", into: &found)
        guard !found.isEmpty else { throw DatasetError.emptyFolder(folder) }
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
    }

    /// The same files with labels from a CSV of `file,label` lines (file relative to the folder; an optional
    /// header line `file,label`; blank lines and lines starting with # ignored).
    /// - Throws: `DatasetError.badLabels` naming the CSV and the line or file that is wrong (every image needs one).
    public func relabeled(csv path: String) throws -> FolderScan {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw DatasetError.badLabels(csv: path, reason: "cannot read the file")
        }
        var labels: [String: Int] = [:]
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") || (n == 0 && line.lowercased().hasPrefix("file,")) { continue }
            guard let comma = line.lastIndex(of: ","), let label = Int(line[line.index(after: comma)...].trimmingCharacters(in: .whitespaces)),
                  label >= 0 else {
                throw DatasetError.badLabels(csv: path, reason: "line \(n + 1) is not `file,label` with a label ≥ 0: \(line)")
            }
            labels[String(line[..<comma]).trimmingCharacters(in: .whitespaces)] = label
        }
        let groups = try files.map { f -> Int in
            guard let g = labels[f] else { throw DatasetError.badLabels(csv: path, reason: "no label for \(folder)/\(f)") }
            return g
        }
        return FolderScan(folder: folder, files: files, groups: groups, groupCount: (groups.max() ?? 0) + 1, isGrouped: true)
    }

    private init(folder: String, files: [String], groups: [Int], groupCount: Int, isGrouped: Bool) {
        self.folder = folder; self.files = files; self.groups = groups; self.groupCount = groupCount; self.isGrouped = isGrouped
    }

    /// The group number of a relative path `N/…` whose first component is a canonical decimal, else nil.
    static func groupNumber(_ path: String) -> Int? {
        guard let slash = path.firstIndex(of: "/") else { return nil }
        let name = String(path[..<slash])
        guard let n = Int(name), n >= 0, String(n) == name else { return nil }
        return n
    }

    /// Symbolic links are followed; the depth limit stops a link cycle.
    private static func walk(_ dir: URL, prefix: String, depth: Int = 0, into out: inout [String]) {
        guard depth < 32, let items = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else { return }
        for name in items {
            if name.hasPrefix(".") { continue }
            let item = dir.appendingPathComponent(name)
            let rel = prefix + name
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: item.path, isDirectory: &isDir) else { continue }
            if isDir.boolValue {
                walk(item, prefix: rel + "/", depth: depth + 1, into: &out)
            } else if imageExtensions.contains(item.pathExtension.lowercased()) {
                out.append(rel)
            }
        }
    }
}
