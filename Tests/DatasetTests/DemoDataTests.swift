import Engine
import Foundation
import XCTest

@testable import Dataset

final class DemoDataTests: XCTestCase {
    func testGroupCounts() {
        XCTAssertEqual(DemoData.groupCounts(total: 400), [240, 100, 32, 28])
        XCTAssertEqual(DemoData.groupCounts(total: 40), [24, 10, 3, 3])
        XCTAssertEqual(DemoData.groupCounts(total: 10), [6, 2, 1, 1])
        XCTAssertEqual(DemoData.groupCounts(total: 4), [1, 1, 1, 1])
        XCTAssertEqual(DemoData.groupCounts(total: 2), [1, 1, 0, 0])
        for n in 0..<200 { XCTAssertEqual(DemoData.groupCounts(total: n).reduce(0, +), n) }
    }

    func fileBytes(_ root: URL) throws -> [String: Data] {
        var out: [String: Data] = [:]
        let e = FileManager.default.enumerator(atPath: root.path)!
        while let rel = e.nextObject() as? String {
            if rel.hasSuffix(".png") { out[rel] = try Data(contentsOf: root.appendingPathComponent(rel)) }
        }
        return out
    }

    func testLayoutProportionsAndDeterminism() throws {
        let a = try temporaryFolder(self)
        let b = try temporaryFolder(self)
        let c = try temporaryFolder(self)
        try DemoData.generate(to: a, size: 32, trainPerDomain: 20, testPerDomain: 10, seed: 5)
        try DemoData.generate(to: b, size: 32, trainPerDomain: 20, testPerDomain: 10, seed: 5)
        try DemoData.generate(to: c, size: 32, trainPerDomain: 20, testPerDomain: 10, seed: 6)
        let fa = try fileBytes(a)
        let fb = try fileBytes(b)
        let fc = try fileBytes(c)
        XCTAssertEqual(fa.count, 60)
        XCTAssertEqual(fa, fb, "same seed, same bytes")
        XCTAssertEqual(Set(fa.keys), Set(fc.keys))
        XCTAssertNotEqual(fa, fc)
        for (folder, n) in [("trainA", 20), ("trainB", 20), ("testA", 10), ("testB", 10)] {
            let ds = try ImageFolderDataset(folder: a.appendingPathComponent(folder).path, domainTag: 0)
            XCTAssertEqual(ds.count, n)
            XCTAssertEqual(ds.groupCount, 4)
            XCTAssertEqual(ds.indicesByGroup.map(\.count), DemoData.groupCounts(total: n), folder)
            let (img, _) = try ds.image(index: n - 1)
            XCTAssertEqual(img.width, 32)
            XCTAssertEqual(img.height, 32)
            XCTAssertTrue(ds.warnings.reported.isEmpty)
        }
    }

    /// `face` draws exactly the images `generate` writes (the group experiment relies on it for fresh faces).
    func testFaceIsTheGeneratedImage() throws {
        let dir = try temporaryFolder(self)
        try DemoData.generate(to: dir, size: 24, trainPerDomain: 10, testPerDomain: 10, seed: 4)
        let groupOf = DemoData.groupCounts(total: 10).enumerated().flatMap {
            Array(repeating: $0.offset, count: $0.element)
        }
        for (folder, split, domain) in [("trainB", UInt64(0), UInt64(1)), ("testA", 1, 0)] {
            for i in [0, 7, 9] {
                let path = dir.appendingPathComponent("\(folder)/\(groupOf[i])/" + String(format: "%05d.png", i)).path
                let stored = try PNGCodec.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))), path: path)
                XCTAssertEqual(
                    stored, DemoData.face(seed: 4, split: split, domain: domain, index: i, group: groupOf[i], size: 24),
                    path)
            }
        }
        XCTAssertNotEqual(
            DemoData.face(seed: 4, split: 2, domain: 1, index: 0, group: 0, size: 24),
            DemoData.face(seed: 4, split: 0, domain: 1, index: 0, group: 0, size: 24))
    }

    /// Regenerating replaces the split folders (no stale images) and leaves no partial folders.
    func testRegenerationReplacesSplits() throws {
        let dir = try temporaryFolder(self)
        try DemoData.generate(to: dir, size: 16, trainPerDomain: 12, testPerDomain: 4, seed: 1)
        try DemoData.generate(to: dir, size: 16, trainPerDomain: 5, testPerDomain: 4, seed: 1)
        XCTAssertEqual(try fileBytes(dir).count, 5 + 5 + 4 + 4)
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(),
            ["testA", "testB", "trainA", "trainB"])
    }

    func render(_ style: DemoFaces.Style, _ group: Int, _ i: UInt64, size: Int = 64) -> RGBImage {
        var rng = RandomGenerator(seed: 1, stream: [i])
        return DemoFaces.render(style: style, group: group, size: size, rng: &rng)
    }

    /// Webtoon images are flat (few colours); photos are shaded and grainy (many colours).
    func testStylesDiffer() {
        for i in UInt64(0)..<4 {
            func colours(_ im: RGBImage) -> Int {
                var set = Set<Int>()
                for i in stride(from: 0, to: im.pixels.count, by: 3) {
                    let r = Int(im.pixels[i])
                    let g = Int(im.pixels[i + 1])
                    let b = Int(im.pixels[i + 2])
                    set.insert(r << 16 | g << 8 | b)
                }
                return set.count
            }
            let photo = colours(render(.photo, 1, i))
            let toon = colours(render(.webtoon, 1, i))
            XCTAssertGreaterThan(photo, 3 * toon, "photo \(photo) colours vs webtoon \(toon)")
        }
    }

    /// Same random draws, different group: the attributes change the picture where they should —
    /// glasses around the eyes, long hair beside the neck below the face.
    func testAttributesShowWhereExpected() {
        func regionDiff(_ a: RGBImage, _ b: RGBImage, rows: Range<Int>) -> Int {
            var d = 0
            for y in rows { for x in 0..<a.width { d += abs(Int(a[x, y].0) - Int(b[x, y].0)) } }
            return d
        }
        for i in UInt64(0)..<6 {
            for style in [DemoFaces.Style.webtoon, .photo] {
                let plain = render(style, 1, i)
                let glasses = render(style, 2, i)
                let long = render(style, 0, i)
                // Rows 24...33 of 64 hold the eyes (eye line ≈ 0.40–0.47 of the height).
                XCTAssertGreaterThan(regionDiff(plain, glasses, rows: 22..<34), 300, "glasses \(style) \(i)")
                XCTAssertEqual(regionDiff(plain, glasses, rows: 56..<64), 0, "glasses leave the shoulders alone")
                XCTAssertGreaterThan(regionDiff(plain, long, rows: 44..<56), 300, "long hair \(style) \(i)")
            }
        }
    }
}
