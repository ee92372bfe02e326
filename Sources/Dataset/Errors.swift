import Foundation

/// Why one image file could not be turned into pixels. Always names the file; never fatal to a run
/// (the dataset reports it once and skips the file).
public struct ImageDecodeError: Error, Equatable, CustomStringConvertible {
    public enum Reason: String, Equatable, Sendable {
        /// The file could not be read from disk.
        case unreadable = "cannot read file"
        /// The bytes are not PNG or JPEG (no known signature).
        case notAnImage = "not a PNG or JPEG image"
        /// A recognised format this pipeline does not decode (BMP, TIFF, PPM, PGM).
        case unsupportedFormat = "unsupported image format"
        /// Decoding failed: corrupt or truncated data.
        case corrupt = "corrupt or truncated image"
        /// Width × height exceeds `ImageDecoder.maxPixels`.
        case tooLarge = "image too large"
    }

    public let path: String
    public let reason: Reason
    /// The decoder's own words (libpng/libjpeg message or a short explanation).
    public let detail: String

    public init(path: String, reason: Reason, detail: String) {
        self.path = path
        self.reason = reason
        self.detail = detail
    }

    public var description: String { "\(path): \(reason.rawValue)\(detail.isEmpty ? "" : ": \(detail)")" }
}

/// A PNG or JPEG could not be encoded or written.
public struct ImageEncodeError: Error, Equatable, CustomStringConvertible {
    public let path: String
    public let detail: String
    public init(path: String, detail: String) {
        self.path = path
        self.detail = detail
    }
    public var description: String { "\(path): cannot write image: \(detail)" }
}

/// Problems with a data set as a whole, raised when it is opened (before training starts) or when
/// no readable image is left to sample from.
public enum DatasetError: Error, Equatable, CustomStringConvertible {
    /// The folder does not exist. `parent` is its nearest existing ancestor and `entries` what that holds
    /// (sub-folders with a trailing `/`; of a longer list the 8 names nearest the missing one, then "… (N entries
    /// in all)"), so the message can show what is there instead.
    case missingFolder(String, parent: String, entries: [String])
    /// The path exists but is not a directory.
    case notAFolder(String)
    /// An input that may be a file or a folder (`translate --input`) does not exist.
    case missingInput(String)
    /// Not one image of an input could be decoded (each was reported as it was skipped).
    case noDecodableImage(String)
    /// The folder exists but cannot be listed (permissions).
    case unreadableFolder(String, reason: String)
    /// The folder holds no file with an image extension (.jpg .jpeg .png .ppm .bmp .pgm .tif).
    case emptyFolder(String)
    /// Group folders (0, 1, …) exist, but this image lies outside them.
    case mixedLayout(folder: String, file: String)
    /// Every image of `group` (of the whole folder when it has no group folders) failed to decode.
    case noReadableImages(folder: String, group: Int)
    /// A `--data` root that is not a folder laid out as `DataLayout.expected` says; `problem` says what was found.
    case badDataRoot(String, problem: String)
    /// A label CSV that cannot be read or does not label every image.
    case badLabels(csv: String, reason: String)

    /// `.missingFolder` for `path`, with what its nearest existing ancestor holds.
    public static func missing(_ path: String) -> DatasetError {
        var parent = (path as NSString).deletingLastPathComponent
        while !parent.isEmpty, parent != "/", !FileManager.default.fileExists(atPath: parent) {
            parent = (parent as NSString).deletingLastPathComponent
        }
        if parent.isEmpty { parent = "." }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? []).filter { !$0.hasPrefix(".") }
            .sorted()
        // a long listing (a missing folder under /tmp) would bury the message: names like the missing one first
        let key = (path as NSString).lastPathComponent.lowercased()
        func related(_ name: String) -> Bool {
            let l = name.lowercased()
            return l.hasPrefix(String(key.prefix(3))) || key.contains(l) || l.contains(key)
        }
        let limit = 8
        let chosen = names.count <= limit ? names : Array((names.filter(related) + names.filter { !related($0) }).prefix(limit))
        let entries = chosen.map { name -> String in
            var isDir: ObjCBool = false
            FileManager.default.fileExists(
                atPath: (parent as NSString).appendingPathComponent(name), isDirectory: &isDir)
            return isDir.boolValue ? name + "/" : name
        }
        return .missingFolder(
            path, parent: parent, entries: entries + (names.count > limit ? ["… (\(names.count) entries in all)"] : []))
    }

    static func holds(_ parent: String, _ entries: [String]) -> String {
        entries.isEmpty ? "\(parent) is empty" : "\(parent) holds \(entries.joined(separator: ", "))"
    }

    /// " (x/ differs only in letter case: rename it to X/)" when an entry of the parent differs from the missing name
    /// only in letter case.
    static func suggestion(for path: String, parent: String, entries: [String]) -> String {
        let name = (path as NSString).lastPathComponent.lowercased()
        guard let m = entries.first(where: { $0.hasSuffix("/") && $0.dropLast().lowercased() == name }) else {
            return ""
        }
        return
            " (\(m) differs only in letter case: rename it to \((path as NSString).lastPathComponent)/, or give that name)"
    }

    public var description: String {
        switch self {
        case .missingFolder(let p, let parent, let entries):
            return
                "\(p): no such folder; \(DatasetError.holds(parent, entries))\(DatasetError.suggestion(for: p, parent: parent, entries: entries))"
        case .notAFolder(let p): return "\(p): is not a folder"
        case .missingInput(let p): return "\(p): no such file or folder"
        case .noDecodableImage(let p): return "\(p): not one image could be read (see the warnings above)"
        case .unreadableFolder(let p, let r): return "\(p): cannot list this folder: \(r)"
        case .emptyFolder(let p): return "\(p): no images (.jpg .jpeg .png .ppm .bmp .pgm .tif) in this folder"
        case .mixedLayout(let p, let f):
            return
                "\(p): has group folders 0, 1, … but also the image \(f) outside them; put every image in a group folder"
        case .noReadableImages(let p, let g): return "\(p): no readable image in group \(g)"
        case .badLabels(let c, let r): return "\(c): \(r)"
        case .badDataRoot(let p, let problem): return "\(p): \(problem). \(DataLayout.expected)"
        }
    }
}
