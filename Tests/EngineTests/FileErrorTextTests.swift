import Engine
import Foundation
import XCTest

/// Foundation's file errors read as "PATH: cause", not as an NSError dump (what a user sees on a bad output path).
final class FileErrorTextTests: XCTestCase {
    func testAFolderUnderAFileNamesThePathAndTheCause() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("f2w-fileerror-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("face.png").path
        try Data([1]).write(to: URL(fileURLWithPath: file))
        XCTAssertThrowsError(
            try FileManager.default.createDirectory(atPath: file + "/run", withIntermediateDirectories: true)
        ) { e in
            XCTAssertEqual(FileErrorText.describe(e), "\(file)/run: Not a directory", "\(e)")
        }
        XCTAssertThrowsError(try Data(contentsOf: URL(fileURLWithPath: dir.path + "/none.bin"))) { e in
            XCTAssertEqual(FileErrorText.describe(e), "\(dir.path)/none.bin: No such file or directory", "\(e)")
        }
        XCTAssertEqual(FileErrorText.reason(CocoaError(.fileWriteOutOfSpace)), "No space left on device")
        XCTAssertNil(FileErrorText.describe(SafeTensorsError.malformed(path: "x", reason: "y")))
    }
}
