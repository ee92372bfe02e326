import CImageShim
import Engine
import Foundation

/// Turns an image file into RGB8 pixels, deterministically (Pillow's `Image.open(f).convert('RGB')`
/// for the formats it handles, plus the JPEG EXIF orientation).
///
/// The format is chosen from the file's first bytes, not its extension (as Pillow does): PNG through
/// libpng, JPEG through libjpeg-turbo. BMP, TIFF, PPM and PGM are recognised but not decoded: they
/// give `ImageDecodeError` with reason `.unsupportedFormat`, so a data set reports and skips them.
public enum ImageDecoder {
    /// The largest width × height accepted (64 Mpx), a guard against decompression bombs.
    public static let maxPixels = 1 << 26

    enum Format { case png, jpeg, bmp, tiff, pnm }

    /// Reads and decodes the file at `path`.
    /// - Throws: `ImageDecodeError` naming `path` (unreadable, not an image, unsupported, corrupt, too large).
    public static func decode(file path: String) throws -> RGBImage {
        let bytes: [UInt8]
        do {
            bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw ImageDecodeError(path: path, reason: .unreadable, detail: FileErrorText.reason(error))
        }
        return try decode(bytes, path: path)
    }

    /// Decodes image bytes; `path` only names the source in errors.
    /// - Throws: `ImageDecodeError`.
    public static func decode(_ bytes: [UInt8], path: String = "<memory>") throws -> RGBImage {
        switch sniff(bytes) {
        case .png: return try PNGCodec.decode(bytes, path: path)
        case .jpeg: return try JPEGCodec.decode(bytes, path: path)
        case .bmp: throw ImageDecodeError(path: path, reason: .unsupportedFormat, detail: "BMP is not decoded")
        case .tiff: throw ImageDecodeError(path: path, reason: .unsupportedFormat, detail: "TIFF is not decoded")
        case .pnm: throw ImageDecodeError(path: path, reason: .unsupportedFormat, detail: "PPM/PGM is not decoded")
        case nil:
            let what =
                bytes.isEmpty
                ? "empty file" : "unknown signature " + bytes.prefix(4).map { String(format: "%02x", $0) }.joined()
            throw ImageDecodeError(path: path, reason: .notAnImage, detail: what)
        }
    }

    static func sniff(_ b: [UInt8]) -> Format? {
        if b.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if b.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        if b.starts(with: [0x42, 0x4D]) { return .bmp }
        if b.starts(with: [0x49, 0x49, 0x2A, 0x00]) || b.starts(with: [0x4D, 0x4D, 0x00, 0x2A]) { return .tiff }
        if b.count >= 2, b[0] == 0x50, (0x31...0x37).contains(b[1]) { return .pnm }
        return nil
    }

    /// Runs a CImageShim decoder (`cis_png_decode_rgb8`, `cis_jpeg_decode_rgb8`) on `bytes`, checks its status, and
    /// hands the decoded pixels and the raw result (for the JPEG EXIF payload) to `finish` before the C buffers are
    /// released.
    /// - Throws: `ImageDecodeError` naming `path`.
    static func decode<T>(
        _ bytes: [UInt8], path: String,
        with decoder: (UnsafePointer<UInt8>?, Int, UInt64, UnsafeMutablePointer<cis_image>) -> Int32,
        _ finish: (RGBImage, cis_image) throws -> T
    ) throws -> T {
        var img = cis_image()
        let rc = bytes.withUnsafeBufferPointer { decoder($0.baseAddress, $0.count, UInt64(maxPixels), &img) }
        defer { cis_image_release(&img) }
        try check(rc, message: img.message, path: path)
        let n = Int(img.width) * Int(img.height) * 3
        let pixels = Array(UnsafeBufferPointer(start: img.pixels, count: n))
        return try finish(RGBImage(width: Int(img.width), height: Int(img.height), pixels: pixels), img)
    }

    /// Maps a CImageShim status and its message buffer (a C char array) to `ImageDecodeError`.
    static func check<M>(_ rc: Int32, message: M, path: String) throws {
        guard rc != CIS_OK else { return }
        let text = withUnsafeBytes(of: message) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        let reason: ImageDecodeError.Reason
        switch rc {
        case CIS_NOT_THIS_FORMAT: reason = .notAnImage
        case CIS_TOO_LARGE: reason = .tooLarge
        default: reason = .corrupt
        }
        throw ImageDecodeError(path: path, reason: reason, detail: rc == CIS_NO_MEMORY ? "out of memory" : text)
    }
}
