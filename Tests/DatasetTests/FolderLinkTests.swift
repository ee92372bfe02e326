import Foundation
import XCTest

@testable import Dataset

/// Symbolic links in data folders (hardening issue, item 3) and the messages for a wrong data root (item 9).
final class FolderLinkTests: XCTestCase {
    private func link(_ root: URL, _ relative: String, to target: String) throws {
        let url = root.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: url.path, withDestinationPath: target)
    }

    /// A data set with every kind of link in trainA: to its ancestors (cycles), to a sibling folder, to a file twice,
    /// into the other domain, dangling, and to a folder outside the data root.
    func testLinksNeitherLoopNorCountTwiceNorCrossDomains() throws {
        let root = try temporaryFolder(self)
        let data = root.appendingPathComponent("data")
        let png = try pngBytes(testImage(4, 4))
        for f in ["trainA/a.png", "trainA/sub/b.png", "trainB/x.png", "trainB/y.png", "testB/t.png"] {
            try writeFile(data, f, png)
        }
        try writeFile(root, "elsewhere/far.png", png)
        try link(data, "trainA/sub/up", to: "..")  // cycle to trainA
        try link(data, "trainA/sub/root", to: data.path)  // cycle to the data root (holds trainA)
        try link(data, "trainA/sub2", to: "sub")  // the same folder again
        try link(data, "trainA/again.png", to: "a.png")  // the same file again
        try link(data, "trainA/other", to: "../trainB")  // the other domain's folder
        try link(data, "trainA/stolen.png", to: "../trainB/x.png")  // one file of the other domain
        try link(data, "trainA/test", to: "../testB")  // the other domain's test folder
        try link(data, "trainA/gone.png", to: "nowhere.png")  // dangling
        try link(data, "trainA/far", to: root.appendingPathComponent("elsewhere").path)  // outside the data root: taken

        let scan = try FolderScan.domain(data: data.path, "A")
        XCTAssertEqual(scan.files, ["a.png", "far/far.png", "sub/b.png"])
        let reasons = Dictionary(uniqueKeysWithValues: scan.skipped.map { ($0.path, $0.reason) })
        XCTAssertEqual(
            Set(reasons.keys), ["sub/up", "sub/root", "sub2", "again.png", "other", "stolen.png", "test", "gone.png"])
        guard case .cycle = reasons["sub/up"], case .cycle = reasons["sub/root"] else {
            return XCTFail("cycles: \(scan.skipped)")
        }
        XCTAssertEqual(reasons["again.png"], .duplicate(of: "a.png"))
        XCTAssertEqual(reasons["sub2"], .duplicate(of: "sub/"))
        XCTAssertEqual(reasons["gone.png"], .dangling)
        for p in ["other", "stolen.png", "test"] {
            guard case .excluded = reasons[p] else { return XCTFail("\(p) should be excluded: \(scan.skipped)") }
        }
        XCTAssertTrue(scan.skipped.allSatisfy { "\($0)".hasPrefix($0.path + ": ") })

        // the other domain is untouched by trainA's links, and a plain scan (translate, KID) still follows a sibling link
        XCTAssertEqual(try FolderScan.domain(data: data.path, "B").files, ["x.png", "y.png"])
        XCTAssertTrue(try FolderScan(folder: data.appendingPathComponent("trainA").path).files.contains("other/x.png"))
    }

    func testWrongDataRootSaysWhatIsThereAndWhatIsExpected() throws {
        let root = try temporaryFolder(self)
        let png = try pngBytes(testImage(4, 4))
        try writeFile(root, "data/trainA/a.png", png)
        try writeFile(root, "data/trainb/b.png", png)
        let data = root.appendingPathComponent("data").path
        XCTAssertThrowsError(try DataLayout.check(root: data)) { e in
            let m = "\(e)"
            XCTAssertTrue(m.hasPrefix("\(data): no trainB/ folder"), m)
            XCTAssertTrue(m.contains("holds trainA/, trainb/"), m)
            XCTAssertTrue(m.contains("(trainb/ differs only in letter case: rename it to trainB/"), m)
            XCTAssertTrue(m.contains(DataLayout.expected), m)
        }
        let file = try writeFile(root, "data.zip", [1, 2, 3])
        XCTAssertThrowsError(try DataLayout.check(root: file)) { e in
            XCTAssertTrue("\(e)".hasPrefix("\(file): is a file, not a folder. A data folder holds trainA/"), "\(e)")
        }
        XCTAssertThrowsError(try DataLayout.check(root: root.appendingPathComponent("Data").path)) { e in
            XCTAssertTrue(
                "\(e)".contains(
                    "no such folder; \(root.path) holds data/, data.zip (data/ differs only in letter case"), "\(e)")
        }
        XCTAssertThrowsError(try FolderScan(folder: "\(data)/trainB")) { e in
            XCTAssertTrue("\(e)".contains("\(data)/trainB: no such folder; \(data) holds trainA/, trainb/"), "\(e)")
        }
        try writeFile(root, "data/trainB/b.png", png)
        XCTAssertNoThrow(try DataLayout.check(root: data))
    }
}
