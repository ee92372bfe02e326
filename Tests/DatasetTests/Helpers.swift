import Engine
import Foundation
import XCTest

@testable import Dataset

/// A fresh temporary folder, removed when the test ends.
func temporaryFolder(_ test: XCTestCase) throws -> URL {
    let url = URL(fileURLWithPath: NSTemporaryDirectory())
        .appendingPathComponent("DatasetTests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}

/// Writes `bytes` at `root/relative`, creating folders.
@discardableResult
func writeFile(_ root: URL, _ relative: String, _ bytes: [UInt8]) throws -> String {
    let url = root.appendingPathComponent(relative)
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    try Data(bytes).write(to: url)
    return url.path
}

/// A deterministic w×h test image (gradients and a checker pattern).
func testImage(_ w: Int, _ h: Int, salt: Int = 0) -> RGBImage {
    var px = [UInt8](repeating: 0, count: w * h * 3)
    for y in 0..<h {
        for x in 0..<w {
            let i = (y * w + x) * 3
            px[i] = UInt8((x * 255) / max(w - 1, 1))
            px[i + 1] = UInt8((y * 255) / max(h - 1, 1))
            px[i + 2] = UInt8(((x / 4 + y / 4 + salt) % 2) * 200 + 20)
        }
    }
    return RGBImage(width: w, height: h, pixels: px)
}

/// PNG bytes of an RGB image.
func pngBytes(_ im: RGBImage) throws -> [UInt8] { try PNGCodec.encode(im) }

/// The fixture folder copied into the test bundle.
func fixtureURL(_ name: String) -> URL {
    Bundle.module.resourceURL!.appendingPathComponent("Fixtures").appendingPathComponent(name)
}

/// Asserts that `body` throws an `ImageDecodeError` with `reason` naming `path`.
func assertDecodeError(
    _ reason: ImageDecodeError.Reason, path: String, file: StaticString = #filePath, line: UInt = #line,
    _ body: () throws -> Void
) {
    do {
        try body()
        XCTFail("expected ImageDecodeError.\(reason) for \(path)", file: file, line: line)
    } catch let e as ImageDecodeError {
        XCTAssertEqual(e.reason, reason, "\(e)", file: file, line: line)
        XCTAssertEqual(e.path, path, file: file, line: line)
        XCTAssertTrue(e.description.contains(path), file: file, line: line)
    } catch {
        XCTFail("unexpected error \(error)", file: file, line: line)
    }
}
