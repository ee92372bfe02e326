import Engine

/// The official U-GAT-IT preprocessing (spec B.1), on RGB8 images, producing CHW float tensors.
public enum ImageTransforms {
    /// Extra pixels added by the train resize before the random crop (S+30 → S).
    public static let cropMargin = 30

    /// Train transform: horizontal flip with p = 0.5 → Pillow bilinear resize to (S+30)×(S+30) →
    /// random S×S crop (top, then left offset, each uniform in 0…30) → [-1, 1].
    /// Draws from `rng` in that order: one `uniform()` for the flip, then `int(31)` twice.
    /// - Returns: a [3, size, size] tensor.
    public static func train(_ image: RGBImage, size: Int, rng: inout RandomGenerator) -> Tensor {
        let flip = rng.uniform() < 0.5
        let top = rng.int(cropMargin + 1)
        let left = rng.int(cropMargin + 1)
        let src = flip ? image.flippedHorizontally() : image
        let big = src.resizedBilinear(width: size + cropMargin, height: size + cropMargin)
        return toTensor(big, left: left, top: top, size: size)
    }

    /// Test transform: Pillow bilinear resize to size×size → [-1, 1].
    /// - Returns: a [3, size, size] tensor.
    public static func test(_ image: RGBImage, size: Int) -> Tensor {
        toTensor(image.resizedBilinear(width: size, height: size), left: 0, top: 0, size: size)
    }

    /// The pixel value v in [0, 255] as the network sees it: ToTensor then Normalize(0.5, 0.5),
    /// in float32 as torchvision computes it: (v / 255 - 0.5) / 0.5.
    static let levels: [Float] = (0..<256).map { (Float($0) / 255 - 0.5) / 0.5 }

    /// The size×size window at (left, top) of `image` as a [3, size, size] tensor in [-1, 1].
    public static func toTensor(_ image: RGBImage, left: Int = 0, top: Int = 0, size: Int) -> Tensor {
        let t = Tensor(uninitialized: [3, size, size])
        write(image, left: left, top: top, size: size, into: t.data)
        return t
    }

    /// Writes the window as CHW floats at `out` (3·size·size values).
    static func write(_ image: RGBImage, left: Int, top: Int, size: Int, into out: UnsafeMutablePointer<Float>) {
        precondition(
            left >= 0 && top >= 0 && left + size <= image.width && top + size <= image.height,
            "window \(size)x\(size) at (\(left), \(top)) outside a \(image.width)x\(image.height) image")
        let plane = size * size
        levels.withUnsafeBufferPointer { lut in
            image.pixels.withUnsafeBufferPointer { px in
                for y in 0..<size {
                    let row = px.baseAddress! + ((top + y) * image.width + left) * 3
                    for x in 0..<size {
                        let o = y * size + x
                        out[o] = lut[Int(row[3 * x])]
                        out[plane + o] = lut[Int(row[3 * x + 1])]
                        out[2 * plane + o] = lut[Int(row[3 * x + 2])]
                    }
                }
            }
        }
    }

    /// The inverse mapping for viewing: a [3, H, W] tensor in [-1, 1] to RGB8, v = round((x+1)/2·255)
    /// clamped to 0…255.
    public static func toImage(_ t: Tensor) -> RGBImage {
        precondition(t.rank == 3 && t.shape[0] == 3, "toImage expects [3, H, W], got \(t.shape)")
        let h = t.shape[1]
        let w = t.shape[2]
        let plane = h * w
        var px = [UInt8](repeating: 0, count: plane * 3)
        for c in 0..<3 {
            for i in 0..<plane {
                let v = ((t.data[c * plane + i] + 1) * 127.5).rounded()
                px[i * 3 + c] = UInt8(max(0, min(255, v)))
            }
        }
        return RGBImage(width: w, height: h, pixels: px)
    }
}
