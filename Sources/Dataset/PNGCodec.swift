import CImageShim
import Engine
import Foundation

/// PNG decoding (any PNG to RGB8) and encoding through libpng.
///
/// Decoding follows Pillow's `convert('RGB')`: palette images take their palette colours, grey is
/// replicated to R=G=B, alpha and tRNS are dropped without compositing, and 16-bit samples keep their
/// high byte (`png_set_strip_16`), which is what Pillow does for 16-bit RGB, RGBA and grey+alpha PNGs.
/// (Pillow opens 16-bit *grey* PNGs as mode I;16 and clips values above 255 to white on conversion;
/// we take the high byte there too, so a 16-bit grey photo stays a photo.) gAMA, iCCP and sRGB chunks
/// are ignored, as Pillow ignores them.
public enum PNGCodec {
    /// PNG colour types (the IHDR values).
    public enum ColorType: Int32, Sendable {
        case gray = 0, rgb = 2, palette = 3, grayAlpha = 4, rgba = 6

        var channels: Int { [0: 1, 2: 3, 3: 1, 4: 2, 6: 4][Int(rawValue)]! }
    }

    /// Decodes PNG bytes to RGB8.
    /// - Throws: `ImageDecodeError` (`.notAnImage` without a PNG signature, `.corrupt` with libpng's
    ///   message, `.tooLarge` above `ImageDecoder.maxPixels`).
    public static func decode(_ bytes: [UInt8], path: String = "<memory>") throws -> RGBImage {
        try ImageDecoder.decode(bytes, path: path, with: cis_png_decode_rgb8) { image, _ in image }
    }

    /// Encodes an RGB8 image as a non-interlaced 8-bit RGB PNG (deterministic: no time stamp).
    public static func encode(_ image: RGBImage, compressionLevel: Int = 6) throws -> [UInt8] {
        try encode(
            samples: image.pixels, width: image.width, height: image.height, colorType: .rgb, bitDepth: 8,
            compressionLevel: compressionLevel)
    }

    /// Writes `image` as an RGB PNG at `path` (atomically: a reader never sees half a file).
    /// - Throws: `ImageEncodeError` naming `path`.
    public static func write(_ image: RGBImage, to path: String) throws {
        let bytes: [UInt8]
        do { bytes = try encode(image) } catch let e as ImageEncodeError {
            throw ImageEncodeError(path: path, detail: e.detail)
        }
        do { try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw ImageEncodeError(path: path, detail: FileErrorText.reason(error))
        }
    }

    /// Encodes raw PNG samples of any colour type and bit depth (used for sample sheets and to make
    /// test images). `samples` holds `height` rows of ceil(width·channels·bitDepth/8) bytes in PNG's
    /// packing (16-bit big-endian). `palette` is RGB triplets (colour type `.palette` only);
    /// `transparency` is the palette's tRNS alpha list.
    /// - Throws: `ImageEncodeError` when libpng rejects the combination.
    public static func encode(
        samples: [UInt8], width: Int, height: Int, colorType: ColorType, bitDepth: Int,
        interlaced: Bool = false, palette: [UInt8] = [], transparency: [UInt8] = [],
        compressionLevel: Int = 6
    ) throws -> [UInt8] {
        let rowBytes = (width * colorType.channels * bitDepth + 7) / 8
        precondition(
            samples.count == rowBytes * height,
            "PNG samples: \(samples.count) bytes for \(height) rows of \(rowBytes)")
        precondition(palette.count % 3 == 0, "palette must be RGB triplets, got \(palette.count) bytes")
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        var message = [CChar](repeating: 0, count: Int(CIS_MESSAGE_CAPACITY))
        let rc = samples.withUnsafeBufferPointer { s in
            palette.withUnsafeBufferPointer { p in
                transparency.withUnsafeBufferPointer { t in
                    cis_png_encode(
                        s.baseAddress, UInt32(width), UInt32(height), colorType.rawValue, Int32(bitDepth),
                        interlaced ? 1 : 0, p.baseAddress, Int32(palette.count / 3), t.baseAddress,
                        Int32(transparency.count), Int32(compressionLevel), &out, &size, &message, message.count)
                }
            }
        }
        defer { cis_free(out) }
        guard rc == CIS_OK, let out else {
            throw ImageEncodeError(path: "<memory>", detail: String(cString: message))
        }
        return Array(UnsafeBufferPointer(start: out, count: size))
    }
}
