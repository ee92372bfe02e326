import XCTest

@testable import Dataset

/// PNG decoding: every colour type and bit depth becomes RGB8 by Pillow's convert('RGB') rules.
/// Test images are written here with libpng (PNGCodec.encode); PNGGoldenTests checks Pillow itself.
final class PNGDecodeTests: XCTestCase {
    let w = 11, h = 5

    /// Samples with a formula per (x, y, channel), in 0...maxval.
    func samples(_ channels: Int, maxval: Int) -> [[Int]] {
        (0..<(w * h)).map { i in (0..<channels).map { c in (i * 37 + c * 101 + 7) * 2_654_435_761 % (maxval + 1) } }
    }

    func packed(_ s: [[Int]], depth: Int) -> [UInt8] {
        var out: [UInt8] = []
        for y in 0..<h {
            let row = s[(y * w)..<(y * w + w)].flatMap { $0 }
            if depth == 16 {
                out += row.flatMap { [UInt8($0 >> 8), UInt8($0 & 255)] }
            } else if depth == 8 {
                out += row.map(UInt8.init)
            } else {
                let per = 8 / depth
                for i in stride(from: 0, to: row.count, by: per) {
                    var b = 0
                    for j in 0..<per where i + j < row.count { b |= row[i + j] << (8 - depth * (j + 1)) }
                    out.append(UInt8(b))
                }
            }
        }
        return out
    }

    func decode(
        _ s: [[Int]], _ type: PNGCodec.ColorType, depth: Int, palette: [UInt8] = [], trns: [UInt8] = [],
        interlaced: Bool = false
    ) throws -> RGBImage {
        let bytes = try PNGCodec.encode(
            samples: packed(s, depth: depth), width: w, height: h, colorType: type,
            bitDepth: depth, interlaced: interlaced, palette: palette, transparency: trns)
        let im = try ImageDecoder.decode(bytes, path: "t.png")
        XCTAssertEqual(im.width, w)
        XCTAssertEqual(im.height, h)
        return im
    }

    func expect(_ im: RGBImage, _ f: ([Int]) -> [Int], _ s: [[Int]], file: StaticString = #filePath, line: UInt = #line)
    {
        XCTAssertEqual(im.pixels, s.flatMap { f($0).map(UInt8.init) }, file: file, line: line)
    }

    func testGreyAllDepths() throws {
        for (depth, scale) in [(1, 255), (2, 85), (4, 17), (8, 1)] {
            let s = samples(1, maxval: (1 << depth) - 1)
            expect(try decode(s, .gray, depth: depth), { [$0[0] * scale, $0[0] * scale, $0[0] * scale] }, s)
        }
    }

    func testGreyAlphaDropsAlpha() throws {
        let s = samples(2, maxval: 255)
        expect(try decode(s, .grayAlpha, depth: 8), { [$0[0], $0[0], $0[0]] }, s)
    }

    func testRGBAndRGBADropAlpha() throws {
        let s3 = samples(3, maxval: 255)
        let s4 = samples(4, maxval: 255)
        expect(try decode(s3, .rgb, depth: 8), { $0 }, s3)
        expect(try decode(s4, .rgba, depth: 8), { Array($0.prefix(3)) }, s4)
    }

    /// 16-bit samples keep the high byte (Pillow's RGB;16B unpacker; verified with Pillow 13:
    /// 0x80ff -> 128, 0x7f80 -> 127, 0x00ff -> 0).
    func testSixteenBitKeepsHighByte() throws {
        let s3 = samples(3, maxval: 65535)
        let s4 = samples(4, maxval: 65535)
        let s2 = samples(2, maxval: 65535)
        let s1 = samples(1, maxval: 65535)
        expect(try decode(s3, .rgb, depth: 16), { $0.map { $0 >> 8 } }, s3)
        expect(try decode(s4, .rgba, depth: 16), { $0.prefix(3).map { $0 >> 8 } }, s4)
        expect(try decode(s2, .grayAlpha, depth: 16), { [$0[0] >> 8, $0[0] >> 8, $0[0] >> 8] }, s2)
        expect(try decode(s1, .gray, depth: 16), { [$0[0] >> 8, $0[0] >> 8, $0[0] >> 8] }, s1)
        let edge = [[0x80FF, 0x7F80, 0x00FF]] + Array(repeating: [0, 0, 0], count: w * h - 1)
        let im = try decode(edge, .rgb, depth: 16)
        XCTAssertEqual(Array(im.pixels.prefix(3)), [128, 127, 0])
    }

    func testPaletteWithTransparencyTakesPaletteColours() throws {
        var palette: [UInt8] = []
        for i in 0..<256 { palette += [UInt8((i * 53) % 256), UInt8((i * 97 + 13) % 256), UInt8((i * 151 + 7) % 256)] }
        for depth in [1, 2, 4, 8] {
            let n = 1 << depth
            let s = samples(1, maxval: n - 1)
            let im = try decode(
                s, .palette, depth: depth, palette: Array(palette.prefix(3 * n)),
                trns: (0..<min(n, 5)).map { UInt8($0 * 50) })
            expect(im, { Array(palette[(3 * $0[0])..<(3 * $0[0] + 3)]).map(Int.init) }, s)
        }
    }

    func testInterlacedEqualsNonInterlaced() throws {
        let s = samples(3, maxval: 255)
        XCTAssertEqual(try decode(s, .rgb, depth: 8, interlaced: true), try decode(s, .rgb, depth: 8))
        let g = samples(1, maxval: 3)
        XCTAssertEqual(try decode(g, .gray, depth: 2, interlaced: true), try decode(g, .gray, depth: 2))
    }

    func testWriteReadRoundTripAndFile() throws {
        let dir = try temporaryFolder(self)
        let im = testImage(33, 20)
        let path = dir.appendingPathComponent("x.png").path
        try PNGCodec.write(im, to: path)
        XCTAssertEqual(try ImageDecoder.decode(file: path), im)
        // Deterministic bytes: same image, same file.
        XCTAssertEqual(try PNGCodec.encode(im), try PNGCodec.encode(im))
        XCTAssertEqual(Array(try PNGCodec.encode(im).prefix(4)), [0x89, 0x50, 0x4E, 0x47])
    }

    func testWriteIntoMissingFolderThrowsNamingPath() {
        let path = "/nonexistent-\(UUID().uuidString)/x.png"
        XCTAssertThrowsError(try PNGCodec.write(testImage(4, 4), to: path)) { e in
            XCTAssertEqual((e as? ImageEncodeError)?.path, path)
        }
    }

    func testBadEncodeArgumentsThrowInsteadOfCrashing() {
        // Bit depth 3 is not a PNG depth: libpng's png_error must come back as an error.
        XCTAssertThrowsError(
            try PNGCodec.encode(
                samples: [UInt8](repeating: 0, count: 2 * 2), width: 4, height: 2,
                colorType: .gray, bitDepth: 3)
        ) { e in
            XCTAssertTrue(e is ImageEncodeError, "\(e)")
        }
    }
}
