import Dataset
import Engine

/// Image preparation for the FID Inception-v3.
///
/// 1. Any RGB8 image is resized to 299×299 with Pillow's bilinear filter (`RGBImage.resizedBilinear`, bit-exact
///    Pillow: antialiased when shrinking, plain half-pixel bilinear when enlarging, 8-bit result), no crop and
///    no aspect-ratio preservation. Why this filter: the network was trained on 8-bit images and the TorchScript
///    takes uint8/128 − 1, so the resize should give 8-bit pixels; an antialiased resize is the "clean" choice
///    for shrinking (clean-fid), and for the usual case here (256×256 generator outputs enlarged to 299) it is
///    the same bilinear interpolation as StyleGAN's/fid-helper's in-graph resize, rounded to 8 bits.
/// 2. v ∈ 0…255 → v/128 − 1 ∈ [−1, 0.9921875] (exact in float32), stored NHWC.
///
/// Generator outputs in [−1, 1] are first turned into the RGB8 image a PNG would hold, round((x + 1)·127.5)
/// clamped (`ImageTransforms.toImage`), so fake images written to disk and fake images kept in memory give the
/// same features.
public enum FIDPreprocess {
    /// The network's value for pixel byte v: v/128 − 1.
    static let levels: [Float] = (0..<256).map { Float($0) / 128 - 1 }

    /// The image resized to 299×299 (unchanged if already that size).
    public static func resized(_ image: RGBImage) -> RGBImage {
        image.resizedBilinear(width: FIDInceptionV3.inputSize, height: FIDInceptionV3.inputSize)
    }

    /// A batch ready for `FIDInceptionV3.features(nhwc:)`: [N, 299, 299, 3], values v/128 − 1.
    public static func batch(_ images: [RGBImage]) -> Tensor {
        let s = FIDInceptionV3.inputSize
        let plane = s * s * 3
        let t = Tensor(uninitialized: [images.count, s, s, 3])
        levels.withUnsafeBufferPointer { lut in
            for (i, image) in images.enumerated() {
                let r = resized(image)
                let d = t.data + i * plane
                r.pixels.withUnsafeBufferPointer { px in for j in 0..<plane { d[j] = lut[Int(px[j])] } }
            }
        }
        return t
    }

    /// The RGB8 image of one generator output: `t` [3, H, W] in [−1, 1] → round((x + 1)·127.5) clamped to 0…255.
    public static func image(fromGeneratorOutput t: Tensor) -> RGBImage { ImageTransforms.toImage(t) }
}
