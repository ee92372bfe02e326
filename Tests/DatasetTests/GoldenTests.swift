import Foundation
import XCTest

@testable import Dataset

/// Bit-exact parity with Pillow, from fixtures made by Scripts/golden/make_resize_golden.py and
/// Scripts/golden/make_decode_golden.py (Pillow 13.0.0, see the .json files beside them).
final class GoldenTests: XCTestCase {
    /// make_resize_golden.py: `Image.resize((w, h), Image.BILINEAR)` on RGB, 12 cases (3 take Pillow 13's vertical-first order).
    func testResizeMatchesPillowExactly() throws {
        let blob = [UInt8](try Data(contentsOf: fixtureURL("resize_golden.bin")))
        XCTAssertEqual(String(decoding: blob.prefix(8), as: UTF8.self), "PILRSZ01")
        var at = 8
        func u32() -> Int {
            defer { at += 4 }
            return (0..<4).reduce(0) { $0 | Int(blob[at + $1]) << (8 * $1) }
        }
        let cases = u32()
        XCTAssertEqual(cases, 12)
        for _ in 0..<cases {
            let iw = u32()
            let ih = u32()
            let ow = u32()
            let oh = u32()
            let src = RGBImage(width: iw, height: ih, pixels: Array(blob[at..<(at + iw * ih * 3)]))
            at += iw * ih * 3
            let want = Array(blob[at..<(at + ow * oh * 3)])
            at += ow * oh * 3
            let got = src.resizedBilinear(width: ow, height: oh)
            XCTAssertEqual(got.width, ow)
            XCTAssertEqual(got.height, oh)
            let diff = zip(got.pixels, want).map { abs(Int($0) - Int($1)) }.max() ?? 0
            XCTAssertEqual(diff, 0, "\(iw)x\(ih) -> \(ow)x\(oh): max abs diff \(diff)")
        }
        XCTAssertEqual(at, blob.count)
    }

    /// make_decode_golden.py: `ImageOps.exif_transpose(Image.open(f)).convert('RGB')` for 19 PNG variants
    /// (all colour types and depths, tRNS, Adam7, Pillow-encoded) and 7 JPEGs (4:2:0, grey, Adobe
    /// CMYK, progressive 4:2:2, EXIF orientations 3, 6, 8).
    func testDecodeMatchesPillowExactly() throws {
        let dir = fixtureURL("decode")
        let manifest = try JSONSerialization.jsonObject(
            with: Data(contentsOf: dir.appendingPathComponent("decode.json")))
        let cases = try XCTUnwrap((manifest as? [String: Any])?["cases"] as? [[String: Any]])
        XCTAssertEqual(cases.count, 26)
        for c in cases {
            let name = c["name"] as! String
            let file = c["file"] as! String
            let im = try ImageDecoder.decode(file: dir.appendingPathComponent(file).path)
            let want = [UInt8](try Data(contentsOf: dir.appendingPathComponent(name + ".rgb")))
            XCTAssertEqual(im.width, c["width"] as? Int, name)
            XCTAssertEqual(im.height, c["height"] as? Int, name)
            XCTAssertEqual(im.pixels.count, want.count, name)
            let diff = zip(im.pixels, want).map { abs(Int($0) - Int($1)) }.max() ?? 0
            XCTAssertEqual(diff, 0, "\(name): max abs diff \(diff)")
        }
    }

    func testResizeToSameSizeIsIdentityAndShapesAreRight() {
        let im = testImage(23, 17)
        XCTAssertEqual(im.resizedBilinear(width: 23, height: 17), im)
        let up = im.resizedBilinear(width: 286, height: 286)
        XCTAssertEqual(up.pixels.count, 286 * 286 * 3)
        // A constant image stays constant through both passes (weights sum to 1 in fixed point).
        let flat = RGBImage(width: 37, height: 11, fill: (200, 17, 99)).resizedBilinear(width: 5, height: 40)
        XCTAssertEqual(Set(stride(from: 0, to: flat.pixels.count, by: 3).map { flat.pixels[$0] }), [200])
        XCTAssertEqual(Set(stride(from: 1, to: flat.pixels.count, by: 3).map { flat.pixels[$0] }), [17])
    }
}
