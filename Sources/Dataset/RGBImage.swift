/// An 8-bit RGB image: `pixels` holds `height` rows of `width` pixels, 3 bytes (R, G, B) each, no padding.
public struct RGBImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    /// An image from `pixels` (count must be width·height·3).
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0, "negative image size \(width)x\(height)")
        precondition(pixels.count == width * height * 3, "\(pixels.count) bytes for a \(width)x\(height) RGB image")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// A `width`×`height` image filled with one colour.
    public init(width: Int, height: Int, fill: (UInt8, UInt8, UInt8) = (0, 0, 0)) {
        var p = [UInt8](repeating: 0, count: width * height * 3)
        for i in stride(from: 0, to: p.count, by: 3) {
            p[i] = fill.0
            p[i + 1] = fill.1
            p[i + 2] = fill.2
        }
        self.init(width: width, height: height, pixels: p)
    }

    /// The pixel at column `x`, row `y`.
    public subscript(x: Int, y: Int) -> (UInt8, UInt8, UInt8) {
        let i = (y * width + x) * 3
        return (pixels[i], pixels[i + 1], pixels[i + 2])
    }

    /// The image mirrored left-right (torchvision's hflip).
    public func flippedHorizontally() -> RGBImage {
        var out = pixels
        for y in 0..<height {
            let row = y * width * 3
            for x in 0..<width {
                let d = row + x * 3
                let s = row + (width - 1 - x) * 3
                out[d] = pixels[s]
                out[d + 1] = pixels[s + 1]
                out[d + 2] = pixels[s + 2]
            }
        }
        return RGBImage(width: width, height: height, pixels: out)
    }

    /// The `w`×`h` region whose top-left corner is (`left`, `top`); it must lie inside the image.
    public func cropped(left: Int, top: Int, width w: Int, height h: Int) -> RGBImage {
        precondition(
            left >= 0 && top >= 0 && left + w <= width && top + h <= height,
            "crop \(w)x\(h) at (\(left), \(top)) outside a \(width)x\(height) image")
        var out = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h {
            let src = ((top + y) * width + left) * 3
            out.withUnsafeMutableBufferPointer { o in
                pixels.withUnsafeBufferPointer { p in
                    (o.baseAddress! + y * w * 3).update(from: p.baseAddress! + src, count: w * 3)
                }
            }
        }
        return RGBImage(width: w, height: h, pixels: out)
    }

    /// A new `w`×`h` image whose pixel (x, y) is this image's pixel `source(x, y)`.
    func remapped(width w: Int, height h: Int, _ source: (Int, Int) -> (Int, Int)) -> RGBImage {
        var out = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h {
            for x in 0..<w {
                let (sx, sy) = source(x, y)
                let s = (sy * width + sx) * 3
                let d = (y * w + x) * 3
                out[d] = pixels[s]
                out[d + 1] = pixels[s + 1]
                out[d + 2] = pixels[s + 2]
            }
        }
        return RGBImage(width: w, height: h, pixels: out)
    }
}
