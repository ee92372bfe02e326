import Foundation

/// The layout of a training data root (`train --data DATA`), as in U-GAT-IT's `dataset/NAME/` folders.
public enum DataLayout {
    /// What a data root must look like, for error messages.
    public static let expected =
        "A data folder holds trainA/ (faces) and trainB/ (webtoon or anime images), "
        + "and optionally testA/ and testB/ (for samples and KID); each may use group folders 0/, 1/, …"

    /// Checks that `root` is a folder with `trainA` and `trainB` sub-folders, before anything is read.
    /// - Throws: `DatasetError.badDataRoot` naming what was found instead: a missing root (with what its parent
    ///   holds), a file, or the sub-folders present (with a case-insensitive match such as `trainb`).
    public static func check(root: String) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDir) else {
            guard case .missingFolder(_, let parent, let entries) = DatasetError.missing(root) else { return }
            throw DatasetError.badDataRoot(
                root,
                problem: "no such folder; " + DatasetError.holds(parent, entries)
                    + DatasetError.suggestion(for: root, parent: parent, entries: entries))
        }
        guard isDir.boolValue else {
            throw DatasetError.badDataRoot(root, problem: "is a file, not a folder")
        }
        let missing = ["trainA", "trainB"].filter {
            var d: ObjCBool = false
            return
                !(FileManager.default.fileExists(atPath: (root as NSString).appendingPathComponent($0), isDirectory: &d)
                && d.boolValue)
        }
        guard !missing.isEmpty else { return }
        guard
            case .missingFolder(_, _, let entries) = DatasetError.missing(
                (root as NSString).appendingPathComponent(missing[0]))
        else { return }
        let hints = missing.map { DatasetError.suggestion(for: $0, parent: root, entries: entries) }.joined()
        throw DatasetError.badDataRoot(
            root,
            problem: "no \(missing.map { $0 + "/" }.joined(separator: " or ")) folder; "
                + DatasetError.holds(root, entries) + hints)
    }
}
