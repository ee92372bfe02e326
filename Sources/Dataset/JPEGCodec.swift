import CImageShim

/// JPEG decoding to RGB8 and encoding through libjpeg-turbo.
///
/// Decoding uses libjpeg's defaults (accurate integer IDCT, fancy upsampling), as Pillow does. Grey
/// becomes R=G=B; CMYK and YCCK are read as CMYK and converted with Pillow's `cmyk2rgb` rounding,
/// after inverting when an Adobe APP14 marker is present (Photoshop's convention; Pillow assumes it
/// for every CMYK JPEG, we only when the marker says so). The EXIF orientation (APP1 "Exif", tag
/// 0x0112, values 1–8) is then applied like Pillow's `ImageOps.exif_transpose`; note that the
/// official U-GAT-IT pipeline does not do this (torchvision never calls exif_transpose).
public enum JPEGCodec {
    /// Decodes JPEG bytes to RGB8 with the EXIF orientation applied.
    /// - Throws: `ImageDecodeError` (`.corrupt` with libjpeg's message, including truncated files;
    ///   `.tooLarge` above `ImageDecoder.maxPixels`).
    public static func decode(_ bytes: [UInt8], path: String = "<memory>") throws -> RGBImage {
        try ImageDecoder.decode(bytes, path: path, with: cis_jpeg_decode_rgb8) { raw, img in
            guard let exif = img.exif else { return raw }
            let tiff = Array(UnsafeBufferPointer(start: exif, count: img.exif_size))
            return ExifOrientation.apply(ExifOrientation.parse(tiff: tiff), to: raw)
        }
    }

    /// Encodes 8-bit samples as a baseline JPEG (4:2:0 for colour, libjpeg defaults otherwise).
    /// - Parameters:
    ///   - samples: height·width·components bytes, interleaved.
    ///   - components: 1 (grey), 3 (RGB) or 4 (CMYK, stored as given).
    ///   - adobeMarker: for CMYK, whether to write the Adobe APP14 marker (readers then invert).
    ///   - app1: an APP1 payload written verbatim, e.g. `ExifOrientation.app1Payload(orientation:)`.
    /// - Throws: `ImageEncodeError`.
    public static func encode(
        samples: [UInt8], width: Int, height: Int, components: Int, quality: Int = 90,
        adobeMarker: Bool = true, app1: [UInt8]? = nil
    ) throws -> [UInt8] {
        precondition(
            samples.count == width * height * components,
            "JPEG samples: \(samples.count) bytes for \(width)x\(height)x\(components)")
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        var message = [CChar](repeating: 0, count: Int(CIS_MESSAGE_CAPACITY))
        let extra = app1 ?? []
        let rc = samples.withUnsafeBufferPointer { s in
            extra.withUnsafeBufferPointer { a in
                cis_jpeg_encode(
                    s.baseAddress, UInt32(width), UInt32(height), Int32(components), Int32(quality),
                    adobeMarker ? 1 : 0, a.baseAddress, a.count, &out, &size, &message, message.count)
            }
        }
        defer { cis_free(out) }
        guard rc == CIS_OK, let out else {
            throw ImageEncodeError(path: "<memory>", detail: String(cString: message))
        }
        return Array(UnsafeBufferPointer(start: out, count: size))
    }

    /// Encodes an RGB8 image as a JPEG.
    public static func encode(_ image: RGBImage, quality: Int = 90) throws -> [UInt8] {
        try encode(samples: image.pixels, width: image.width, height: image.height, components: 3, quality: quality)
    }
}
