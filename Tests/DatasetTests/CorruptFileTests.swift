import Engine
import Foundation
import XCTest

@testable import Dataset

/// Bad files give a typed error naming the file, and never crash the process (libpng and libjpeg
/// errors longjmp inside the C shim only).
final class CorruptFileTests: XCTestCase {
    func testTruncatedAndDamagedPNG() throws {
        let dir = try temporaryFolder(self)
        let good = try pngBytes(testImage(40, 30))
        let cut = try writeFile(dir, "cut.png", Array(good.prefix(good.count / 2)))
        assertDecodeError(.corrupt, path: cut) { _ = try ImageDecoder.decode(file: cut) }
        var flipped = good
        flipped[good.count - 30] ^= 0xFF  // inside the IDAT data: CRC mismatch or zlib error
        let bad = try writeFile(dir, "crc.png", flipped)
        assertDecodeError(.corrupt, path: bad) { _ = try ImageDecoder.decode(file: bad) }
        let header = try writeFile(dir, "sig.png", Array(good.prefix(8)))
        assertDecodeError(.corrupt, path: header) { _ = try ImageDecoder.decode(file: header) }
    }

    func testTruncatedAndGarbageJPEG() throws {
        let dir = try temporaryFolder(self)
        let good = try JPEGCodec.encode(testImage(64, 48), quality: 90)
        for keep in [good.count - 40, good.count / 2, 200, 3] {
            let p = try writeFile(dir, "cut\(keep).jpg", Array(good.prefix(keep)))
            assertDecodeError(.corrupt, path: p) { _ = try ImageDecoder.decode(file: p) }
        }
        let garbage = try writeFile(
            dir, "garbage.jpg", [0xFF, 0xD8, 0xFF] + (0..<500).map { UInt8(truncatingIfNeeded: $0 &* 131) })
        assertDecodeError(.corrupt, path: garbage) { _ = try ImageDecoder.decode(file: garbage) }
    }

    func testNonImagesAndUnsupportedFormats() throws {
        let dir = try temporaryFolder(self)
        let text = try writeFile(dir, "notes.png", Array("hello, not an image".utf8))
        assertDecodeError(.notAnImage, path: text) { _ = try ImageDecoder.decode(file: text) }
        let empty = try writeFile(dir, "empty.jpg", [])
        assertDecodeError(.notAnImage, path: empty) { _ = try ImageDecoder.decode(file: empty) }
        let bmp = try writeFile(dir, "a.bmp", [0x42, 0x4D] + [UInt8](repeating: 0, count: 60))
        assertDecodeError(.unsupportedFormat, path: bmp) { _ = try ImageDecoder.decode(file: bmp) }
        let ppm = try writeFile(dir, "a.ppm", Array("P6\n2 2\n255\n".utf8) + [UInt8](repeating: 9, count: 12))
        assertDecodeError(.unsupportedFormat, path: ppm) { _ = try ImageDecoder.decode(file: ppm) }
        let missing = dir.appendingPathComponent("missing.png").path
        assertDecodeError(.unreadable, path: missing) { _ = try ImageDecoder.decode(file: missing) }
    }

    /// A PNG header claiming 100000×100000 pixels (valid CRC) is refused before any allocation.
    func testHugeDimensionsAreRefused() throws {
        var png = try pngBytes(testImage(4, 4))
        for (i, b) in [0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0].enumerated() { png[16 + i] = UInt8(b) }  // IHDR width, height
        let crc = crc32(Array(png[12..<29]))  // chunk type + 13 data bytes
        for i in 0..<4 { png[29 + i] = UInt8(truncatingIfNeeded: crc >> (24 - 8 * i)) }
        assertDecodeError(.tooLarge, path: "big.png") { _ = try ImageDecoder.decode(png, path: "big.png") }
    }

    /// PNG's CRC-32 (ISO 3309, reflected polynomial 0xEDB88320).
    func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        }
        return c ^ 0xFFFF_FFFF
    }

    /// Random truncations and byte flips of valid files: every outcome is an image or a typed error.
    func testFuzzedFilesNeverCrash() throws {
        let png = try pngBytes(testImage(24, 16))
        let jpg = try JPEGCodec.encode(testImage(24, 16))
        var rng = RandomGenerator(seed: 99)
        var errors = 0
        for round in 0..<300 {
            var b = round % 2 == 0 ? png : jpg
            if round % 3 == 0 { b = Array(b.prefix(rng.int(b.count))) }
            for _ in 0..<(1 + rng.int(4)) where !b.isEmpty { b[rng.int(b.count)] = UInt8(rng.int(256)) }
            do { _ = try ImageDecoder.decode(b, path: "fuzz") } catch is ImageDecodeError { errors += 1 }
        }
        XCTAssertGreaterThan(errors, 50)
    }
}
