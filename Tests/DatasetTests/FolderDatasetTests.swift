import Engine
import Foundation
import XCTest

@testable import Dataset

/// Folder scanning (layouts, ordering, errors) and skipping of unreadable files.
final class FolderDatasetTests: XCTestCase {
    func testFlatFolderRecursiveSortedByBytesAndFilteredByExtension() throws {
        let dir = try temporaryFolder(self)
        let png = try pngBytes(testImage(8, 8))
        for name in [
            "b.png", "a.PNG", "B.JPG", "sub/c.jpeg", "z.tif", "readme.txt", ".hidden.png", ".git/x.png", "c.gif",
            "é.png",
        ] {
            try writeFile(dir, name, png)
        }
        let scan = try FolderScan(folder: dir.path)
        // Byte order: uppercase before lowercase, "sub/…" after "b.png", UTF-8 "é" (0xC3) last.
        XCTAssertEqual(scan.files, ["B.JPG", "a.PNG", "b.png", "sub/c.jpeg", "z.tif", "é.png"])
        XCTAssertFalse(scan.isGrouped)
        XCTAssertEqual(scan.groupCount, 1)
        XCTAssertEqual(scan.groups, [0, 0, 0, 0, 0, 0])
    }

    func testGroupFolders() throws {
        let dir = try temporaryFolder(self)
        let png = try pngBytes(testImage(8, 8))
        for name in ["0/a.png", "0/b.png", "1/a.png", "3/deep/x.png", "10/a.png", "2/notes.txt", "junk.txt"] {
            try writeFile(dir, name, png)
        }
        let ds = try ImageFolderDataset(folder: dir.path, domainTag: 0)
        XCTAssertTrue(ds.scan.isGrouped)
        XCTAssertEqual(ds.scan.files, ["0/a.png", "0/b.png", "1/a.png", "10/a.png", "3/deep/x.png"])
        XCTAssertEqual(ds.scan.groups, [0, 0, 1, 10, 3])
        XCTAssertEqual(ds.groupCount, 11)
        XCTAssertEqual(ds.indicesByGroup[0], [0, 1])
        XCTAssertEqual(ds.indicesByGroup[1], [2])
        XCTAssertEqual(ds.indicesByGroup[2], [])
        XCTAssertEqual(ds.indicesByGroup[3], [4])
        XCTAssertEqual(ds.indicesByGroup[10], [3])
        XCTAssertEqual(ds.count, 5)
        XCTAssertEqual(try ds.sample(index: 3, epoch: 0, seed: 1, train: false, size: 4).group, 10)
    }

    func testMixedLayoutIsAnError() throws {
        let dir = try temporaryFolder(self)
        let png = try pngBytes(testImage(8, 8))
        try writeFile(dir, "0/a.png", png)
        try writeFile(dir, "loose.png", png)
        XCTAssertThrowsError(try FolderScan(folder: dir.path)) { e in
            XCTAssertEqual(e as? DatasetError, .mixedLayout(folder: dir.path, file: "loose.png"))
        }
        // "01" is not a canonical group name, so it counts as an image outside the group folders.
        let dir2 = try temporaryFolder(self)
        try writeFile(dir2, "1/a.png", png)
        try writeFile(dir2, "01/a.png", png)
        XCTAssertThrowsError(try FolderScan(folder: dir2.path)) { e in
            XCTAssertEqual(e as? DatasetError, .mixedLayout(folder: dir2.path, file: "01/a.png"))
        }
    }

    /// A missing folder under a crowded parent (/tmp) shows the names like it first and a count, not 20 strangers.
    func testMissingFolderInACrowdedParentShowsNamesLikeItFirst() throws {
        let dir = try temporaryFolder(self)
        for i in 0..<30 { try writeFile(dir, "TemporaryDirectory.\(i)/x", [1]) }
        try writeFile(dir, "selfie2anime/trainA/a.png", [1])
        let missing = dir.appendingPathComponent("selfie2anim").path
        let e = DatasetError.missing(missing)
        guard case .missingFolder(_, let parent, let entries) = e else { return XCTFail("\(e)") }
        XCTAssertEqual(parent, dir.path)
        XCTAssertEqual(entries.count, 9, "\(entries)")
        XCTAssertEqual(entries.first, "selfie2anime/")
        XCTAssertEqual(entries.last, "… (31 entries in all)")
    }

