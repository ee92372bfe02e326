import Dataset

/// Deterministic RGB8 test images (gradients, concentric rings, hashed noise) for the KID fixtures and the speed
/// benchmark. Integer arithmetic only; `synthetic_image` in Scripts/golden/make_inception_golden.py is the same
/// formula, so both sides feed the network identical pixels.
public enum SyntheticImage {
    /// Image number `k` at `width`×`height`.
    public static func make(_ k: Int, width: Int, height: Int) -> RGBImage {
        var px = [UInt8](repeating: 0, count: width * height * 3)
        let cx = width / 2 + (k * 37) % 41 - 20
        let cy = height / 2 + (k * 23) % 31 - 15
        let mask: UInt64 = 0xFFFF_FFFF
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<3 {
                    var h =
                        (UInt64(x) &* 73_856_093) ^ (UInt64(y) &* 19_349_663) ^ (UInt64(c) &* 83_492_791)
                        ^ (UInt64(k) &* 2_654_435_761)
                    h &= mask
                    h = ((h ^ (h >> 15)) &* 2_246_822_519) & mask
                    h ^= h >> 13
                    let noise = Int(h & 31)
                    let d2 = (x - cx) * (x - cx) + (y - cy) * (y - cy)
                    let base = (x * (2 + c + k % 5) + y * (3 + 2 * c)) / 4
                    let ring = ((d2 >> (7 + c)) & 1) * 80
                    let v = (base + ring + noise) % 512
                    px[(y * width + x) * 3 + c] = UInt8(v < 256 ? v : 511 - v)
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: px)
    }

    /// Σ v_i·(i mod 251 + 1) over the pixel bytes in HWC order: the fixtures' `checksum_*` metadata.
    public static func checksum(_ image: RGBImage) -> Int {
        var s = 0
        for (i, v) in image.pixels.enumerated() { s += Int(v) * (i % 251 + 1) }
        return s
    }
}
