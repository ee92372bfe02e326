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
    public init(path: String, detail: String) { self.path = path; self.detail = detail }
    public var description: String { "\(path): cannot write image: \(detail)" }
}

/// Problems with a data set as a whole, raised when it is opened (before training starts) or when
/// no readable image is left to sample from.
public enum DatasetError: Error, Equatable, CustomStringConvertible {
    /// The domain folder does not exist.
    case missingFolder(String)
    /// The path exists but is not a directory.
    case notAFolder(String)
    /// The folder holds no file with an image extension (.jpg .jpeg .png .ppm .bmp .pgm .tif).
    case emptyFolder(String)
    /// Group folders (0, 1, …) exist, but this image lies outside them.
    case mixedLayout(folder: String, file: String)
    /// Every image of `group` (of the whole folder when it has no group folders) failed to decode.
    case noReadableImages(folder: String, group: Int)
    /// A label CSV that cannot be read or does not label every image.
    case badLabels(csv: String, reason: String)

    public var description: String {
        switch self {
        case let .missingFolder(p): return "\(p): data folder does not exist"
        case let .notAFolder(p): return "\(p): is not a folder"
        case let .emptyFolder(p): return "\(p): no images (.jpg .jpeg .png .ppm .bmp .pgm .tif) in this folder"
        case let .mixedLayout(p, f):
            return "\(p): has group folders 0, 1, … but also the image \(f) outside them; put every image in a group folder"
        case let .noReadableImages(p, g): return "\(p): no readable image in group \(g)"
        case let .badLabels(c, r): return "\(c): \(r)"
        }
    }
}