    func testMissingEmptyAndNonFolderErrorsNameTheFolder() throws {
        let dir = try temporaryFolder(self)
        let missing = dir.appendingPathComponent("trainA").path
        XCTAssertThrowsError(try ImageFolderDataset(folder: missing, domainTag: 0)) { e in
            XCTAssertEqual(e as? DatasetError, .missingFolder(missing, parent: dir.path, entries: []))
            XCTAssertTrue("\(e)".contains(missing))
        }
        try writeFile(dir, "trainB/0/readme.txt", [1, 2, 3])
        let empty = dir.appendingPathComponent("trainB").path
        XCTAssertThrowsError(try ImageFolderDataset(folder: empty, domainTag: 0)) { e in
            XCTAssertEqual(e as? DatasetError, .emptyFolder(empty))
        }
        let file = try writeFile(dir, "file.png", [1])
        XCTAssertThrowsError(try FolderScan(folder: file)) { e in XCTAssertEqual(e as? DatasetError, .notAFolder(file))
        }
    }

    /// A corrupt file is reported once and replaced by the next readable image of its group.
    func testCorruptFilesAreReportedOnceAndSkippedDeterministically() throws {
        let dir = try temporaryFolder(self)
        let a = testImage(16, 16, salt: 0)
        let c = testImage(16, 16, salt: 1)
        let d = testImage(16, 16, salt: 2)
        try writeFile(dir, "0/a.png", try pngBytes(a))
        try writeFile(dir, "0/b.png", Array("not an image".utf8))
        try writeFile(dir, "0/c.jpg", Array(try JPEGCodec.encode(c).prefix(100)))  // truncated
        try writeFile(dir, "0/d.png", try pngBytes(d))
        try writeFile(dir, "1/e.png", try pngBytes(c))
        var seen: [String] = []
        let lock = NSLock()
        let warnings = DataWarnings { e in
            lock.lock()
            seen.append(e.path)
            lock.unlock()
        }
        let ds = try ImageFolderDataset(folder: dir.path, domainTag: 0, warnings: warnings)
        for _ in 0..<3 {
            XCTAssertEqual(try ds.image(index: 1).index, 3)  // b -> c (bad) -> d
            XCTAssertEqual(try ds.image(index: 2).index, 3)
            XCTAssertEqual(try ds.image(index: 3).image, d)
            XCTAssertEqual(try ds.image(index: 0).image, a)
            XCTAssertEqual(try ds.sample(index: 1, epoch: 0, seed: 5, train: true, size: 8).group, 0)
        }
        XCTAssertEqual(seen, [ds.path(of: 1), ds.path(of: 2)])
        XCTAssertEqual(warnings.reported.map(\.reason), [.notAnImage, .corrupt])
        // Same request, same result: the substitute's pixels with the requested index's randomness.
        let s1 = try ds.sample(index: 1, epoch: 2, seed: 5, train: true, size: 8).0
        let s2 = try ds.sample(index: 1, epoch: 2, seed: 5, train: true, size: 8).0
        XCTAssertEqual(s1.array, s2.array)
    }

    func testGroupWithoutReadableImagesIsAnError() throws {
        let dir = try temporaryFolder(self)
        try writeFile(dir, "x.png", [0x89, 0x50, 0x4E, 0x47])
        try writeFile(dir, "y.jpg", [0xFF, 0xD8, 0xFF, 0x00])
        let warnings = DataWarnings()
        let ds = try ImageFolderDataset(folder: dir.path, domainTag: 1, warnings: warnings)
        for i in 0..<2 {
            XCTAssertThrowsError(try ds.sample(index: i, epoch: 0, seed: 0, train: true, size: 4)) { e in
                XCTAssertEqual(e as? DatasetError, .noReadableImages(folder: dir.path, group: 0))
            }
        }
        XCTAssertEqual(warnings.reported.count, 2)
    }
}
