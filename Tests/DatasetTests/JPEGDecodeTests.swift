import XCTest

@testable import Dataset

/// JPEG decoding: colour spaces, CMYK conventions and EXIF orientation. Test files are written here
/// with libjpeg (JPEGCodec.encode); DecodeGoldenTests compares with Pillow's decodes.
final class JPEGDecodeTests: XCTestCase {
    func maxDiff(_ a: [UInt8], _ b: [UInt8]) -> Int {
        XCTAssertEqual(a.count, b.count)
        return zip(a, b).map { abs(Int($0) - Int($1)) }.max() ?? 0
    }

    func testRGBIsCloseAndDeterministic() throws {
        // Smooth content: chroma subsampling would blur a saturated checker by tens of levels.
        var px: [UInt8] = []
        for y in 0..<24 { for x in 0..<40 { px += [UInt8(x * 6), UInt8(y * 10), UInt8((x + y) * 3)] } }
        let im = RGBImage(width: 40, height: 24, pixels: px)
        let bytes = try JPEGCodec.encode(im, quality: 98)
        let a = try ImageDecoder.decode(bytes, path: "a.jpg")
        let b = try ImageDecoder.decode(bytes, path: "a.jpg")
        XCTAssertEqual(a, b)
        XCTAssertEqual(a.width, 40)
        XCTAssertEqual(a.height, 24)
        let mean =
            Double(zip(a.pixels, im.pixels).map { abs(Int($0) - Int($1)) }.reduce(0, +)) / Double(im.pixels.count)
        XCTAssertLessThan(mean, 2)
        XCTAssertLessThan(maxDiff(a.pixels, im.pixels), 12)
        XCTAssertNotEqual(a.pixels, RGBImage(width: 40, height: 24).pixels)
    }

    func testGreyIsReplicated() throws {
        let grey = (0..<(24 * 16)).map { UInt8(($0 * 7) % 256) }
        let im = try ImageDecoder.decode(
            try JPEGCodec.encode(samples: grey, width: 24, height: 16, components: 1, quality: 100))
        for i in 0..<(24 * 16) {
            XCTAssertEqual(im.pixels[3 * i], im.pixels[3 * i + 1])
            XCTAssertEqual(im.pixels[3 * i], im.pixels[3 * i + 2])
        }
        XCTAssertLessThan(maxDiff(stride(from: 0, to: im.pixels.count, by: 3).map { im.pixels[$0] }, grey), 8)
    }

    /// Pillow's cmyk2rgb: (255 - k) - round((255 - k)·c / 255), per channel.
    func cmykToRGB(_ c: Int, _ m: Int, _ y: Int, _ k: Int) -> [UInt8] {
        func md(_ a: Int, _ b: Int) -> Int {
            let t = a * b + 128
            return ((t >> 8) + t) >> 8
        }
        let nk = 255 - k
        return [c, m, y].map { UInt8(max(0, nk - md($0, nk))) }
    }

    func testCMYKWithAndWithoutAdobeMarker() throws {
        let (c, m, y, k) = (20, 180, 90, 40)
        let expected = cmykToRGB(c, m, y, k)
        XCTAssertEqual(expected, [198, 63, 139])  // Pillow 13: CMYK (20, 180, 90, 40) -> RGB
        // Adobe convention: the file stores inverted values.
        let inverted = [UInt8](repeating: 0, count: 16 * 16 * 4).enumerated().map { i, _ in
            UInt8(255 - [c, m, y, k][i % 4])
        }
        let adobe = try ImageDecoder.decode(
            try JPEGCodec.encode(
                samples: inverted, width: 16, height: 16, components: 4,
                quality: 100, adobeMarker: true))
        let plainSamples = inverted.map { 255 - $0 }
        let plain = try ImageDecoder.decode(
            try JPEGCodec.encode(
                samples: plainSamples, width: 16, height: 16, components: 4,
                quality: 100, adobeMarker: false))
        for im in [adobe, plain] {
            XCTAssertLessThanOrEqual(maxDiff(Array(im.pixels.prefix(3)), expected), 2, "\(im[0, 0])")
            XCTAssertLessThanOrEqual(maxDiff(Array(im.pixels.suffix(3)), expected), 2)
        }
    }

    /// A 3×2 grid of 16-pixel cells in six colours, saved with each orientation; the decoded grid must
    /// match Pillow's `ImageOps.exif_transpose` (tables printed by Pillow 13 for the grid [[0,1,2],[3,4,5]]).
    func testExifOrientationsMatchPillow() throws {
        let colours: [[UInt8]] = [
            [230, 30, 30], [30, 200, 30], [30, 30, 230], [230, 230, 30], [30, 230, 230], [230, 30, 230],
        ]
        let cell = 16
        var px = [UInt8](repeating: 0, count: 3 * cell * 2 * cell * 3)
        for y in 0..<(2 * cell) {
            for x in 0..<(3 * cell) {
                let col = colours[(y / cell) * 3 + x / cell]
                for ch in 0..<3 { px[(y * 3 * cell + x) * 3 + ch] = col[ch] }
            }
        }
        let pillow: [Int: [[Int]]] = [
            1: [[0, 1, 2], [3, 4, 5]], 2: [[2, 1, 0], [5, 4, 3]], 3: [[5, 4, 3], [2, 1, 0]],
            4: [[3, 4, 5], [0, 1, 2]],
            5: [[0, 3], [1, 4], [2, 5]], 6: [[3, 0], [4, 1], [5, 2]], 7: [[5, 2], [4, 1], [3, 0]],
            8: [[2, 5], [1, 4], [0, 3]],
        ]
        for bigEndian in [false, true] {
            for o in 1...8 {
                let bytes = try JPEGCodec.encode(
                    samples: px, width: 3 * cell, height: 2 * cell, components: 3, quality: 95,
                    app1: ExifOrientation.app1Payload(orientation: o, bigEndian: bigEndian))
                let im = try ImageDecoder.decode(bytes, path: "o\(o).jpg")
                let grid = pillow[o]!
                XCTAssertEqual(im.width, grid[0].count * cell, "orientation \(o)")
                XCTAssertEqual(im.height, grid.count * cell, "orientation \(o)")
                for (r, row) in grid.enumerated() {
                    for (c, want) in row.enumerated() {
                        let p = im[c * cell + cell / 2, r * cell + cell / 2]
                        XCTAssertLessThan(
                            maxDiff([p.0, p.1, p.2], colours[want]), 12, "orientation \(o) cell (\(r), \(c))")
                    }
                }
            }
        }
    }

    func testExifParserIgnoresMalformedData() {
        let good = Array(ExifOrientation.app1Payload(orientation: 6).dropFirst(6))
        XCTAssertEqual(ExifOrientation.parse(tiff: good), 6)
        XCTAssertEqual(ExifOrientation.parse(tiff: []), 1)
        for n in 0..<good.count { XCTAssertTrue((1...8).contains(ExifOrientation.parse(tiff: Array(good.prefix(n))))) }
        var bad = good
        bad[18] = 9  // the value field (header 8 + count 2 + tag, type, count 8): 9 is not an orientation
        XCTAssertEqual(ExifOrientation.parse(tiff: bad), 1)
        var offset = good
        offset[4] = 0xFF  // IFD offset far outside the data
        XCTAssertEqual(ExifOrientation.parse(tiff: offset), 1)
    }
}
