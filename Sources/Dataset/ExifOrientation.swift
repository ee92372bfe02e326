/// The EXIF orientation tag (0x0112) and how to undo it, as Pillow's `ImageOps.exif_transpose`.
///
/// Values: 1 upright, 2 mirrored, 3 rotated 180°, 4 flipped vertically, 5 transposed, 6 needs 90°
/// clockwise, 7 transversed, 8 needs 90° counter-clockwise.
public enum ExifOrientation {
    /// The orientation in TIFF-structured EXIF data (an APP1 payload after "Exif\0\0"): 1…8, or 1 when
    /// the tag is absent, out of range or the data is malformed (never traps on bad input).
    public static func parse(tiff b: [UInt8]) -> Int {
        guard b.count >= 8 else { return 1 }
        let little: Bool
        switch (b[0], b[1]) {
        case (0x49, 0x49): little = true
        case (0x4D, 0x4D): little = false
        default: return 1
        }
        func u16(_ o: Int) -> Int? {
            guard o >= 0, o + 2 <= b.count else { return nil }
            return little ? Int(b[o]) | Int(b[o + 1]) << 8 : Int(b[o]) << 8 | Int(b[o + 1])
        }
        func u32(_ o: Int) -> Int? {
            guard let lo = u16(little ? o : o + 2), let hi = u16(little ? o + 2 : o) else { return nil }
            return hi << 16 | lo
        }
        guard u16(2) == 42, let ifd = u32(4), let n = u16(ifd) else { return 1 }
        for k in 0..<n {
            let e = ifd + 2 + 12 * k
            guard let tag = u16(e), let type = u16(e + 2) else { return 1 }
            if tag == 0x0112, type == 3, let v = u16(e + 8), (1...8).contains(v) { return v }
        }
        return 1
    }

    /// The image rotated/mirrored so that it displays upright (orientation 5–8 swap width and height).
    public static func apply(_ orientation: Int, to im: RGBImage) -> RGBImage {
        let w = im.width
        let h = im.height
        switch orientation {
        case 2: return im.remapped(width: w, height: h) { x, y in (w - 1 - x, y) }  // FLIP_LEFT_RIGHT
        case 3: return im.remapped(width: w, height: h) { x, y in (w - 1 - x, h - 1 - y) }  // ROTATE_180
        case 4: return im.remapped(width: w, height: h) { x, y in (x, h - 1 - y) }  // FLIP_TOP_BOTTOM
        case 5: return im.remapped(width: h, height: w) { x, y in (y, x) }  // TRANSPOSE
        case 6: return im.remapped(width: h, height: w) { x, y in (y, h - 1 - x) }  // ROTATE_270
        case 7: return im.remapped(width: h, height: w) { x, y in (w - 1 - y, h - 1 - x) }  // TRANSVERSE
        case 8: return im.remapped(width: h, height: w) { x, y in (w - 1 - y, x) }  // ROTATE_90
        default: return im
        }
    }

    /// A minimal APP1 payload ("Exif\0\0" + TIFF header + one IFD entry) carrying `orientation`.
    public static func app1Payload(orientation: Int, bigEndian: Bool = false) -> [UInt8] {
        func u16(_ v: Int) -> [UInt8] {
            bigEndian ? [UInt8(v >> 8), UInt8(v & 255)] : [UInt8(v & 255), UInt8(v >> 8)]
        }
        func u32(_ v: Int) -> [UInt8] { bigEndian ? u16(v >> 16) + u16(v & 0xFFFF) : u16(v & 0xFFFF) + u16(v >> 16) }
        let header: [UInt8] = bigEndian ? [0x4D, 0x4D] : [0x49, 0x49]
        let entry = u16(0x0112) + u16(3) + u32(1) + u16(orientation) + u16(0)
        return Array("Exif".utf8) + [0, 0] + header + u16(42) + u32(8) + u16(1) + entry + u32(0)
    }
}
